package h1_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/internal/h1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is a real http.Server serving a Listener, with a Server taking
// POST connections over.
type server struct {
	addr  string
	lean  *h1.Server
	srv   *http.Server
	viaH1 atomic.Int64 // requests the handler saw over a taken connection
}

// echo answers a POST with its body, and a GET with its path.
func newServer(t *testing.T, opts h1.Options, handler http.Handler) *server {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: tcp.Addr().String()}
	if handler == nil {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := w.(http.Hijacker); !ok {
				s.viaH1.Add(1)
			}
			switch r.Method {
			case http.MethodPost:
				b, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				if len(b) == 0 {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("X-Host", r.Host)
				fmt.Fprintf(w, "%s %s", r.URL.Path, b)
			default:
				fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
			}
		})
	}
	ln := h1.NewListener(tcp)
	s.lean = h1.New(ln, handler, opts)
	s.srv = &http.Server{Handler: s.lean, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() { s.srv.Serve(ln); close(served) }()
	t.Cleanup(func() {
		s.srv.Close()
		s.lean.Close(time.Second)
		<-served
	})
	return s
}

// client is a raw connection that writes requests and reads responses.
type client struct {
	net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{Conn: c, br: bufio.NewReader(c)}
}

func (c *client) send(t *testing.T, raw string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
}

// read reads one response and its body.
func (c *client) read(t *testing.T) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a response body: %v", err)
	}
	return resp, string(b)
}

func post(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: example.test\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

// A connection's POSTs after the first are served by the loop, with what
// net/http would answer; pipelined requests are answered in order.
func TestServesPostsOnATakenConnection(t *testing.T) {
	s := newServer(t, h1.Options{}, nil)
	c := dial(t, s.addr)
	c.send(t, post("/a", "one"))
	resp, body := c.read(t)
	if resp.StatusCode != 200 || body != "/a one" || resp.Header.Get("X-Host") != "example.test" {
		t.Fatalf("first POST: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	c.send(t, post("/b", "two")+post("/c", "")+post("/d?x=1", "four"))
	for i, want := range []string{"/b two", "", "/d four"} {
		resp, body := c.read(t)
		if body != want {
			t.Fatalf("pipelined request %d: %d %q, want %q", i, resp.StatusCode, body, want)
		}
		if want == "" && (resp.StatusCode != 204 || resp.ContentLength > 0) {
			t.Fatalf("empty POST: %d with Content-Length %d, want 204 and no body", resp.StatusCode, resp.ContentLength)
		}
		if want != "" && (resp.ContentLength != int64(len(want)) || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Date") == "") {
			t.Fatalf("request %d: Content-Length %d, headers %v", i, resp.ContentLength, resp.Header)
		}
	}
	// A header line longer than the connection's read buffer (a large
	// token) is read whole, up to MaxHeaderBytes.
	c.send(t, "POST /long HTTP/1.1\r\nHost: example.test\r\nAuthorization: Bearer "+strings.Repeat("t", 9000)+"\r\nContent-Length: 1\r\n\r\nx")
	if resp, body := c.read(t); resp.StatusCode != 200 || body != "/long x" {
		t.Fatalf("a 9 KB header line: %d %q", resp.StatusCode, body)
	}
	if n := s.viaH1.Load(); n != 5 {
		t.Fatalf("%d requests served by the loop, want 5: every POST (the first is taken over before it is served)", n)
	}
	if s.lean.Taken() != 1 {
		t.Fatalf("%d connections taken over, want 1", s.lean.Taken())
	}
}

// A request the loop does not serve goes back to net/http with the bytes
// read of it, on the same connection; the next POST is taken over again.
func TestHandsOtherRequestsBackToNetHTTP(t *testing.T) {
	s := newServer(t, h1.Options{}, nil)
	c := dial(t, s.addr)
	c.send(t, post("/a", "one"))
	c.read(t)
	chunked := "POST /chunked HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	c.send(t, "GET /page HTTP/1.1\r\nHost: example.test\r\n\r\n"+chunked+post("/b", "two"))
	for i, want := range []string{"GET /page", "/chunked abc", "/b two"} {
		if resp, body := c.read(t); body != want {
			t.Fatalf("request %d: %d %q, want %q", i, resp.StatusCode, body, want)
		}
	}
	if n := s.viaH1.Load(); n != 2 {
		t.Fatalf("%d requests served by the loop, want the 2 plain POSTs", n)
	}
}

// Requests the loop cannot read are refused as net/http refuses them, and
// the connection is closed: no request smuggling through disagreements.
func TestRefusesMalformedRequests(t *testing.T) {
	s := newServer(t, h1.Options{MaxHeaderBytes: 4096}, nil)
	for _, tc := range []struct{ name, raw, status string }{
		{"two different lengths", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400"},
		{"no Host", "POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "400"},
		{"two Hosts", "POST /x HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n", "400"},
		{"bad Host", "POST /x HTTP/1.1\r\nHost: a b\r\nContent-Length: 0\r\n\r\n", "400"},
		{"obsolete line folding", "POST /x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n", "400"},
		{"space before colon", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", "400"},
		{"length not a number", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", "400"},
		{"control byte in a value", "POST /x HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n", "400"},
		{"bad request line", "POST /x\r\nHost: a\r\n\r\n", "400"},
		{"header too large", "POST /x HTTP/1.1\r\nHost: a\r\nX-A: " + strings.Repeat("a", 5000) + "\r\nContent-Length: 0\r\n\r\n", "431"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.addr)
			c.send(t, post("/a", "one"))
			c.read(t)
			c.send(t, tc.raw)
			resp, body := c.read(t)
			if !strings.HasPrefix(resp.Status, tc.status) || !resp.Close {
				t.Fatalf("%q: %s (close %v) %q, want %s and the connection closed", tc.raw, resp.Status, resp.Close, body, tc.status)
			}
			if _, err := c.br.ReadByte(); err != io.EOF {
				t.Fatalf("after refusing %q the connection is still open (%v)", tc.raw, err)
			}
		})
	}
}

// A client asking to close gets its answer and the connection closed; a
// handler that does not read the body leaves the connection usable.
func TestConnectionCloseAndUnreadBodies(t *testing.T) {
	s := newServer(t, h1.Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted) // never reads the body
	}))
	c := dial(t, s.addr)
	c.send(t, post("/a", "one")+post("/b", strings.Repeat("x", 10000))+post("/c", "three"))
	for range 3 {
		if resp, _ := c.read(t); resp.StatusCode != 202 || resp.Close {
			t.Fatalf("%d close %v, want 202 on a kept connection", resp.StatusCode, resp.Close)
		}
	}
	c.send(t, "POST /d HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	if resp, _ := c.read(t); resp.StatusCode != 202 || !resp.Close {
		t.Fatalf("Connection: close: %d close %v, want 202 and close", resp.StatusCode, resp.Close)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("the connection is still open after Connection: close (%v)", err)
	}
}

// A handler that panics loses its connection, not the server.
func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	s := newServer(t, h1.Options{Logger: slog.New(slog.DiscardHandler)}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	c := dial(t, s.addr)
	c.send(t, post("/a", "x"))
	c.read(t)
	c.send(t, post("/panic", "x"))
	if _, err := http.ReadResponse(c.br, nil); err == nil {
		t.Fatal("a response after the handler panicked")
	}
	c2 := dial(t, s.addr)
	c2.send(t, post("/a", "x")+post("/b", "y"))
	for range 2 {
		if resp, _ := c2.read(t); resp.StatusCode != 204 {
			t.Fatalf("another connection after a panic: %d", resp.StatusCode)
		}
	}
}

// An idle taken connection is closed after IdleTimeout; Close ends the
// idle ones at once and lets a request in progress finish.
func TestIdleTimeoutAndClose(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s := newServer(t, h1.Options{IdleTimeout: 300 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	idle := dial(t, s.addr)
	idle.send(t, post("/a", "x"))
	idle.read(t)
	t0 := time.Now()
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want closed", err)
	}
	if d := time.Since(t0); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("idle connection closed after %v, want about 300ms", d)
	}

	waiting := dial(t, s.addr)
	waiting.send(t, post("/a", "x"))
	waiting.read(t)
	busy := dial(t, s.addr)
	busy.send(t, post("/a", "x"))
	busy.read(t)
	busy.send(t, post("/slow", "x"))
	<-started
	closed := make(chan struct{})
	go func() { s.lean.Close(5 * time.Second); close(closed) }()
	if _, err := waiting.br.ReadByte(); err != io.EOF {
		t.Fatalf("a waiting connection after Close: %v, want closed", err)
	}
	close(release)
	resp, _ := busy.read(t)
	if resp.StatusCode != 204 || !resp.Close {
		t.Fatalf("the request in progress at Close: %d close %v, want 204 and Connection: close", resp.StatusCode, resp.Close)
	}
	<-closed
}

// A handler may bound the read of its body (http.ResponseController), as
// the Mercure publish handler does; the bound ends with the request, not
// the connection's wait for the next one.
func TestHandlerReadDeadline(t *testing.T) {
	s := newServer(t, h1.Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusRequestTimeout)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	c := dial(t, s.addr)
	c.send(t, post("/a", "x"))
	c.read(t)
	time.Sleep(400 * time.Millisecond) // longer than the handler's bound, idle
	c.send(t, post("/b", "x"))
	if resp, body := c.read(t); resp.StatusCode != 204 {
		t.Fatalf("a request after an idle wait longer than the previous handler's read bound: %d %q", resp.StatusCode, body)
	}
	c.send(t, "POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc") // 7 bytes never come
	resp, body := c.read(t)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "timeout") || !resp.Close {
		t.Fatalf("a body slower than the handler's bound: %d %q close %v, want 408 and close", resp.StatusCode, body, resp.Close)
	}
}
