package redislog

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
	"github.com/ssehub/ssehub/log/logtest"
)

// BenchmarkAppendParallel: see logtest.BenchmarkAppendParallel.
func BenchmarkAppendParallel(b *testing.B) {
	url := sharedURL(b)
	logtest.BenchmarkAppendParallel(b, func(b *testing.B) ssehub.Log {
		return open(b, url, Options{MaxEvents: 100_000})
	})
}

// BenchmarkReadTopics reads one topic's 10 events from behind a crowd of
// other topics' events, as a resuming client does, on a redis-server of the
// benchmark's own (so that the Redis CPU it reports is this benchmark's):
//
//   - one read of 10 events behind 200,000 events of 1,000 other topics
//     (ReadTopics, and for comparison the filtered Read it replaces);
//   - 500 such reads at once, each of its own topic, behind 100,000.
//
// It reports redis-cpu-µs/op (the server's user+system CPU).
func BenchmarkReadTopics(b *testing.B) {
	srv := startServer(b)
	b.Run("one/behind=200k", func(b *testing.B) {
		l := open(b, srv.url(), Options{})
		after := fillCrowd(b, l, 200_000, []string{"hot"})
		b.Run("ReadTopics", func(b *testing.B) {
			q := ssehub.TopicQuery{Topics: []string{"hot"}, After: after, Limit: 512, MaxBytes: 1 << 20}
			measure(b, l, func() {
				if events, _, err := l.ReadTopics(b.Context(), q); err != nil || len(events) != 10 {
					b.Fatalf("ReadTopics = %d events, %v; want 10", len(events), err)
				}
			})
		})
		b.Run("filtered-Read", func(b *testing.B) {
			measure(b, l, func() {
				n, pos := 0, after
				for {
					events, err := l.Read(b.Context(), pos, 512)
					if err != nil {
						b.Fatal(err)
					}
					if len(events) == 0 {
						break
					}
					for _, e := range events {
						if eventlog.Selects([]string{"hot"}, e) {
							n++
						}
					}
					pos = events[len(events)-1].Pos
				}
				if n != 10 {
					b.Fatalf("filtered Read found %d events, want 10", n)
				}
			})
		})
	})
	b.Run("500-at-once/behind=100k", func(b *testing.B) {
		l := open(b, srv.url(), Options{})
		hot := make([]string, 500)
		for i := range hot {
			hot[i] = fmt.Sprintf("https://example.com/hot/%d", i)
		}
		after := fillCrowd(b, l, 100_000-10*len(hot), hot)
		measure(b, l, func() {
			var wg sync.WaitGroup
			for _, topic := range hot {
				wg.Go(func() {
					q := ssehub.TopicQuery{Topics: []string{topic}, After: after, Limit: 512, MaxBytes: 1 << 20}
					if events, _, err := l.ReadTopics(b.Context(), q); err != nil || len(events) != 10 {
						b.Errorf("ReadTopics(%s) = %d events, %v; want 10", topic, len(events), err)
					}
				})
			}
			wg.Wait()
		})
	})
}

// fillCrowd appends n events of 100 bytes on 1,000 crowd topics, with 10
// events of each hot topic spread evenly among them, and returns the
// position before the first.
func fillCrowd(b *testing.B, l *Log, n int, hot []string) uint64 {
	b.Helper()
	total := n + 10*len(hot)
	every := total / (10 * len(hot))
	data := strings.Repeat("x", 100)
	var first uint64
	batch := make([]*ssehub.Event, 0, 500)
	for i, h := 0, 0; i < total; i++ {
		topic := fmt.Sprintf("https://example.com/crowd/%d", i%1000)
		if i%every == every/2 && h < 10*len(hot) {
			topic = hot[h%len(hot)]
			h++
		}
		batch = append(batch, &ssehub.Event{Topics: []string{topic}, Data: data})
		if len(batch) == cap(batch) || i == total-1 {
			if err := l.Append(b.Context(), batch...); err != nil {
				b.Fatal(err)
			}
			if first == 0 {
				first = batch[0].Pos
			}
			batch = batch[:0]
		}
	}
	return first - 1
}

// measure runs op in b.Loop and reports the Redis server's CPU per op.
func measure(b *testing.B, l *Log, op func()) {
	b.Helper()
	before := redisCPU(b, l)
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64((redisCPU(b, l)-before).Microseconds())/float64(b.N), "redis-cpu-µs/op")
}

// redisCPU returns the user+system CPU time the Redis server of l used.
func redisCPU(b *testing.B, l *Log) time.Duration {
	b.Helper()
	info, err := l.client.Info(b.Context(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.Lines(info) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
