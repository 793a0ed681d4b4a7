package servicetest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

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

// ReadEvents decodes the event stream body in the background, for tests
// that subscribe over HTTP: its events go to events (buffered for n),
// which is closed when the stream ends, and then the error it ended with
// goes to end (buffered for one). The caller closes body to stop it.
func ReadEvents(body io.Reader, n int) (dec *sse.Decoder, events chan sse.Event, end chan error) {
	dec, events, end = sse.NewDecoder(body), make(chan sse.Event, n), make(chan error, 1)
	go func() {
		for {
			ev, err := dec.Next()
			if err != nil {
				close(events)
				end <- err
				return
			}
			events <- ev
		}
	}()
	return dec, events, end
}
