package logtest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

// The append and read subtests: positions, fields, batches, concurrent
// writers, Read and Bounds.

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
		{"meta", ssehub.Event{Topics: []string{"/v1/stream/a"}, Type: "ssehub.stream.closed", Data: "x", Meta: `{"op":"close"}`}},
		{"everything", ssehub.Event{ID: "id-1", Topics: []string{"t1", "t2"}, Type: "t", Data: "d\nd", Retry: time.Second, Private: true, Meta: "m\x00\xff"}},
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
	checkAcked(t, "Read returned", got, byPos)
}

// checkAcked checks that every event of got is the one an Append
// acknowledged at its position; what says where got comes from.
func checkAcked(t *testing.T, what string, got []*ssehub.Event, acked map[uint64]*ssehub.Event) {
	t.Helper()
	for _, e := range got {
		want, ok := acked[e.Pos]
		if !ok {
			t.Fatalf("%s position %d, which no Append acknowledged", what, e.Pos)
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
