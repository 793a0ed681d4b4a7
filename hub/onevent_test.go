package hub_test

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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
	remove := h.OnEvent(func(ev *ssehub.Event) {
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
	remove()
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
		t.Fatalf("remove did not stop the calls: %v", got)
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

// A Subscribe that arrives while the dispatcher fans out a batch waits for
// at most one event, not the whole batch: matching a batch against many
// templates must not hold new subscribers (and closes) back.
func TestSubscribeWaitsForOneEventNotTheBatch(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{})
	const batch = 200
	subscribed := make(chan struct{})
	var seen atomic.Int32
	var inTime atomic.Bool
	h.OnEvent(func(ev *ssehub.Event) {
		switch n := seen.Add(1); {
		case n == 1: // the dispatcher is in the batch's first event
			go func() {
				s, err := h.Subscribe(context.Background(), hub.Request{Selectors: sels(t, "b")})
				if err == nil {
					s.Close()
				}
				close(subscribed)
			}()
		case n < batch:
			runtime.Gosched() // between events, a waiting Subscribe gets the lock
		default: // the batch's last event
			select {
			case <-subscribed:
				inTime.Store(true)
			default:
			}
		}
	})
	evs := make([]*ssehub.Event, batch)
	for i := range evs {
		evs[i] = &ssehub.Event{Topics: []string{"a"}}
	}
	publish(t, h, evs...)
	waitDispatched(t, h)
	if seen.Load() != batch {
		t.Fatalf("the hub saw %d events", seen.Load())
	}
	if !inTime.Load() {
		t.Fatal("a Subscribe that started at the batch's first event waited for the whole batch's fan-out")
	}
	<-subscribed
}

// Two components that build state from the log (presence and the Durable
// Streams layer) each see every event; removing one leaves the other.
func TestOnEventHasOneSlotPerCaller(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{})
	var a, b atomic.Int32
	removeA := h.OnEvent(func(*ssehub.Event) { a.Add(1) })
	h.OnEvent(func(*ssehub.Event) { b.Add(1) })
	wait := func(ev *ssehub.Event) {
		publish(t, h, ev)
		deadline := time.Now().Add(5 * time.Second)
		for h.LastPos() < ev.Pos {
			if time.Now().After(deadline) {
				t.Fatal("the event was not dispatched")
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait(&ssehub.Event{Topics: []string{"x"}})
	if a.Load() != 1 || b.Load() != 1 {
		t.Fatalf("observers saw %d and %d events, want 1 each", a.Load(), b.Load())
	}
	removeA()
	wait(&ssehub.Event{Topics: []string{"x"}})
	if a.Load() != 1 || b.Load() != 2 {
		t.Fatalf("after removing the first: observers saw %d and %d events, want 1 and 2", a.Load(), b.Load())
	}
}
