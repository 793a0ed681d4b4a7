package boltlog

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

// appendEncodedTopicKeys, which retention and the indexing at Open use,
// must make the keys the committer writes, from the encoding alone.
func TestEncodedTopicKeysAgreeWithTheEvent(t *testing.T) {
	for _, e := range []*ssehub.Event{
		{Pos: 1, Topics: []string{"a"}},
		{ID: "urn:uuid:1", Type: "t", Pos: 1 << 62, Time: time.Unix(-1e9, 0), Retry: time.Hour, Private: true,
			Topics: []string{"https://example.com/books/1", "b", "https://example.com/books/1", strings.Repeat("long", 100)}, Data: "d"},
		{Pos: 7, Topics: []string{"x", "x", "x"}},
	} {
		v, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want := appendTopicKeys([]byte("prefix"), e, e.Pos)
		got, err := appendEncodedTopicKeys([]byte("prefix"), v, e.Pos)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendEncodedTopicKeys = %x, %v; want %x", got, err, want)
		}
		distinct := map[string]bool{}
		for _, tp := range e.Topics {
			distinct[tp] = true
		}
		if n := (len(want) - len("prefix")) / topicKeyLen; n != len(distinct) {
			t.Fatalf("%d keys for %d distinct topics", n, len(distinct))
		}
		// Cut anywhere before the end of the topics, the encoding is refused.
		end := len(v) - len(e.Data) - 1
		for n := range end {
			if _, err := appendEncodedTopicKeys(nil, v[:n], e.Pos); err == nil {
				t.Fatalf("appendEncodedTopicKeys accepted %d of %d bytes (the topics end at %d)", n, len(v), end)
			}
		}
	}
}
