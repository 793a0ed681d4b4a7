package sse

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// FuzzDecode checks the streaming Decoder against the reference
// implementation (ref_test.go) on arbitrary input, fed whole, byte by byte
// and in random chunks, and checks what every decoded event guarantees.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte("\xEF\xBB\xBFid: 1\r\nevent: e\r\nretry: 10\r\ndata: a\r\ndata:b\r\n\r\n:c\r\rdata\r\r"))
	f.Fuzz(func(t *testing.T, in []byte) {
		want := refDecode(in, "")
		readers := []struct {
			name string
			r    io.Reader
		}{
			{"whole", bytes.NewReader(in)},
			{"byte by byte", iotest.OneByteReader(bytes.NewReader(in))},
			{"random chunks", newChunkReader(in, uint64(len(in)))},
		}
		for _, rd := range readers {
			got, err := decodeAll(t, rd.r, "")
			if err != nil {
				t.Fatalf("%s: %v", rd.name, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: decoder and reference differ on %q:\n got %+v\nwant %+v", rd.name, in, got, want)
			}
		}
		for _, e := range want.events {
			if !utf8.ValidString(e.ID) || !utf8.ValidString(e.Type) || !utf8.ValidString(e.Data) {
				t.Fatalf("invalid UTF-8 in %+v", e)
			}
			if ValidateID(e.ID) != nil || strings.ContainsAny(e.Type, "\r\n") || e.Type == "" || strings.Contains(e.Data, "\r") {
				t.Fatalf("impossible event %+v", e)
			}
			// What we decode we can send on, and it means the same.
			if strings.Contains(e.Type, "\x00") {
				continue
			}
			b, err := AppendEvent(nil, e)
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", e, err)
			}
			d := NewDecoder(bytes.NewReader(b))
			d.SetLastEventID(e.ID)
			again, err := d.Next()
			if err != nil || again != e {
				t.Fatalf("re-encoded %+v decodes to %+v, %v", e, again, err)
			}
		}
	})
}

// FuzzRoundTrip encodes arbitrary events and checks that decoding gives them
// back: exactly for valid events (valid UTF-8, no CR in data), and up to the
// documented normalization otherwise. Invalid ids and types must be refused.
func FuzzRoundTrip(f *testing.F) {
	f.Add("1", "update", "hello", uint32(0), "c")
	f.Add("", "", "", uint32(3000), "")
	f.Add(" a", "message", "a\r\nb\rc\n", uint32(1), "x\ny")
	f.Add("x\ny", "t", "d", uint32(0), "")
	f.Add("i", "t\x00", "d", uint32(0), "")
	f.Add("\xff", "\xe2\x82", "\xf0\x9f\x98\n", uint32(5), "\xff")
	f.Fuzz(func(t *testing.T, id, typ, data string, retryMs uint32, comment string) {
		in := Event{ID: id, Type: typ, Data: data, Retry: time.Duration(retryMs) * time.Millisecond}
		b, err := AppendEvent(nil, in)
		switch {
		case ValidateID(id) != nil:
			if !errors.Is(err, ErrInvalidID) {
				t.Fatalf("id %q: err = %v, want ErrInvalidID", id, err)
			}
			return
		case ValidateType(typ) != nil:
			if !errors.Is(err, ErrInvalidType) {
				t.Fatalf("type %q: err = %v, want ErrInvalidType", typ, err)
			}
			return
		case err != nil:
			t.Fatalf("valid event %+v refused: %v", in, err)
		}
		// A comment before and an event after must not change anything.
		stream := AppendComment(nil, comment)
		stream = append(stream, b...)
		stream, _ = AppendEvent(stream, Event{Data: "next"})

		d := NewDecoder(iotest.HalfReader(bytes.NewReader(stream)))
		got, err := d.Next()
		if err != nil {
			t.Fatalf("decoding %q: %v", stream, err)
		}
		want := Event{
			ID:    refUTF8([]byte(id)),
			Type:  refUTF8([]byte(typ)),
			Data:  strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(refUTF8([]byte(data))),
			Retry: in.Retry,
		}
		if want.Type == "" {
			want.Type = "message"
		}
		if got != want {
			t.Fatalf("round trip of %+v:\n got %+v\nwant %+v", in, got, want)
		}
		if utf8.ValidString(id) && utf8.ValidString(typ) && utf8.ValidString(data) && !strings.Contains(data, "\r") {
			exact := in
			if exact.Type == "" {
				exact.Type = "message"
			}
			if got != exact {
				t.Fatalf("valid event %+v came back as %+v", in, got)
			}
		}
		next, err := d.Next()
		if err != nil || next.Data != "next" || next.ID != want.ID || next.Type != "message" || next.Retry != 0 {
			t.Fatalf("following event: %+v, %v", next, err)
		}
		if d.LastEventID() != want.ID {
			t.Fatalf("LastEventID = %q, want %q", d.LastEventID(), want.ID)
		}
		if r, ok := d.Retry(); ok != (retryMs > 0) || r != in.Retry {
			t.Fatalf("Retry = %v, %v; want %v", r, ok, in.Retry)
		}
	})
}
