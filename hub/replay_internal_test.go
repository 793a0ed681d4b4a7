package hub

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/topic"
)

// A subscriber that has caught up holds no replay memory: idle streams
// that once replayed megabytes go back to their small size.
func TestLiveSubscriberHoldsNoReplayBuffer(t *testing.T) {
	for _, sel := range []string{"a", "*"} { // the index, the shared scan
		t.Run(sel, func(t *testing.T) {
			h, ctx := newTestHub(t, memlog.New(memlog.Options{}))
			for range 40 {
				if err := h.Publish(ctx, &ssehub.Event{Topics: []string{"a"}, Data: strings.Repeat("x", 16<<10)}); err != nil {
					t.Fatal(err)
				}
			}
			waitFannedOut(t, h)
			s, err := h.Subscribe(ctx, Request{Selectors: []topic.Selector{topic.MustCompile(sel)}, LastEventID: LastEventIDEarliest})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			held := 0
			for !s.Live() {
				if _, err := s.Next(ctx); err != nil {
					t.Fatal(err)
				}
				held = max(held, cap(s.buf))
			}
			if held < 16<<10 {
				t.Fatalf("the replay used a buffer of %d bytes: the test did not replay", held)
			}
			// A parked stream calls TryNext once live: the last replay
			// chunk has been written, and the replay's memory goes.
			if _, err := s.TryNext(); err != nil {
				t.Fatal(err)
			}
			if s.buf != nil || s.scanStep != nil {
				t.Fatalf("a live subscriber still holds a replay buffer of %d bytes", cap(s.buf))
			}
			if n := h.Stats().Replaying; n != 0 {
				t.Fatalf("replaying gauge = %d after the replay", n)
			}
		})
	}
}

// newTestHub returns a hub without heartbeats on l and a context for the
// test's calls (5s); the hub and l are closed when t ends.
func newTestHub(t *testing.T, l ssehub.Log) (*Hub, context.Context) {
	t.Helper()
	h, err := New(l, Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(func() { cancel(); h.Close(); l.Close() })
	return h, ctx
}

// waitFannedOut waits until h has fanned out everything in its log.
func waitFannedOut(t *testing.T, h *Hub) {
	t.Helper()
	_, last, err := h.Log().Bounds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for h.LastPos() < last {
		time.Sleep(time.Millisecond)
	}
}

// Two different sets of selectors never share a signature (the scanner
// shares match results between subscribers by signature).
func TestFilterSignaturesDiffer(t *testing.T) {
	mk := func(sels ...string) *filter {
		var ss []topic.Selector
		for _, s := range sels {
			ss = append(ss, topic.CompileExact(s))
		}
		f := newFilter(Request{Selectors: ss})
		return &f
	}
	for _, pair := range [][2]*filter{
		{mk("a\x00e:b"), mk("a", "b")},
		{mk("a:1:b"), mk("a", "b")},
		{mk("ab"), mk("a", "b")},
	} {
		if pair[0].signature() == pair[1].signature() {
			t.Errorf("selectors %q and %q share the signature %q", pair[0].exact, pair[1].exact, pair[0].signature())
		}
	}
}

// shortLog is a log without a topic index whose Read returns at most two
// events, whatever the limit: Log.Read promises no more.
type shortLog struct{ *memlog.Log }

func (l shortLog) Read(ctx context.Context, after uint64, limit int) ([]*ssehub.Event, error) {
	return l.Log.Read(ctx, after, min(limit, 2))
}

// ReadTopics hides memlog's topic index (another signature).
func (shortLog) ReadTopics() {}

// A replay from a log whose reads return short pages still gets every
// event: a short page is not taken for the end of the history.
func TestReplayFromShortPages(t *testing.T) {
	h, ctx := newTestHub(t, shortLog{memlog.New(memlog.Options{})})
	for i := range 10 {
		if err := h.Publish(ctx, &ssehub.Event{Topics: []string{"a"}, Data: strings.Repeat("x", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFannedOut(t, h)
	s, err := h.Subscribe(ctx, Request{Selectors: []topic.Selector{topic.MustCompile("*")}, LastEventID: LastEventIDEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got strings.Builder
	for !s.Live() {
		chunks, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			got.Write(c)
		}
	}
	if n := strings.Count(got.String(), "data: "); n != 10 {
		t.Fatalf("replayed %d events of 10 from a log with short pages", n)
	}
}
