package natslog

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/logtest"
)

var upgradeTopics = []string{"a", "b", "https://example.com/books/1", "c"}

// writePrevious writes n events to stream name as the previous version of
// natslog did (ae01f79~1): a stream capturing only the literal subject,
// every event's encoding (Pos 0) on it, and an id index message holding the
// position of each publisher-supplied id. It returns the events with their
// positions.
func writePrevious(t *testing.T, url, name string, n int) []*ssehub.Event {
	t.Helper()
	js := rawJS(t, url)
	subject := "ssehub." + name + ".events"
	s, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: name, Description: "ssehub event log", Subjects: []string{subject},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		MaxMsgs: -1, Replicas: 1, AllowDirect: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: idStreamPrefix + name, Description: "ssehub id index of stream " + name,
		Subjects: []string{"ssehub.ids." + name + ".*"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld, MaxMsgs: -1,
		MaxMsgsPerSubject: 1, Replicas: 1, AllowDirect: true,
	}); err != nil {
		t.Fatal(err)
	}
	offset := uint64(s.CachedInfo().Created.UnixMicro())
	events := make([]*ssehub.Event, n)
	for i := range events {
		e := &ssehub.Event{Topics: []string{upgradeTopics[i%len(upgradeTopics)]}, Data: fmt.Sprint("old ", i), Time: time.Now()}
		if i%5 == 2 {
			e.Topics = append(e.Topics, upgradeTopics[(i+1)%len(upgradeTopics)])
		}
		if i%3 == 0 {
			e.ID = fmt.Sprint("old-id-", i)
		}
		data, _ := e.MarshalBinary()
		ack, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: subject, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		e.Pos = ack.Sequence + offset
		if e.ID != "" {
			if _, err := js.Publish(t.Context(), "ssehub.ids."+name+"."+idKey(e.ID), strconv.AppendUint(nil, e.Pos, 10)); err != nil {
				t.Fatal(err)
			}
		}
		events[i] = e
	}
	return events
}

// TestUpgradeFromLiteralSubject opens a stream written by the previous
// version: nothing is lost, reads by topic equal a filtered full read, ids
// resolve, and new events are indexed and tailed in order with the old.
func TestUpgradeFromLiteralSubject(t *testing.T) {
	url := sharedURL(t)
	name := newStream(t, url)
	old := writePrevious(t, url, name, 40)
	l := open(t, url, Options{Stream: name})
	checkUpgraded(t, l, old)

	// A node of the previous version still running publishes on the
	// literal subject: once the tail has seen it, reads by topic find it.
	_, last, err := l.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tail := logtest.StartTail(t, l, last, 10*time.Second)
	late := &ssehub.Event{Topics: []string{"late"}, Data: "from an old node", Time: time.Now()}
	data, _ := late.MarshalBinary()
	if _, err := rawJS(t, url).PublishMsg(t.Context(), &nats.Msg{Subject: l.subject, Data: data}); err != nil {
		t.Fatal(err)
	}
	late = tail.Next(t, 1)[0]
	got, _, err := l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: []string{"late"}, After: last, Limit: 10})
	if err != nil || len(got) != 1 || got[0].Pos != late.Pos {
		t.Fatalf("ReadTopics after an old node's event at %d: %v, %v", late.Pos, positions(got), err)
	}
}

func positions(events []*ssehub.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Pos
	}
	return out
}

// checkUpgraded checks l, opened on a stream whose events old the previous
// version wrote.
func checkUpgraded(t *testing.T, l *Log, old []*ssehub.Event) {
	t.Helper()
	if got, want := l.legacyLast.Load(), old[len(old)-1].Pos-l.offset.Load(); got != want {
		t.Fatalf("the last event of the previous version is at sequence %d, Open found %d", want, got)
	}
	tail := logtest.StartTail(t, l, 0, 10*time.Second)
	checkTopicReads(t, l, "before appending", old)
	checkIDs(t, l, old)
	// New events go to the indexed subjects, after the old ones.
	var fresh []*ssehub.Event
	for i := range 20 {
		e := &ssehub.Event{Topics: []string{upgradeTopics[i%len(upgradeTopics)]}, Data: fmt.Sprint("new ", i)}
		if i%4 == 1 {
			e.Topics = append(e.Topics, "b")
		}
		if i%6 == 0 {
			e.ID = fmt.Sprint("new-id-", i)
		}
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, e)
	}
	all := append(slices.Clone(old), fresh...)
	checkTopicReads(t, l, "after appending", all)
	checkIDs(t, l, all)
	got := tail.Next(t, len(all))
	for i, e := range got {
		if e.Pos != all[i].Pos || e.Data != all[i].Data {
			t.Fatalf("tail event %d: %d %q, want %d %q", i, e.Pos, e.Data, all[i].Pos, all[i].Data)
		}
	}
}

// checkIDs checks that the publisher-supplied ids of events resolve to
// their positions.
func checkIDs(t *testing.T, l *Log, events []*ssehub.Event) {
	t.Helper()
	for _, e := range events {
		if e.ID == "" {
			continue
		}
		if pos, found, err := l.LookupID(t.Context(), e.ID); err != nil || !found || pos != e.Pos {
			t.Fatalf("LookupID(%q) = %d, %v, %v; want %d", e.ID, pos, found, err, e.Pos)
		}
	}
}

// checkTopicReads checks that l holds exactly want (in order, by a plain
// Read) and that ReadTopics, for every topic and some pairs, from several
// positions and in pages of several sizes, returns what a filtered full
// read does.
func checkTopicReads(t *testing.T, l *Log, when string, want []*ssehub.Event) {
	t.Helper()
	full, err := l.Read(t.Context(), 0, 10*len(want))
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != len(want) {
		t.Fatalf("%s: Read returns %d events, want %d", when, len(full), len(want))
	}
	for i, e := range full {
		if e.Pos != want[i].Pos || e.Data != want[i].Data || !slices.Equal(e.Topics, want[i].Topics) || e.ID != want[i].ID {
			t.Fatalf("%s: Read event %d = %d %q %q, want %d %q %q", when, i, e.Pos, e.Data, e.Topics, want[i].Pos, want[i].Data, want[i].Topics)
		}
	}
	last := full[len(full)-1].Pos
	queries := [][]string{{"b", "c"}, {"nothing"}, {}}
	for _, topic := range upgradeTopics {
		queries = append(queries, []string{topic})
	}
	for _, topics := range queries {
		for _, after := range []uint64{0, full[len(full)/3].Pos, full[len(full)-2].Pos} {
			var expect []*ssehub.Event
			for _, e := range full {
				if e.Pos > after && (len(topics) == 0 || slices.ContainsFunc(e.Topics, func(tp string) bool { return slices.Contains(topics, tp) })) {
					expect = append(expect, e)
				}
			}
			for _, limit := range []int{1, 3, 100} {
				var got []*ssehub.Event
				q := ssehub.TopicQuery{Topics: topics, After: after, Limit: limit}
				for q.After < last {
					events, through, err := l.ReadTopics(t.Context(), q)
					if err != nil {
						t.Fatal(err)
					}
					if through <= q.After {
						t.Fatalf("%s: ReadTopics(%+v) does not advance (through %d)", when, q, through)
					}
					got = append(got, events...)
					q.After = through
				}
				if len(got) != len(expect) {
					t.Fatalf("%s: topics %q after %d, limit %d: %d events, want %d", when, topics, after, limit, len(got), len(expect))
				}
				for i, e := range got {
					if e.Pos != expect[i].Pos || e.Data != expect[i].Data {
						t.Fatalf("%s: topics %q after %d, limit %d: event %d = %d %q, want %d %q", when, topics, after, limit, i, e.Pos, e.Data, expect[i].Pos, expect[i].Data)
					}
				}
			}
		}
	}
}
