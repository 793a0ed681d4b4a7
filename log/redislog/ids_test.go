package redislog

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/logtest"
)

// TestIDsAcrossNodes: an id taken on one node is refused on another and
// found there, also when nodes race for one id (logtest.IDsAcrossNodes).
func TestIDsAcrossNodes(t *testing.T) {
	url := sharedURL(t)
	prefix := newPrefix(t, url)
	logtest.IDsAcrossNodes(t, open(t, url, Options{Prefix: prefix}), open(t, url, Options{Prefix: prefix}))
}

// TestIDsInOneScriptCall checks the group commit: a refused append does not
// fail the others of the same script call, and a later append of the call
// sees the ids of the earlier ones.
func TestIDsInOneScriptCall(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{})
	enc := func(id string) []byte {
		b, _ := (&ssehub.Event{Topics: []string{"t"}, ID: id}).AppendBinary(nil)
		return b
	}
	h := topicHashes(&ssehub.Event{Topics: []string{"t"}}, false)
	args := []any{"0", l.tprefix, "0", l.rprefix,
		1, "urn:x", enc("urn:x"), h,
		2, "", enc(""), h, "urn:x", enc("urn:x"), h, // refused: urn:x is taken by the first
		1, "urn:y", enc("urn:y"), h,
	}
	res, err := appendScript.Run(t.Context(), l.client, l.appendKeys(), args...).Int64Slice()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 6 || res[0] == 0 || res[1] != 0 || res[2] != 0 || res[3] != 2 || res[4] != res[0]+1 || res[5] != 0 {
		t.Fatalf("script returned %v, want [p 0 0 2 p+1 0]", res)
	}
	for id, want := range map[string]uint64{"urn:x": uint64(res[0]), "urn:y": uint64(res[4])} {
		if pos, found, err := l.LookupID(t.Context(), id); err != nil || !found || pos != want {
			t.Fatalf("LookupID(%q) = %d, %v, %v; want %d", id, pos, found, err, want)
		}
	}
}

// TestIDsAfterRetention checks that the id of an event retention removed is
// not found, is free again before the index is cleaned, and that cleaning
// deletes only entries of removed events.
func TestIDsAfterRetention(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{})
	c := rawClient(t, url)
	var events []*ssehub.Event
	for i := range 10 {
		events = append(events, &ssehub.Event{Topics: []string{"t"}, ID: fmt.Sprintf("urn:%d", i)})
	}
	if err := l.Append(t.Context(), events...); err != nil {
		t.Fatal(err)
	}
	// Retention removes the first five.
	if err := c.XTrimMinID(t.Context(), l.stream, entryID(events[5].Pos)).Err(); err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		pos, found, err := l.LookupID(t.Context(), e.ID)
		if err != nil || found != (i >= 5) || found && pos != e.Pos {
			t.Fatalf("LookupID(%q) = %d, %v, %v; want found %v", e.ID, pos, found, err, i >= 5)
		}
	}
	// A removed event's id is free, also before cleaning.
	reused := &ssehub.Event{Topics: []string{"t"}, ID: "urn:0"}
	if err := l.Append(t.Context(), reused); err != nil {
		t.Fatalf("Append reusing the id of a removed event: %v", err)
	}
	if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"t"}, ID: "urn:7"}); !errors.Is(err, ssehub.ErrDuplicateID) {
		t.Fatalf("Append of a retained id: %v", err)
	}
	if cursor, err := l.cleanIDs(t.Context(), 0); err != nil || cursor != 0 {
		t.Fatalf("cleanIDs = %d, %v", cursor, err)
	}
	got, err := c.HGetAll(t.Context(), l.ids).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"urn:0": fmt.Sprint(reused.Pos)}
	for _, e := range events[5:] {
		want[e.ID] = fmt.Sprint(e.Pos)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("id index after cleaning = %v, want %v", got, want)
	}
	if pos, found, err := l.LookupID(t.Context(), "urn:0"); err != nil || !found || pos != reused.Pos {
		t.Fatalf("LookupID of the reused id = %d, %v, %v; want %d", pos, found, err, reused.Pos)
	}
}

// TestIDsCleanedInBackground checks that a Log with retention removes the
// index entries of trimmed events by itself.
func TestIDsCleanedInBackground(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{MaxEvents: 1000})
	c := rawClient(t, url)
	old := &ssehub.Event{Topics: []string{"t"}, ID: "urn:old"}
	if err := l.Append(t.Context(), old, &ssehub.Event{Topics: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.XTrimMinID(t.Context(), l.stream, entryID(old.Pos+1)).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := c.HLen(t.Context(), l.ids).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the id index still holds %d entries after 10s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
