//go:build linux

package park_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/internal/park"
	"github.com/ssehub/ssehub/internal/servicetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// source is a Source fed by the test.
type source struct {
	mu     sync.Mutex
	queue  [][]byte
	err    error
	wake   func()
	closed atomic.Int32
}

func (s *source) TryNext() ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		q := s.queue
		s.queue = nil
		return q, nil
	}
	return nil, s.err
}

func (s *source) OnWake(f func()) {
	s.mu.Lock()
	s.wake = f
	s.mu.Unlock()
	f()
}

func (s *source) Close() { s.closed.Add(1) }

func (s *source) push(b string) {
	s.mu.Lock()
	s.queue = append(s.queue, []byte(b))
	f := s.wake
	s.mu.Unlock()
	if f != nil {
		f()
	}
}

// pushAll queues lines with one wake-up, so that one TryNext returns them
// all.
func (s *source) pushAll(lines []string) {
	s.mu.Lock()
	for _, l := range lines {
		s.queue = append(s.queue, []byte(l))
	}
	f := s.wake
	s.mu.Unlock()
	if f != nil {
		f()
	}
}

func (s *source) end(err error) {
	s.mu.Lock()
	s.err = err
	f := s.wake
	s.mu.Unlock()
	if f != nil {
		f()
	}
}

// server parks every request with a new source, after writing "hello\n".
type server struct {
	p       *park.Parker
	srv     *httptest.Server
	sources chan *source
	expires time.Time
}

func newServer(t *testing.T, opts park.Options) *server {
	t.Helper()
	p, err := park.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{p: p, sources: make(chan *source, 100)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("hello\n"))
		src := &source{}
		if !p.Park(w, r, src, s.expires) {
			t.Error("Park declined an HTTP/1.1 stream")
			return
		}
		s.sources <- src
	}))
	t.Cleanup(func() {
		p.Close(time.Second)
		s.srv.Close()
	})
	return s
}

func (s *server) source(t *testing.T) *source {
	t.Helper()
	select {
	case src := <-s.sources:
		return src
	case <-time.After(5 * time.Second):
		t.Fatal("no stream parked")
	}
	return nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	servicetest.WaitFor(t, 5*time.Second, what, cond)
}

// stream opens a parked stream on s and reads its first line; it returns
// the stream's source and a reader of what follows.
func (s *server) stream(t *testing.T) (*source, *bufio.Reader) {
	t.Helper()
	resp, err := http.Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	src := s.source(t)
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); l != "hello\n" {
		t.Fatalf("first line %q %v", l, err)
	}
	return src, br
}

func TestParkedStreamDelivers(t *testing.T) {
	s := newServer(t, park.Options{})
	src, br := s.stream(t)
	readLine := func() string {
		t.Helper()
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for i := range 100 {
		src.push(fmt.Sprintf("event %d\n", i))
		if i%10 == 0 {
			src.push("a second chunk in the same batch\n")
		}
	}
	for i := range 100 {
		if l := readLine(); l != fmt.Sprintf("event %d\n", i) {
			t.Fatalf("line %q, want event %d", l, i)
		}
		if i%10 == 0 {
			readLine()
		}
	}
	if s.p.Len() != 1 {
		t.Fatalf("Len %d", s.p.Len())
	}
	// The source ends: the chunked body ends cleanly, the connection closes.
	src.push("last\n")
	src.end(errors.New("done"))
	if l := readLine(); l != "last\n" {
		t.Fatalf("got %q", l)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("end of body: %q %v (want a clean EOF)", rest, err)
	}
	waitFor(t, "the source to be closed", func() bool { return src.closed.Load() == 1 })
	waitFor(t, "the conn to be dropped", func() bool { return s.p.Len() == 0 })
}

// TestManyChunksAtOnce: a subscriber that fell behind hands over thousands
// of events at once, more than one writev takes (IOV_MAX is 1024); all
// arrive, in order, and the stream stays open.
func TestManyChunksAtOnce(t *testing.T) {
	s := newServer(t, park.Options{})
	src, br := s.stream(t)
	lines := make([]string, 3000)
	for i := range lines {
		lines[i] = fmt.Sprintf("event %d\n", i)
	}
	src.pushAll(lines)
	for i := range lines {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d of %d lines: %v", i, len(lines), err)
		}
		if l != lines[i] {
			t.Fatalf("line %q, want %q", l, lines[i])
		}
	}
	if src.closed.Load() != 0 || s.p.Len() != 1 {
		t.Fatalf("stream ended (closed %d, parked %d)", src.closed.Load(), s.p.Len())
	}
}

// TestLastEventAndEndTogether: the source queues a last event and ends with
// one wake-up (as a hub shutting down does): the event arrives and the body
// ends.
func TestLastEventAndEndTogether(t *testing.T) {
	s := newServer(t, park.Options{})
	src, br := s.stream(t)
	src.mu.Lock()
	src.queue = append(src.queue, []byte("bye\n"))
	src.err = errors.New("done")
	f := src.wake
	src.mu.Unlock()
	f()
	waitFor(t, "the stream to end", func() bool { return src.closed.Load() == 1 })
	all, err := io.ReadAll(br)
	if err != nil || string(all) != "bye\n" {
		t.Fatalf("rest of body: %q %v (want the last event and a clean EOF)", all, err)
	}
}

func TestClientLeaving(t *testing.T) {
	s := newServer(t, park.Options{})
	resp, err := http.Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	src := s.source(t)
	resp.Body.Close() // the client goes away without a word
	waitFor(t, "the source to be closed", func() bool { return src.closed.Load() == 1 })
	if s.p.Len() != 0 {
		t.Fatalf("Len %d", s.p.Len())
	}
}

func TestStalledClientIsClosed(t *testing.T) {
	var stalls atomic.Int32
	s := newServer(t, park.Options{WriteTimeout: 300 * time.Millisecond, OnStall: func() { stalls.Add(1) }})
	conn, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	src := s.source(t)
	big := strings.Repeat("x", 64<<10) + "\n"
	for range 100 { // 6.4 MB that nobody reads
		src.push(big)
	}
	waitFor(t, "the stalled stream to be closed", func() bool { return src.closed.Load() == 1 })
	if n := stalls.Load(); n != 1 {
		t.Fatalf("OnStall called %d times, want 1", n)
	}
}

// A client that keeps sending bytes after its request is disconnected
// instead of making the hub read them for ever; a few bytes are fine.
func TestClientInputIsBounded(t *testing.T) {
	var excess atomic.Int32
	s := newServer(t, park.Options{MaxInput: 1000, OnExcessInput: func() { excess.Add(1) }})
	quiet, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	fmt.Fprintf(quiet, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	quietSrc := s.source(t)
	chatty, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer chatty.Close()
	fmt.Fprintf(chatty, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	src := s.source(t)
	quiet.Write([]byte("a few bytes\n")) // within the allowance
	junk := []byte(strings.Repeat("x", 4096))
	deadline := time.Now().Add(10 * time.Second)
	for src.closed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a client that sent megabytes after its request is still connected")
		}
		chatty.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := chatty.Write(junk); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break // the hub closed it
		}
	}
	waitFor(t, "the chatty stream to be closed", func() bool { return src.closed.Load() == 1 })
	if n := excess.Load(); n != 1 {
		t.Fatalf("OnExcessInput called %d times, want 1", n)
	}
	if quietSrc.closed.Load() != 0 {
		t.Fatal("a client that sent a few bytes was disconnected")
	}
}

func TestExpiry(t *testing.T) {
	s := newServer(t, park.Options{})
	s.expires = time.Now().Add(500 * time.Millisecond)
	resp, err := http.Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	src := s.source(t)
	waitFor(t, "the expired stream to be closed", func() bool { return src.closed.Load() == 1 })
}

// http10 opens a parked stream with an HTTP/1.0 request (not chunked).
func (s *server) http10(t *testing.T) (net.Conn, *source) {
	t.Helper()
	conn, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	return conn, s.source(t)
}

func TestHTTP10IsNotChunked(t *testing.T) {
	s := newServer(t, park.Options{})
	conn, src := s.http10(t)
	src.push("one\n")
	src.end(io.EOF)
	all, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(all), "\r\n\r\nhello\none\n") {
		t.Fatalf("response %q", all)
	}
}

// TestEmptyChunk: an empty chunk from the source is skipped, not written
// for ever (HTTP/1.0 streams are not chunk-framed, so it reaches writev as
// an empty buffer).
func TestEmptyChunk(t *testing.T) {
	s := newServer(t, park.Options{})
	conn, src := s.http10(t)
	src.pushAll([]string{"one\n", ""})
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for { // the response header, then hello, then one
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "one\n" {
			break
		}
	}
	src.push("two\n")
	src.end(io.EOF)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "two\n" {
		t.Fatalf("after the empty chunk: %q %v (want two and the end)", rest, err)
	}
}

func TestCloseEndsWhatIsLeft(t *testing.T) {
	s := newServer(t, park.Options{})
	var resps []*http.Response
	for range 5 {
		resp, err := http.Get(s.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		resps = append(resps, resp)
		s.source(t)
	}
	start := time.Now()
	s.p.Close(200 * time.Millisecond)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	for _, r := range resps {
		if _, err := io.ReadAll(r.Body); err == nil {
			t.Fatal("a stream force-closed by Close ended like a clean end")
		}
	}
}
