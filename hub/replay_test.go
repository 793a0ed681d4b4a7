package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
)

// countingLog is a memlog that counts the events its reads hand out (the
// hub's tail reads through memlog itself and is not counted) and how many
// topic reads run at once.
type countingLog struct {
	*memlog.Log
	read         atomic.Int64 // events returned by Read and ReadTopics
	topicReads   atomic.Int64 // ReadTopics calls with topics
	running, top atomic.Int64 // ReadTopics under way now, and at most
	delay        time.Duration
}

func (c *countingLog) Read(ctx context.Context, after uint64, limit int) ([]*ssehub.Event, error) {
	evs, err := c.Log.Read(ctx, after, limit)
	c.read.Add(int64(len(evs)))
	return evs, err
}

func (c *countingLog) ReadTopics(ctx context.Context, q ssehub.TopicQuery) ([]*ssehub.Event, uint64, error) {
	n := c.running.Add(1)
	defer c.running.Add(-1)
	for top := c.top.Load(); n > top && !c.top.CompareAndSwap(top, n); top = c.top.Load() {
	}
	if len(q.Topics) > 0 {
		c.topicReads.Add(1)
	}
	time.Sleep(c.delay)
	evs, through, err := c.Log.ReadTopics(ctx, q)
	c.read.Add(int64(len(evs)))
	return evs, through, err
}

// plainLog hides memlog's TopicIndex: a log without one.
type plainLog struct{ *countingLog }

func (p plainLog) ReadTopics() {} // not ssehub.TopicIndex's method

func newCountingHub(t *testing.T, opts hub.Options, l ssehub.Log) *hub.Hub {
	t.Helper()
	opts.Heartbeat = -1
	h, err := hub.New(l, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); l.Close() })
	return h
}

// fill publishes n events spread over 100 "other/…" topics, in batches.
func fillOthers(t *testing.T, h *hub.Hub, n int) {
	t.Helper()
	for i := 0; i < n; i += 500 {
		batch := make([]*ssehub.Event, 0, 500)
		for j := i; j < min(n, i+500); j++ {
			batch = append(batch, &ssehub.Event{Topics: []string{fmt.Sprintf("other/%d", j%100)}, Data: fmt.Sprint(j)})
		}
		publish(t, h, batch...)
	}
}

// A resume of exact topics reads its topics' events, not the whole log
// since the client's id: what a reconnect costs follows what it receives.
func TestExactResumeReadsOnlyItsTopics(t *testing.T) {
	for _, indexed := range []bool{true, false} {
		t.Run(fmt.Sprintf("indexed=%v", indexed), func(t *testing.T) {
			cl := &countingLog{Log: memlog.New(memlog.Options{})}
			var l ssehub.Log = cl
			if !indexed {
				l = plainLog{cl}
			}
			h := newCountingHub(t, hub.Options{}, l)
			publish(t, h, &ssehub.Event{Topics: []string{"mine"}, Data: "before"})
			ids := publishN(t, h, "mine", 0, 1) // the client has this one
			fillOthers(t, h, 5000)
			publishN(t, h, "mine", 1, 10)
			publish(t, h, &ssehub.Event{Topics: []string{"mine", "other/1"}, Data: "both"})
			waitDispatched(t, h)
			cl.read.Store(0)
			s := subscribe(t, h, hub.Request{Selectors: sels(t, "mine", "not-published"), LastEventID: ids[0]})
			want := append(seq(1, 10), "both")
			if got := datas(collect(t, s, len(want))); !slices.Equal(got, want) {
				t.Fatalf("replayed %q, want %q", got, want)
			}
			expectNothing(t, h, s)
			read := cl.read.Load()
			if indexed && read > int64(len(want)) {
				t.Fatalf("a resume of 10 events read %d events from the log: it walked other topics", read)
			}
			if !indexed && read < 5000 {
				t.Fatalf("without a topic index the resume read %d events; the test does not measure what it should", read)
			}
		})
	}
}

// Many subscribers that no index can serve (wildcards, templates) resuming
// at once share one scan of the history instead of one each.
func TestWildcardStormSharesOneScan(t *testing.T) {
	const history, subscribers = 20000, 30
	cl := &countingLog{Log: memlog.New(memlog.Options{})}
	h := newCountingHub(t, hub.Options{ReplayBatch: 500}, cl)
	start := &ssehub.Event{Topics: []string{"start"}}
	publish(t, h, start)
	fillOthers(t, h, history/2)
	middle := &ssehub.Event{Topics: []string{"middle"}}
	publish(t, h, middle)
	fillOthers(t, h, history/2)
	waitDispatched(t, h)
	cl.read.Store(0)

	type sub struct {
		s    *hub.Subscriber
		want int
	}
	var subs []sub
	for i := range subscribers {
		sel, from, want := "*", start, history+1 // "middle" too
		switch i % 3 {
		case 1:
			sel = "other/{n}" // a URI template: every other/… topic
			want = history
		case 2:
			from, want = middle, history/2
		}
		if sel == "*" && from == middle {
			want = history / 2
		}
		s := subscribe(t, h, hub.Request{Selectors: sels(t, sel), LastEventID: from.WireID()})
		subs = append(subs, sub{s, want})
	}
	var wg sync.WaitGroup
	errs := make(chan error, subscribers)
	for _, sb := range subs {
		wg.Go(func() {
			got := datasNoFail(sb.s, sb.want)
			if len(got) != sb.want {
				errs <- fmt.Errorf("a subscriber got %d events, want %d", len(got), sb.want)
				return
			}
			prev := -1
			for _, d := range got {
				if d == "" { // "middle"
					continue
				}
				var n int
				fmt.Sscan(d, &n)
				if n <= prev && !(prev >= history/2-1 && n == 0) {
					errs <- fmt.Errorf("out of order or duplicated: %d after %d", n, prev)
					return
				}
				prev = n
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	read := cl.read.Load()
	t.Logf("%d subscribers replayed a history of %d events reading %d events (%d scans)", subscribers, history, read, h.Stats().ReplayScans)
	// Without sharing it would be about 25 times the history (20 of the
	// 30 replay it all, 10 half); stragglers of the herd and the fairness
	// rule (a request waiting 8 batches goes first) cost a little more
	// than one scan.
	if read > 3*history {
		t.Fatalf("%d subscribers reading a history of %d events read %d events: they did not share the scan", subscribers, history, read)
	}
}

// datasNoFail reads n events from s (for goroutines other than the test's)
// and returns their data.
func datasNoFail(s *hub.Subscriber, n int) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var pending string
	var out []string
	for len(out) < n {
		chunks, err := s.Next(ctx)
		if err != nil {
			return out
		}
		for _, c := range chunks {
			pending += string(c)
		}
		blocks := strings.Split(pending, "\n\n")
		pending = blocks[len(blocks)-1]
		for _, block := range blocks[:len(blocks)-1] {
			if !strings.Contains(block, "id: ") {
				continue
			}
			var data string
			for _, line := range strings.Split(block, "\n") {
				if d, ok := strings.CutPrefix(line, "data: "); ok {
					data = d
				}
			}
			out = append(out, data)
		}
	}
	return out
}

// A storm of exact-topic resumes runs at most ReplayConcurrency index reads
// at once: the rest wait instead of taking the CPU from live delivery.
func TestReplayConcurrencyIsBounded(t *testing.T) {
	cl := &countingLog{Log: memlog.New(memlog.Options{}), delay: 2 * time.Millisecond}
	h := newCountingHub(t, hub.Options{ReplayConcurrency: 2, ReplayBatch: 2}, cl)
	const clients = 20
	var ids []string
	for i := range clients {
		ids = append(ids, publishN(t, h, fmt.Sprintf("user/%d", i), 0, 1)[0])
	}
	for i := range clients {
		publishN(t, h, fmt.Sprintf("user/%d", i), 1, 6)
	}
	waitDispatched(t, h)
	var subs []*hub.Subscriber
	for i := range clients {
		subs = append(subs, subscribe(t, h, hub.Request{Selectors: sels(t, fmt.Sprintf("user/%d", i)), LastEventID: ids[i]}))
	}
	var wg sync.WaitGroup
	bad := make(chan string, clients)
	for _, s := range subs {
		wg.Go(func() {
			if got := datasNoFail(s, 5); !slices.Equal(got, seq(1, 6)) {
				bad <- fmt.Sprint(got)
			}
		})
	}
	wg.Wait()
	close(bad)
	for b := range bad {
		t.Fatalf("a subscriber got %s, want %q", b, seq(1, 6))
	}
	if n := cl.topicReads.Load(); n < clients {
		t.Fatalf("%d topic reads for %d exact-topic resumes: the index was not used", n, clients)
	}
	if top := cl.top.Load(); top > 2 {
		t.Fatalf("%d index reads ran at once, ReplayConcurrency is 2", top)
	}
}

// A replay holds at most about ReplayBytes of history per step, and none
// once the subscriber is live.
func TestReplayChunksAreBoundedInBytes(t *testing.T) {
	const eventSize, replayBytes = 16 << 10, 64 << 10
	for _, sel := range []string{"a", "*"} {
		t.Run(sel, func(t *testing.T) {
			h, _ := newHub(t, hub.Options{ReplayBytes: replayBytes}, memlog.Options{})
			for i := range 60 {
				publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: fmt.Sprintf("%03d", i) + strings.Repeat("x", eventSize)})
			}
			waitDispatched(t, h)
			s := subscribe(t, h, hub.Request{Selectors: sels(t, sel), LastEventID: hub.LastEventIDEarliest})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got := 0
			for !s.Live() {
				chunks, err := s.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				size := 0
				for _, c := range chunks {
					size += len(c)
					got += strings.Count(string(c), "\nid: ") + strings.Count(string(c[:min(len(c), 4)]), "id: ")
				}
				if size > replayBytes+eventSize+100 {
					t.Fatalf("a replay step returned %d bytes; ReplayBytes is %d", size, replayBytes)
				}
			}
			if got != 60 {
				t.Fatalf("replayed %d events, want 60", got)
			}
		})
	}
}

// A Next whose ctx ends while the scanner is already filling its step (a
// long poll's timeout) must not lose that step: the scanner has advanced
// the replay, so Cursor and the next Next start after it. The Private
// callback, which the scanner calls while it fills the step, holds the
// scanner there while the ctx ends.
func TestScanStepCancelledWhileServedLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memlog.New(memlog.Options{})
		defer l.Close()
		for _, d := range []string{"A", "B", "C"} {
			if err := l.Append(context.Background(), &ssehub.Event{Topics: []string{"a"}, Data: d, Private: d == "B"}); err != nil {
				t.Fatal(err)
			}
		}
		h, err := hub.New(l, hub.Options{Heartbeat: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		inFill, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		s, err := h.Subscribe(context.Background(), hub.Request{
			Selectors:   sels(t, "*"), // the shared scan
			LastEventID: hub.LastEventIDEarliest,
			Private: func([]string) bool {
				once.Do(func() { close(inFill); <-release })
				return true
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			chunks [][]byte
			err    error
		}
		res := make(chan result, 1)
		go func() {
			chunks, err := s.Next(ctx)
			res <- result{slices.Clone(chunks), err}
		}()
		<-inFill // the scanner took the request and is filling it
		cancel()
		synctest.Wait() // Next saw its ctx end
		close(release)
		r := <-res
		var buf bytes.Buffer
		for _, c := range r.chunks {
			buf.Write(c)
		}
		for !s.Live() {
			chunks, err := s.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range chunks {
				buf.Write(c)
			}
		}
		if got := datas(decodeAll(t, &buf)); !slices.Equal(got, []string{"A", "B", "C"}) {
			t.Fatalf("replayed %q (first Next: %v), cursor %s: want A, B, C", got, r.err, s.Cursor())
		}
	})
}

// With Request.Events a subscriber hands out, for each Next, the events its
// chunks hold, in the same order: the gap, the replay (through the index or
// the shared scan) and live events.
func TestEventsMatchTheChunks(t *testing.T) {
	for _, sel := range []string{"a", "*"} {
		t.Run(sel, func(t *testing.T) {
			h, _ := newHub(t, hub.Options{ReplayBatch: 3}, memlog.Options{})
			publishN(t, h, "a", 0, 9)
			waitDispatched(t, h)
			s := subscribe(t, h, hub.Request{Selectors: sels(t, sel), LastEventID: "urn:unknown", Events: true})
			publishN(t, h, "a", 9, 11)
			var ids, datas []string
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for len(datas) < 1+9+2 {
				chunks, err := s.Next(ctx)
				if err != nil {
					t.Fatalf("after %q: %v", datas, err)
				}
				var wire strings.Builder
				for _, c := range chunks {
					wire.Write(c)
				}
				evs := s.Events()
				if n := strings.Count(wire.String(), "\ndata: ") + strings.Count(wire.String()[:min(6, wire.Len())], "data: "); n != len(evs) {
					t.Fatalf("Next returned %d events' bytes %q, Events %d", n, wire.String(), len(evs))
				}
				for _, ev := range evs {
					if !strings.Contains(wire.String(), "id: "+ev.WireID()+"\n") {
						t.Fatalf("event %s is not in the chunks %q", ev.WireID(), wire.String())
					}
					ids, datas = append(ids, ev.WireID()), append(datas, ev.Data)
				}
			}
			if !strings.Contains(datas[0], `"reason":"unknown"`) || !slices.Equal(datas[1:], seq(0, 11)) {
				t.Fatalf("events %q, want the gap, then 0 to 10", datas)
			}
		})
	}
}
