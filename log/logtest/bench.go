package logtest

import (
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

// BenchmarkAppendParallel appends 100-byte events from many goroutines at
// once (parallelism × GOMAXPROCS of them), as many publishers on one node
// would, and reports acknowledged events per second. open returns a log
// that retains about 100,000 events and is closed by b's cleanup.
func BenchmarkAppendParallel(b *testing.B, open func(b *testing.B) ssehub.Log) {
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
			l := open(b)
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
