package hub_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/topic"
)

func TestOnEventSeesEveryEventInOrder(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{})
	var (
		mu  sync.Mutex
		got []uint64
	)
	h.OnEvent(func(ev *ssehub.Event) {
		mu.Lock()
		got = append(got, ev.Pos)
		mu.Unlock()
	})
	// A URL pattern subscriber receives its events as well: the hook does
	// not disturb the fan-out.
	pat, err := topic.CompileURLPattern("https://example.com/books/:id")
	if err != nil {
		t.Fatal(err)
	}
	s := subscribe(t, h, hub.Request{Selectors: []topic.Selector{pat}})
	var want []uint64
	for i := range 5 {
		ev := &ssehub.Event{Topics: []string{"https://example.com/books/" + string(rune('a'+i))}, Private: i == 2}
		publish(t, h, ev)
		want = append(want, ev.Pos)
	}
	if evs := collect(t, s, 4); len(evs) != 4 {
		t.Fatalf("subscriber got %d events", len(evs))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		done := len(got) >= len(want)
		snapshot := slices.Clone(got)
		mu.Unlock()
		if done {
			if !slices.Equal(snapshot, want) {
				t.Fatalf("OnEvent saw %v, want %v (private events included)", snapshot, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnEvent saw %v after 5s, want %v", snapshot, want)
		}
		time.Sleep(time.Millisecond)
	}
	h.OnEvent(nil)
	last := &ssehub.Event{Topics: []string{"x"}}
	publish(t, h, last)
	for h.LastPos() < last.Pos {
		if time.Now().After(deadline) {
			t.Fatal("the last event was not dispatched")
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("OnEvent(nil) did not stop the calls: %v", got)
	}
}

func TestOnCloseRunsOnceWhoeverCloses(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{})
	s, err := h.Subscribe(t.Context(), hub.Request{Selectors: sels(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	s.OnClose(func() {
		calls++
		if h.Stats().Subscribers != 0 {
			t.Error("OnClose ran before the subscriber was unregistered")
		}
	})
	s.Close()
	s.Close()
	if calls != 1 {
		t.Fatalf("OnClose ran %d times, want 1", calls)
	}
}
