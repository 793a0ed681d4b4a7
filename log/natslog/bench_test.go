package natslog

import (
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

// BenchmarkAppendParallel appends 100-byte events from many goroutines at
// once (parallelism × GOMAXPROCS of them), as many publishers on one node
// would, and reports acknowledged events per second.
func BenchmarkAppendParallel(b *testing.B) {
	url := sharedURL(b)
	for _, bc := range []struct {
		name        string
		parallelism int // goroutines per GOMAXPROCS
		batch       int // events per Append
	}{
		{"goroutines=1x", 1, 1},
		{"goroutines=16x", 16, 1},
		{"goroutines=64x", 64, 1},
		{"goroutines=16x/batch=16", 16, 16},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := open(b, url, Options{MaxEvents: 100_000})
			data := strings.Repeat("x", 100)
			b.ReportAllocs()
			b.SetParallelism(bc.parallelism)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				events := make([]*ssehub.Event, bc.batch)
				for pb.Next() {
					for i := range events {
						events[i] = &ssehub.Event{Topics: []string{"https://example.com/bench"}, Data: data}
					}
					if err := l.Append(b.Context(), events...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*bc.batch)/time.Since(start).Seconds(), "events/s")
		})
	}
}
