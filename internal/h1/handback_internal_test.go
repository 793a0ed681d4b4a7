package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// depth is how many prefixConns c is wrapped in.
func depth(c net.Conn) int {
	n := 0
	for {
		p, ok := c.(*prefixConn)
		if !ok {
			return n
		}
		n++
		c = p.Conn
	}
}

// serveOn serves lean (made by newLean on the Listener) with net/http on a
// loopback port, and returns a client connection to it; everything is
// closed when the test ends.
func serveOn(t *testing.T, newLean func(*Listener) *Server, connContext func(context.Context, net.Conn) context.Context) (net.Conn, *bufio.Reader) {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(tcp)
	lean := newLean(ln)
	srv := &http.Server{Handler: lean, ConnContext: connContext}
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	t.Cleanup(func() { srv.Close(); lean.Close(time.Second); <-served })
	c, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// A connection that goes back and forth between the loop and net/http
// (a POST, a GET, a POST...) is not wrapped once more at each handback:
// the wrappers would pile up without bound, each read going through all
// of them (memory and CPU a client controls, and a stack as deep).
func TestHandbacksDoNotNest(t *testing.T) {
	var maxDepth atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			io.Copy(io.Discard, r.Body)
		}
		io.WriteString(w, r.Method+" "+r.URL.Path)
	})
	c, br := serveOn(t, func(ln *Listener) *Server { return New(ln, handler, Options{}) }, func(ctx context.Context, c net.Conn) context.Context {
		if d := int64(depth(c)); d > maxDepth.Load() {
			maxDepth.Store(d)
		}
		return ctx
	})
	const rounds = 200 // pipelined: more than a read buffer is handed back at times
	var b strings.Builder
	for i := range rounds {
		fmt.Fprintf(&b, "POST /p%d HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", i)
		fmt.Fprintf(&b, "GET /g%d HTTP/1.1\r\nHost: a\r\nX-Pad: %s\r\n\r\n", i, strings.Repeat("p", i%7*100))
	}
	go io.WriteString(c, b.String())
	for i := range 2 * rounds {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if want := [2]string{"POST /p", "GET /g"}[i%2] + fmt.Sprint(i/2); string(body) != want {
			t.Fatalf("response %d: %q, want %q", i, body, want)
		}
	}
	if d := maxDepth.Load(); d > 1 {
		t.Fatalf("after %d handbacks a connection is wrapped %d times, want at most once", rounds, d)
	}
}

// A large request head does not stay in memory while the connection
// waits for its next request: an idle connection keeps what a small
// head takes, not up to MaxHeaderBytes.
func TestLargeHeadIsNotKept(t *testing.T) {
	var lean *Server
	var kept atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/check" { // runs on the loop's goroutine
			lean.mu.Lock()
			for c := range lean.conns {
				kept.Store(int64(cap(c.head)))
			}
			lean.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	})
	c, br := serveOn(t, func(ln *Listener) *Server {
		lean = New(ln, handler, Options{MaxHeaderBytes: 1 << 20})
		return lean
	}, nil)
	for _, path := range []string{"/a", "/big", "/check"} {
		extra := ""
		if path == "/big" {
			extra = "X-Big: " + strings.Repeat("b", 512<<10) + "\r\n"
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: a\r\n%sContent-Length: 0\r\n\r\n", path, extra)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
	}
	if n := kept.Load(); n > 64<<10 {
		t.Fatalf("a connection keeps %d bytes of head buffer after a 512 KB head", n)
	}
}
