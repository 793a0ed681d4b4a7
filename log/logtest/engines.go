package logtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/servicetest"
)

// The scenarios of the engine logs, whose history lives on a server that
// several hub nodes share (redislog, natslog). Each engine's tests supply
// the logs and the server's life; the scenario is written once here.

// ReopenWith returns a Harness.Reopen for a log of type L: it closes the
// log and opens it again with open, which gets the closed log (to read its
// options).
func ReopenWith[L ssehub.Log](open func(ctx context.Context, closed L) (L, error)) func(*testing.T, ssehub.Log) ssehub.Log {
	return func(t *testing.T, l ssehub.Log) ssehub.Log {
		t.Helper()
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		l2, err := open(t.Context(), l.(L))
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		return l2
	}
}

// OpenError is a case of OpenErrors: opening URL with Opts fails with an
// error that wraps Want.
type OpenError[O any] struct {
	Name string
	URL  string
	Opts O
	Want error
}

// OpenErrors runs every case as a subtest of t: open (an engine's Open)
// must fail as the case says. A log it opens anyway is closed.
func OpenErrors[O any, L ssehub.Log](t *testing.T, open func(ctx context.Context, url string, opts O) (L, error), cases []OpenError[O]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			l, err := open(t.Context(), tc.URL, tc.Opts)
			if err == nil {
				l.Close()
			}
			if !errors.Is(err, tc.Want) {
				t.Fatalf("Open = %v, want %v", err, tc.Want)
			}
		})
	}
}

// SharedPositions appends concurrently through every node (logs on the
// same history, as on several hub nodes), on several topics and with
// multi-topic events, while a Tail runs on nodes[0] from the start: every
// position is given once, the Tail delivers every acknowledged event in
// one increasing order, and every node's Read and Bounds agree with it.
// Events the nodes hold already (appended before) are expected too.
func SharedPositions(t *testing.T, nodes ...ssehub.Log) {
	t.Helper()
	before, err := nodes[0].Read(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	const perNode = 60
	tailed := make(chan []*ssehub.Event, 100)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tailErr := make(chan error, 1)
	go func() {
		tailErr <- nodes[0].Tail(ctx, 0, func(events []*ssehub.Event) error {
			tailed <- events
			return nil
		})
	}()
	var wg sync.WaitGroup
	acked := make(chan *ssehub.Event, len(nodes)*perNode)
	for n, l := range nodes {
		wg.Go(func() {
			for i := range perNode {
				// Several topics and multi-topic events: the tail reads
				// every topic of the history in one order.
				e := &ssehub.Event{Topics: []string{fmt.Sprint("t", i%5)}, Data: fmt.Sprintf("node %d event %d", n, i)}
				if i%7 == 3 {
					e.Topics = append(e.Topics, "u")
				}
				if err := l.Append(t.Context(), e); err != nil {
					t.Errorf("node %d: %v", n, err)
					return
				}
				acked <- e
			}
		})
	}
	wg.Wait()
	close(acked)
	if t.Failed() {
		t.FailNow()
	}
	byPos := map[uint64]string{}
	for e := range acked {
		if other, dup := byPos[e.Pos]; dup {
			t.Fatalf("position %d given to %q and %q", e.Pos, other, e.Data)
		}
		byPos[e.Pos] = e.Data
	}
	want := len(before) + len(byPos)
	var fromTail []*ssehub.Event
	timeout := time.After(10 * time.Second)
	for len(fromTail) < want {
		select {
		case batch := <-tailed:
			fromTail = append(fromTail, batch...)
		case <-timeout:
			seen := map[uint64]bool{}
			for _, e := range fromTail {
				seen[e.Pos] = true
			}
			var missing []string
			for pos, data := range byPos {
				if !seen[pos] {
					missing = append(missing, fmt.Sprint(pos, " ", data))
				}
			}
			all, err := nodes[len(nodes)-1].Read(t.Context(), 0, 1000)
			t.Fatalf("tail delivered %d of %d events; missing acknowledged %q; a Read finds %d (%v)", len(fromTail), want, missing, len(all), err)
		}
	}
	cancel()
	if err := <-tailErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Tail returned %v", err)
	}
	for i, e := range fromTail {
		if d, ok := byPos[e.Pos]; ok && d != e.Data {
			t.Fatalf("tail: position %d has %q, the append acknowledged %q", e.Pos, e.Data, d)
		}
		if i > 0 && e.Pos <= fromTail[i-1].Pos {
			t.Fatalf("tail: position %d after %d", e.Pos, fromTail[i-1].Pos)
		}
	}
	for n, l := range nodes {
		got, err := l.Read(t.Context(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(fromTail) {
			t.Fatalf("node %d reads %d events, the tail saw %d", n, len(got), len(fromTail))
		}
		for i := range got {
			if got[i].Pos != fromTail[i].Pos || got[i].Data != fromTail[i].Data {
				t.Fatalf("node %d event %d: %d %q, tail saw %d %q", n, i, got[i].Pos, got[i].Data, fromTail[i].Pos, fromTail[i].Data)
			}
		}
		first, last, err := l.Bounds(t.Context())
		if err != nil || first != fromTail[0].Pos || last != fromTail[len(fromTail)-1].Pos {
			t.Fatalf("node %d: Bounds = %d, %d, %v; want %d, %d", n, first, last, err, fromTail[0].Pos, fromTail[len(fromTail)-1].Pos)
		}
	}
}

// Down describes an engine log whose server the test owns, for
// Unavailable and Stalled.
type Down struct {
	Log ssehub.Log
	// Server is what the log's errors must name while the server is away
	// (its address or URL).
	Server string
	// Kill ends the server and returns once the log can tell; Restart
	// starts it again and returns once the log can append.
	Kill, Restart func()
	// Stop and Cont pause and resume the server (SIGSTOP, SIGCONT).
	Stop, Cont func()
	// Timeout is the log's Options.Timeout (for Stalled).
	Timeout time.Duration
}

// Unavailable kills the server: Append, Read, Bounds and Ping (the log
// must implement Ping(ctx) error) fail with ssehub.ErrUnavailable naming
// the server, and after the restart Append works again, its position
// follows the one before the outage, and the failed append was never
// stored.
func Unavailable(t *testing.T, d Down) {
	t.Helper()
	pinger, ok := d.Log.(interface{ Ping(context.Context) error })
	if !ok {
		t.Fatalf("%T has no Ping", d.Log)
	}
	before := &ssehub.Event{Topics: []string{"a"}, Data: "before"}
	if err := d.Log.Append(t.Context(), before); err != nil {
		t.Fatal(err)
	}
	d.Kill()
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Append", func(ctx context.Context) error {
			return d.Log.Append(ctx, &ssehub.Event{Topics: []string{"a"}, Data: "lost"})
		}},
		{"Read", func(ctx context.Context) error { _, err := d.Log.Read(ctx, 0, 10); return err }},
		{"Bounds", func(ctx context.Context) error { _, _, err := d.Log.Bounds(ctx); return err }},
		{"Ping", pinger.Ping},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			err := c.call(t.Context())
			if !errors.Is(err, ssehub.ErrUnavailable) {
				t.Fatalf("%s with the server down = %v, want ErrUnavailable", c.name, err)
			}
			if !strings.Contains(err.Error(), d.Server) {
				t.Fatalf("%s error %q does not name the server %s", c.name, err, d.Server)
			}
		})
	}
	d.Restart()
	after := &ssehub.Event{Topics: []string{"a"}, Data: "after"}
	if err := d.Log.Append(t.Context(), after); err != nil {
		t.Fatalf("Append after the server came back: %v", err)
	}
	if after.Pos <= before.Pos {
		t.Fatalf("position after the restart %d, not after %d", after.Pos, before.Pos)
	}
	got, err := d.Log.Read(t.Context(), 0, 10)
	if err != nil || len(got) != 2 || got[0].Data != "before" || got[1].Data != "after" {
		t.Fatalf("Read after restart = %d events, %v; want before and after (the failed append was never acknowledged)", len(got), err)
	}
}

// Stalled pauses the server so that it answers nothing: Append gives up
// after the log's Timeout with ssehub.ErrUnavailable saying so, and works
// again once the server continues. (The stalled event may still be stored
// then: it was never acknowledged, and it is not lost either.)
func Stalled(t *testing.T, d Down) {
	t.Helper()
	if err := d.Log.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, Data: "before"}); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	err := d.Log.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, Data: "stalled"})
	d.Cont()
	says := fmt.Sprintf("did not answer within %v", d.Timeout)
	if !errors.Is(err, ssehub.ErrUnavailable) || !strings.Contains(err.Error(), says) {
		t.Fatalf("Append to a stalled server = %v, want ErrUnavailable saying %q", err, says)
	}
	servicetest.WaitFor(t, 15*time.Second, "an Append to succeed again", func() bool {
		return d.Log.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, Data: "after"}) == nil
	})
}

// SilentServer runs a listener that accepts connections and never answers,
// and calls open with its address (host:port): open must give up with
// ssehub.ErrUnavailable naming the address instead of hanging.
func SilentServer(t *testing.T, open func(ctx context.Context, addr string) error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		<-accepted
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	addr := ln.Addr().String()
	if err := open(t.Context(), addr); !errors.Is(err, ssehub.ErrUnavailable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Open on a server that never answers = %v, want ErrUnavailable naming %s", err, addr)
	}
}

// IDsAcrossNodes checks, on two logs on the same history (as on two hub
// nodes) that implement ssehub.IDIndex, that an id taken on one node is
// refused on the other and found there (also an id with spaces and
// characters that are special to the engines, and a long one), and that
// when the nodes race for one new id in batches, exactly one batch wins
// and the refused ones take no positions.
func IDsAcrossNodes(t *testing.T, a, b ssehub.Log) {
	t.Helper()
	ia, ib := idIndex(t, a), idIndex(t, b)
	e := &ssehub.Event{Topics: []string{"t"}, ID: "urn:node-a/with spaces.and*wild>cards"}
	if err := a.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	again := &ssehub.Event{Topics: []string{"t"}, ID: e.ID}
	if err := b.Append(t.Context(), again); !errors.Is(err, ssehub.ErrDuplicateID) || again.Pos != 0 {
		t.Fatalf("second node: Append of a taken id = %v (pos %d), want ErrDuplicateID", err, again.Pos)
	}
	if pos, found, err := ib.LookupID(t.Context(), e.ID); err != nil || !found || pos != e.Pos {
		t.Fatalf("second node: LookupID = %d, %v, %v; want %d", pos, found, err, e.Pos)
	}
	long := &ssehub.Event{Topics: []string{"t"}, ID: strings.Repeat("x", 1000)}
	if err := b.Append(t.Context(), long); err != nil {
		t.Fatal(err)
	}
	if pos, found, err := ia.LookupID(t.Context(), long.ID); err != nil || !found || pos != long.Pos {
		t.Fatalf("LookupID of a long id = %d, %v, %v; want %d", pos, found, err, long.Pos)
	}

	const perNode = 4
	var wg sync.WaitGroup
	results := make(chan error, 2*perNode)
	for _, l := range []ssehub.Log{a, b} {
		for range perNode {
			wg.Go(func() {
				results <- l.Append(t.Context(), &ssehub.Event{Topics: []string{"t"}, ID: "urn:race"}, &ssehub.Event{Topics: []string{"t"}})
			})
		}
	}
	wg.Wait()
	close(results)
	if won := winners(t, results); won != 1 {
		t.Fatalf("%d appends of one id on two nodes succeeded, want 1", won)
	}
	if _, last, err := a.Bounds(t.Context()); err != nil || last != long.Pos+2 {
		t.Fatalf("Bounds last = %d, %v; want %d: refused appends took positions", last, err, long.Pos+2)
	}
}
