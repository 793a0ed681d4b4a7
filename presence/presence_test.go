package presence_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/presence"
	"github.com/ssehub/ssehub/topic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start returns a hub on a memory log, both closed when the test ends.
func start(t *testing.T) (*memlog.Log, *hub.Hub) {
	t.Helper()
	l := memlog.New(memlog.Options{})
	h, err := hub.New(l, hub.Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		l.Close()
	})
	return l, h
}

// Close, with the hub still open, publishes the hub's goodbye (a
// heartbeat that has expired) and returns once it is in the log (TestMain
// checks that no goroutine is left behind).
func TestCloseWaitsForGoodbye(t *testing.T) {
	l, h := start(t)
	p := presence.New(h, presence.Options{Heartbeat: time.Hour})
	start := time.Now()
	p.Close(5 * time.Second)
	p.Close(time.Second) // twice is fine

	evs, err := l.Read(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var goodbye bool
	for _, ev := range evs {
		if !strings.HasPrefix(ev.Topics[0], presence.NodesPath) {
			continue
		}
		var n struct {
			Node    string `json:"node"`
			Expires int64  `json:"expires"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &n); err != nil {
			t.Fatal(err)
		}
		if n.Node == p.Node() && n.Expires <= time.Now().UnixMilli() && n.Expires >= start.UnixMilli() {
			goodbye = true
		}
	}
	if !goodbye {
		t.Fatalf("no goodbye heartbeat in the log after Close: %d events", len(evs))
	}
}

// A subscription that ends while its start event waits for the rate writes
// neither event; one beyond MaxSelectors is never announced. Before the
// bound, every selector wrote a start and an end (issue 13, item 5).
func TestCoalesceAndBound(t *testing.T) {
	l, h := start(t)
	// A rate so low that only the bucket's first token is spent in the test.
	p := presence.New(h, presence.Options{Heartbeat: time.Hour, Rate: 0.01, MaxSelectors: 3})
	defer p.Close(time.Second)
	ctx := context.Background()
	subscribe := func() *hub.Subscriber {
		sub, err := h.Subscribe(ctx, hub.Request{Selectors: []topic.Selector{topic.MustCompile("a")}})
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	sel := func(s string) presence.Selector { return presence.Selector{Src: s} }

	first := subscribe()
	p.Track(first, []presence.Selector{sel("first")}, nil) // the one token
	second := subscribe()
	p.Track(second, []presence.Selector{sel("a"), sel("b"), sel("c"), sel("d"), sel("e")}, nil)
	if st := p.Stats(); st.Unannounced != 2 {
		t.Fatalf("Unannounced = %d, want 2 (5 selectors, MaxSelectors 3)", st.Unannounced)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Waiting != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("Waiting = %d, want 3", p.Stats().Waiting)
		}
		time.Sleep(time.Millisecond)
	}
	second.Close()
	if st := p.Stats(); st.Coalesced != 3 || st.Waiting != 0 {
		t.Fatalf("after close: %+v, want 3 coalesced, none waiting", st)
	}
	first.Close()

	// The log holds the first subscription's start and end, and heartbeats.
	deadline = time.Now().Add(5 * time.Second)
	for {
		evs, err := l.Read(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var subs []string
		for _, ev := range evs {
			if strings.HasPrefix(ev.Topics[0], presence.Path+"/") {
				subs = append(subs, ev.Topics[0])
			}
		}
		if len(subs) == 2 && strings.Contains(subs[0], "/first/") && subs[0] == subs[1] {
			break
		}
		if len(subs) > 2 || time.Now().After(deadline) {
			t.Fatalf("subscription events in the log: %q, want the first's start and end only", subs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
