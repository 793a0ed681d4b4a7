package eventlog

import (
	"testing"
	"time"
)

func TestNextTime(t *testing.T) {
	last := time.Unix(100, 0)
	for _, tc := range []struct {
		name      string
		now, want time.Time
	}{
		{"later", time.Unix(101, 0), time.Unix(101, 0)},
		{"equal", last, last.Add(time.Nanosecond)},
		{"stepped back", time.Unix(99, 0), last.Add(time.Nanosecond)},
	} {
		if got := NextTime(last, tc.now); !got.Equal(tc.want) {
			t.Errorf("%s: NextTime(%v, %v) = %v, want %v", tc.name, last, tc.now, got, tc.want)
		}
	}
	if got := NextTime(time.Time{}, last); !got.Equal(last) {
		t.Errorf("first time: %v, want %v", got, last)
	}
}

func TestClockNeverGoesBack(t *testing.T) {
	var c Clock
	c.last.Store(time.Now().Add(time.Hour).UnixNano()) // as after a clock step back
	a, b := c.Now(), c.Now()
	if b.Before(a) || a.UnixNano() != c.last.Load() {
		t.Fatalf("Clock went back: %v then %v", a, b)
	}
}
