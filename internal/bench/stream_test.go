package bench

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// chunkyReader returns its input in random pieces.
type chunkyReader struct {
	b   []byte
	rng *rand.Rand
}

func (c *chunkyReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.b), 1+c.rng.IntN(40))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// chunk encodes parts as an HTTP/1.1 chunked body, with the last chunk.
func chunk(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 0 {
			b.WriteString(strings.ToUpper(hex(len(p))))
		} else {
			b.WriteString(hex(len(p)) + ";ext=1")
		}
		b.WriteString("\r\n" + p + "\r\n")
	}
	return b.String() + "0\r\n\r\n"
}

func hex(n int) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0"
	}
	var s []byte
	for ; n > 0; n >>= 4 {
		s = append([]byte{digits[n&15]}, s...)
	}
	return string(s)
}

func TestStreamReader(t *testing.T) {
	long := strings.Repeat("y", 5000)
	for _, tc := range []struct {
		name      string
		in        string
		status    int
		ctype     string
		lines     []string
		wantErr   error // after the lines
		maxLine   int
		wantChunk bool
	}{
		{
			name:   "chunked, every line ending",
			in:     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("a\nb\r", "\nc\rd\r\n", "e", "f\n"+long+"\n"),
			status: 200, ctype: "text/event-stream", wantChunk: true,
			lines:   []string{"a", "b", "c", "d", "ef", long},
			wantErr: io.EOF,
		},
		{
			name:   "plain body until close, unfinished last line dropped",
			in:     "HTTP/1.0 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\r\ndata: 1\n\ndata: 2",
			status: 200, ctype: "text/event-stream; charset=utf-8",
			lines:   []string{"data: 1", ""},
			wantErr: io.EOF,
		},
		{
			name:   "chunked, cut in the middle",
			in:     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\ncd",
			status: 200, wantChunk: true,
			lines:   []string{"ab"},
			wantErr: io.EOF,
		},
		{
			name:   "bad chunk size",
			in:     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\n",
			status: 200, wantChunk: true,
			wantErr: errBadChunk,
		},
		{
			name:   "line too long",
			in:     "HTTP/1.1 200 OK\r\n\r\n" + long + "\n",
			status: 200, maxLine: 1000,
			wantErr: errTooLarge,
		},
		{
			name:   "error status",
			in:     "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n",
			status: 404,
			lines:  []string{"not found"},
		},
	} {
		for _, mode := range []string{"whole", "bytes", "random"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				var rd io.Reader = strings.NewReader(tc.in)
				switch mode {
				case "bytes":
					rd = iotest.OneByteReader(rd)
				case "random":
					rd = &chunkyReader{b: []byte(tc.in), rng: rand.New(rand.NewPCG(1, uint64(len(tc.in))))}
				}
				var s streamReader
				s.reset(rd, 16, cmp(tc.maxLine, 1<<20))
				resp, err := s.readResponse()
				if err != nil {
					t.Fatal(err)
				}
				if resp.status != tc.status || resp.contentType != tc.ctype || resp.chunked != tc.wantChunk {
					t.Fatalf("response = %+v", resp)
				}
				for _, want := range tc.lines {
					got, err := s.line()
					if err != nil {
						t.Fatalf("line: %v, want %.20q", err, want)
					}
					if string(got) != want {
						t.Fatalf("line = %.20q, want %.20q", got, want)
					}
				}
				if tc.wantErr == nil {
					return
				}
				if _, err := s.line(); !errors.Is(err, tc.wantErr) {
					t.Fatalf("after the lines: %v, want %v", err, tc.wantErr)
				}
			})
		}
	}
}

func cmp(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func TestStreamReaderBadResponse(t *testing.T) {
	for _, in := range []string{"SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 abc\r\n\r\n", "HTTP/1.1 200 OK\r\n"} {
		var s streamReader
		s.reset(strings.NewReader(in), 64, 1024)
		if _, err := s.readResponse(); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	var s streamReader
	s.reset(strings.NewReader("HTTP/1.1 200 OK\r\nX: "+strings.Repeat("h", 10000)+"\r\n\r\n"), 64, 100)
	if _, err := s.readResponse(); !errors.Is(err, errTooLarge) {
		t.Errorf("huge header: %v", err)
	}
}

func TestParseChunkSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1a": 26, "FF\r": 255, "10;x=y\r": 16, "7 \r": 7} {
		if n, ok := parseChunkSize([]byte(in)); !ok || n != want {
			t.Errorf("%q: %d %v, want %d", in, n, ok, want)
		}
	}
	for _, in := range []string{"", "\r", "g", "-1", "1234567890abcdef0"} {
		if _, ok := parseChunkSize([]byte(in)); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestSubscriberParsesEvents(t *testing.T) {
	r := &runner{}
	s := &subscriber{r: r, topic: 2, phase: phaseMain, cnt: &r.cnt, trk: make([]topicTrack, 1), keepID: true}
	var in bytes.Buffer
	ev := func(lines ...string) {
		for _, l := range lines {
			in.WriteString(l + "\n")
		}
		in.WriteString("\n")
	}
	pl := func(topic, seq int) string {
		return "data: " + string(appendPayload(nil, payload{phase: phaseMain, topic: topic, seq: seq}, 50))
	}
	ev("id: 1", pl(2, 0))
	ev(": comment", pl(2, 1))
	ev(pl(2, 1))                          // duplicate
	ev(pl(2, 3))                          //
	ev("id: 7", pl(2, 2))                 // out of order
	ev(pl(1, 4))                          // another topic
	ev("event: other", "id: 8", pl(2, 5)) // other type
	ev("data: hello")                     // not ours
	ev(pl(2, 6), "data: second line")     // not ours
	ev("id: 9")                           // no data: nothing
	for l := range strings.SplitSeq(strings.TrimSuffix(in.String(), "\n"), "\n") {
		s.line([]byte(l))
	}
	c := &r.cnt
	if c.unique.Load() != 4 || c.dup.Load() != 1 || c.outOfOrder.Load() != 1 || c.foreign.Load() != 1 || c.other.Load() != 3 {
		t.Errorf("unique %d dup %d ooo %d foreign %d other %d", c.unique.Load(), c.dup.Load(), c.outOfOrder.Load(), c.foreign.Load(), c.other.Load())
	}
	if string(s.lastID) != "9" {
		t.Errorf("last id %q", s.lastID)
	}
}

// BenchmarkSubscriberEvent measures the generator's cost of reading one
// chunked event and accounting for it.
func BenchmarkSubscriberEvent(b *testing.B) {
	r := &runner{start: time.Now()}
	s := &subscriber{r: r, topic: 0, phase: phaseMain, cnt: &r.cnt, trk: make([]topicTrack, 1)}
	var in bytes.Buffer
	in.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
	var ev []byte
	for i := range b.N {
		ev = append(ev[:0], "id: 123456\ndata: "...)
		ev = appendPayload(ev, payload{phase: phaseMain, seq: i}, 100)
		ev = append(ev, "\n\n"...)
		in.WriteString(hex(len(ev)) + "\r\n")
		in.Write(ev)
		in.WriteString("\r\n")
	}
	s.sr.reset(&in, 1024, 1<<20)
	if _, err := s.sr.readResponse(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for {
		line, err := s.sr.line()
		if err != nil {
			break
		}
		s.line(line)
	}
	if n := r.cnt.unique.Load(); n != int64(b.N) {
		b.Fatalf("%d events, want %d", n, b.N)
	}
}
