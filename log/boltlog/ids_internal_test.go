package boltlog

import (
	"bytes"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

// peekID must agree with the codec for every field size.
func TestPeekIDAgreesWithTheCodec(t *testing.T) {
	for _, e := range []*ssehub.Event{
		{},
		{ID: "urn:uuid:1", Pos: 1, Time: time.Unix(0, 1)},
		{ID: string(bytes.Repeat([]byte("x"), 300)), Pos: 1 << 62, Time: time.Unix(-1e9, 0), Retry: time.Hour, Private: true, Type: "t", Topics: []string{"a", "b"}, Data: "d"},
	} {
		v, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		id, err := peekID(v)
		if err != nil || string(id) != e.ID {
			t.Fatalf("peekID = %q, %v; want %q", id, err, e.ID)
		}
		// Cut anywhere before the end of the id, the encoding is refused.
		end := bytes.Index(v, []byte(e.ID)) + len(e.ID)
		for n := range end {
			if _, err := peekID(v[:n]); err == nil {
				t.Fatalf("peekID accepted %d of %d bytes (the id ends at %d)", n, len(v), end)
			}
		}
	}
}
