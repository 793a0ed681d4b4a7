package natslog

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/logtest"
)

// BenchmarkAppendParallel: see logtest.BenchmarkAppendParallel.
func BenchmarkAppendParallel(b *testing.B) {
	url := sharedURL(b)
	logtest.BenchmarkAppendParallel(b, func(b *testing.B) ssehub.Log {
		return open(b, url, Options{MaxEvents: 100_000})
	})
}

// BenchmarkAppendParallelReserved is BenchmarkAppendParallel with the
// reserved class on: what counting and trimming the application events
// in the background cost the append path.
func BenchmarkAppendParallelReserved(b *testing.B) {
	url := sharedURL(b)
	logtest.BenchmarkAppendParallel(b, func(b *testing.B) ssehub.Log {
		return open(b, url, Options{MaxEvents: 100_000, MaxReserved: 10_000})
	})
}

// BenchmarkReadTopics reads the 10 events of one topic spread over 200,000
// events on 1,000 other topics, as a resuming subscriber of that topic
// does (and, for contrast, 500 events of a topic that has every second
// event of the newest 1,000). hub-cpu-ns/op is this process's CPU time
// (user and system) per read: what a hub spends, the NATS server's work
// aside.
func BenchmarkReadTopics(b *testing.B) {
	const others, topics, hot = 200_000, 1000, 10
	l := open(b, sharedURL(b), Options{})
	appendTopics := func(n int, topic func(i int) string) []uint64 {
		var pos []uint64
		batch := make([]*ssehub.Event, 0, 1000)
		for i := range n {
			batch = append(batch, &ssehub.Event{Topics: []string{topic(i)}, Data: fmt.Sprintf(`{"n":%d,"pad":"0123456789abcdef"}`, i)})
			if len(batch) < cap(batch) && i < n-1 {
				continue
			}
			if err := l.Append(b.Context(), batch...); err != nil {
				b.Fatal(err)
			}
			for _, e := range batch {
				if e.Topics[0] == topic(-1) {
					pos = append(pos, e.Pos)
				}
			}
			batch = batch[:0]
		}
		return pos
	}
	other := func(i int) string { return fmt.Sprintf("https://example.com/other/%d", i%topics) }
	const every = (others + hot) / hot
	hotPos := appendTopics(others+hot, func(i int) string {
		if i < 0 || i%every == every/2 {
			return "https://example.com/hot"
		}
		return other(i)
	})
	densePos := appendTopics(1000, func(i int) string {
		if i < 0 || i%2 == 0 {
			return "https://example.com/dense"
		}
		return other(i)
	})
	if len(hotPos) != hot || len(densePos) != 500 {
		b.Fatalf("bench bug: %d and %d events on the topics read", len(hotPos), len(densePos))
	}
	for _, bc := range []struct {
		name  string
		topic string
		after uint64
		limit int
		want  int
	}{
		{"all10/limit512", "hot", 0, 512, hot},
		{"all10/limit8", "hot", 0, 8, 8},
		{"newest5/limit512", "hot", hotPos[4], 512, hot - 5},
		{"none/limit512", "hot", hotPos[hot-1], 512, 0},
		{"dense500/limit512", "dense", densePos[0] - 1, 512, 500},
	} {
		b.Run(bc.name, func(b *testing.B) {
			q := ssehub.TopicQuery{Topics: []string{"https://example.com/" + bc.topic}, After: bc.after, Limit: bc.limit}
			cpu0 := cpuTime()
			for b.Loop() {
				events, _, err := l.ReadTopics(b.Context(), q)
				if err != nil {
					b.Fatal(err)
				}
				if len(events) != bc.want {
					b.Fatalf("%d events, want %d", len(events), bc.want)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "hub-cpu-ns/op")
		})
	}
}

// cpuTime returns the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
