package logtest

import (
	"fmt"
	"testing"

	"github.com/ssehub/ssehub"
)

// The reserved-retention subtests: the hub's own events (Event.Reserved:
// subscription events, heartbeats) are kept on a budget of their own and
// never push an application event out of history.

var reservedTests = []struct {
	name string
	fn   func(*suite, *testing.T)
}{
	{"Reserved/NeverEvictsApplication", (*suite).testReservedNeverEvicts},
	{"Reserved/ApplicationBudget", (*suite).testReservedApplicationBudget},
	{"Reserved/Reopen", (*suite).testReservedReopen},
}

// reservedSample is the i-th reserved event: a subscription event or, one
// in five, a node heartbeat.
func reservedSample(i int) *ssehub.Event {
	if i%5 == 4 {
		return &ssehub.Event{Topics: []string{fmt.Sprintf("/.well-known/ssehub/nodes/n%d", i%3)}, Type: "mercure", Data: fmt.Sprintf(`{"node":%d}`, i), Private: true}
	}
	return &ssehub.Event{
		Topics:  []string{fmt.Sprintf("/.well-known/mercure/subscriptions/t%d/s%d", i%4, i), "/.well-known/mercure/subscriptions"},
		Data:    fmt.Sprintf(`{"subscription":%d}`, i),
		Private: true,
	}
}

func (s *suite) openReserved(t *testing.T, maxEvents, maxReserved int) (ssehub.Log, ssehub.ReservedRetention) {
	t.Helper()
	if s.h.OpenReserved == nil {
		t.Skip("Harness.OpenReserved is nil")
	}
	l := s.h.OpenReserved(t, maxEvents, maxReserved)
	if l == nil {
		t.Fatal("Harness.OpenReserved returned nil")
	}
	t.Cleanup(func() { l.Close() })
	rr, ok := l.(ssehub.ReservedRetention)
	if !ok {
		t.Fatalf("%T from Harness.OpenReserved does not implement ssehub.ReservedRetention", l)
	}
	return l, rr
}

// appendReserved appends reserved events start..start+n-1 in batches of
// varied sizes and returns copies of them with their positions.
func appendReserved(t *testing.T, l ssehub.Log, start, n int) []*ssehub.Event {
	t.Helper()
	var out []*ssehub.Event
	for i := start; i < start+n; {
		size := min(1+i%7, start+n-i)
		batch := make([]*ssehub.Event, size)
		for k := range batch {
			batch[k] = reservedSample(i + k)
			if !batch[k].Reserved() {
				t.Fatalf("reservedSample(%d) is not Reserved: %v", i+k, batch[k].Topics)
			}
		}
		if err := l.Append(t.Context(), batch...); err != nil {
			t.Fatalf("Append of %d reserved events: %v", size, err)
		}
		for _, e := range batch {
			out = append(out, clone(e))
		}
		i += size
	}
	return out
}

// checkReserved checks what l retains of app (application events) and res
// (reserved events), both in append order: every application event at or
// after Bounds' first is retained and wantApp of the newest are (up to the
// slack more), every reserved event after ReservedRemoved and first is
// retained, the newest maxReserved reserved events are, and no more than
// maxReserved+slack of the reserved events appended are. It returns what
// ReservedRemoved said.
func (s *suite) checkReserved(t *testing.T, l ssehub.Log, rr ssehub.ReservedRetention, app, res []*ssehub.Event, wantApp, maxReserved int) uint64 {
	t.Helper()
	slack := s.h.RetentionSlack
	first, last, err := l.Bounds(t.Context())
	if err != nil {
		t.Fatalf("Bounds: %v", err)
	}
	removed, err := rr.ReservedRemoved(t.Context())
	if err != nil {
		t.Fatalf("ReservedRemoved: %v", err)
	}
	newest := max(app[len(app)-1].Pos, res[len(res)-1].Pos)
	if last != newest {
		t.Fatalf("Bounds last = %d, want the newest position %d", last, newest)
	}
	got := readAll(t, l, 0)
	byPos := make(map[uint64]*ssehub.Event, len(got))
	for i, e := range got {
		if i > 0 && e.Pos <= got[i-1].Pos {
			t.Fatalf("Read returned positions out of order: %v", positions(got))
		}
		byPos[e.Pos] = e
	}
	kept := 0
	for i, e := range app {
		g := byPos[e.Pos]
		if g != nil {
			kept++
			if d := diff(g, e); d != "" {
				t.Fatalf("application event %d read back differs: %s", i, d)
			}
			continue
		}
		if e.Pos >= first {
			t.Fatalf("application event %d (position %d) is gone, but Bounds first is %d: the log says it still holds it", i, e.Pos, first)
		}
		if i >= len(app)-wantApp {
			t.Fatalf("application event %d of %d (position %d) is gone: the log keeps the newest %d application events, whatever the reserved events (%d appended, budget %d) do", i, len(app), e.Pos, wantApp, len(res), maxReserved)
		}
	}
	if kept > wantApp+slack {
		t.Fatalf("the log keeps %d application events, want %d (slack %d)", kept, wantApp, slack)
	}
	keptRes := 0
	for i, e := range res {
		g := byPos[e.Pos]
		if g != nil {
			keptRes++
			if d := diff(g, e); d != "" {
				t.Fatalf("reserved event %d read back differs: %s", i, d)
			}
			continue
		}
		if e.Pos > removed && e.Pos >= first {
			t.Fatalf("reserved event %d (position %d) is gone, but ReservedRemoved is %d and Bounds first %d: every reserved event after both must be retained", i, e.Pos, removed, first)
		}
		if i >= len(res)-maxReserved {
			t.Fatalf("reserved event %d of %d (position %d) is gone: the newest %d must be retained", i, len(res), e.Pos, maxReserved)
		}
	}
	if keptRes > maxReserved+slack {
		t.Fatalf("the log keeps %d reserved events, budget %d (slack %d)", keptRes, maxReserved, slack)
	}
	if len(got) != kept+keptRes {
		t.Fatalf("Read returned %d events, %d of them neither appended application nor reserved events", len(got), len(got)-kept-keptRes)
	}
	if idx, ok := l.(ssehub.TopicIndex); ok {
		var topics []string
		for i := range 7 {
			topics = append(topics, fmt.Sprintf("https://example.com/books/%d", i))
		}
		evs := readTopicsAll(t, idx, ssehub.TopicQuery{Topics: topics, Limit: 100}, last)
		n := 0
		for _, e := range evs {
			if byPos[e.Pos] == nil {
				t.Fatalf("ReadTopics returned event %d that Read does not", e.Pos)
			}
			n++
		}
		if n != kept {
			t.Fatalf("ReadTopics of the application topics returned %d events, Read holds %d", n, kept)
		}
	}
	return removed
}

// Ten application events, then fifty times the reserved budget of reserved
// events: every application event is still there.
func (s *suite) testReservedNeverEvicts(t *testing.T) {
	const maxEvents, maxReserved = 10, 6
	l, rr := s.openReserved(t, maxEvents, maxReserved)
	app := appendN(t, l, 0, maxEvents)
	res := appendReserved(t, l, 0, 50*maxReserved)
	removed := s.checkReserved(t, l, rr, app, res, maxEvents, maxReserved)
	if removed == 0 || removed < res[0].Pos {
		t.Fatalf("ReservedRemoved = %d after %d reserved events on a budget of %d: the removal is not reported", removed, len(res), maxReserved)
	}
	first, _, _ := l.Bounds(t.Context())
	if first == 0 || first > app[0].Pos {
		t.Fatalf("Bounds first = %d, want at most the oldest application event %d (it is retained)", first, app[0].Pos)
	}
}

// Application and reserved events interleaved: the application events are
// trimmed to their own budget, counting only themselves. (RetentionSlack
// more of them, so that an approximate trimmer trims too.)
func (s *suite) testReservedApplicationBudget(t *testing.T) {
	const maxEvents, maxReserved = 5, 40
	l, rr := s.openReserved(t, maxEvents, maxReserved)
	var app, res []*ssehub.Event
	for i := range 4*maxEvents + s.h.RetentionSlack {
		app = append(app, appendN(t, l, i, 1)...)
		res = append(res, appendReserved(t, l, 3*i, 3)...)
	}
	s.checkReserved(t, l, rr, app, res, maxEvents, maxReserved)
	first, _, _ := l.Bounds(t.Context())
	if first <= app[0].Pos {
		t.Fatalf("Bounds first = %d after %d application events on a budget of %d: the oldest (%d) was not trimmed", first, len(app), maxEvents, app[0].Pos)
	}
}

// The budgets and what was removed survive a restart, and hold after it.
func (s *suite) testReservedReopen(t *testing.T) {
	if s.h.Reopen == nil {
		t.Skip("Harness.Reopen is nil")
	}
	const maxEvents, maxReserved = 8, 5
	l, rr := s.openReserved(t, maxEvents, maxReserved)
	app := appendN(t, l, 0, maxEvents)
	res := appendReserved(t, l, 0, 20*maxReserved)
	before := s.checkReserved(t, l, rr, app, res, maxEvents, maxReserved)
	l = s.reopen(t, l)
	rr, ok := l.(ssehub.ReservedRetention)
	if !ok {
		t.Fatalf("%T from Harness.Reopen does not implement ssehub.ReservedRetention", l)
	}
	if after := s.checkReserved(t, l, rr, app, res, maxEvents, maxReserved); after < before {
		t.Fatalf("ReservedRemoved went back from %d to %d across a restart", before, after)
	}
	res = append(res, appendReserved(t, l, len(res), 20*maxReserved)...)
	s.checkReserved(t, l, rr, app, res, maxEvents, maxReserved)
}
