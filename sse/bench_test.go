package sse

import (
	"strings"
	"testing"
	"time"
)

var benchEvents = []struct {
	name string
	ev   Event
}{
	{"small", Event{ID: "1234567", Type: "update", Data: `{"id":"https://example.com/books/1","status":"available","count":12}`}},
	{"multiline", Event{ID: "1234567", Data: strings.Repeat("a line of text in a longer message\n", 10)}},
	{"1KiB", Event{ID: "1234567", Type: "update", Data: strings.Repeat("x", 1024), Retry: time.Second}},
}

// BenchmarkEncode measures AppendEvent into a reused buffer: one op is one
// event.
func BenchmarkEncode(b *testing.B) {
	for _, bc := range benchEvents {
		b.Run(bc.name, func(b *testing.B) {
			buf, _ := AppendEvent(nil, bc.ev)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = AppendEvent(buf[:0], bc.ev)
			}
		})
	}
}

// loopReader repeats its data forever.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

// BenchmarkDecode measures Decoder.Next on an endless stream of events that
// each carry a new id (the hub's case): one op is one event.
func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchEvents {
		b.Run(bc.name, func(b *testing.B) {
			var stream []byte
			for i := range 100 {
				e := bc.ev
				e.ID = e.ID + string(rune('a'+i%26)) + string(rune('a'+i/26))
				stream, _ = AppendEvent(stream, e)
			}
			d := NewDecoder(&loopReader{data: stream})
			b.SetBytes(int64(len(stream) / 100))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
