package streams

import (
	"fmt"
	"testing"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/memlog"
)

// The store keeps at most max streams, never forgetting one in use, and a
// reader that stops waiting leaves nothing behind.
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

	_, done := s.wait("/v1/stream/a")
	woken, _ := s.wait("/v1/stream/b")
	done()
	if _, ok := s.waiters["/v1/stream/a"]; ok {
		t.Fatal("a reader that stopped waiting is still registered")
	}
	s.observe(&ssehub.Event{Topics: []string{"/v1/stream/b"}, Meta: appendMeta})
	select {
	case <-woken:
	default:
		t.Fatal("an event of the topic did not wake its reader")
	}
	if len(s.waiters) != 0 {
		t.Fatalf("waiters left: %v", s.waiters)
	}
}
