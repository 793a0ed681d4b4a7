package redislog

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
	"github.com/ssehub/ssehub/internal/servicetest"
)

// indexDiff compares the topic index with the stream and describes the
// first difference ("" for none): every retained event's topics' sets hold
// its position and nothing else, the topics set names exactly the sets
// with their oldest position, the marker is the counter and no appended
// range is left over.
func indexDiff(t testing.TB, l *Log) string {
	t.Helper()
	for _, k := range [][3]string{{l.stream, l.tprefix, l.topics}, {l.reserved, l.rprefix, l.rtopics}} {
		if diff := streamIndexDiff(t, l, k[0], k[1], k[2]); diff != "" {
			return diff
		}
	}
	ctx := t.Context()
	c := l.client
	marker, counter, err := l.indexState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if marker != counter {
		return fmt.Sprintf("the marker is %q, the counter %q", marker, counter)
	}
	if n, err := c.Exists(ctx, l.unindexed).Result(); err != nil || n != 0 {
		return fmt.Sprintf("the appended ranges are left over (%d, %v)", n, err)
	}
	return ""
}

// streamIndexDiff is indexDiff for one stream, the prefix of its sets and
// its topics set.
func streamIndexDiff(t testing.TB, l *Log, stream, tprefix, topicsKey string) string {
	t.Helper()
	ctx := t.Context()
	c := l.client
	msgs, err := c.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{} // topic key -> positions
	for _, e := range l.mustDecode(t, msgs) {
		for _, tp := range eventlog.DistinctTopics(e) {
			k := tprefix + l.topicKey(tp, false)[len(l.tprefix):]
			want[k] = append(want[k], strconv.FormatUint(e.Pos, 10))
		}
	}
	var keys []string
	iter := c.Scan(ctx, 0, tprefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if wantKeys := slices.Sorted(maps.Keys(want)); !slices.Equal(keys, wantKeys) {
		return fmt.Sprintf("index sets %v, want %v", keys, wantKeys)
	}
	oldest, err := c.ZRangeWithScores(ctx, topicsKey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(oldest) != len(want) {
		return fmt.Sprintf("the topics set %s has %d entries, want %d", topicsKey, len(oldest), len(want))
	}
	for _, z := range oldest {
		k := tprefix + z.Member.(string)
		if len(want[k]) == 0 || strconv.FormatFloat(z.Score, 'f', -1, 64) != want[k][0] {
			return fmt.Sprintf("the topics set gives %s the oldest position %.0f, want %v", k, z.Score, want[k])
		}
	}
	for k, positions := range want {
		got, err := c.ZRangeWithScores(ctx, k, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		var members []string
		for _, z := range got {
			if m := z.Member.(string); strconv.FormatFloat(z.Score, 'f', -1, 64) != m {
				return fmt.Sprintf("%s: member %s has score %f", k, m, z.Score)
			}
			members = append(members, z.Member.(string))
		}
		if !slices.Equal(members, positions) {
			i := 0
			for i < min(len(members), len(positions)) && members[i] == positions[i] {
				i++
			}
			return fmt.Sprintf("%s holds %d positions, want %d; from index %d it holds %v, want %v",
				k, len(members), len(positions), i, members[i:min(i+5, len(members))], positions[i:min(i+5, len(positions))])
		}
	}
	return ""
}

func (l *Log) mustDecode(t testing.TB, msgs []redis.XMessage) []*ssehub.Event {
	events, _ := l.decode(msgs)
	if len(events) != len(msgs) {
		t.Fatalf("%d of %d entries decode", len(events), len(msgs))
	}
	return events
}

// checkReads checks that ReadTopics answers, for every topic of the
// stream, some pairs of them and no topic, in pages of several sizes and
// bounded in bytes, what a full Read filtered by topic gives.
func checkReads(t *testing.T, l *Log) {
	t.Helper()
	all, err := l.Read(t.Context(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	_, last, err := l.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	topicSet := map[string]bool{}
	for _, e := range all {
		for _, tp := range e.Topics {
			topicSet[tp] = true
		}
	}
	topics := slices.Sorted(maps.Keys(topicSet))
	queries := [][]string{nil, {"nothing"}}
	for i, tp := range topics {
		queries = append(queries, []string{tp})
		if i < 3 {
			queries = append(queries, []string{tp, topics[len(topics)-1-i]})
		}
	}
	for _, qt := range queries {
		var want []*ssehub.Event
		for _, e := range all {
			if eventlog.Selects(qt, e) {
				want = append(want, e)
			}
		}
		for _, q := range []ssehub.TopicQuery{{Limit: 1000}, {Limit: 9}, {Limit: 1000, MaxBytes: 150}} {
			q.Topics = qt
			var got []*ssehub.Event
			for q.After < last {
				events, through, err := l.ReadTopics(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				if through <= q.After && len(events) == 0 {
					t.Fatalf("ReadTopics(%+v) does not advance", q)
				}
				got = append(got, events...)
				q.After = through
			}
			if g, w := summary(got), summary(want); g != w {
				t.Fatalf("ReadTopics(topics %q, limit %d, max bytes %d) paged:\n%s\nfiltered Read:\n%s", qt, q.Limit, q.MaxBytes, g, w)
			}
		}
	}
}

// summary describes events for comparisons.
func summary(events []*ssehub.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "%d %q %q %q\n", e.Pos, e.ID, e.Topics, e.Data)
	}
	return b.String()
}

// TestTopicIndexStored checks what the append script writes: each event's
// position in its distinct topics' sets, and the marker; and that reads go
// through the index up to the marker and scan the stream after it.
func TestTopicIndexStored(t *testing.T) {
	l := openUnmaintained(t, sharedURL(t), Options{})
	if err := l.Append(t.Context(), event("a", "1"), &ssehub.Event{Topics: []string{"b", "a", "b"}, Data: "2"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(t.Context(), event("c", "3")); err != nil {
		t.Fatal(err)
	}
	if diff := indexDiff(t, l); diff != "" {
		t.Fatal(diff)
	}
	// The key names are part of what is stored: 16 hex digits of TopicHash.
	if k, want := l.topicKey("a", false), fmt.Sprintf("{%s}:t:%016x", l.opts.Prefix, eventlog.TopicHash("a")); k != want {
		t.Fatalf("topic key %q, want %q", k, want)
	}
	checkReads(t, l)
	// An entry the index does not hold, behind the marker: a read by
	// topic does not see it, so it read the index, not the stream.
	_, last, _ := l.Bounds(t.Context())
	hidden := &ssehub.Event{Pos: last + 1, Topics: []string{"a"}, Data: "hidden", Time: time.Now()}
	enc, _ := hidden.AppendBinary(nil)
	c := l.client
	if err := c.XAdd(t.Context(), &redis.XAddArgs{Stream: l.stream, ID: entryID(hidden.Pos), Values: []any{field, enc}}).Err(); err != nil {
		t.Fatal(err)
	}
	c.Set(t.Context(), l.counter, hidden.Pos, 0)
	c.Set(t.Context(), l.marker, hidden.Pos, 0)
	got, through, err := l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: []string{"a"}, Limit: 10})
	if err != nil || len(got) != 2 || through != hidden.Pos {
		t.Fatalf("ReadTopics with an entry missing from the index = %s through %d, %v; want the 2 indexed events through %d", summary(got), through, err, hidden.Pos)
	}
	// With the marker before it, the read scans it.
	c.Set(t.Context(), l.marker, last, 0)
	got, _, err = l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: []string{"a"}, Limit: 10})
	if err != nil || len(got) != 3 || got[2].Data != "hidden" {
		t.Fatalf("ReadTopics after the marker = %s, %v; want the hidden event last", summary(got), err)
	}
}

// deadAndLive appends n events: the first quarter on "dead" (and only
// them), the rest on five live topics, some of them also on "shared".
func deadAndLive(t *testing.T, l *Log, n int, at time.Time) []*ssehub.Event {
	t.Helper()
	var events []*ssehub.Event
	for i := range n {
		e := &ssehub.Event{Topics: []string{fmt.Sprintf("live/%d", i%5)}, Data: strconv.Itoa(i), Time: at}
		if i < n/4 {
			e.Topics = []string{"dead"}
		}
		if i%4 == 1 {
			e.Topics = append(e.Topics, "shared")
		}
		events = append(events, e)
	}
	for b := range slices.Chunk(events, 10) {
		if err := l.Append(t.Context(), b...); err != nil {
			t.Fatal(err)
		}
	}
	return events
}

// TestTopicIndexRetention checks that the index loses the positions of
// events trimmed by MaxEvents (XADD MAXLEN ~) and by MaxAge (XTRIM MINID),
// and the sets of topics none of whose events remain.
func TestTopicIndexRetention(t *testing.T) {
	url := sharedURL(t)
	tests := []struct {
		name string
		opts Options
		old  time.Time // Time of the events appended first
		trim func(t *testing.T, l *Log)
	}{
		{"MaxEvents", Options{MaxEvents: 50}, time.Time{}, func(*testing.T, *Log) {}},
		{"MaxAge", Options{MaxAge: time.Hour}, time.Now().Add(-2 * time.Hour), func(t *testing.T, l *Log) {
			if err := l.trimAge(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := openUnmaintained(t, url, tc.opts)
			deadAndLive(t, l, 400, tc.old)
			if err := l.Append(t.Context(), event("live/0", "fresh"), event("live/1", "fresh")); err != nil {
				t.Fatal(err)
			}
			tc.trim(t, l)
			first, _, err := l.Bounds(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := l.client.Exists(t.Context(), l.topicKey("dead", false)).Result(); n != 1 {
				t.Fatal("test bug: the dead topic has no set before the sweep")
			}
			if n, _ := l.client.ZCount(t.Context(), l.topicKey("live/0", false), "-inf", fmt.Sprint(first-1)).Result(); n == 0 {
				t.Fatalf("test bug: retention trimmed nothing of live/0 (first %d)", first)
			}
			checkReads(t, l) // stale entries are not read
			if err := l.sweepTopics(t.Context()); err != nil {
				t.Fatal(err)
			}
			if diff := indexDiff(t, l); diff != "" {
				t.Fatal(diff)
			}
			checkReads(t, l)
		})
	}
}

// TestTopicIndexSweptInBackground checks that a Log with retention sweeps
// the index by itself.
func TestTopicIndexSweptInBackground(t *testing.T) {
	url := sharedURL(t)
	for _, opts := range []Options{{MaxEvents: 50}, {MaxAge: time.Second}} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			l := open(t, url, opts)
			deadAndLive(t, l, 400, time.Now().Add(-time.Hour))
			if opts.MaxAge > 0 {
				if err := l.Append(t.Context(), event("live/0", "fresh")); err != nil {
					t.Fatal(err)
				}
			}
			servicetest.WaitFor(t, 10*time.Second, "the index to lose what retention removed", func() bool {
				return indexDiff(t, l) == ""
			})
		})
	}
}

// TestTopicIndexLargeAppend appends more events of one topic in one call
// than Lua's unpack takes at once: the script adds them in slices.
func TestTopicIndexLargeAppend(t *testing.T) {
	l := openUnmaintained(t, sharedURL(t), Options{})
	events := make([]*ssehub.Event, 4500)
	for i := range events {
		events[i] = &ssehub.Event{Topics: []string{"big", fmt.Sprintf("small/%d", i%3)}, Data: strconv.Itoa(i)}
	}
	if err := l.Append(t.Context(), events...); err != nil {
		t.Fatal(err)
	}
	if diff := indexDiff(t, l); diff != "" {
		t.Fatal(diff)
	}
	got, through, err := l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: []string{"big"}, After: events[4000].Pos, Limit: 1000})
	if err != nil || len(got) != 499 || through != events[4499].Pos {
		t.Fatalf("ReadTopics = %d events through %d, %v; want 499 through %d", len(got), through, err, events[4499].Pos)
	}
}
