package memlog_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/logtest"
	"github.com/ssehub/ssehub/log/memlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	logtest.Run(t, logtest.Harness{
		Open: func(t *testing.T) ssehub.Log { return memlog.New(memlog.Options{}) },
		OpenRetained: func(t *testing.T, maxEvents int) ssehub.Log {
			return memlog.New(memlog.Options{MaxEvents: maxEvents})
		},
		OpenReserved: func(t *testing.T, maxEvents, maxReserved int) ssehub.Log {
			return memlog.New(memlog.Options{MaxEvents: maxEvents, MaxReserved: maxReserved})
		},
	})
}

func TestPositionsStartAtUnixMicros(t *testing.T) {
	before := uint64(time.Now().UnixMicro())
	l := memlog.New(memlog.Options{})
	defer l.Close()
	after := uint64(time.Now().UnixMicro())
	e := &ssehub.Event{Topics: []string{"a"}}
	if err := l.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if e.Pos < before || e.Pos > after {
		t.Fatalf("first position %d, want the Unix time in µs at New (%d to %d)", e.Pos, before, after)
	}
	// A second process started later never reuses the first one's positions.
	l2 := memlog.New(memlog.Options{})
	defer l2.Close()
	e2 := &ssehub.Event{Topics: []string{"a"}}
	if err := l2.Append(t.Context(), e2); err != nil {
		t.Fatal(err)
	}
	if e2.Pos <= e.Pos {
		t.Fatalf("a log made later starts at %d, not after %d", e2.Pos, e.Pos)
	}
}

func TestRetention(t *testing.T) {
	tests := []struct {
		name      string
		opts      memlog.Options
		steps     []step
		wantFirst int // index of the first retained event, -1 for none
	}{
		{"count", memlog.Options{MaxEvents: 3}, []step{{n: 5}}, 2},
		{"count exact", memlog.Options{MaxEvents: 5}, []step{{n: 5}}, 0},
		{"age", memlog.Options{MaxAge: time.Minute}, []step{{n: 2}, {wait: 40 * time.Second, n: 3}, {wait: 30 * time.Second}}, 2},
		{"age all expired", memlog.Options{MaxAge: time.Minute}, []step{{n: 4}, {wait: 2 * time.Minute}}, -1},
		{"age and count", memlog.Options{MaxEvents: 2, MaxAge: time.Minute}, []step{{n: 2}, {wait: 30 * time.Second, n: 3}}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := memlog.New(tc.opts)
				defer l.Close()
				var events []*ssehub.Event
				for _, s := range tc.steps {
					time.Sleep(s.wait)
					for range s.n {
						e := &ssehub.Event{Topics: []string{"a"}, Data: fmt.Sprint(len(events))}
						if err := l.Append(t.Context(), e); err != nil {
							t.Fatal(err)
						}
						events = append(events, e)
					}
				}
				first, last, err := l.Bounds(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				wantFirst := uint64(0)
				if tc.wantFirst >= 0 {
					wantFirst = events[tc.wantFirst].Pos
				}
				if first != wantFirst || last != events[len(events)-1].Pos {
					t.Fatalf("Bounds = %d, %d; want %d, %d", first, last, wantFirst, events[len(events)-1].Pos)
				}
				got, err := l.Read(t.Context(), 0, 100)
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				if tc.wantFirst >= 0 {
					want = len(events) - tc.wantFirst
				}
				if len(got) != want {
					t.Fatalf("Read returned %d events, want %d", len(got), want)
				}
			})
		})
	}
}

type step struct {
	wait time.Duration // sleep first (fake time)
	n    int           // then append n events
}

func TestReadAfterClose(t *testing.T) {
	l := memlog.New(memlog.Options{})
	l.Close()
	if _, err := l.Read(t.Context(), 0, 10); err != ssehub.ErrClosed {
		t.Fatalf("Read after Close = %v, want ErrClosed", err)
	}
	if _, _, err := l.Bounds(t.Context()); err != ssehub.ErrClosed {
		t.Fatalf("Bounds after Close = %v, want ErrClosed", err)
	}
}

func BenchmarkAppend(b *testing.B) {
	l := memlog.New(memlog.Options{MaxEvents: 100_000})
	defer l.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(ctx, &ssehub.Event{Topics: []string{"a"}, Data: "hello"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
