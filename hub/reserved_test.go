package hub_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
)

// With a log that keeps the hub's own events on a budget of their own,
// application events are all replayed, and a subscriber that may receive
// reserved events learns, at the right place, that some are gone: a gap
// event after the newest removed one, never a silent hole (issue 13,
// item 5). Other subscribers get no gap: nothing they could receive is
// missing.
func TestReservedRetentionGaps(t *testing.T) {
	h, _ := newHub(t, hub.Options{ReplayBatch: 4}, memlog.Options{MaxEvents: 10, MaxReserved: 3})
	app := func(data string) *ssehub.Event { return &ssehub.Event{Topics: []string{"a"}, Data: data} }
	var reserved []*ssehub.Event
	res := func() *ssehub.Event {
		n := len(reserved) + 1
		e := &ssehub.Event{Topics: []string{fmt.Sprintf("/.well-known/mercure/subscriptions/t/s%d", n)}, Data: fmt.Sprintf("r%d", n), Private: true}
		reserved = append(reserved, e)
		return e
	}
	start := app("x")
	publish(t, h, start)
	publish(t, h, app("a1"), app("a2"), app("a3"))
	for range 6 {
		publish(t, h, res())
	}
	publish(t, h, app("a4"), app("a5"), res(), res())
	waitDispatched(t, h)
	removed := reserved[4].Pos // r1..r5 are beyond the budget of 3

	everything := func([]string) bool { return true }
	for _, tc := range []struct {
		name    string
		req     hub.Request
		want    []string // "gap" where the gap event belongs
		gapPrev string   // the data of the event before the gap
	}{
		{"may receive reserved events", hub.Request{Selectors: sels(t, "*"), Private: everything, LastEventID: start.WireID()},
			[]string{"a1", "a2", "a3", "gap", "r6", "a4", "a5", "r7", "r8"}, "a3"},
		{"template over the reserved namespace", hub.Request{Selectors: sels(t, "/.well-known/mercure/subscriptions/t/{s}", "a"), Private: everything, LastEventID: start.WireID()},
			[]string{"a1", "a2", "a3", "gap", "r6", "a4", "a5", "r7", "r8"}, "a3"},
		{"no private access", hub.Request{Selectors: sels(t, "*"), LastEventID: start.WireID()},
			[]string{"a1", "a2", "a3", "a4", "a5"}, ""},
		{"application topic only", hub.Request{Selectors: sels(t, "a"), Private: everything, LastEventID: start.WireID()},
			[]string{"a1", "a2", "a3", "a4", "a5"}, ""},
		{"template outside the namespace", hub.Request{Selectors: sels(t, "https://example.com/{x}", "a"), Private: everything, LastEventID: start.WireID()},
			[]string{"a1", "a2", "a3", "a4", "a5"}, ""},
		{"earliest retained", hub.Request{Selectors: sels(t, "*"), Private: everything, LastEventID: hub.LastEventIDEarliest},
			[]string{"x", "a1", "a2", "a3", "r6", "a4", "a5", "r7", "r8"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := subscribe(t, h, hub.Request{Selectors: tc.req.Selectors, Private: tc.req.Private, LastEventID: tc.req.LastEventID})
			got := collect(t, s, len(tc.want))
			var names []string
			for i, e := range got {
				if e.Type != hub.GapType {
					names = append(names, e.Data)
					continue
				}
				names = append(names, "gap")
				var data struct{ Reason, Resumed_after string }
				if err := json.Unmarshal([]byte(e.Data), &data); err != nil || data.Reason != hub.GapExpired || e.ID != ssehub.FormatID(removed) {
					t.Fatalf("gap event %+v: want reason %q resumed after %d (the newest reserved event removed)", e, hub.GapExpired, removed)
				}
				if i == 0 || got[i-1].Data != tc.gapPrev {
					t.Fatalf("gap event at %d, want it right after %q: %q", i, tc.gapPrev, names)
				}
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("got %q, want %q", names, tc.want)
			}
			expectNothing(t, h, s)
		})
	}
	if st := h.Stats(); st.ReservedGaps != 2 {
		t.Fatalf("Stats().ReservedGaps = %d, want 2 (one per subscriber told)", st.ReservedGaps)
	}
}

// The hub's tail reads past reserved events their budget removed before it
// got to them: in the middle of a batch of the log, not only at its start.
// A live subscriber that may receive them must not miss them silently.
func TestTailHoleOfReservedEventsResumesSubscribers(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{MaxEvents: 10, MaxReserved: 1})
	publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: "before"})
	waitDispatched(t, h)
	everything := func([]string) bool { return true }
	s := subscribe(t, h, hub.Request{Selectors: sels(t, "*"), Private: everything})
	appOnly := subscribe(t, h, hub.Request{Selectors: sels(t, "a"), Private: everything})
	res := func(i int) *ssehub.Event {
		return &ssehub.Event{Topics: []string{fmt.Sprintf("/.well-known/mercure/subscriptions/t/s%d", i)}, Data: fmt.Sprint("r", i), Private: true}
	}
	// One append: r1 is beyond the budget before the tail reads the batch.
	publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: "a1"}, res(1), res(2), &ssehub.Event{Topics: []string{"a"}, Data: "a2"})
	waitDispatched(t, h)
	b, err := drain(s, 2*time.Second)
	got, _ := decodeEnd(t, b)
	if !errors.Is(err, hub.ErrBehind) {
		t.Fatalf("stream ended with %v after %q, want ErrBehind: r1 was never delivered, and no gap said so", err, got)
	}
	if slices.Contains(got, "r2") {
		t.Fatalf("events delivered past the hole: %q", got)
	}
	// A subscriber that cannot receive reserved events missed nothing:
	// it stays, and goes on live.
	if got := datas(collect(t, appOnly, 2)); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("application-only subscriber got %q, want a1, a2", got)
	}
	publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: "a3"})
	if got := datas(collect(t, appOnly, 1)); !slices.Equal(got, []string{"a3"}) {
		t.Fatalf("application-only subscriber got %q after the hole, want a3: it was sent away", got)
	}
}
