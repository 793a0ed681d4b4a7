package logtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
	for _, tc := range topicTests {
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

func (s *suite) testPositions(t *testing.T) {
	l := s.open(t)
	before := time.Now()
	var events []*ssehub.Event
	for i := range 10 {
		e := sample(i)
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatalf("Append: %v", err)
		}
		events = append(events, e)
	}
	after := time.Now()
	for i, e := range events {
		if e.Pos == 0 {
			t.Fatalf("event %d: Pos is 0 after Append (0 means none)", i)
		}
		if _, ok := ssehub.ParseID(ssehub.FormatID(e.Pos)); !ok {
			t.Fatalf("event %d: Pos %d does not make a valid id", i, e.Pos)
		}
		// Times are the engine's clock; allow for a little skew.
		if e.Time.Before(before.Add(-time.Minute)) || e.Time.After(after.Add(time.Minute)) {
			t.Fatalf("event %d: Time %v is not near the time of Append (%v to %v)", i, e.Time, before, after)
		}
		if i == 0 {
			continue
		}
		if prev := events[i-1]; e.Pos <= prev.Pos {
			t.Fatalf("event %d: Pos %d not after previous %d", i, e.Pos, prev.Pos)
		} else if e.Time.Before(prev.Time) {
			t.Fatalf("event %d: Time %v before previous %v", i, e.Time, prev.Time)
		}
	}
}

func (s *suite) testFields(t *testing.T) {
	publisherTime := time.Date(2024, 2, 29, 12, 30, 45, 123456789, time.UTC)
	big := strings.Repeat("0123456789abcdef\n", 100<<10/17)
	tests := []struct {
		name string
		e    ssehub.Event
	}{
		{"minimal", ssehub.Event{Topics: []string{"a"}, Data: "hello"}},
		{"empty data", ssehub.Event{Topics: []string{"a"}}},
		{"publisher id", ssehub.Event{ID: "urn:uuid:9b2c1f0e-1", Topics: []string{"a"}, Data: "x"}},
		{"numeric publisher id", ssehub.Event{ID: "42", Topics: []string{"a"}, Data: "x"}},
		{"type", ssehub.Event{Topics: []string{"a"}, Type: "book.updated", Data: "x"}},
		{"multi-line LF", ssehub.Event{Topics: []string{"a"}, Data: "line 1\nline 2\n\nline 4\n"}},
		{"CR and CRLF", ssehub.Event{Topics: []string{"a"}, Data: "a\r\nb\rc\r\n\r\n"}},
		{"unicode", ssehub.Event{Topics: []string{"https://example.com/ünï/{id}"}, Data: "héllo wörld ✓ 🚀 \u2028 \ufeff 日本語"}},
		{"binary-ish", ssehub.Event{Topics: []string{"a"}, Data: "nul\x00 tab\t bell\x07 del\x7f \U0010FFFF"}},
		{"large data", ssehub.Event{Topics: []string{"a"}, Data: big}},
		{"many topics", ssehub.Event{Topics: []string{"https://example.com/books/1", "https://example.com/authors/7", "*", "shelf"}, Data: "x"}},
		{"retry", ssehub.Event{Topics: []string{"a"}, Data: "x", Retry: 1500 * time.Millisecond}},
		{"private", ssehub.Event{Topics: []string{"secret"}, Data: "x", Private: true}},
		{"publisher time", ssehub.Event{Topics: []string{"a"}, Data: "x", Time: publisherTime}},
		{"everything", ssehub.Event{ID: "id-1", Topics: []string{"t1", "t2"}, Type: "t", Data: "d\nd", Retry: time.Second, Private: true}},
	}
	l := s.open(t)
	var all []*ssehub.Event
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			e.Topics = slices.Clone(tc.e.Topics)
			if err := l.Append(t.Context(), &e); err != nil {
				t.Fatalf("Append: %v", err)
			}
			want := tc.e
			want.Pos = e.Pos
			if want.Time.IsZero() {
				if e.Time.IsZero() {
					t.Fatal("Append left Time zero")
				}
				want.Time = e.Time
			}
			if d := diff(&e, &want); d != "" {
				t.Fatalf("Append changed the event: %s", d)
			}
			got, err := l.Read(t.Context(), e.Pos-1, 1)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			checkEqual(t, "Read back", got, []*ssehub.Event{&want})
			all = append(all, &want)
		})
	}
	if s.h.Reopen != nil && !t.Failed() {
		l = s.reopen(t, l)
		checkEqual(t, "Read after Reopen", readAll(t, l, 0), all)
	}
}

func (s *suite) testBatch(t *testing.T) {
	l := s.open(t)
	first := appendN(t, l, 0, 2)
	batch := []*ssehub.Event{sample(2), sample(3), sample(4), sample(5)}
	if err := l.Append(t.Context(), batch...); err != nil {
		t.Fatalf("Append(4 events): %v", err)
	}
	prev := first[1].Pos
	for i, e := range batch {
		if e.Pos <= prev {
			t.Fatalf("batch event %d: Pos %d not after %d (events in one Append keep their order)", i, e.Pos, prev)
		}
		prev = e.Pos
	}
	last := appendN(t, l, 6, 1)
	want := append(first, batch...)
	want = append(want, last...)
	checkEqual(t, "Read", readAll(t, l, 0), want)
}

func (s *suite) testAppendNone(t *testing.T) {
	l := s.open(t)
	if err := l.Append(t.Context()); err != nil {
		t.Fatalf("Append() with no events: %v", err)
	}
	first, last, err := l.Bounds(t.Context())
	if err != nil || first != 0 || last != 0 {
		t.Fatalf("Bounds after empty Append = %d, %d, %v; want 0, 0, nil", first, last, err)
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	l := s.open(t)
	const writers, perWriter = 16, 40
	acked := make([][]*ssehub.Event, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				events := []*ssehub.Event{writerSample(w, i)}
				if i%5 == 0 {
					events = append(events, writerSample(w, perWriter+i))
				}
				for j, e := range events {
					e.Data = fmt.Sprintf("writer %d event %d.%d", w, i, j)
				}
				if err := l.Append(t.Context(), events...); err != nil {
					errs <- fmt.Errorf("writer %d: Append: %w", w, err)
					return
				}
				for _, e := range events {
					acked[w] = append(acked[w], clone(e))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	byPos := map[uint64]*ssehub.Event{}
	for w, events := range acked {
		for i, e := range events {
			if other, dup := byPos[e.Pos]; dup {
				t.Fatalf("position %d given to %q and %q", e.Pos, other.Data, e.Data)
			}
			byPos[e.Pos] = e
			if i > 0 && e.Pos <= events[i-1].Pos {
				t.Fatalf("writer %d: Pos %d not after its previous append's %d", w, e.Pos, events[i-1].Pos)
			}
		}
	}
	got := readAll(t, l, 0) // readAll checks that positions increase
	if len(got) != len(byPos) {
		t.Fatalf("Read returned %d events, %d were acknowledged", len(got), len(byPos))
	}
	for _, e := range got {
		want, ok := byPos[e.Pos]
		if !ok {
			t.Fatalf("Read returned position %d, which no Append acknowledged", e.Pos)
		}
		if d := diff(e, want); d != "" {
			t.Fatalf("position %d: %s", e.Pos, d)
		}
	}
}

func (s *suite) testRead(t *testing.T) {
	l := s.open(t)
	events := appendN(t, l, 0, 10)
	pos := func(i int) uint64 { return events[i].Pos }
	tests := []struct {
		name  string
		after uint64
		limit int
		want  []*ssehub.Event
	}{
		{"after 0", 0, 100, events},
		{"before first", pos(0) - 1, 100, events},
		{"after first", pos(0), 100, events[1:]},
		{"after middle", pos(4), 100, events[5:]},
		{"after second to last", pos(8), 100, events[9:]},
		{"after last", pos(9), 100, nil},
		{"beyond last", pos(9) + 1000, 100, nil},
		{"limit from start", 0, 3, events[:3]},
		{"limit from middle", pos(4), 2, events[5:7]},
		{"limit 1", pos(2), 1, events[3:4]},
		{"limit equal to rest", pos(4), 5, events[5:]},
		{"limit beyond rest", pos(4), 6, events[5:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.Read(t.Context(), tc.after, tc.limit)
			if err != nil {
				t.Fatalf("Read(%d, %d): %v", tc.after, tc.limit, err)
			}
			checkEqual(t, fmt.Sprintf("Read(%d, %d)", tc.after, tc.limit), got, tc.want)
		})
	}
	t.Run("empty log", func(t *testing.T) {
		got, err := s.open(t).Read(t.Context(), 0, 10)
		if err != nil || len(got) != 0 {
			t.Fatalf("Read on an empty log = %v, %v; want no events, nil", positions(got), err)
		}
	})
}

func (s *suite) testBounds(t *testing.T) {
	l := s.open(t)
	first, last, err := l.Bounds(t.Context())
	if err != nil || first != 0 || last != 0 {
		t.Fatalf("Bounds on an empty log = %d, %d, %v; want 0, 0, nil", first, last, err)
	}
	events := appendN(t, l, 0, 1)
	first, last, err = l.Bounds(t.Context())
	if err != nil || first != events[0].Pos || last != events[0].Pos {
		t.Fatalf("Bounds with one event = %d, %d, %v; want %d, %d, nil", first, last, err, events[0].Pos, events[0].Pos)
	}
	events = append(events, appendN(t, l, 1, 4)...)
	first, last, err = l.Bounds(t.Context())
	if err != nil || first != events[0].Pos || last != events[4].Pos {
		t.Fatalf("Bounds with 5 events = %d, %d, %v; want %d, %d, nil", first, last, err, events[0].Pos, events[4].Pos)
	}
}

// Tail runs a log's Tail on a goroutine and hands the batches it gets to
// the test. Start one with StartTail.
type Tail struct {
	batches chan []*ssehub.Event
	errc    chan error
	cancel  context.CancelFunc
	timeout time.Duration // for each wait
	last    uint64        // last position received
}

// StartTail runs l.Tail(after) until the test ends (or Cancel); Next and
// Wait give up after timeout.
func StartTail(t *testing.T, l ssehub.Log, after uint64, timeout time.Duration) *Tail {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	tl := &Tail{batches: make(chan []*ssehub.Event), errc: make(chan error, 1), cancel: cancel, timeout: timeout, last: after}
	go func() {
		tl.errc <- l.Tail(ctx, after, func(events []*ssehub.Event) error {
			select {
			case tl.batches <- slices.Clone(events):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-tl.errc // wait, so no goroutine outlives the test
	})
	return tl
}

func (s *suite) startTail(t *testing.T, l ssehub.Log, after uint64) *Tail {
	t.Helper()
	return StartTail(t, l, after, s.timeout)
}

// Cancel cancels the Tail's context; Wait then returns what it returned.
func (tl *Tail) Cancel() { tl.cancel() }

// Running fails the test if Tail has returned.
func (tl *Tail) Running(t *testing.T) {
	t.Helper()
	select {
	case err := <-tl.errc:
		tl.errc <- err
		t.Fatalf("Tail returned %v; it should still be running", err)
	default:
	}
}

// Next returns the next n events the tail delivers, checking that each
// batch is non-empty and that positions only increase (so no event comes
// twice).
func (tl *Tail) Next(t *testing.T, n int) []*ssehub.Event {
	t.Helper()
	var got []*ssehub.Event
	timer := time.NewTimer(tl.timeout)
	defer timer.Stop()
	for len(got) < n {
		select {
		case batch := <-tl.batches:
			if len(batch) == 0 {
				t.Fatal("Tail called fn with an empty batch")
			}
			for _, e := range batch {
				if e.Pos <= tl.last {
					t.Fatalf("Tail delivered position %d after %d: out of order or twice", e.Pos, tl.last)
				}
				tl.last = e.Pos
			}
			got = append(got, batch...)
		case err := <-tl.errc:
			t.Fatalf("Tail returned %v after delivering %d of %d events", err, len(got), n)
		case <-timer.C:
			t.Fatalf("Tail delivered %d of %d events within %v: %v", len(got), n, tl.timeout, positions(got))
		}
	}
	if len(got) > n {
		t.Fatalf("Tail delivered %d events, want %d: %v", len(got), n, positions(got))
	}
	return got
}

// Wait returns what Tail returned.
func (tl *Tail) Wait(t *testing.T) error {
	t.Helper()
	timer := time.NewTimer(tl.timeout)
	defer timer.Stop()
	for {
		select {
		case err := <-tl.errc:
			tl.errc <- err // for the cleanup
			return err
		case batch := <-tl.batches:
			t.Fatalf("Tail delivered unexpected events %v", positions(batch))
		case <-timer.C:
			t.Fatalf("Tail did not return within %v", tl.timeout)
		}
	}
}

// checkQuiet appends a marker event and checks it is the next thing tl
// delivers: nothing was left over or duplicated before it.
func (tl *Tail) checkQuiet(t *testing.T, l ssehub.Log) {
	t.Helper()
	marker := &ssehub.Event{Topics: []string{"marker"}, Data: "marker"}
	if err := l.Append(t.Context(), marker); err != nil {
		t.Fatalf("Append marker: %v", err)
	}
	got := tl.Next(t, 1)
	if got[0].Pos != marker.Pos || got[0].Data != "marker" {
		t.Fatalf("Tail delivered %d (%q) where the marker %d was expected", got[0].Pos, got[0].Data, marker.Pos)
	}
}

func (s *suite) testTailFromStart(t *testing.T) {
	l := s.open(t)
	existing := appendN(t, l, 0, 5)
	tl := s.startTail(t, l, 0)
	checkEqual(t, "Tail (existing events)", tl.Next(t, 5), existing)
	later := appendN(t, l, 5, 3)
	batch := []*ssehub.Event{sample(8), sample(9)}
	if err := l.Append(t.Context(), batch...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	later = append(later, clone(batch[0]), clone(batch[1]))
	checkEqual(t, "Tail (later events)", tl.Next(t, 5), later)
	tl.checkQuiet(t, l)
}

func (s *suite) testTailFromMiddle(t *testing.T) {
	l := s.open(t)
	existing := appendN(t, l, 0, 6)
	tl := s.startTail(t, l, existing[2].Pos)
	checkEqual(t, "Tail (existing events)", tl.Next(t, 3), existing[3:])
	later := appendN(t, l, 6, 4)
	checkEqual(t, "Tail (later events)", tl.Next(t, 4), later)
	tl.checkQuiet(t, l)
}

func (s *suite) testTailFromLast(t *testing.T) {
	l := s.open(t)
	existing := appendN(t, l, 0, 3)
	tl := s.startTail(t, l, existing[2].Pos)
	later := appendN(t, l, 3, 2)
	checkEqual(t, "Tail", tl.Next(t, 2), later)
	tl.checkQuiet(t, l)
}

func (s *suite) testTwoTails(t *testing.T) {
	l := s.open(t)
	existing := appendN(t, l, 0, 4)
	a := s.startTail(t, l, 0)
	b := s.startTail(t, l, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				e := writerSample(w, i)
				e.Data = fmt.Sprintf("writer %d event %d", w, i)
				if err := l.Append(t.Context(), e); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	gotA := a.Next(t, 44)
	gotB := b.Next(t, 44)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	checkEqual(t, "first events of tail A", gotA[:4], existing)
	checkEqual(t, "tail B compared with tail A", gotB, gotA)
	a.checkQuiet(t, l)
	b.Next(t, 1)
}

func (s *suite) testTailConcurrentAppends(t *testing.T) {
	l := s.open(t)
	tl := s.startTail(t, l, 0)
	const writers, perWriter = 8, 50
	var mu sync.Mutex
	acked := map[uint64]*ssehub.Event{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				e := writerSample(w, i)
				e.Data = fmt.Sprintf("writer %d event %d", w, i)
				if err := l.Append(t.Context(), e); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				acked[e.Pos] = clone(e)
				mu.Unlock()
			}
		})
	}
	// The tail must see every event exactly once and in position order, even
	// though appends commit concurrently: a later position must never become
	// visible before an earlier one.
	got := tl.Next(t, writers*perWriter)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	for _, e := range got {
		want, ok := acked[e.Pos]
		if !ok {
			t.Fatalf("Tail delivered position %d, which no Append acknowledged", e.Pos)
		}
		if d := diff(e, want); d != "" {
			t.Fatalf("position %d: %s", e.Pos, d)
		}
	}
	checkEqual(t, "Read compared with Tail", readAll(t, l, 0), got)
	tl.checkQuiet(t, l)
}

func (s *suite) testTailCancel(t *testing.T) {
	t.Run("while waiting", func(t *testing.T) {
		l := s.open(t)
		appendN(t, l, 0, 2)
		tl := s.startTail(t, l, 0)
		tl.Next(t, 2)
		tl.Cancel()
		if err := tl.Wait(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("Tail after cancel returned %v, want context.Canceled", err)
		}
	})
	t.Run("already canceled", func(t *testing.T) {
		l := s.open(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := l.Tail(ctx, 0, func([]*ssehub.Event) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Fatalf("Tail with a canceled context returned %v, want context.Canceled", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		l := s.open(t)
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		defer cancel()
		if err := l.Tail(ctx, 0, func([]*ssehub.Event) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Tail past its deadline returned %v, want context.DeadlineExceeded", err)
		}
	})
}

func (s *suite) testTailClose(t *testing.T) {
	l := s.open(t)
	appendN(t, l, 0, 1)
	tl := s.startTail(t, l, 0)
	tl.Next(t, 1) // the tail runs and waits
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tl.Wait(t); !errors.Is(err, ssehub.ErrClosed) {
		t.Fatalf("Tail after Close returned %v, want ssehub.ErrClosed", err)
	}
	if err := l.Tail(t.Context(), 0, func([]*ssehub.Event) error { return nil }); !errors.Is(err, ssehub.ErrClosed) {
		t.Fatalf("Tail on a closed log returned %v, want ssehub.ErrClosed", err)
	}
}

func (s *suite) testTailFnError(t *testing.T) {
	l := s.open(t)
	appendN(t, l, 0, 3)
	errStop := errors.New("stop here")
	calls := 0
	err := l.Tail(t.Context(), 0, func([]*ssehub.Event) error {
		calls++
		return errStop
	})
	if err != errStop {
		t.Fatalf("Tail returned %v, want fn's error as is", err)
	}
	if calls != 1 {
		t.Fatalf("fn called %d times after returning an error, want 1", calls)
	}
}

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
	if s.h.OpenRetained == nil {
		t.Skip("Harness.OpenRetained is nil")
	}
	const maxEvents = 5
	slack := s.h.RetentionSlack
	l := s.h.OpenRetained(t, maxEvents)
	if l == nil {
		t.Fatal("Harness.OpenRetained returned nil")
	}
	t.Cleanup(func() { l.Close() })
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
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ssehub.ErrDuplicateID):
			t.Fatalf("concurrent Append: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent appends of one id succeeded, want exactly 1", won, writers)
	}
	// Other requests of the same group commit are not affected.
	e := &ssehub.Event{Topics: []string{"a"}, ID: "urn:after"}
	if err := l.Append(t.Context(), e); err != nil {
		t.Fatalf("Append after refusals: %v", err)
	}
}

func (s *suite) testIDIndexRetention(t *testing.T) {
	if s.h.OpenRetained == nil {
		t.Skip("Harness.OpenRetained is nil")
	}
	const maxEvents = 4
	l := s.h.OpenRetained(t, maxEvents)
	if l == nil {
		t.Fatal("Harness.OpenRetained returned nil")
	}
	t.Cleanup(func() { l.Close() })
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
