package streams

import (
	"fmt"
	"testing"

	"github.com/ssehub/ssehub/log/memlog"
)

// The store keeps at most max streams, never forgetting one in use.
func TestStoreIsBounded(t *testing.T) {
	s := newStore(memlog.New(memlog.Options{}), 10)
	busy := s.get("/v1/stream/busy")
	busy.writeMu.Lock()
	for i := range 100 {
		s.get(fmt.Sprintf("/v1/stream/%d", i))
	}
	if n := len(s.streams); n > 10 {
		t.Fatalf("the store holds %d streams, want at most 10", n)
	}
	if s.get("/v1/stream/busy") != busy {
		t.Fatal("a stream in use was forgotten")
	}
	busy.writeMu.Unlock()

}
