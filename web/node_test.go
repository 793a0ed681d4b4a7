package web_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/servicetest"
)

// nodeScript subscribes with the npm package's file under Node (which has
// no EventSource, so the helper long-polls), publishes two events with
// publish(), and prints what it receives.
const nodeScript = `
import { subscribe, publish } from './js/ssehub.js';
const hub = process.argv[1] + '/.well-known/mercure';
const got = [];
const sub = subscribe(hub, ['a'], {
  onEvent: (e) => {
    got.push(e.id + ' ' + e.type + ' ' + e.data);
    if (got.length === 2) {
      console.log(got.join('\n'));
      console.log('mode ' + sub.mode + ', last id ' + sub.lastEventId);
      sub.close();
    }
  },
  onState: async (s) => {
    if (s !== 'open' || sub.opened) return;
    sub.opened = true;
    await publish(hub, process.argv[2], { topic: 'a', data: 'from node' });
    await publish(hub, process.argv[2], { topic: ['b', 'a'], type: 'message', data: 'second' });
  },
  onError: (e) => { console.error(e.message); process.exit(1); },
}, { pollTimeout: 2000 });
`

func TestNodePackage(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		servicetest.Unavailable(t, "node is not installed: "+err.Error())
	}
	f := newFakeHub()
	srv := serve(t, f)
	t.Cleanup(f.close)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--input-type=module", "-e", nodeScript, srv.URL, fakePublisherToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	want := "1 message from node\n2 message second\nmode poll, last id 2\n"
	if string(out) != want {
		t.Fatalf("node printed:\n%s\nwant:\n%s", out, want)
	}
	if strings.Contains(string(out), "Warning") {
		t.Error(string(out))
	}
}
