package streams

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
)

// The store keeps at most max streams and never forgets one a request
// holds, also one whose write lock is not taken yet (two views of one
// stream would let two writers past its lock).
func TestStoreIsBounded(t *testing.T) {
	s := newStore(memlog.New(memlog.Options{}), 10)
	held := s.acquire("/v1/stream/held")
	for i := range 100 {
		s.release(s.acquire(fmt.Sprintf("/v1/stream/%d", i)))
	}
	if n := len(s.streams); n > 10 {
		t.Fatalf("the store holds %d streams, want at most 10", n)
	}
	if again := s.acquire("/v1/stream/held"); again != held {
		t.Fatal("a stream a request holds was forgotten: it now has two views")
	}
}

// Requests give their stream views back: reads of many streams (here of
// streams that do not exist) do not grow the store past its bound.
func TestRequestsReleaseTheirViews(t *testing.T) {
	l := memlog.New(memlog.Options{})
	defer l.Close()
	h, err := hub.New(l, hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s, err := New(Config{Hub: h, AnonymousWrites: true, MaxStreams: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(0)
	for i := range 100 {
		for _, method := range []string{"GET", "HEAD", "POST", "DELETE"} {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(method, fmt.Sprintf("/v1/stream/none/%d", i), strings.NewReader("x")))
			if w.Code != http.StatusNotFound {
				t.Fatalf("%s of a missing stream: %d", method, w.Code)
			}
		}
	}
	s.store.mu.Lock()
	n := len(s.store.streams)
	s.store.mu.Unlock()
	if n > 10 {
		t.Fatalf("after requests to 100 streams the store holds %d views, want at most 10: requests kept them", n)
	}
}
