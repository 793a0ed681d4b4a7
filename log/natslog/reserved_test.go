package natslog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
	"github.com/ssehub/ssehub/internal/servicetest"
)

// heartbeat is a reserved event with one topic; subscription one with two.
func heartbeat(i int) *ssehub.Event {
	return &ssehub.Event{Topics: []string{fmt.Sprintf("/.well-known/ssehub/nodes/n%d", i%3)}, Data: fmt.Sprint("hb", i), Private: true}
}

func subscription(i int) *ssehub.Event {
	return &ssehub.Event{Topics: []string{fmt.Sprintf("/.well-known/mercure/subscriptions/t/s%d", i), "/.well-known/mercure/subscriptions"}, Data: fmt.Sprint("sub", i), Private: true}
}

// appendReserved appends n reserved events (subscription events, one in
// four a heartbeat) in batches of up to 5.
func appendReserved(t *testing.T, l *Log, start, n int) []*ssehub.Event {
	t.Helper()
	var out []*ssehub.Event
	for i := start; i < start+n; {
		var batch []*ssehub.Event
		for k := 0; k < 1+i%5 && i < start+n; k, i = k+1, i+1 {
			if i%4 == 3 {
				batch = append(batch, heartbeat(i))
			} else {
				batch = append(batch, subscription(i))
			}
		}
		if err := l.Append(t.Context(), batch...); err != nil {
			t.Fatalf("Append of reserved events: %v", err)
		}
		out = append(out, batch...)
	}
	return out
}

// subjectCounts returns how many messages the stream of l holds on filter.
func subjectCount(t *testing.T, l *Log, filter string) uint64 {
	t.Helper()
	info, err := l.stream.Info(t.Context(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// readPositions returns the positions Read returns, all of them.
func readPositions(t *testing.T, l *Log) map[uint64]*ssehub.Event {
	t.Helper()
	got, err := l.Read(t.Context(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[uint64]*ssehub.Event, len(got))
	for _, e := range got {
		m[e.Pos] = e
	}
	return m
}

// TestReservedSubjects checks where each class is stored: reserved events
// on <Subject>-r, an event with an application topic beside its reserved
// canonical one with the application events, and without MaxReserved every
// event where it always was.
func TestReservedSubjects(t *testing.T) {
	url := sharedURL(t)
	mixed := &ssehub.Event{Topics: []string{"/.well-known/mercure/subscriptions/x/y", "https://example.com/books/1"}, Data: "mixed"}
	for _, tc := range []struct {
		name                 string
		maxReserved          int
		heartbeat, sub, appl string // subjects after ssehub.<stream>.events
	}{
		{"MaxReserved", 10, "-r.t.%016x", "-r.m", ".m"},
		{"without MaxReserved", 0, ".t.%016x", ".m", ".m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := open(t, url, Options{MaxEvents: 100, MaxReserved: tc.maxReserved})
			mix := *mixed
			hb, sub := heartbeat(0), subscription(1)
			if err := l.Append(t.Context(), hb, sub, &mix); err != nil {
				t.Fatal(err)
			}
			base := "ssehub." + l.name + ".events"
			for _, c := range []struct {
				e    *ssehub.Event
				want string
			}{
				{hb, base + fmt.Sprintf(tc.heartbeat, eventlog.TopicHash(hb.Topics[0]))},
				{sub, base + tc.sub},
				{&mix, base + tc.appl},
			} {
				msg, err := l.stream.GetMsg(t.Context(), c.e.Pos-l.offset.Load())
				if err != nil {
					t.Fatal(err)
				}
				if msg.Subject != c.want {
					t.Errorf("event %q is on %s, want %s", c.e.Data, msg.Subject, c.want)
				}
			}
			info, err := l.stream.Info(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(100); tc.maxReserved > 0 {
				want = backstop(100, tc.maxReserved)
				if info.Config.MaxMsgs != want {
					t.Errorf("stream MaxMsgs %d, want the backstop %d", info.Config.MaxMsgs, want)
				}
			} else if info.Config.MaxMsgs != want || len(info.Config.Subjects) != 3 {
				t.Errorf("stream MaxMsgs %d and subjects %v without MaxReserved: want %d and the three of before", info.Config.MaxMsgs, info.Config.Subjects, want)
			}
			// Readers of each topic find them.
			for _, c := range []struct {
				topic string
				want  *ssehub.Event
			}{
				{hb.Topics[0], hb},
				{sub.Topics[0], sub},
				{sub.Topics[1], sub},
				{"https://example.com/books/1", &mix},
				{mix.Topics[0], &mix},
			} {
				got, _, err := l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: []string{c.topic}, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 || got[0].Pos != c.want.Pos {
					t.Errorf("ReadTopics(%s) = %d events, want the one at %d", c.topic, len(got), c.want.Pos)
				}
			}
			// The mixed event counts as an application event.
			removed, err := l.ReservedRemoved(t.Context())
			if err != nil || removed != 0 {
				t.Fatalf("ReservedRemoved = %d, %v before any removal, want 0", removed, err)
			}
		})
	}
}

// TestReservedUpgrade opens a stream written without MaxReserved (its
// reserved events on the application subjects, MaxMsgs = MaxEvents) with
// MaxReserved: nothing is lost, readers of reserved topics find the old
// events and the new, and a flood of reserved events then evicts no
// application event, old or new.
func TestReservedUpgrade(t *testing.T) {
	url := sharedURL(t)
	const maxEvents, maxReserved = 20, 4
	old := open(t, url, Options{MaxEvents: maxEvents})
	oldApp := appendN(t, old, "old", 5)
	oldRes := appendReserved(t, old, 0, 10)
	old.Close()

	l := open(t, url, Options{Stream: old.name, MaxEvents: maxEvents, MaxReserved: maxReserved, trimEveryAppend: true})
	kept := readPositions(t, l)
	for _, e := range append(append([]*ssehub.Event{}, oldApp...), oldRes...) {
		if kept[e.Pos] == nil || kept[e.Pos].Data != e.Data {
			t.Fatalf("event %d %q is gone after the stream was opened with MaxReserved", e.Pos, e.Data)
		}
	}
	first, _, err := l.Bounds(t.Context())
	if err != nil || first != oldApp[0].Pos {
		t.Fatalf("Bounds first = %d, %v after the upgrade, want the first event %d", first, err, oldApp[0].Pos)
	}
	if removed, err := l.ReservedRemoved(t.Context()); err != nil || removed > oldApp[0].Pos {
		t.Fatalf("ReservedRemoved = %d, %v after the upgrade: nothing was removed, want at most %d", removed, err, oldApp[0].Pos)
	}

	newRes := appendReserved(t, l, 100, 20*maxReserved)
	kept = readPositions(t, l)
	// The old reserved events are application events now: 5+10 <= 20.
	for _, e := range append(append([]*ssehub.Event{}, oldApp...), oldRes...) {
		if kept[e.Pos] == nil {
			t.Fatalf("old event %d %q is gone after a flood of %d reserved events", e.Pos, e.Data, len(newRes))
		}
	}
	for i, e := range newRes {
		if (kept[e.Pos] != nil) != (i >= len(newRes)-maxReserved) {
			t.Fatalf("new reserved event %d of %d retained: %v; want the newest %d only", i, len(newRes), kept[e.Pos] != nil, maxReserved)
		}
	}
	// A reader of the subscriptions topic finds the old ones and the
	// newest new ones, in order.
	got, _, err := l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: []string{"/.well-known/mercure/subscriptions"}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for _, e := range append(append([]*ssehub.Event{}, oldRes...), newRes[len(newRes)-maxReserved:]...) {
		if len(e.Topics) == 2 {
			want = append(want, e.Pos)
		}
	}
	if fmt.Sprint(positions(got)) != fmt.Sprint(want) {
		t.Fatalf("ReadTopics of the subscriptions topic = %v, want %v", positions(got), want)
	}

	// New application events push the old events out in order, reserved
	// ones with them.
	newApp := appendN(t, l, "new", maxEvents)
	kept = readPositions(t, l)
	for _, e := range append(append([]*ssehub.Event{}, oldApp...), oldRes...) {
		if kept[e.Pos] != nil {
			t.Fatalf("old event %d %q is still there after %d new application events", e.Pos, e.Data, maxEvents)
		}
	}
	for _, e := range newApp {
		if kept[e.Pos] == nil {
			t.Fatalf("new application event %d is gone", e.Pos)
		}
	}
	if first, _, _ := l.Bounds(t.Context()); first != newApp[0].Pos {
		t.Fatalf("Bounds first = %d, want the oldest application event %d", first, newApp[0].Pos)
	}
}

// TestReservedTrimsInBackground runs the budgets as the hub does (purges on
// the trimmer goroutine): two nodes share a stream, one floods it with
// reserved events while the other appends application events and a Tail
// follows. No application event is evicted or missed by the Tail, and the
// reserved events settle at their budget (plus at most a step per node).
func TestReservedTrimsInBackground(t *testing.T) {
	url := sharedURL(t)
	const maxEvents, maxReserved = 40, 64 // steps: 5 and 8
	opts := Options{MaxEvents: maxEvents, MaxReserved: maxReserved}
	a := open(t, url, opts)
	opts.Stream = a.name
	b := open(t, url, opts)

	var mu sync.Mutex
	var tailed []*ssehub.Event
	ctx, cancel := context.WithCancel(t.Context())
	tailDone := make(chan error, 1)
	go func() {
		tailDone <- a.Tail(ctx, 0, func(batch []*ssehub.Event) error {
			mu.Lock()
			defer mu.Unlock()
			tailed = append(tailed, batch...)
			return nil
		})
	}()

	var wg sync.WaitGroup
	var app []*ssehub.Event
	wg.Go(func() {
		for i := range maxEvents {
			e := event("https://example.com/books/1", fmt.Sprint("app", i))
			if err := a.Append(t.Context(), e); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
			app = append(app, e)
			time.Sleep(time.Millisecond)
		}
	})
	var res []*ssehub.Event
	wg.Go(func() {
		for i := 0; i < 2000; i += 10 {
			batch := make([]*ssehub.Event, 10)
			for k := range batch {
				batch[k] = subscription(i + k)
			}
			if err := b.Append(t.Context(), batch...); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
			res = append(res, batch...)
		}
	})
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	resStep, _ := b.trimSteps()
	servicetest.WaitFor(t, 15*time.Second, "the reserved events to settle at their budget", func() bool {
		return subjectCount(t, a, a.reservedBase()+".>") <= maxReserved+uint64(resStep)
	})
	kept := readPositions(t, a)
	for i, e := range app {
		if kept[e.Pos] == nil {
			t.Fatalf("application event %d is gone after a flood of %d reserved events", i, len(res))
		}
	}
	for i, e := range res[len(res)-maxReserved:] {
		if kept[e.Pos] == nil {
			t.Fatalf("reserved event %d of the newest %d is gone", i, maxReserved)
		}
	}
	// Both nodes tell the same.
	ra, err1 := a.ReservedRemoved(t.Context())
	rb, err2 := b.ReservedRemoved(t.Context())
	if err1 != nil || err2 != nil || ra != rb || ra < res[0].Pos {
		t.Fatalf("ReservedRemoved = %d, %v on one node and %d, %v on the other; want the same, at least %d", ra, err1, rb, err2, res[0].Pos)
	}
	fa, _, _ := a.Bounds(t.Context())
	fb, _, _ := b.Bounds(t.Context())
	if fa != app[0].Pos || fb != fa {
		t.Fatalf("Bounds first = %d and %d on the two nodes, want the oldest application event %d", fa, fb, app[0].Pos)
	}
	// The Tail delivered every application event, in order, once.
	servicetest.WaitFor(t, 15*time.Second, "the tail to deliver the last application event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(tailed) > 0 && tailed[len(tailed)-1].Pos >= app[len(app)-1].Pos
	})
	cancel()
	if err := <-tailDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("Tail returned %v", err)
	}
	var tailedApp []uint64
	for i, e := range tailed {
		if i > 0 && e.Pos <= tailed[i-1].Pos {
			t.Fatalf("Tail delivered %d after %d", e.Pos, tailed[i-1].Pos)
		}
		if !e.Reserved() {
			tailedApp = append(tailedApp, e.Pos)
		}
	}
	if fmt.Sprint(tailedApp) != fmt.Sprint(positions(app)) {
		t.Fatalf("Tail delivered application events %v, want %v", tailedApp, positions(app))
	}
}

// TestReservedSurvivesKill kills the test's own nats-server (SIGKILL) after
// a flood of reserved events and starts it again: the application events,
// the newest reserved ones and what ReservedRemoved says are still there,
// removed events stay removed (nats-server 2.9 brings back messages removed
// with a fast delete, and its stream limit then removed application
// events), and the budgets hold after it.
func TestReservedSurvivesKill(t *testing.T) {
	srv := startServer(t)
	const maxEvents, maxReserved = 10, 5
	opts := Options{MaxEvents: maxEvents, MaxReserved: maxReserved, Timeout: time.Second, trimEveryAppend: true}
	l := open(t, srv.url(), opts)
	all := appendN(t, l, "app", 2*maxEvents) // the older half purged
	res := appendReserved(t, l, 0, 50)
	removed, err := l.ReservedRemoved(t.Context())
	if err != nil || removed < res[len(res)-maxReserved-1].Pos {
		t.Fatalf("ReservedRemoved = %d, %v, want at least %d", removed, err, res[len(res)-maxReserved-1].Pos)
	}
	l.Close()
	srv.Kill()
	srv.Start()

	opts.Stream = l.name
	l = open(t, srv.url(), opts)
	check := func(res []*ssehub.Event) {
		t.Helper()
		kept := readPositions(t, l)
		for i, e := range all {
			if (kept[e.Pos] != nil) != (i >= maxEvents) {
				t.Fatalf("application event %d of %d retained: %v, want the newest %d only", i, len(all), kept[e.Pos] != nil, maxEvents)
			}
		}
		n := 0
		for i, e := range res {
			if kept[e.Pos] != nil {
				n++
			} else if i >= len(res)-maxReserved {
				t.Fatalf("reserved event %d of the newest %d is gone", i, maxReserved)
			}
		}
		if n != maxReserved {
			t.Fatalf("%d reserved events kept, want %d", n, maxReserved)
		}
	}
	check(res)
	if after, err := l.ReservedRemoved(t.Context()); err != nil || after != removed {
		t.Fatalf("ReservedRemoved = %d, %v after the kill, want %d as before", after, err, removed)
	}
	check(append(res, appendReserved(t, l, 50, 30)...))
}
