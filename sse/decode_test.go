package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// ev builds an expected decoded event: type "message" unless given.
func ev(id, typ, data string) Event {
	if typ == "" {
		typ = "message"
	}
	return Event{ID: id, Type: typ, Data: data}
}

func evRetry(id, typ, data string, retry time.Duration) Event {
	e := ev(id, typ, data)
	e.Retry = retry
	return e
}

type decodeCase struct {
	name      string
	in        string
	initialID string
	want      []Event
	lastID    string
	retry     time.Duration // 0 with retrySet false means "no retry seen"
	retrySet  bool
}

// decodeCases covers every rule of the standard's stream interpretation.
var decodeCases = []decodeCase{
	// Line endings.
	{name: "LF", in: "data: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "CRLF", in: "data: a\r\n\r\n", want: []Event{ev("", "", "a")}},
	{name: "CR", in: "data: a\r\r", want: []Event{ev("", "", "a")}},
	{name: "CR then LF is one ending", in: "data: a\r\ndata: b\r\n\r\n", want: []Event{ev("", "", "a\nb")}},
	{name: "mixed endings", in: "data: a\r\rdata: b\n\ndata: c\r\n\r\n", want: []Event{ev("", "", "a"), ev("", "", "b"), ev("", "", "c")}},
	{name: "LF CR is two endings", in: "data: a\n\rdata: b\n\n", want: []Event{ev("", "", "a"), ev("", "", "b")}},
	{name: "CR CR LF is two endings", in: "data: a\r\r\ndata: b\n\n", want: []Event{ev("", "", "a"), ev("", "", "b")}},

	// Byte order mark.
	{name: "leading BOM stripped", in: "\uFEFFdata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "second BOM is text", in: "\uFEFF\uFEFFdata: a\n\ndata: b\n\n", want: []Event{ev("", "", "b")}},
	{name: "BOM later in stream is text", in: "data: a\n\n\uFEFFdata: b\n\n", want: []Event{ev("", "", "a")}},
	{name: "BOM in data kept", in: "data: \uFEFFa\n\n", want: []Event{ev("", "", "\uFEFFa")}},
	{name: "partial BOM is not a BOM", in: "\xEF\xBBdata: a\n\ndata: b\n\n", want: []Event{ev("", "", "b")}},
	{name: "BOM only", in: "\uFEFF", want: nil},
	{name: "BOM then blank line", in: "\uFEFF\n", want: nil},

	// Comments and field parsing.
	{name: "comment ignored", in: ": hi\ndata: a\n:\n\n", want: []Event{ev("", "", "a")}},
	{name: "comment only", in: ":\n\n: keep-alive\n\n", want: nil},
	{name: "colon in comment", in: ":data: a\n\n", want: nil},
	{name: "no colon means empty value", in: "data\n\n", want: []Event{ev("", "", "")}},
	{name: "two bare data lines", in: "data\ndata\n\n", want: []Event{ev("", "", "\n")}},
	{name: "one space removed", in: "data:  two\n\n", want: []Event{ev("", "", " two")}},
	{name: "no space", in: "data:x\n\n", want: []Event{ev("", "", "x")}},
	{name: "tab not removed", in: "data:\tx\n\n", want: []Event{ev("", "", "\tx")}},
	{name: "trailing space kept", in: "data: x \n\n", want: []Event{ev("", "", "x ")}},
	{name: "colon in value", in: "data: a:b: c\n\n", want: []Event{ev("", "", "a:b: c")}},
	{name: "field names are case-sensitive", in: "Data: a\nDATA: b\nEvent: x\ndata: c\n\n", want: []Event{ev("", "", "c")}},
	{name: "space before colon makes another field", in: "data : a\n\n", want: nil},
	{name: "unknown field ignored", in: "foo: bar\ndata: a\nbar\n\n", want: []Event{ev("", "", "a")}},

	// Data.
	{name: "data lines joined with LF", in: "data: a\ndata: b\ndata: c\n\n", want: []Event{ev("", "", "a\nb\nc")}},
	{name: "only last LF removed", in: "data: a\ndata:\n\n", want: []Event{ev("", "", "a\n")}},
	{name: "empty data dispatches", in: "data:\n\n", want: []Event{ev("", "", "")}},
	{name: "empty data with space dispatches", in: "data: \n\n", want: []Event{ev("", "", "")}},
	{name: "no data dispatches nothing", in: "event: ping\n\n", want: nil},
	{name: "blank lines alone dispatch nothing", in: "\n\n\r\n\r\r", want: nil},
	{name: "NUL in data kept", in: "data: a\x00b\n\n", want: []Event{ev("", "", "a\x00b")}},
	{name: "several events", in: "data: a\n\ndata: b\n\n\n\ndata: c\n\n", want: []Event{ev("", "", "a"), ev("", "", "b"), ev("", "", "c")}},

	// Event type.
	{name: "event sets type", in: "event: add\ndata: a\n\n", want: []Event{ev("", "add", "a")}},
	{name: "type resets after dispatch", in: "event: add\ndata: a\n\ndata: b\n\n", want: []Event{ev("", "add", "a"), ev("", "", "b")}},
	{name: "type resets after empty dispatch", in: "event: ping\n\ndata: b\n\n", want: []Event{ev("", "", "b")}},
	{name: "empty type means message", in: "event: add\nevent:\ndata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "last event line wins", in: "event: a\nevent: b\ndata: x\n\n", want: []Event{ev("", "b", "x")}},
	{name: "type repeated across events", in: "event: t\ndata: 1\n\nevent: t\ndata: 2\n\nevent: u\ndata: 3\n\n", want: []Event{ev("", "t", "1"), ev("", "t", "2"), ev("", "u", "3")}},
	{name: "type with spaces kept", in: "event:  a b \ndata: x\n\n", want: []Event{ev("", " a b ", "x")}},
	{name: "type message explicit", in: "event: message\ndata: x\n\n", want: []Event{ev("", "", "x")}},

	// Last event ID.
	{name: "id set", in: "id: 1\ndata: a\n\n", want: []Event{ev("1", "", "a")}, lastID: "1"},
	{name: "id carries over", in: "id: 1\ndata: a\n\ndata: b\n\n", want: []Event{ev("1", "", "a"), ev("1", "", "b")}, lastID: "1"},
	{name: "empty id resets", in: "id: 1\ndata: a\n\nid\ndata: b\n\n", want: []Event{ev("1", "", "a"), ev("", "", "b")}, lastID: ""},
	{name: "empty id with colon resets", in: "id: 1\ndata: a\n\nid:\ndata: b\n\n", want: []Event{ev("1", "", "a"), ev("", "", "b")}, lastID: ""},
	{name: "id with NUL ignored", in: "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", want: []Event{ev("1", "", "a"), ev("1", "", "b")}, lastID: "1"},
	{name: "id only block commits id", in: "id: 7\n\ndata: x\n\n", want: []Event{ev("7", "", "x")}, lastID: "7"},
	{name: "id only block at end commits id", in: "data: x\n\nid: 7\n\n", want: []Event{ev("", "", "x")}, lastID: "7"},
	{name: "id after data in block", in: "data: x\nid: 9\n\n", want: []Event{ev("9", "", "x")}, lastID: "9"},
	{name: "id keeps spaces", in: "id:  a \ndata: x\n\n", want: []Event{ev(" a ", "", "x")}, lastID: " a "},
	{name: "id of unfinished event not committed", in: "id: 1\ndata: a\n\nid: 2\ndata: b\n", want: []Event{ev("1", "", "a")}, lastID: "1"},
	{name: "initial id carried", in: "data: a\n\nid: 5\ndata: b\n\n", initialID: "4", want: []Event{ev("4", "", "a"), ev("5", "", "b")}, lastID: "5"},
	{name: "initial id reset by empty id", in: "id\ndata: a\n\n", initialID: "4", want: []Event{ev("", "", "a")}, lastID: ""},
	{name: "initial id kept without events", in: ": hi\n", initialID: "4", want: nil, lastID: "4"},
	{name: "id unicode", in: "id: é🙂\ndata: a\n\n", want: []Event{ev("é🙂", "", "a")}, lastID: "é🙂"},

	// Retry.
	{name: "retry digits", in: "retry: 1500\ndata: a\n\n", want: []Event{evRetry("", "", "a", 1500*time.Millisecond)}, retry: 1500 * time.Millisecond, retrySet: true},
	{name: "retry zero", in: "retry: 0\ndata: a\n\n", want: []Event{ev("", "", "a")}, retry: 0, retrySet: true},
	{name: "retry leading zeros", in: "retry: 007\n\n", want: nil, retry: 7 * time.Millisecond, retrySet: true},
	{name: "retry applies without dispatch", in: "retry: 5\n\n", want: nil, retry: 5 * time.Millisecond, retrySet: true},
	{name: "retry in unfinished event still applies", in: "data: a\nretry: 5\n", want: nil, retry: 5 * time.Millisecond, retrySet: true},
	{name: "retry in unterminated line ignored", in: "retry: 5", want: nil},
	{name: "retry only on its own event", in: "retry: 5\ndata: a\n\ndata: b\n\n", want: []Event{evRetry("", "", "a", 5*time.Millisecond), ev("", "", "b")}, retry: 5 * time.Millisecond, retrySet: true},
	{name: "retry cleared by empty dispatch", in: "retry: 5\n\ndata: b\n\n", want: []Event{ev("", "", "b")}, retry: 5 * time.Millisecond, retrySet: true},
	{name: "retry latest wins", in: "retry: 5\nretry: 6\ndata: a\n\n", want: []Event{evRetry("", "", "a", 6*time.Millisecond)}, retry: 6 * time.Millisecond, retrySet: true},
	{name: "retry with unit ignored", in: "retry: 3000ms\ndata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "retry negative ignored", in: "retry: -1\ndata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "retry plus ignored", in: "retry: +1\ndata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "retry decimal ignored", in: "retry: 1.5\ndata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "retry two spaces ignored", in: "retry:  1\ndata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "retry trailing space ignored", in: "retry: 1 \ndata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "retry empty ignored", in: "retry:\nretry\ndata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "retry non-ASCII digits ignored", in: "retry: ١٢٣\ndata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "retry invalid keeps earlier", in: "retry: 9\nretry: x\n\n", want: nil, retry: 9 * time.Millisecond, retrySet: true},
	{name: "retry too large ignored", in: "retry: 99999999999999999999\ndata: a\n\n", want: []Event{ev("", "", "a")}},
	{name: "retry largest", in: "retry: 9223372036854\n\n", want: nil, retry: 9223372036854 * time.Millisecond, retrySet: true},

	// End of stream.
	{name: "empty stream", in: "", want: nil},
	{name: "unfinished event discarded", in: "data: a\n\ndata: b\n", want: []Event{ev("", "", "a")}},
	{name: "unterminated line discarded", in: "data: a\n\ndata: b", want: []Event{ev("", "", "a")}},
	{name: "unterminated blank-line-less event", in: "data: a\n", want: nil},
	{name: "CR at end of stream ends the line", in: "data: a\n\r", want: []Event{ev("", "", "a")}},

	// UTF-8.
	{name: "valid multibyte", in: "data: café 🙂\n\n", want: []Event{ev("", "", "café 🙂")}},
	{name: "invalid bytes each replaced", in: "data: a\xFF\xFEb\n\n", want: []Event{ev("", "", "a\uFFFD\uFFFDb")}},
	{name: "truncated sequence is one replacement", in: "data: \xE2\x82a\n\n", want: []Event{ev("", "", "\uFFFDa")}},
	{name: "truncated sequence at line end", in: "data: a\xE2\x82\n\n", want: []Event{ev("", "", "a\uFFFD")}},
	{name: "truncated 4-byte before CR", in: "data: \xF0\x9F\x98\rdata: x\n\n", want: []Event{ev("", "", "\uFFFD\nx")}},
	{name: "overlong", in: "data: \xC0\xAF\n\n", want: []Event{ev("", "", "\uFFFD\uFFFD")}},
	{name: "surrogate", in: "data: \xED\xA0\x80\n\n", want: []Event{ev("", "", "\uFFFD\uFFFD\uFFFD")}},
	{name: "above U+10FFFF", in: "data: \xF4\x90\x80\x80\n\n", want: []Event{ev("", "", "\uFFFD\uFFFD\uFFFD\uFFFD")}},
	{name: "E0 needs A0 or more", in: "data: \xE0\x80\x80\n\n", want: []Event{ev("", "", "\uFFFD\uFFFD\uFFFD")}},
	{name: "lone continuation", in: "data: \x80x\n\n", want: []Event{ev("", "", "\uFFFDx")}},
	{name: "invalid in field name", in: "d\xFFata: x\n\n", want: nil},
	{name: "invalid in id", in: "id: \xFF\ndata: x\n\n", want: []Event{ev("\uFFFD", "", "x")}, lastID: "\uFFFD"},
	{name: "invalid in type", in: "event: \xFF\ndata: x\n\n", want: []Event{ev("", "\uFFFD", "x")}},
	{name: "invalid after colon of comment", in: ":\xFF\ndata: x\n\n", want: []Event{ev("", "", "x")}},
}

// feeders deliver a stream in different ways; every case must decode the
// same through each.
var feeders = []struct {
	name string
	r    func([]byte, int) io.Reader
}{
	{"whole", func(b []byte, _ int) io.Reader { return bytes.NewReader(b) }},
	{"byte by byte", func(b []byte, _ int) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"half reads", func(b []byte, _ int) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
	{"data with EOF", func(b []byte, _ int) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	{"random chunks", func(b []byte, seed int) io.Reader { return newChunkReader(b, uint64(seed)) }},
}

// chunkReader returns its data in random-size chunks, including empty
// reads.
type chunkReader struct {
	data []byte
	rng  *rand.Rand
}

func newChunkReader(b []byte, seed uint64) *chunkReader {
	return &chunkReader{data: b, rng: rand.New(rand.NewPCG(seed, 42))}
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := c.rng.IntN(min(len(p), 9) + 1) // 0..8 bytes
	n = copy(p, c.data[:min(n, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// decodeAll decodes a whole stream.
func decodeAll(t testing.TB, r io.Reader, initialID string) (refResult, error) {
	t.Helper()
	d := NewDecoder(r)
	if initialID != "" {
		d.SetLastEventID(initialID)
	}
	var res refResult
	for {
		e, err := d.Next()
		if err != nil {
			res.lastID = d.LastEventID()
			res.retry, res.retrySet = d.Retry()
			if err == io.EOF {
				err = nil
			}
			return res, err
		}
		res.events = append(res.events, e)
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			want := refResult{events: tc.want, lastID: tc.lastID, retry: tc.retry, retrySet: tc.retrySet}
			if ref := refDecode([]byte(tc.in), tc.initialID); !reflect.DeepEqual(ref, want) {
				t.Errorf("reference decoder disagrees with the case:\n got %+v\nwant %+v", ref, want)
			}
			for _, f := range feeders {
				for seed := range 3 {
					if seed > 0 && f.name != "random chunks" {
						break
					}
					name := f.name
					if f.name == "random chunks" {
						name = fmt.Sprintf("%s seed %d", f.name, seed)
					}
					got, err := decodeAll(t, f.r([]byte(tc.in), seed), tc.initialID)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
					}
				}
			}
		})
	}
}

// scriptReader returns the given chunks one per Read, then fails the test's
// expectations by returning errNoMore: a Decoder that reads past what it
// needs shows up as that error.
type scriptReader struct{ chunks []string }

var errNoMore = errors.New("read past the script")

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, errNoMore
	}
	n := copy(p, s.chunks[0])
	s.chunks[0] = s.chunks[0][n:]
	if s.chunks[0] == "" {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

// TestDecodeChunkBoundaries feeds exact chunkings and checks both the events
// and that the Decoder returns each event without waiting for more input.
func TestDecodeChunkBoundaries(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []Event
	}{
		{"CRLF split across reads", []string{"data: a\r", "\ndata: b\r\n\r", "\n"}, []Event{ev("", "", "a\nb")}},
		{"CR at end of read dispatches at once", []string{"data: a\r\r"}, []Event{ev("", "", "a")}},
		{"LF after CR in next read is dropped", []string{"data: a\r", "\r", "\ndata: b\r", "\r"}, []Event{ev("", "", "a"), ev("", "", "b")}},
		{"BOM split across reads", []string{"\xEF", "\xBB", "\xBFdata: a\n\n"}, []Event{ev("", "", "a")}},
		{"BOM split then second BOM", []string{"\xEF\xBB", "\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n"}, []Event{ev("", "", "b")}},
		{"no BOM, short first read", []string{"d", "ata: a\n\n"}, []Event{ev("", "", "a")}},
		{"multibyte split across reads", []string{"data: caf\xC3", "\xA9\n\n"}, []Event{ev("", "", "café")}},
		{"4-byte split across reads", []string{"data: \xF0\x9F", "\x98\x80\n\n"}, []Event{ev("", "", "😀")}},
		{"empty reads", []string{"data: a\n", "", "\n"}, []Event{ev("", "", "a")}},
		{"field name split", []string{"da", "ta", ": a\n", "\n"}, []Event{ev("", "", "a")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &scriptReader{chunks: append([]string(nil), tc.chunks...)}
			// Empty chunks: scriptReader drops them after a zero read.
			d := NewDecoder(r)
			for i, want := range tc.want {
				got, err := d.Next()
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if got != want {
					t.Fatalf("event %d = %+v, want %+v", i, got, want)
				}
			}
			if _, err := d.Next(); !errors.Is(err, errNoMore) {
				t.Fatalf("after the events: err = %v, want %v", err, errNoMore)
			}
		})
	}
}

func TestDecodeLongLines(t *testing.T) {
	long := strings.Repeat("x", 300<<10) // far beyond bufio.Scanner's 64 KiB
	in := "id: " + long[:100] + "\ndata: " + long + "\ndata: " + long + "\n: " + long + "\n\n"
	for _, f := range feeders {
		if f.name == "byte by byte" {
			continue // 4 MiB one byte at a time is slow and adds nothing
		}
		t.Run(f.name, func(t *testing.T) {
			got, err := decodeAll(t, f.r([]byte(in), 1), "")
			if err != nil {
				t.Fatal(err)
			}
			if len(got.events) != 1 || got.events[0].Data != long+"\n"+long || got.events[0].ID != long[:100] {
				t.Fatalf("got %d events", len(got.events))
			}
		})
	}
}

func TestDecodeMaxEventSize(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		in      string
		wantErr bool
		events  int // events before the error (or in all)
	}{
		{"line at the limit", 8, "data: 12\n\n", false, 1},
		{"line over the limit", 8, "data: 123\n\n", true, 0},
		{"unterminated line over the limit", 8, "data: 1234567", true, 0},
		{"comment over the limit", 8, ": 12345678\n\n", true, 0},
		{"data at the limit", 10, "data:12345\ndata:6789\n\n", false, 1},
		{"data over the limit", 10, "data:12345\ndata:67890\n\n", true, 0},
		{"limit is per event", 10, "data:12345\n\ndata:67890\n\n", false, 2},
		{"events before the error are returned", 8, "data: a\n\ndata: 123456789\n\n", true, 1},
		{"default limit", 0, "data: " + strings.Repeat("x", DefaultMaxEventSize) + "\n\n", true, 0},
	}
	for _, tc := range tests {
		for _, f := range feeders {
			if len(tc.in) > 1<<16 && f.name != "whole" && f.name != "half reads" {
				continue
			}
			t.Run(tc.name+"/"+f.name, func(t *testing.T) {
				d := NewDecoder(f.r([]byte(tc.in), 7))
				d.SetMaxEventSize(tc.max)
				n := 0
				var err error
				for {
					if _, err = d.Next(); err != nil {
						break
					}
					n++
				}
				if n != tc.events {
					t.Errorf("got %d events, want %d", n, tc.events)
				}
				if tc.wantErr != errors.Is(err, ErrEventTooLarge) {
					t.Fatalf("err = %v, want too large: %v", err, tc.wantErr)
				}
				if tc.wantErr {
					if _, again := d.Next(); again != err {
						t.Errorf("error not sticky: %v then %v", err, again)
					}
				}
			})
		}
	}
}

func TestDecodeReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("id: 1\ndata: a\n\nid: 2\ndata: b\n"), iotest.ErrReader(boom))
	d := NewDecoder(r)
	got, err := d.Next()
	if err != nil || got != ev("1", "", "a") {
		t.Fatalf("Next = %+v, %v", got, err)
	}
	for range 2 {
		if _, err := d.Next(); err != boom {
			t.Fatalf("err = %v, want %v", err, boom)
		}
	}
	if id := d.LastEventID(); id != "1" {
		t.Errorf("LastEventID = %q, want 1 (the unfinished event's id must not count)", id)
	}
}

func TestDecodeNoProgress(t *testing.T) {
	d := NewDecoder(readerFunc(func([]byte) (int, error) { return 0, nil }))
	if _, err := d.Next(); err != io.ErrNoProgress {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestDecoderReset(t *testing.T) {
	d := NewDecoder(strings.NewReader("\uFEFFretry: 10\nid: 1\nevent: t\ndata: a\n\nevent: u\ndata: unfinished\n"))
	if got, err := d.Next(); err != nil || got != evRetry("1", "t", "a", 10*time.Millisecond) {
		t.Fatalf("first stream: %+v, %v", got, err)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("first stream end: %v", err)
	}
	// A new stream: a BOM is stripped again, the unfinished event is gone,
	// the id and the retry are kept.
	d.Reset(strings.NewReader("\uFEFFdata: b\n\nid: 2\ndata: c\n\n"))
	want := []Event{ev("1", "", "b"), ev("2", "", "c")}
	for _, w := range want {
		if got, err := d.Next(); err != nil || got != w {
			t.Fatalf("second stream: %+v, %v; want %+v", got, err, w)
		}
	}
	if r, ok := d.Retry(); !ok || r != 10*time.Millisecond {
		t.Errorf("Retry = %v, %v", r, ok)
	}
	// Reset also clears a sticky error.
	d.SetMaxEventSize(4)
	d.Reset(strings.NewReader("data: 12345\n\n"))
	if _, err := d.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v", err)
	}
	d.SetMaxEventSize(0) // back to the default
	d.Reset(strings.NewReader("data: 1\n\n"))
	if got, err := d.Next(); err != nil || got != ev("2", "", "1") {
		t.Fatalf("after reset: %+v, %v", got, err)
	}
}

// TestDecodeLargeEventSeparateStrings checks that a large event's data does
// not share memory with the id (so a long-lived id does not pin it).
func TestDecodeLargeEvent(t *testing.T) {
	big := strings.Repeat("y", smallEvent+1)
	d := NewDecoder(strings.NewReader("id: 1\nevent: big\ndata: " + big + "\n\nid: 2\nevent: big\ndata: s\n\n"))
	got, err := d.Next()
	if err != nil || got != ev("1", "big", big) {
		t.Fatalf("%v", err)
	}
	got, err = d.Next()
	if err != nil || got != ev("2", "big", "s") {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestAppendUTF8(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"ascii", "abc", "abc"},
		{"valid", "é€😀", "é€😀"},
		{"lone FF", "\xFF", "\uFFFD"},
		{"two bad bytes", "\xFF\xFE", "\uFFFD\uFFFD"},
		{"truncated 2-byte", "\xC3", "\uFFFD"},
		{"truncated 3-byte then ascii", "\xE2\x82a", "\uFFFDa"},
		{"truncated 4-byte then ascii", "\xF0\x9F\x98a", "\uFFFDa"},
		{"overlong 2-byte", "\xC0\x80", "\uFFFD\uFFFD"},
		{"overlong 3-byte", "\xE0\x80\x80", "\uFFFD\uFFFD\uFFFD"},
		{"overlong 4-byte", "\xF0\x80\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"surrogate", "\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"max code point", "\xF4\x8F\xBF\xBF", "\U0010FFFF"},
		{"above max", "\xF4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"F5", "\xF5\x80", "\uFFFD\uFFFD"},
		{"bad continuation restarts", "\xE2\xE2\x82\xAC", "\uFFFD€"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(appendUTF8(nil, []byte(tc.in))); got != tc.want {
				t.Errorf("appendUTF8(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := refUTF8([]byte(tc.in)); got != tc.want {
				t.Errorf("refUTF8(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestAppendUTF8Exhaustive compares the decoder with the reference on every
// sequence of up to three bytes drawn from the interesting byte values.
func TestAppendUTF8Exhaustive(t *testing.T) {
	vals := []byte{0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF}
	check := func(b []byte) {
		if got, want := string(appendUTF8(nil, b)), refUTF8(b); got != want {
			t.Fatalf("%x: got %q, want %q", b, got, want)
		}
	}
	for _, a := range vals {
		for _, b := range vals {
			for _, c := range vals {
				check([]byte{a, b, c})
				if a >= 0xF0 { // only 4-byte leads need a fourth byte
					for _, d := range vals {
						check([]byte{a, b, c, d})
					}
				}
			}
		}
	}
}
