package logtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

// Harness tells Run how to get logs. Only Open is required.
type Harness struct {
	// Open returns a new, empty log with no retention. Run closes it when
	// the subtest ends (and may have closed it before: Close must be
	// idempotent).
	Open func(t *testing.T) ssehub.Log

	// OpenRetained returns a new, empty log that keeps only the newest
	// maxEvents events (retention by count). Nil skips the retention tests.
	OpenRetained func(t *testing.T, maxEvents int) ssehub.Log

	// RetentionSlack is how many events beyond maxEvents a log with
	// approximate trimming (Redis XADD MAXLEN ~) may keep. Zero means exact.
	RetentionSlack int

	// OpenReserved returns a new, empty log that keeps the newest
	// maxEvents application events and, on a budget of their own, the
	// newest maxReserved reserved events (ssehub.ReservedRetention). Reopen
	// must open it with the same budgets. Nil skips the reserved-retention
	// tests.
	OpenReserved func(t *testing.T, maxEvents, maxReserved int) ssehub.Log

	// Reopen closes l and opens the same storage again, as a restarted
	// process would. Nil for logs that keep nothing (memory).
	Reopen func(t *testing.T, l ssehub.Log) ssehub.Log

	// Timeout bounds every wait for the log (a Tail to deliver or to end).
	// Zero means 10 seconds. It is not a performance assertion: reaching it
	// means the log is stuck.
	Timeout time.Duration
}

// Run runs the conformance suite against the logs h makes, as parallel
// subtests of t. Call it from a Test function; it is not safe to share one h
// between concurrent Runs unless h's functions are.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("logtest: Harness.Open is required")
	}
	s := &suite{h: h, timeout: h.Timeout}
	if s.timeout <= 0 {
		s.timeout = 10 * time.Second
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Append/PositionsAndTimes", s.testPositions},
		{"Append/Fields", s.testFields},
		{"Append/Batch", s.testBatch},
		{"Append/None", s.testAppendNone},
		{"Append/Concurrent", s.testConcurrent},
		{"Read", s.testRead},
		{"Bounds", s.testBounds},
		{"Tail/FromStart", s.testTailFromStart},
		{"Tail/FromMiddle", s.testTailFromMiddle},
		{"Tail/FromLast", s.testTailFromLast},
		{"Tail/TwoTails", s.testTwoTails},
		{"Tail/ConcurrentAppends", s.testTailConcurrentAppends},
		{"Tail/Cancel", s.testTailCancel},
		{"Tail/Close", s.testTailClose},
		{"Tail/FnError", s.testTailFnError},
		{"Close", s.testClose},
		{"Retention/Count", s.testRetention},
		{"Reopen/Survives", s.testReopenSurvives},
		{"Reopen/PositionsContinue", s.testReopenContinue},
		{"Reopen/Tail", s.testReopenTail},
		{"IDIndex/Lookup", s.testIDIndexLookup},
		{"IDIndex/Duplicates", s.testIDIndexDuplicates},
		{"IDIndex/Retention", s.testIDIndexRetention},
		{"IDIndex/Reopen", s.testIDIndexReopen},
		{"TopicLocks", s.testTopicLocks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
	for _, tc := range append(topicTests, reservedTests...) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(s, t)
		})
	}
}

type suite struct {
	h       Harness
	timeout time.Duration
}

// open returns a log from h.Open that is closed when t ends.
func (s *suite) open(t *testing.T) ssehub.Log {
	t.Helper()
	l := s.h.Open(t)
	if l == nil {
		t.Fatal("Harness.Open returned nil")
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// openRetained returns a log from Harness.OpenRetained, closed when t
// ends; it skips t when the harness has none.
func (s *suite) openRetained(t *testing.T, maxEvents int) ssehub.Log {
	t.Helper()
	if s.h.OpenRetained == nil {
		t.Skip("Harness.OpenRetained is nil")
	}
	l := s.h.OpenRetained(t, maxEvents)
	if l == nil {
		t.Fatal("Harness.OpenRetained returned nil")
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func (s *suite) reopen(t *testing.T, l ssehub.Log) ssehub.Log {
	t.Helper()
	l2 := s.h.Reopen(t, l)
	if l2 == nil {
		t.Fatal("Harness.Reopen returned nil")
	}
	t.Cleanup(func() { l2.Close() })
	return l2
}

// sample returns the i-th event of a varied stream of test events.
func sample(i int) *ssehub.Event {
	e := &ssehub.Event{
		Topics: []string{fmt.Sprintf("https://example.com/books/%d", i%7)},
		Data:   fmt.Sprintf("event %d", i),
	}
	switch i % 4 {
	case 1:
		e.Type = "update"
		e.Topics = append(e.Topics, "shelf")
	case 2:
		e.ID = fmt.Sprintf("pub-%d", i)
		e.Data += "\nsecond line\r\nthird\rfourth"
	case 3:
		e.Private = true
		e.Retry = 2500 * time.Millisecond
	}
	return e
}

// writerSample is sample(i) for concurrent writer w: publisher-supplied ids
// stay unique across writers (a log implementing ssehub.IDIndex refuses
// duplicates).
func writerSample(w, i int) *ssehub.Event {
	e := sample(i)
	if e.ID != "" {
		e.ID = fmt.Sprintf("w%d-%s", w, e.ID)
	}
	return e
}

// clone copies what a publisher sets, so the original can be compared with
// what the log hands back.
func clone(e *ssehub.Event) *ssehub.Event {
	c := *e
	c.Topics = slices.Clone(e.Topics)
	return &c
}

// diff describes how got differs from want ("" when equal). Times are
// compared with Equal: a log may lose the location and monotonic reading.
func diff(got, want *ssehub.Event) string {
	var d []string
	if got == nil {
		return "event is nil"
	}
	if got.Pos != want.Pos {
		d = append(d, fmt.Sprintf("Pos %d, want %d", got.Pos, want.Pos))
	}
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("ID %q, want %q", got.ID, want.ID))
	}
	if !slices.Equal(got.Topics, want.Topics) {
		d = append(d, fmt.Sprintf("Topics %q, want %q", got.Topics, want.Topics))
	}
	if got.Type != want.Type {
		d = append(d, fmt.Sprintf("Type %q, want %q", got.Type, want.Type))
	}
	if got.Data != want.Data {
		g, w := got.Data, want.Data
		if len(g) > 80 || len(w) > 80 {
			d = append(d, fmt.Sprintf("Data differs (len %d, want len %d)", len(g), len(w)))
		} else {
			d = append(d, fmt.Sprintf("Data %q, want %q", g, w))
		}
	}
	if got.Retry != want.Retry {
		d = append(d, fmt.Sprintf("Retry %v, want %v", got.Retry, want.Retry))
	}
	if got.Meta != want.Meta {
		d = append(d, fmt.Sprintf("Meta %q, want %q", got.Meta, want.Meta))
	}
	if got.Private != want.Private {
		d = append(d, fmt.Sprintf("Private %v, want %v", got.Private, want.Private))
	}
	if !got.Time.Equal(want.Time) {
		d = append(d, fmt.Sprintf("Time %v, want %v", got.Time, want.Time))
	}
	return strings.Join(d, "; ")
}

func checkEqual(t *testing.T, what string, got, want []*ssehub.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events %v, want %d %v", what, len(got), positions(got), len(want), positions(want))
	}
	for i := range got {
		if d := diff(got[i], want[i]); d != "" {
			t.Fatalf("%s: event %d (pos %d): %s", what, i, want[i].Pos, d)
		}
	}
}

func positions(events []*ssehub.Event) []uint64 {
	p := make([]uint64, len(events))
	for i, e := range events {
		p[i] = e.Pos
	}
	return p
}

// appendN appends n sample events, numbered from start, one per call, and
// returns copies of them as acknowledged.
func appendN(t *testing.T, l ssehub.Log, start, n int) []*ssehub.Event {
	t.Helper()
	out := make([]*ssehub.Event, 0, n)
	for i := start; i < start+n; i++ {
		e := sample(i)
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatalf("Append event %d: %v", i, err)
		}
		out = append(out, clone(e))
	}
	return out
}

// readAll reads every event after after, in pages of 7 to exercise limit.
func readAll(t *testing.T, l ssehub.Log, after uint64) []*ssehub.Event {
	t.Helper()
	var out []*ssehub.Event
	for {
		page, err := l.Read(t.Context(), after, 7)
		if err != nil {
			t.Fatalf("Read(after %d): %v", after, err)
		}
		if len(page) > 7 {
			t.Fatalf("Read(after %d, limit 7) returned %d events", after, len(page))
		}
		if len(page) == 0 {
			return out
		}
		for _, e := range page {
			if e.Pos <= after {
				t.Fatalf("Read(after %d) returned position %d, not after it (positions %v)", after, e.Pos, positions(page))
			}
			after = e.Pos
		}
		out = append(out, page...)
	}
}
