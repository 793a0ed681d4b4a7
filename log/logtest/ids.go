package logtest

import (
	"errors"
	"sync"
	"testing"

	"github.com/ssehub/ssehub"
)

// The IDIndex subtests: they skip logs that do not implement ssehub.IDIndex.

// idIndex returns l as an ssehub.IDIndex, skipping the test for logs that
// do not implement it.
func idIndex(t *testing.T, l ssehub.Log) ssehub.IDIndex {
	t.Helper()
	idx, ok := l.(ssehub.IDIndex)
	if !ok {
		t.Skipf("%T does not implement ssehub.IDIndex", l)
	}
	return idx
}

func lookup(t *testing.T, idx ssehub.IDIndex, id string) (uint64, bool) {
	t.Helper()
	pos, found, err := idx.LookupID(t.Context(), id)
	if err != nil {
		t.Fatalf("LookupID(%q): %v", id, err)
	}
	return pos, found
}

func (s *suite) testIDIndexLookup(t *testing.T) {
	l := s.open(t)
	idx := idIndex(t, l)
	if _, found := lookup(t, idx, "urn:nothing-yet"); found {
		t.Fatal("LookupID found an id in an empty log")
	}
	events := appendN(t, l, 0, 12) // sample gives ids to every 4th event
	batch := []*ssehub.Event{
		{Topics: []string{"a"}, ID: "urn:batch:1"},
		{Topics: []string{"a"}},
		{Topics: []string{"a"}, ID: "urn:batch:2"},
	}
	if err := l.Append(t.Context(), batch...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	for _, e := range batch {
		events = append(events, clone(e))
	}
	n := 0
	for _, e := range events {
		if e.ID == "" {
			continue
		}
		n++
		if pos, found := lookup(t, idx, e.ID); !found || pos != e.Pos {
			t.Fatalf("LookupID(%q) = %d, %v; want %d, true", e.ID, pos, found, e.Pos)
		}
	}
	if n < 4 {
		t.Fatalf("only %d events had ids", n)
	}
	for _, id := range []string{"", "urn:unknown", ssehub.FormatID(events[0].Pos)} {
		if pos, found := lookup(t, idx, id); found {
			t.Fatalf("LookupID(%q) = %d, true; want not found (only publisher-supplied ids are indexed)", id, pos)
		}
	}
}

func (s *suite) testIDIndexDuplicates(t *testing.T) {
	l := s.open(t)
	idx := idIndex(t, l)
	first := &ssehub.Event{Topics: []string{"a"}, ID: "urn:order:1", Data: "first"}
	if err := l.Append(t.Context(), first); err != nil {
		t.Fatalf("Append: %v", err)
	}
	_, lastBefore, err := l.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		events []*ssehub.Event
	}{
		{"retained id", []*ssehub.Event{{Topics: []string{"a"}, ID: "urn:order:1", Data: "again"}}},
		{"retained id in a batch", []*ssehub.Event{{Topics: []string{"a"}, ID: "urn:fresh"}, {Topics: []string{"a"}, ID: "urn:order:1"}}},
		{"twice in one batch", []*ssehub.Event{{Topics: []string{"a"}, ID: "urn:twice"}, {Topics: []string{"a"}}, {Topics: []string{"a"}, ID: "urn:twice"}}},
	} {
		err := l.Append(t.Context(), tc.events...)
		if !errors.Is(err, ssehub.ErrDuplicateID) {
			t.Fatalf("%s: Append returned %v, want ssehub.ErrDuplicateID", tc.name, err)
		}
		for _, e := range tc.events {
			if e.Pos != 0 {
				t.Fatalf("%s: a refused event got position %d", tc.name, e.Pos)
			}
		}
	}
	// Nothing of the refused batches was stored, and their fresh ids are free.
	if _, last, _ := l.Bounds(t.Context()); last != lastBefore {
		t.Fatalf("Bounds last moved from %d to %d after refused appends", lastBefore, last)
	}
	checkEqual(t, "events after refused appends", readAll(t, l, 0), []*ssehub.Event{clone(first)})
	for _, id := range []string{"urn:fresh", "urn:twice"} {
		if _, found := lookup(t, idx, id); found {
			t.Fatalf("LookupID(%q) found the id of a refused event", id)
		}
	}
	if pos, _ := lookup(t, idx, "urn:order:1"); pos != first.Pos {
		t.Fatalf("LookupID of the first id = %d, want %d", pos, first.Pos)
	}
	// Concurrent appends of one new id: exactly one wins.
	const writers = 8
	var wg sync.WaitGroup
	results := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			results <- l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, ID: "urn:race"})
		})
	}
	wg.Wait()
	close(results)
	if won := winners(t, results); won != 1 {
		t.Fatalf("%d of %d concurrent appends of one id succeeded, want exactly 1", won, writers)
	}
	// Other requests of the same group commit are not affected.
	e := &ssehub.Event{Topics: []string{"a"}, ID: "urn:after"}
	if err := l.Append(t.Context(), e); err != nil {
		t.Fatalf("Append after refusals: %v", err)
	}
}

func (s *suite) testIDIndexRetention(t *testing.T) {
	const maxEvents = 4
	l := s.openRetained(t, maxEvents)
	idx := idIndex(t, l)
	old := &ssehub.Event{Topics: []string{"a"}, ID: "urn:old"}
	if err := l.Append(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 100, 3*maxEvents+s.h.RetentionSlack) // sample ids here are pub-1xx
	if first, _, _ := l.Bounds(t.Context()); first <= old.Pos {
		t.Fatalf("event %d was not trimmed (first %d)", old.Pos, first)
	}
	if pos, found := lookup(t, idx, "urn:old"); found {
		t.Fatalf("LookupID found trimmed event %d", pos)
	}
	// A trimmed event's id is free again.
	again := &ssehub.Event{Topics: []string{"a"}, ID: "urn:old"}
	if err := l.Append(t.Context(), again); err != nil {
		t.Fatalf("Append reusing the id of a trimmed event: %v", err)
	}
	if pos, found := lookup(t, idx, "urn:old"); !found || pos != again.Pos {
		t.Fatalf("LookupID = %d, %v; want %d", pos, found, again.Pos)
	}
}

func (s *suite) testIDIndexReopen(t *testing.T) {
	if s.h.Reopen == nil {
		t.Skip("Harness.Reopen is nil: the log keeps nothing")
	}
	l := s.open(t)
	idIndex(t, l)
	e := &ssehub.Event{Topics: []string{"a"}, ID: "urn:durable"}
	if err := l.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	l = s.reopen(t, l)
	idx := idIndex(t, l)
	if pos, found := lookup(t, idx, "urn:durable"); !found || pos != e.Pos {
		t.Fatalf("LookupID after Reopen = %d, %v; want %d", pos, found, e.Pos)
	}
	if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, ID: "urn:durable"}); !errors.Is(err, ssehub.ErrDuplicateID) {
		t.Fatalf("Append of a taken id after Reopen: %v", err)
	}
}

// winners counts the appends of a race for one id that succeeded, failing
// the test on any error but ssehub.ErrDuplicateID.
func winners(t *testing.T, results <-chan error) int {
	t.Helper()
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ssehub.ErrDuplicateID):
			t.Fatalf("concurrent Append: %v", err)
		}
	}
	return won
}
