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

// BenchmarkResumeStorm: clients each resume their own topic, whose 10
// events sit behind 200,000 events on 1,000 other topics (memlog), all at
// once; one op is the whole storm. ns/op divided by the clients is the
// hub's CPU per resume (no HTTP, no socket). "wild" resumes the same
// clients with a URI template, which no index serves: they share the scan.
func BenchmarkResumeStorm(b *testing.B) {
	for _, bc := range []struct {
		name    string
		clients int
		wild    bool
	}{{"exact/1", 1, false}, {"exact/1000", 1000, false}, {"wild/100", 100, true}} {
		b.Run(bc.name, func(b *testing.B) {
			l := memlog.New(memlog.Options{})
			h, err := hub.New(l, hub.Options{Heartbeat: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { h.Close(); l.Close() }()
			ctx := context.Background()
			from := make([]string, bc.clients)
			for i := range bc.clients {
				ev := &ssehub.Event{Topics: []string{fmt.Sprintf("user/%d", i)}, Data: "seen"}
				if err := h.Publish(ctx, ev); err != nil {
					b.Fatal(err)
				}
				from[i] = ev.WireID()
			}
			for i := 0; i < 200000; i += 1000 {
				batch := make([]*ssehub.Event, 1000)
				for j := range batch {
					batch[j] = &ssehub.Event{Topics: []string{fmt.Sprintf("other/%d", j)}, Data: "other event"}
				}
				if err := h.Publish(ctx, batch...); err != nil {
					b.Fatal(err)
				}
			}
			for i := range bc.clients {
				for range 10 {
					if err := h.Publish(ctx, &ssehub.Event{Topics: []string{fmt.Sprintf("user/%d", i)}, Data: "missed"}); err != nil {
						b.Fatal(err)
					}
				}
			}
			_, last, _ := l.Bounds(ctx)
			for h.LastPos() < last {
				time.Sleep(time.Millisecond)
			}
			b.ResetTimer()
			for b.Loop() {
				done := make(chan error, bc.clients)
				for i := range bc.clients {
					sel := topic.MustCompile(fmt.Sprintf("user/%d", i))
					if bc.wild {
						sel = topic.MustCompile("user/{n}")
					}
					s, err := h.Subscribe(ctx, hub.Request{Selectors: []topic.Selector{sel}, LastEventID: from[i]})
					if err != nil {
						b.Fatal(err)
					}
					go func() {
						defer s.Close()
						for !s.Live() {
							if _, err := s.Next(ctx); err != nil {
								done <- err
								return
							}
						}
						done <- nil
					}()
				}
				for range bc.clients {
					if err := <-done; err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bc.clients), "ns/resume")
		})
	}
}
