package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/servicetest"
)

// nodeDir is the npm project of the Node tests (package.json and
// package-lock.json; node_modules is installed with npm ci).
const nodeDir = "../../web/test"

// requireNode returns the path of node (20 or later) with the npm packages
// of nodeDir installed, running npm ci when they are missing. Without node
// or npm the test is skipped, except with CI=true, where it fails.
func requireNode(t *testing.T) string {
	t.Helper()
	missing := func(msg string, args ...any) {
		t.Helper()
		servicetest.Unavailable(t, fmt.Sprintf(msg, args...))
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("this test needs Node 20 or later (apt-get install nodejs npm): %v", err)
	}
	out, err := exec.Command(node, "--version").Output()
	m := regexp.MustCompile(`^v(\d+)\.`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("node --version: %q %v", out, err)
	}
	if major, _ := strconv.Atoi(string(m[1])); major < 20 {
		missing("this test needs Node 20 or later, found %s", out)
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "eventsource", "package.json")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			missing("this test needs npm to install the eventsource package (apt-get install npm): %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = nodeDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", nodeDir, err, out)
		}
	}
	return node
}

// nodeRecord is a line printed by web/test/eventsource.mjs.
type nodeRecord struct {
	Kind        string `json:"kind"` // connect, open, event, error
	LastEventID string `json:"lastEventId"`
	Type        string `json:"type"`
	ID          string `json:"id"`
	Data        string `json:"data"`
	Message     string `json:"message"`
	At          int64  `json:"at"` // Unix ms
}

// nodeClient is a running eventsource.mjs.
type nodeClient struct {
	mu      sync.Mutex
	records []nodeRecord
	changed chan struct{} // a record arrived
	stderr  servicetest.LogBuffer
}

func startNodeClient(t *testing.T, node string, args ...string) *nodeClient {
	t.Helper()
	c := &nodeClient{changed: make(chan struct{}, 1)}
	cmd := exec.Command(node, append([]string{"eventsource.mjs"}, args...)...)
	cmd.Dir = nodeDir
	cmd.Stderr = &c.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r nodeRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				r = nodeRecord{Kind: "garbage", Data: sc.Text()}
			}
			c.mu.Lock()
			c.records = append(c.records, r)
			c.mu.Unlock()
			select {
			case c.changed <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the script stops when its stdin ends
		exited := make(chan error, 1)
		go func() { <-read; exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("node: %v\n%s", err, c.stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("node did not stop when its stdin closed")
		}
		if t.Failed() || testing.Verbose() {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, r := range c.records {
				t.Logf("node: %+v", r)
			}
			t.Logf("node stderr: %s", c.stderr.String())
		}
	})
	return c
}

// waitUntil waits until ok holds for the records so far, and returns them.
func (c *nodeClient) waitUntil(t *testing.T, what string, ok func([]nodeRecord) bool) []nodeRecord {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		c.mu.Lock()
		recs := slices.Clone(c.records)
		c.mu.Unlock()
		if ok(recs) {
			return recs
		}
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("node: waiting for %s: timed out", what)
		}
	}
}

// nodeEvents lists the events of records as "id type data", leaving out the
// hub's reconnect instructions.
func nodeEvents(recs []nodeRecord) []string {
	out := []string{}
	for _, r := range recs {
		if r.Kind == "event" && r.Type != "ssehub.reconnect" {
			out = append(out, r.ID+" "+r.Type+" "+r.Data)
		}
	}
	return out
}

func count(recs []nodeRecord, kind string) int {
	n := 0
	for _, r := range recs {
		if r.Kind == kind {
			n++
		}
	}
	return n
}

// A non-browser client, the npm eventsource package under Node, receives
// the hub's events (several types), and when the hub is killed (kill -9)
// and restarted on the same port, it reconnects with the id of the last
// event it had and receives the events published in between, once.
func TestNodeEventSource(t *testing.T) {
	node := requireNode(t)
	data := t.TempDir()
	flags := []string{"--retry", "2s"} // streams tell clients to wait 2s after a drop
	h := startHub(t, data, flags...)
	flags = append(flags, "--addr", "127.0.0.1:"+hubPort(t, h))
	c := startNodeClient(t, node, h.base+"/.well-known/mercure?topic=jobs", "created")
	c.waitUntil(t, "the stream to open", func(r []nodeRecord) bool { return count(r, "open") == 1 })

	var want published
	want.add(t, h, "jobs", "", "one")
	want.add(t, h, "jobs", "created", "two\nlines")
	h.publish(t, url.Values{"topic": {"elsewhere"}, "data": {"another topic"}})
	last := want.add(t, h, "jobs", "", "three ✓")
	recs := c.waitUntil(t, "the events", func(r []nodeRecord) bool { return len(nodeEvents(r)) >= len(want) })
	if got := nodeEvents(recs); !slices.Equal(got, want) {
		t.Fatalf("node got\n%q\nwant\n%q", got, want)
	}

	if err := h.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("the hub exited cleanly after kill -9?")
	}
	h = startHub(t, data, flags...)
	want.add(t, h, "jobs", "created", "while away 1")
	want.add(t, h, "jobs", "", "while away 2")
	publishedAt := time.Now().UnixMilli()
	recs = c.waitUntil(t, "the events published while away", func(r []nodeRecord) bool {
		return len(nodeEvents(r)) >= len(want) && count(r, "open") == 2
	})
	if got := nodeEvents(recs); !slices.Equal(got, want) {
		t.Fatalf("node got\n%q\nwant\n%q", got, want)
	}
	// The connection that opened the second time.
	var resumed nodeRecord
	opens := 0
	for _, r := range recs {
		if r.Kind == "connect" {
			resumed = r
		}
		if r.Kind == "open" {
			if opens++; opens == 2 {
				break
			}
		}
	}
	if resumed.LastEventID != last {
		t.Errorf("node reconnected with Last-Event-ID %q, want %q", resumed.LastEventID, last)
	}
	if resumed.At < publishedAt {
		t.Errorf("node came back at %d, before the publishes ended at %d: the resume was not tested", resumed.At, publishedAt)
	}
}
