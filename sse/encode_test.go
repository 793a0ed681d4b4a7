package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"data only", Event{Data: "a"}, "data: a\n\n"},
		{"all fields", Event{ID: "1", Type: "add", Data: "x", Retry: 1500 * time.Millisecond}, "id: 1\nevent: add\nretry: 1500\ndata: x\n\n"},
		{"empty data still sends a data line", Event{}, "data:\n\n"},
		{"empty type omitted", Event{ID: "7", Data: "x"}, "id: 7\ndata: x\n\n"},
		{"type message omitted", Event{Type: "message", Data: "x"}, "data: x\n\n"},
		{"LF splits", Event{Data: "a\nb"}, "data: a\ndata: b\n\n"},
		{"CR splits", Event{Data: "a\rb"}, "data: a\ndata: b\n\n"},
		{"CRLF splits once", Event{Data: "a\r\nb"}, "data: a\ndata: b\n\n"},
		{"LF CR splits twice", Event{Data: "a\n\rb"}, "data: a\ndata:\ndata: b\n\n"},
		{"mixed", Event{Data: "a\r\n\r\nb\rc\n"}, "data: a\ndata:\ndata: b\ndata: c\ndata:\n\n"},
		{"trailing newline kept", Event{Data: "a\n"}, "data: a\ndata:\n\n"},
		{"leading newline kept", Event{Data: "\na"}, "data:\ndata: a\n\n"},
		{"only a newline", Event{Data: "\n"}, "data:\ndata:\n\n"},
		{"trailing CR", Event{Data: "a\r"}, "data: a\ndata:\n\n"},
		{"leading space kept", Event{Data: " a", ID: " i", Type: " t"}, "id:  i\nevent:  t\ndata:  a\n\n"},
		{"colon in data", Event{Data: ": not a comment"}, "data: : not a comment\n\n"},
		{"NUL in data allowed", Event{Data: "a\x00b"}, "data: a\x00b\n\n"},
		{"retry rounds up", Event{Data: "x", Retry: time.Microsecond}, "retry: 1\ndata: x\n\n"},
		{"retry whole ms", Event{Data: "x", Retry: 3 * time.Second}, "retry: 3000\ndata: x\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendEvent([]byte("prefix|"), tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix|"+tc.want {
				t.Fatalf("got %q, want %q", got, "prefix|"+tc.want)
			}
			// What we encode decodes to what was meant.
			d := NewDecoder(strings.NewReader(tc.want))
			dec, err := d.Next()
			if err != nil {
				t.Fatal(err)
			}
			want := tc.ev
			want.Data = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(want.Data)
			want.Retry = time.Duration(retryMillis(want.Retry)) * time.Millisecond
			if want.Type == "" {
				want.Type = "message"
			}
			if dec != want {
				t.Errorf("decoded %+v, want %+v", dec, want)
			}
		})
	}
}

func TestAppendEventInvalid(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want error
	}{
		{"LF in id", Event{ID: "1\ndata: x"}, ErrInvalidID},
		{"CR in id", Event{ID: "1\r"}, ErrInvalidID},
		{"NUL in id", Event{ID: "1\x00"}, ErrInvalidID},
		{"LF in type", Event{Type: "a\nretry: 1"}, ErrInvalidType},
		{"CR in type", Event{Type: "\ra"}, ErrInvalidType},
		{"NUL in type", Event{Type: "a\x00"}, ErrInvalidType},
		{"negative retry", Event{Retry: -time.Second}, ErrInvalidRetry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := AppendEvent(dst, tc.ev)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if string(got) != "keep" {
				t.Errorf("dst changed to %q", got)
			}
			if !strings.HasPrefix(err.Error(), "sse: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		value string
		ok    bool
	}{
		{"empty", "", true},
		{"plain", "abc-123", true},
		{"unicode and spaces", " é 🙂 ", true},
		{"tab", "a\tb", true},
		{"LF", "a\n", false},
		{"CR", "\r", false},
		{"NUL", "\x00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateID(tc.value); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidID)) {
				t.Errorf("ValidateID(%q) = %v", tc.value, err)
			}
			if err := ValidateType(tc.value); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidType)) {
				t.Errorf("ValidateType(%q) = %v", tc.value, err)
			}
		})
	}
}

func TestAppendEventZeroAlloc(t *testing.T) {
	ev := Event{ID: "12345", Type: "update", Data: "line one\nline two\r\nline three", Retry: time.Second}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = AppendEvent(buf[:0], ev); err != nil {
			t.Fatal(err)
		}
		buf = AppendComment(buf, "")
		buf = AppendRetry(buf, time.Second)
	})
	if allocs != 0 {
		t.Fatalf("AppendEvent allocated %v times with a large enough buffer", allocs)
	}
}

func TestAppendComment(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"heartbeat", "", ":\n\n"},
		{"text", "hi", ": hi\n\n"},
		{"multiline", "a\nb\r\nc\rd", ": a\n: b\n: c\n: d\n\n"},
		{"trailing newline", "a\n", ": a\n:\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendComment(nil, tc.text)
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			// A comment never dispatches anything, whatever its text.
			res, err := decodeAll(t, bytes.NewReader(got), "")
			if err != nil || len(res.events) != 0 || res.retrySet || res.lastID != "" {
				t.Errorf("comment decoded to %+v, %v", res, err)
			}
		})
	}
}

func TestAppendRetry(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"seconds", 3 * time.Second, "retry: 3000\n\n"},
		{"zero", 0, "retry: 0\n\n"},
		{"negative is zero", -time.Second, "retry: 0\n\n"},
		{"rounds up", 1500 * time.Microsecond, "retry: 2\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendRetry(nil, tc.d)
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			res, err := decodeAll(t, bytes.NewReader(got), "")
			if err != nil || len(res.events) != 0 || !res.retrySet {
				t.Errorf("decoded to %+v, %v", res, err)
			}
		})
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestEncoder(t *testing.T) {
	var out bytes.Buffer
	e := NewEncoder(&out)
	if err := e.Retry(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := e.Encode(Event{ID: "1", Data: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Encode(Event{ID: "2\n", Data: "b"}); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("invalid event: err = %v", err)
	}
	if err := e.Comment("hb"); err != nil {
		t.Fatal(err)
	}
	if want := "retry: 2000\n\nid: 1\ndata: a\n\n: hb\n\n"; out.String() != want {
		t.Fatalf("wrote %q, want %q", out.String(), want)
	}

	boom := errors.New("boom")
	if err := NewEncoder(failWriter{boom}).Encode(Event{Data: "x"}); err != boom {
		t.Fatalf("writer error: %v", err)
	}
	var _ io.Writer = failWriter{}
}
