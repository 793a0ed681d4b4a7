package hub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/topic"
)

// feedLog is a memory log whose Tail is fed by the benchmark, so it
// measures the hub's fan-out alone (no append, no notification).
type feedLog struct {
	*memlog.Log
	feed chan []*ssehub.Event
}

func (f *feedLog) Tail(ctx context.Context, after uint64, fn func([]*ssehub.Event) error) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case b := <-f.feed:
			if err := fn(b); err != nil {
				return err
			}
		}
	}
}

// BenchmarkFanout delivers one event to N in-process subscribers of one
// topic: the dispatcher's matching and queueing, and each subscriber's
// TryNext (what a parked connection's writer does before its writev).
// ns/delivery and allocs/op (per event) are what to watch: the event is
// encoded once, whatever N.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			f := &feedLog{Log: memlog.New(memlog.Options{}), feed: make(chan []*ssehub.Event)}
			defer f.Close()
			h, err := hub.New(f, hub.Options{Heartbeat: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			subs := make([]*hub.Subscriber, n)
			sel := []topic.Selector{topic.MustCompile("bench")}
			for i := range subs {
				s, err := h.Subscribe(context.Background(), hub.Request{Selectors: sel})
				if err != nil {
					b.Fatal(err)
				}
				s.OnWake(func() {})
				subs[i] = s
			}
			evs := make([]*ssehub.Event, b.N)
			for i := range evs {
				evs[i] = &ssehub.Event{Pos: uint64(i + 1), Topics: []string{"bench"}, Data: `{"n":42,"payload":"0123456789abcdef0123456789abcdef"}`, Time: time.Now()}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				f.feed <- evs[i : i+1]
				for h.LastPos() < evs[i].Pos {
				}
				for _, s := range subs {
					if chunks, err := s.TryNext(); err != nil || len(chunks) != 1 {
						b.Fatalf("subscriber got %d chunks, %v", len(chunks), err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
			for _, s := range subs {
				s.Close()
			}
		})
	}
}
