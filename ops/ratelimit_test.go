package ops

import (
	"fmt"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		key  string
		at   time.Duration // after t0
		ok   bool
		wait time.Duration // when refused
	}
	for _, tc := range []struct {
		name  string
		rate  float64
		burst int
		steps []step
	}{
		{"burst then refusal", 1, 2, []step{
			{"a", 0, true, 0}, {"a", 0, true, 0}, {"a", 0, false, time.Second},
			{"a", 500 * time.Millisecond, false, 500 * time.Millisecond},
			{"a", time.Second, true, 0}, {"a", time.Second, false, time.Second},
		}},
		{"keys are independent", 1, 1, []step{
			{"a", 0, true, 0}, {"a", 0, false, time.Second}, {"b", 0, true, 0},
		}},
		{"refill stops at the burst", 10, 2, []step{
			{"a", 0, true, 0}, {"a", 0, true, 0}, {"a", time.Hour, true, 0}, {"a", time.Hour, true, 0},
			{"a", time.Hour, false, 100 * time.Millisecond},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewRateLimiter(tc.rate, tc.burst, 100)
			for i, s := range tc.steps {
				wait, ok := l.Allow(s.key, t0.Add(s.at))
				if ok != s.ok || (!ok && (wait-s.wait).Abs() > time.Millisecond) {
					t.Fatalf("step %d (%s at %v): %v, wait %v; want %v, wait %v", i, s.key, s.at, ok, wait, s.ok, s.wait)
				}
			}
		})
	}
}

func TestRateLimiterMemoryIsBounded(t *testing.T) {
	l := NewRateLimiter(1, 1, 1000)
	now := time.Unix(1000, 0)
	for i := range 100_000 {
		l.Allow(fmt.Sprint("token-", i), now)
		if n := l.size(); n > 1000 {
			t.Fatalf("%d keys tracked after %d tokens", n, i+1)
		}
	}
	// A key that is being limited is not forgotten while idle keys exist.
	l = NewRateLimiter(1, 1, 10)
	l.Allow("hot", now)
	for i := range 9 {
		l.Allow(fmt.Sprint("idle-", i), now.Add(-time.Hour))
	}
	l.Allow("new", now) // full: the idle (refilled) ones go
	if _, ok := l.Allow("hot", now); ok {
		t.Fatal("the limited key was forgotten")
	}
}
