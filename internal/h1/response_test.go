package h1_test

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/h1"
)

// A handler that sets Connection: close ends the connection after its
// answer, as with net/http: the server does not go on reading requests
// on a connection it said it closes.
func TestHandlerConnectionCloseEndsTheConnection(t *testing.T) {
	s := newServer(t, h1.Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bye" {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	c := dial(t, s.addr)
	c.send(t, post("/a", "x"))
	c.read(t)
	c.send(t, post("/bye", "x")+post("/after", "x"))
	if resp, _ := c.read(t); !resp.Close {
		t.Fatalf("no Connection: close in the answer")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if resp, err := http.ReadResponse(c.br, nil); err == nil {
		t.Fatalf("a request after Connection: close was served: %s", resp.Status)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("after Connection: close: %v, want the connection closed", err)
	}
}

// A header name a handler sets with CR or LF (or any byte a field name
// may not hold) is dropped, as net/http drops it, rather than written:
// no response splitting through header names.
func TestInvalidResponseHeaderNamesAreDropped(t *testing.T) {
	s := newServer(t, h1.Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-A: 1\r\nX-Injected"] = []string{"yes"}
		w.Header()["X-B\r\n\r\nsmuggled"] = []string{"yes"}
		w.Header().Set("X-Ok", "fine")
		w.WriteHeader(http.StatusNoContent)
	}))
	c := dial(t, s.addr)
	c.send(t, post("/a", "x"))
	c.read(t)
	c.send(t, post("/b", "x"))
	resp, _ := c.read(t)
	if resp.Header.Get("X-Injected") != "" || resp.Header.Get("X-Ok") != "fine" {
		t.Fatalf("headers %v: an injected header, or the valid one missing", resp.Header)
	}
	c.send(t, post("/c", "x"))
	if resp, _ := c.read(t); resp.StatusCode != 204 {
		t.Fatalf("next answer %s", resp.Status)
	}
}

// A handler's own Date header is sent once, and equal repeated
// Content-Length headers reach the handler as one value, as with net/http.
func TestDateAndRepeatedLengthAsNetHTTP(t *testing.T) {
	s := newServer(t, h1.Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
		w.Header().Set("X-Lengths", strconv.Itoa(len(r.Header.Values("Content-Length"))))
		w.WriteHeader(http.StatusNoContent)
	}))
	c := dial(t, s.addr)
	c.send(t, post("/a", "x"))
	c.read(t)
	c.send(t, "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
	resp, _ := c.read(t)
	if d := resp.Header.Values("Date"); len(d) != 1 || d[0] != "Mon, 02 Jan 2006 15:04:05 GMT" {
		t.Fatalf("Date headers %q, want the handler's one", d)
	}
	if n := resp.Header.Get("X-Lengths"); n != "1" {
		t.Fatalf("the handler saw %s Content-Length values, want 1", n)
	}
}

// Close cuts a connection whose handler is stuck past the timeout, and
// does not wait for that handler much longer.
func TestCloseDoesNotWaitForAStuckHandler(t *testing.T) {
	stuck := make(chan struct{})
	started := make(chan struct{}, 1)
	s := newServer(t, h1.Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stuck" {
			started <- struct{}{}
			<-stuck
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer close(stuck)
	c := dial(t, s.addr)
	c.send(t, post("/a", "x"))
	c.read(t)
	c.send(t, post("/stuck", "x"))
	<-started
	t0 := time.Now()
	if cut := s.lean.Close(200 * time.Millisecond); cut != 1 {
		t.Fatalf("Close cut %d connections, want the stuck one", cut)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("Close took %v with a stuck handler, want about its timeout plus a second", d)
	}
	if _, err := http.ReadResponse(c.br, nil); err == nil {
		t.Fatal("an answer on a connection Close cut")
	}
}
