package logtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ssehub/ssehub"
)

// The TopicIndex subtests: Run adds them to every suite; they skip logs
// that do not implement ssehub.TopicIndex.
var topicTests = []struct {
	name string
	fn   func(*suite, *testing.T)
}{
	{"TopicIndex/OneTopic", (*suite).testTopicsOne},
	{"TopicIndex/SeveralTopics", (*suite).testTopicsSeveral},
	{"TopicIndex/ManyEvents", (*suite).testTopicsMany},
	{"TopicIndex/Until", (*suite).testTopicsUntil},
	{"TopicIndex/MaxBytes", (*suite).testTopicsMaxBytes},
	{"TopicIndex/AllTopics", (*suite).testTopicsAll},
	{"TopicIndex/Empty", (*suite).testTopicsEmpty},
	{"TopicIndex/Retention", (*suite).testTopicsRetention},
	{"TopicIndex/Reopen", (*suite).testTopicsReopen},
}

// topicIndex returns l as an ssehub.TopicIndex, skipping the test for logs
// that do not implement it.
func topicIndex(t *testing.T, l ssehub.Log) ssehub.TopicIndex {
	t.Helper()
	idx, ok := l.(ssehub.TopicIndex)
	if !ok {
		t.Skipf("%T does not implement ssehub.TopicIndex", l)
	}
	return idx
}

// readTopics is one ReadTopics call, checked against the contract that
// does not depend on the log's content: order, bounds, limits, through.
func readTopics(t *testing.T, idx ssehub.TopicIndex, q ssehub.TopicQuery) ([]*ssehub.Event, uint64) {
	t.Helper()
	events, through, err := idx.ReadTopics(t.Context(), q)
	if err != nil {
		t.Fatalf("ReadTopics(%+v): %v", q, err)
	}
	if through < q.After {
		t.Fatalf("ReadTopics(%+v): through %d is below After", q, through)
	}
	if q.Until != 0 && through > q.Until {
		t.Fatalf("ReadTopics(%+v): through %d is beyond Until", q, through)
	}
	if len(events) > q.Limit {
		t.Fatalf("ReadTopics(%+v) returned %d events, more than Limit", q, len(events))
	}
	prev, size := q.After, 0
	for i, e := range events {
		if e.Pos <= prev {
			t.Fatalf("ReadTopics(%+v): positions %v are not increasing after %d", q, positions(events), q.After)
		}
		if e.Pos > through {
			t.Fatalf("ReadTopics(%+v): event %d is beyond through %d", q, e.Pos, through)
		}
		if len(q.Topics) > 0 && !slices.ContainsFunc(e.Topics, func(tp string) bool { return slices.Contains(q.Topics, tp) }) {
			t.Fatalf("ReadTopics(%+v): event %d has topics %q, none asked for", q, e.Pos, e.Topics)
		}
		if q.MaxBytes > 0 && size >= q.MaxBytes {
			t.Fatalf("ReadTopics(%+v): event %d (index %d) returned after %d bytes already reached MaxBytes", q, e.Pos, i, size)
		}
		prev = e.Pos
		size += e.Size()
	}
	return events, through
}

// readTopicsAll pages through everything q selects after q.After, with
// q.Limit per page, following through; it stops when through reaches
// until (the log's newest position, or q.Until).
func readTopicsAll(t *testing.T, idx ssehub.TopicIndex, q ssehub.TopicQuery, until uint64) []*ssehub.Event {
	t.Helper()
	var out []*ssehub.Event
	for pages := 0; q.After < until; pages++ {
		if pages > 100000 {
			t.Fatalf("ReadTopics(%+v) does not advance", q)
		}
		events, through := readTopics(t, idx, q)
		if through == q.After && len(events) == 0 {
			t.Fatalf("ReadTopics(%+v) returned nothing and through %d = After, below %d: a reader would never finish", q, through, until)
		}
		out = append(out, events...)
		q.After = through
	}
	return out
}

// selected returns the events of all that have one of topics.
func selected(all []*ssehub.Event, topics ...string) []*ssehub.Event {
	var out []*ssehub.Event
	for _, e := range all {
		if slices.ContainsFunc(e.Topics, func(tp string) bool { return slices.Contains(topics, tp) }) {
			out = append(out, e)
		}
	}
	return out
}

func lastPos(t *testing.T, l ssehub.Log) uint64 {
	t.Helper()
	_, last, err := l.Bounds(t.Context())
	if err != nil {
		t.Fatalf("Bounds: %v", err)
	}
	return last
}

func (s *suite) testTopicsOne(t *testing.T) {
	l := s.open(t)
	idx := topicIndex(t, l)
	events := appendN(t, l, 0, 60) // seven topics, "shelf" on every 4th, private ones
	last := lastPos(t, l)
	for _, topic := range []string{"https://example.com/books/3", "shelf"} {
		want := selected(events, topic)
		for _, limit := range []int{1, 4, 1000} {
			got := readTopicsAll(t, idx, ssehub.TopicQuery{Topics: []string{topic}, Limit: limit}, last)
			checkEqual(t, fmt.Sprintf("topic %q, limit %d", topic, limit), got, want)
		}
		// From the middle: after the third of the topic's events.
		got := readTopicsAll(t, idx, ssehub.TopicQuery{Topics: []string{topic}, After: want[2].Pos, Limit: 3}, last)
		checkEqual(t, fmt.Sprintf("topic %q after its third event", topic), got, want[3:])
	}
	// A complete answer is complete up to the newest position.
	if _, through := readTopics(t, idx, ssehub.TopicQuery{Topics: []string{"shelf"}, Limit: 1000}); through != last {
		t.Fatalf("a complete read is complete through %d, want the newest position %d", through, last)
	}
	// A topic nothing was published to, and a prefix of real topics.
	for _, topic := range []string{"https://example.com/nothing", "https://example.com/books/", "https://example.com/books/3/"} {
		got, through := readTopics(t, idx, ssehub.TopicQuery{Topics: []string{topic}, Limit: 10})
		if len(got) != 0 || through != last {
			t.Fatalf("topic %q: got %v, through %d; want nothing, through %d", topic, positions(got), through, last)
		}
	}
	// Private events are in the index like any other: the hub decides who
	// receives them.
	if !slices.ContainsFunc(selected(events, "https://example.com/books/3"), func(e *ssehub.Event) bool { return e.Private }) {
		t.Fatal("the sample has no private event on the topic read")
	}
}

func (s *suite) testTopicsSeveral(t *testing.T) {
	l := s.open(t)
	idx := topicIndex(t, l)
	var events []*ssehub.Event
	add := func(topics ...string) {
		e := &ssehub.Event{Topics: topics, Data: strings.Join(topics, "+")}
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatalf("Append: %v", err)
		}
		events = append(events, clone(e))
	}
	add("a")
	add("b")
	add("a", "b") // one event, two of the topics read: returned once
	add("c")
	add("b", "c", "a")
	add("c", "c") // a topic named twice
	add("z", "a")
	batch := []*ssehub.Event{{Topics: []string{"b"}, Data: "batch 1"}, {Topics: []string{"a", "z"}, Data: "batch 2"}}
	if err := l.Append(t.Context(), batch...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	for _, e := range batch {
		events = append(events, clone(e))
	}
	last := lastPos(t, l)
	for _, topics := range [][]string{{"a"}, {"a", "b"}, {"b", "a"}, {"c"}, {"a", "c", "z"}, {"a", "a"}, {"nothing", "z"}} {
		want := selected(events, topics...)
		for _, limit := range []int{1, 2, 100} {
			got := readTopicsAll(t, idx, ssehub.TopicQuery{Topics: topics, Limit: limit}, last)
			checkEqual(t, fmt.Sprintf("topics %q, limit %d", topics, limit), got, want)
		}
	}
}

func (s *suite) testTopicsMany(t *testing.T) {
	l := s.open(t)
	idx := topicIndex(t, l)
	// One topic's events spread thinly over many others, appended in
	// batches as a busy hub would.
	var events []*ssehub.Event
	for b := range 20 {
		batch := make([]*ssehub.Event, 0, 50)
		for i := range 50 {
			n := b*50 + i
			topic := fmt.Sprintf("other/%d", n%97)
			if n%10 == 3 {
				topic = "hot"
			}
			batch = append(batch, &ssehub.Event{Topics: []string{topic}, Data: fmt.Sprintf("event %d", n)})
		}
		if err := l.Append(t.Context(), batch...); err != nil {
			t.Fatalf("Append: %v", err)
		}
		for _, e := range batch {
			events = append(events, clone(e))
		}
	}
	last := lastPos(t, l)
	want := selected(events, "hot")
	if len(want) != 100 {
		t.Fatalf("test bug: %d hot events", len(want))
	}
	got := readTopicsAll(t, idx, ssehub.TopicQuery{Topics: []string{"hot"}, Limit: 512}, last)
	checkEqual(t, "a thin topic in a long log", got, want)
	got = readTopicsAll(t, idx, ssehub.TopicQuery{Topics: []string{"hot"}, Limit: 7}, last)
	checkEqual(t, "a thin topic in pages of 7", got, want)
	// The 10 newest events of the topic, as a resuming client wants them.
	got = readTopicsAll(t, idx, ssehub.TopicQuery{Topics: []string{"hot"}, After: want[89].Pos, Limit: 512}, last)
	checkEqual(t, "the newest 10", got, want[90:])
}

func (s *suite) testTopicsUntil(t *testing.T) {
	l := s.open(t)
	idx := topicIndex(t, l)
	events := appendN(t, l, 0, 40)
	shelf := selected(events, "shelf")
	until := shelf[5].Pos + 1 // not itself an event of the topic
	got, through := readTopics(t, idx, ssehub.TopicQuery{Topics: []string{"shelf"}, Until: until, Limit: 100})
	checkEqual(t, "events until a position", got, shelf[:6])
	if through != until {
		t.Fatalf("through = %d, want Until %d", through, until)
	}
	got = readTopicsAll(t, idx, ssehub.TopicQuery{Topics: []string{"shelf"}, After: shelf[1].Pos, Until: shelf[7].Pos, Limit: 2}, shelf[7].Pos)
	checkEqual(t, "pages between two positions", got, shelf[2:8])
	// Until beyond the newest position: complete through the newest.
	last := lastPos(t, l)
	if _, through := readTopics(t, idx, ssehub.TopicQuery{Topics: []string{"shelf"}, Until: last + 1000, Limit: 100}); through != last {
		t.Fatalf("through = %d with Until beyond the end, want the newest position %d", through, last)
	}
}

func (s *suite) testTopicsMaxBytes(t *testing.T) {
	l := s.open(t)
	idx := topicIndex(t, l)
	var events []*ssehub.Event
	for i := range 12 {
		topic := "big"
		if i%3 == 2 {
			topic = "small"
		}
		e := &ssehub.Event{Topics: []string{topic}, Data: strings.Repeat(string(rune('a'+i)), 1000)}
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatalf("Append: %v", err)
		}
		events = append(events, clone(e))
	}
	big := selected(events, "big")
	size := big[0].Size() // every event has the same size
	got, through := readTopics(t, idx, ssehub.TopicQuery{Topics: []string{"big"}, Limit: 100, MaxBytes: 2*size + 1})
	checkEqual(t, "a read bounded in bytes", got, big[:3])
	if through != big[2].Pos {
		t.Fatalf("through = %d after a read cut by MaxBytes, want the last event returned (%d)", through, big[2].Pos)
	}
	got, _ = readTopics(t, idx, ssehub.TopicQuery{Topics: []string{"big"}, Limit: 100, MaxBytes: 10})
	checkEqual(t, "an event larger than MaxBytes", got, big[:1])
	last := lastPos(t, l)
	got = readTopicsAll(t, idx, ssehub.TopicQuery{Topics: []string{"big"}, Limit: 100, MaxBytes: 2 * size}, last)
	checkEqual(t, "pages bounded in bytes", got, big)
	got = readTopicsAll(t, idx, ssehub.TopicQuery{Limit: 100, MaxBytes: 3 * size}, last)
	checkEqual(t, "every topic, pages bounded in bytes", got, events)
}

func (s *suite) testTopicsAll(t *testing.T) {
	l := s.open(t)
	idx := topicIndex(t, l)
	events := appendN(t, l, 0, 30)
	last := lastPos(t, l)
	for _, limit := range []int{1, 7, 100} {
		checkEqual(t, fmt.Sprintf("no topics (every event), limit %d", limit),
			readTopicsAll(t, idx, ssehub.TopicQuery{Limit: limit}, last), events)
	}
	got, through := readTopics(t, idx, ssehub.TopicQuery{After: events[9].Pos, Until: events[19].Pos, Limit: 100})
	checkEqual(t, "no topics, between two positions", got, events[10:20])
	if through != events[19].Pos {
		t.Fatalf("through = %d, want %d", through, events[19].Pos)
	}
}

func (s *suite) testTopicsEmpty(t *testing.T) {
	l := s.open(t)
	idx := topicIndex(t, l)
	for _, q := range []ssehub.TopicQuery{{Topics: []string{"a"}, Limit: 10}, {Limit: 10}, {Topics: []string{"a"}, After: 12345, Limit: 10}} {
		if got, _ := readTopics(t, idx, q); len(got) != 0 {
			t.Fatalf("ReadTopics(%+v) on an empty log returned %v", q, positions(got))
		}
	}
	// After the newest position: nothing, complete through After.
	appendN(t, l, 0, 3)
	last := lastPos(t, l)
	got, through := readTopics(t, idx, ssehub.TopicQuery{Topics: []string{"shelf"}, After: last, Limit: 10})
	if len(got) != 0 || through != last {
		t.Fatalf("reading after the newest position: %v, through %d; want nothing, through %d", positions(got), through, last)
	}
}

func (s *suite) testTopicsRetention(t *testing.T) {
	const maxEvents = 10
	slack := s.h.RetentionSlack
	l := s.openRetained(t, maxEvents)
	idx := topicIndex(t, l)
	events := appendN(t, l, 0, 8)
	shelf := selected(events, "shelf")
	// A reader has read the first page, then retention trims what it was
	// about to read: the next page holds only retained events, and Bounds
	// tells the reader that positions it had not read are gone.
	page, through := readTopics(t, idx, ssehub.TopicQuery{Topics: []string{"shelf"}, Limit: 1})
	checkEqual(t, "first page", page, shelf[:1])
	events = append(events, appendN(t, l, 8, 4*maxEvents+slack)...)
	first, last, err := l.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if first <= through+1 {
		t.Fatalf("test bug: retention did not trim past the reader (first %d, reader at %d)", first, through)
	}
	retained := readAll(t, l, 0)
	got := readTopicsAll(t, idx, ssehub.TopicQuery{Topics: []string{"shelf"}, After: through, Limit: 3}, last)
	checkEqual(t, "the rest after retention", got, selected(retained, "shelf"))
	for _, e := range got {
		if e.Pos < first {
			t.Fatalf("ReadTopics returned trimmed event %d (first retained %d)", e.Pos, first)
		}
	}
	for _, topic := range []string{"https://example.com/books/0", "https://example.com/books/5"} {
		got := readTopicsAll(t, idx, ssehub.TopicQuery{Topics: []string{topic, "shelf"}, Limit: 4}, last)
		checkEqual(t, fmt.Sprintf("topics %q and shelf after retention", topic), got, selected(retained, topic, "shelf"))
	}
	checkEqual(t, "every topic after retention", readTopicsAll(t, idx, ssehub.TopicQuery{Limit: 4}, last), retained)
}

func (s *suite) testTopicsReopen(t *testing.T) {
	if s.h.Reopen == nil {
		t.Skip("Harness.Reopen is nil: the log keeps nothing")
	}
	l := s.open(t)
	topicIndex(t, l)
	events := appendN(t, l, 0, 20)
	l = s.reopen(t, l)
	idx := topicIndex(t, l)
	events = append(events, appendN(t, l, 20, 10)...)
	last := lastPos(t, l)
	for _, topic := range []string{"shelf", "https://example.com/books/2"} {
		got := readTopicsAll(t, idx, ssehub.TopicQuery{Topics: []string{topic}, Limit: 5}, last)
		checkEqual(t, fmt.Sprintf("topic %q across a reopen", topic), got, selected(events, topic))
	}
}
