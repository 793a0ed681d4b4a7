package servicetest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// NumberedServer is a real HTTP server (httptest) for the tests of a
// client: its handler is told each request's 1-based number, and the
// requests are recorded. Safe for concurrent use.
type NumberedServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

// NewNumberedServer starts a NumberedServer that answers with respond,
// closed when t ends.
func NewNumberedServer(t testing.TB, respond func(w http.ResponseWriter, r *http.Request, n int)) *NumberedServer {
	t.Helper()
	s := &NumberedServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		n := len(s.reqs)
		s.mu.Unlock()
		respond(w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

// Count returns the number of requests so far.
func (s *NumberedServer) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// Header returns the values of the header key of request i (0-based),
// joined with commas, and whether the request had it. When there was no
// request i it returns "<no request i>", which no header equals.
func (s *NumberedServer) Header(i int, key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.reqs) {
		return fmt.Sprintf("<no request %d>", i), false
	}
	v, ok := s.reqs[i].Header[http.CanonicalHeaderKey(key)]
	return strings.Join(v, ","), ok
}

// Do sends a request with body (none when "") and headers (alternating
// names and values) and returns the response and its whole body (read and
// closed). It fails t when the request cannot be made or gets no response.
func Do(t testing.TB, method, url, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// EventStream is a subscription over HTTP whose events a goroutine
// decodes in the background, for tests. Safe for concurrent use.
type EventStream struct {
	Resp *http.Response
	// Events are the stream's events; it is closed when the stream ends.
	Events chan sse.Event
	// Dec is the stream's decoder: read it (Retry, LastEventID) once
	// Events is closed.
	Dec *sse.Decoder

	ended chan struct{}
	err   error
}

// Subscribe sends req with c and decodes the answer's events in the
// background (n of them are buffered); it fails t unless the answer is a
// 200. When t ends the body is closed and the decoding waited for.
func Subscribe(t testing.TB, c *http.Client, req *http.Request, n int) *EventStream {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("subscribe %s: %s: %s", req.URL, resp.Status, b)
	}
	s := &EventStream{Resp: resp, Events: make(chan sse.Event, n), Dec: sse.NewDecoder(resp.Body), ended: make(chan struct{})}
	stop := make(chan struct{})
	go func() {
		defer close(s.ended)
		defer close(s.Events)
		for {
			ev, err := s.Dec.Next()
			if err != nil {
				s.err = err
				return
			}
			select {
			case s.Events <- ev:
			case <-stop: // the test is over and reads no more
				s.err = errors.New("servicetest: the test ended")
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		resp.Body.Close()
		<-s.ended
	})
	return s
}

// Ended is closed once the stream has ended.
func (s *EventStream) Ended() <-chan struct{} { return s.ended }

// Err waits for the stream to end and returns the error it ended with
// (io.EOF for a clean end).
func (s *EventStream) Err() error {
	<-s.ended
	return s.err
}

// Next returns the next event. It fails t when the stream ends first or
// no event comes within wait.
func (s *EventStream) Next(t testing.TB, wait time.Duration) sse.Event {
	t.Helper()
	select {
	case ev, ok := <-s.Events:
		if !ok {
			t.Fatalf("stream ended: %v", s.Err())
		}
		return ev
	case <-time.After(wait):
		t.Fatalf("no event within %v", wait)
	}
	return sse.Event{}
}
