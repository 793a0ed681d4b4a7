package logtest

import (
	"errors"
	"testing"

	"github.com/ssehub/ssehub"
)

// The lifecycle subtests: Close, retention, and reopening the same storage.

func (s *suite) testClose(t *testing.T) {
	l := s.open(t)
	appendN(t, l, 0, 2)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Append(t.Context(), sample(3)); !errors.Is(err, ssehub.ErrClosed) {
		t.Fatalf("Append after Close returned %v, want ssehub.ErrClosed", err)
	}
	if err := l.Close(); err != nil && !errors.Is(err, ssehub.ErrClosed) {
		t.Fatalf("second Close returned %v, want nil or ssehub.ErrClosed", err)
	}
}

func (s *suite) testRetention(t *testing.T) {
	const maxEvents = 5
	slack := s.h.RetentionSlack
	l := s.openRetained(t, maxEvents)
	n := 3*maxEvents + slack
	events := appendN(t, l, 0, n-3)
	batch := []*ssehub.Event{sample(n - 3), sample(n - 2), sample(n - 1)}
	if err := l.Append(t.Context(), batch...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	for _, e := range batch {
		events = append(events, clone(e))
	}
	first, last, err := l.Bounds(t.Context())
	if err != nil {
		t.Fatalf("Bounds: %v", err)
	}
	if last != events[n-1].Pos {
		t.Fatalf("Bounds last = %d, want the newest position %d", last, events[n-1].Pos)
	}
	if first <= events[0].Pos {
		t.Fatalf("Bounds first = %d after %d appends to a log keeping %d: the oldest (%d) was not trimmed", first, n, maxEvents, events[0].Pos)
	}
	got := readAll(t, l, 0)
	if len(got) < maxEvents || len(got) > maxEvents+slack {
		t.Fatalf("log keeping %d (slack %d) holds %d events: %v", maxEvents, slack, len(got), positions(got))
	}
	if got[0].Pos != first {
		t.Fatalf("Read from 0 starts at %d, Bounds first is %d", got[0].Pos, first)
	}
	checkEqual(t, "retained events", got, events[n-len(got):])
	// A reader behind the retained range gets what is left, from first on.
	tl := s.startTail(t, l, events[0].Pos)
	checkEqual(t, "Tail from a trimmed position", tl.Next(t, len(got)), got)
	tl.checkQuiet(t, l)
}

func (s *suite) testReopenSurvives(t *testing.T) {
	if s.h.Reopen == nil {
		t.Skip("Harness.Reopen is nil: the log keeps nothing")
	}
	l := s.open(t)
	events := appendN(t, l, 0, 12)
	first, last, err := l.Bounds(t.Context())
	if err != nil {
		t.Fatalf("Bounds: %v", err)
	}
	l = s.reopen(t, l)
	checkEqual(t, "Read after Reopen", readAll(t, l, 0), events)
	f2, l2, err := l.Bounds(t.Context())
	if err != nil || f2 != first || l2 != last {
		t.Fatalf("Bounds after Reopen = %d, %d, %v; want %d, %d, nil", f2, l2, err, first, last)
	}
}

func (s *suite) testReopenContinue(t *testing.T) {
	if s.h.Reopen == nil {
		t.Skip("Harness.Reopen is nil: the log keeps nothing")
	}
	l := s.open(t)
	events := appendN(t, l, 0, 3)
	for round := range 3 {
		l = s.reopen(t, l)
		more := appendN(t, l, 3+2*round, 2)
		if prev := events[len(events)-1].Pos; more[0].Pos <= prev {
			t.Fatalf("after Reopen %d the first new position is %d, not after the old last %d: ids would collide", round+1, more[0].Pos, prev)
		}
		events = append(events, more...)
	}
	checkEqual(t, "Read after 3 Reopens", readAll(t, l, 0), events)
}

func (s *suite) testReopenTail(t *testing.T) {
	if s.h.Reopen == nil {
		t.Skip("Harness.Reopen is nil: the log keeps nothing")
	}
	l := s.open(t)
	events := appendN(t, l, 0, 4)
	l = s.reopen(t, l)
	tl := s.startTail(t, l, events[1].Pos)
	checkEqual(t, "Tail after Reopen (old events)", tl.Next(t, 2), events[2:])
	later := appendN(t, l, 4, 3)
	checkEqual(t, "Tail after Reopen (new events)", tl.Next(t, 3), later)
	tl.checkQuiet(t, l)
}
