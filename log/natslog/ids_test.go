package natslog

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
	"github.com/ssehub/ssehub/log/logtest"
)

// TestIDsAcrossNodes: an id taken on one node is refused on another and
// found there, also when nodes race for one id (logtest.IDsAcrossNodes).
func TestIDsAcrossNodes(t *testing.T) {
	url := sharedURL(t)
	a := open(t, url, Options{})
	b := open(t, url, Options{Stream: a.name})
	logtest.IDsAcrossNodes(t, a, b)
}

// TestIDsAfterRetention checks that the id of an event retention removed is
// not found and free again.
func TestIDsAfterRetention(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{MaxEvents: 3})
	old := &ssehub.Event{Topics: []string{"t"}, ID: "urn:old"}
	if err := l.Append(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "filler", 3)
	if pos, found, err := l.LookupID(t.Context(), "urn:old"); err != nil || found {
		t.Fatalf("LookupID of a trimmed event = %d, %v, %v; want not found", pos, found, err)
	}
	again := &ssehub.Event{Topics: []string{"t"}, ID: "urn:old"}
	if err := l.Append(t.Context(), again); err != nil {
		t.Fatalf("Append reusing the id of a trimmed event: %v", err)
	}
	if pos, found, err := l.LookupID(t.Context(), "urn:old"); err != nil || !found || pos != again.Pos {
		t.Fatalf("LookupID = %d, %v, %v; want %d", pos, found, err, again.Pos)
	}
	// The index stream keeps one message per id.
	info, err := l.idStream.Info(t.Context())
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("id index holds %v messages (%v), want 1", info.State.Msgs, err)
	}
}

// TestIDReservations checks that an id whose append is in flight counts as
// taken and that a refused batch leaves no reservation behind.
func TestIDReservations(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{})
	js := rawJS(t, url)
	if _, err := js.Publish(t.Context(), l.idSubject("urn:in-flight"), []byte(pending)); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"t"}, ID: "urn:in-flight"}); !errors.Is(err, ssehub.ErrDuplicateID) {
		t.Fatalf("Append of an id in flight: %v, want ErrDuplicateID", err)
	}
	if _, found, err := l.LookupID(t.Context(), "urn:in-flight"); err != nil || found {
		t.Fatalf("LookupID of an id in flight: found %v, %v", found, err)
	}
	// A reservation is taken over only long after any append gave up.
	l.opts.Timeout = time.Millisecond
	ttl := l.pendingTTL()
	l.opts.Timeout = eventlog.DefaultTimeout
	if ttl < 30*time.Second {
		t.Fatalf("pendingTTL = %v, want at least 30s", ttl)
	}
	// A refused batch releases what it reserved.
	taken := &ssehub.Event{Topics: []string{"t"}, ID: "urn:taken"}
	if err := l.Append(t.Context(), taken); err != nil {
		t.Fatal(err)
	}
	err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"t"}, ID: "urn:fresh"}, &ssehub.Event{Topics: []string{"t"}, ID: "urn:taken"})
	if !errors.Is(err, ssehub.ErrDuplicateID) {
		t.Fatalf("Append: %v, want ErrDuplicateID", err)
	}
	if _, err := l.idStream.GetLastMsgForSubject(t.Context(), l.idSubject("urn:fresh")); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("the refused batch left its reservation: %v", err)
	}
}
