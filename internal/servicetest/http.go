package servicetest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
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
