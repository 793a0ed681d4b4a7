package presence_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/presence"
)

// Close, with the hub still open, publishes the hub's goodbye (a
// heartbeat that has expired), returns once it is in the log, and leaves
// no goroutine behind.
func TestCloseWaitsForGoodbye(t *testing.T) {
	defer goleak.VerifyNone(t)
	l := memlog.New(memlog.Options{})
	defer l.Close()
	h, err := hub.New(l, hub.Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	p := presence.New(h, presence.Options{Heartbeat: time.Hour})
	start := time.Now()
	p.Close(5 * time.Second)
	p.Close(time.Second) // twice is fine

	evs, err := l.Read(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var goodbye bool
	for _, ev := range evs {
		if !strings.HasPrefix(ev.Topics[0], presence.NodesPath) {
			continue
		}
		var n struct {
			Node    string `json:"node"`
			Expires int64  `json:"expires"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &n); err != nil {
			t.Fatal(err)
		}
		if n.Node == p.Node() && n.Expires <= time.Now().UnixMilli() && n.Expires >= start.UnixMilli() {
			goodbye = true
		}
	}
	if !goodbye {
		t.Fatalf("no goodbye heartbeat in the log after Close: %d events", len(evs))
	}
}
