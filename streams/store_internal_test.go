package streams

import (
	"fmt"
	"testing"

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
