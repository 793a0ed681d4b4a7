package boltlog_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/boltlog"
)

// benchData is a typical small JSON update (about 100 bytes).
const benchData = `{"id":"https://example.com/books/1","title":"The Go Programming Language","stock":42,"price":"34.99"}`

func benchEvent() *ssehub.Event {
	return &ssehub.Event{Topics: []string{"https://example.com/books/1"}, Data: benchData}
}

// BenchmarkAppend appends one event at a time from one goroutine, with
// fsync: every append is its own commit.
func BenchmarkAppend(b *testing.B) {
	l := open(b, b.TempDir(), boltlog.Options{})
	defer l.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Append(ctx, benchEvent()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendParallel appends one event per call from many goroutines,
// with fsync: group commit lets them share transactions.
func BenchmarkAppendParallel(b *testing.B) {
	for _, bc := range []struct {
		name     string
		opts     boltlog.Options
		reserved bool // every other event is reserved (presence)
	}{
		{"unbounded", boltlog.Options{}, false},
		{"retained=100000", boltlog.Options{MaxEvents: 100_000}, false},
		{"retained=100000+reserved=10000/half-reserved", boltlog.Options{MaxEvents: 100_000, MaxReserved: 10_000}, true},
	} {
		for _, publishers := range []int{8, 64, 256} {
			b.Run(fmt.Sprintf("%s/publishers=%d", bc.name, publishers), func(b *testing.B) {
				l := open(b, b.TempDir(), bc.opts)
				defer l.Close()
				ctx := context.Background()
				b.SetParallelism(max(1, publishers/max(1, runtimeProcs())))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for i := 0; pb.Next(); i++ {
						e := benchEvent()
						if bc.reserved && i%2 == 1 {
							e.Topics = []string{"/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fbooks%2F1/" + strconv.Itoa(i)}
						}
						if err := l.Append(ctx, e); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkAppendLatency runs 64 publishers appending one event per call as
// fast as they can, with fsync, and reports the distribution of Append
// latency (queue + commit + fsync) and the throughput.
func BenchmarkAppendLatency(b *testing.B) {
	const publishers = 64
	l := open(b, b.TempDir(), boltlog.Options{MaxEvents: 100_000})
	defer l.Close()
	ctx := context.Background()
	lat := make([][]time.Duration, publishers)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for p := range publishers {
		n := b.N / publishers
		if p < b.N%publishers {
			n++
		}
		lat[p] = make([]time.Duration, 0, n)
		wg.Go(func() {
			for range n {
				e := benchEvent()
				start := time.Now()
				if err := l.Append(ctx, e); err != nil {
					b.Error(err)
					return
				}
				lat[p] = append(lat[p], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	q := func(f float64) float64 { return float64(all[min(len(all)-1, int(f*float64(len(all))))]) }
	b.ReportMetric(q(0.50), "p50-ns")
	b.ReportMetric(q(0.99), "p99-ns")
	b.ReportMetric(float64(all[len(all)-1]), "max-ns")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReplay reads 10,000 events after a position in pages of 1,000,
// as a resuming subscriber does: from the in-memory cache, and from disk.
func BenchmarkReplay(b *testing.B) {
	for _, bc := range []struct {
		name  string
		cache int
	}{{"cache", 0}, {"disk", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			l := open(b, b.TempDir(), boltlog.Options{NoSync: true, CacheEvents: bc.cache})
			defer l.Close()
			ctx := context.Background()
			events := make([]*ssehub.Event, 10_000)
			for i := range events {
				events[i] = benchEvent()
			}
			if err := l.Append(ctx, events...); err != nil {
				b.Fatal(err)
			}
			from := events[0].Pos - 1
			b.ReportAllocs()
			for b.Loop() {
				after, n := from, 0
				for n < len(events) {
					page, err := l.Read(ctx, after, 1000)
					if err != nil || len(page) == 0 {
						b.Fatalf("Read: %d events, %v", len(page), err)
					}
					n += len(page)
					after = page[len(page)-1].Pos
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/10k-events")
		})
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkOpen opens a history of a million events: the free-page list is
// not stored (NoFreelistSync), so Open rebuilds it by walking the file.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	l := open(b, dir, boltlog.Options{NoSync: true})
	ctx := context.Background()
	batch := make([]*ssehub.Event, 1000)
	for range 1000 {
		for i := range batch {
			batch[i] = benchEvent()
		}
		if err := l.Append(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		l := open(b, dir, boltlog.Options{NoSync: true})
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadTopics reads the 10 events of one topic published among
// 200,000 events on 1,000 other topics, after a position before all of
// them, as a subscriber of that topic resuming after a long absence does:
// through the topic index, and (for comparison) by reading every event and
// filtering, as a resume did before the index.
func BenchmarkReadTopics(b *testing.B) {
	const others, hot = 200_000, 10
	l := open(b, b.TempDir(), boltlog.Options{NoSync: true})
	defer l.Close()
	ctx := context.Background()
	batch := make([]*ssehub.Event, 0, 1000)
	for i := range others {
		topic := fmt.Sprintf("https://example.com/books/%d", i%1000)
		if i%(others/hot) == others/hot/2 {
			topic = "https://example.com/hot"
		}
		e := &ssehub.Event{Topics: []string{topic}, Data: benchData}
		if i >= others-1000 && i%100 == 0 {
			e.Topics = append(e.Topics, "https://example.com/recent")
		}
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			if err := l.Append(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	first, _, err := l.Bounds(ctx)
	if err != nil {
		b.Fatal(err)
	}
	q := ssehub.TopicQuery{Topics: []string{"https://example.com/hot"}, After: first - 1, Limit: 1000, MaxBytes: 1 << 20}
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			events, _, err := l.ReadTopics(ctx, q)
			if err != nil || len(events) != hot {
				b.Fatalf("ReadTopics: %d events, %v", len(events), err)
			}
		}
	})
	// 10 events among the newest 1,000, which the cache holds.
	recent := ssehub.TopicQuery{Topics: []string{"https://example.com/recent"}, After: first + others - 1001, Limit: 1000, MaxBytes: 1 << 20}
	b.Run("recent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			events, _, err := l.ReadTopics(ctx, recent)
			if err != nil || len(events) != 10 {
				b.Fatalf("ReadTopics: %d events, %v", len(events), err)
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for after := q.After; ; {
				page, err := l.Read(ctx, after, 1000)
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				for _, e := range page {
					if slices.Contains(e.Topics, q.Topics[0]) {
						n++
					}
				}
				after = page[len(page)-1].Pos
			}
			if n != hot {
				b.Fatalf("scan found %d events", n)
			}
		}
	})
}
