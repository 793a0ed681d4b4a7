package redislog

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/ssehub"
)

// The reserved class (Options.MaxReserved): what the conformance suite's
// Reserved/* subtests cannot see.

// subEvent is the i-th reserved event: a subscription event with a topic
// of its own, as the hub publishes one per subscription.
func subEvent(i int) *ssehub.Event {
	return &ssehub.Event{
		Topics:  []string{fmt.Sprintf("/.well-known/mercure/subscriptions/t/s%d", i), "/.well-known/mercure/subscriptions"},
		Data:    fmt.Sprintf(`{"subscription":%d}`, i),
		Private: true,
	}
}

// mixed returns n events from number start on, every third an application
// event of topic "app/<k%3>", the others reserved.
func mixed(start, n int) []*ssehub.Event {
	events := make([]*ssehub.Event, n)
	for i := range events {
		if k := start + i; k%3 == 0 {
			events[i] = event(fmt.Sprintf("app/%d", k%9/3), fmt.Sprintf("app %d", k))
		} else {
			events[i] = subEvent(k)
		}
	}
	return events
}

// readAll returns every event Read returns, in pages of page.
func readAll(t *testing.T, l *Log, page int) []*ssehub.Event {
	t.Helper()
	var out []*ssehub.Event
	var after uint64
	for {
		events, err := l.Read(t.Context(), after, page)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 {
			return out
		}
		for _, e := range events {
			if e.Pos <= after {
				t.Fatalf("Read after %d returned position %d", after, e.Pos)
			}
			after = e.Pos
		}
		out = append(out, events...)
	}
}

// streamLen returns the number of entries of a stream.
func streamLen(t *testing.T, l *Log, stream string) int64 {
	t.Helper()
	n, err := l.client.XLen(t.Context(), stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReservedStored checks the layout: with MaxReserved, reserved events
// go to a stream of their own (batches mixing both classes too), indexed
// in sets of their own; reads merge both streams in position order. With
// MaxReserved 0 everything stays in the one stream, as before.
func TestReservedStored(t *testing.T) {
	url := sharedURL(t)
	for _, maxReserved := range []int{0, 1000} {
		t.Run(fmt.Sprintf("MaxReserved=%d", maxReserved), func(t *testing.T) {
			l := openUnmaintained(t, url, Options{MaxReserved: maxReserved})
			var all []*ssehub.Event
			for b, size := range []int{1, 7, 2, 30, 5} {
				batch := mixed(100*b, size)
				if err := l.Append(t.Context(), batch...); err != nil {
					t.Fatal(err)
				}
				all = append(all, batch...)
			}
			nres := 0
			for _, e := range all {
				if e.Reserved() {
					nres++
				}
			}
			wantApp, wantRes := len(all)-nres, nres
			if maxReserved == 0 {
				wantApp, wantRes = len(all), 0
			}
			if n, r := streamLen(t, l, l.stream), streamLen(t, l, l.reserved); n != int64(wantApp) || r != int64(wantRes) {
				t.Fatalf("the stream holds %d entries and the reserved stream %d; want %d and %d", n, r, wantApp, wantRes)
			}
			for _, page := range []int{1, 4, 1000} {
				if got := readAll(t, l, page); summary(got) != summary(all) {
					t.Fatalf("Read in pages of %d:\n%s\nwant:\n%s", page, summary(got), summary(all))
				}
			}
			if diff := indexDiff(t, l); diff != "" {
				t.Fatal(diff)
			}
			checkReads(t, l)
			first, last, err := l.Bounds(t.Context())
			if err != nil || first != all[0].Pos || last != all[len(all)-1].Pos {
				t.Fatalf("Bounds = %d, %d, %v; want %d, %d", first, last, err, all[0].Pos, all[len(all)-1].Pos)
			}
			if removed, err := l.ReservedRemoved(t.Context()); err != nil || removed != 0 {
				t.Fatalf("ReservedRemoved = %d, %v; want 0 (nothing removed)", removed, err)
			}
		})
	}
}

// TestReservedTrimmedFromTheMiddle floods a log with reserved events: they
// are trimmed to their budget from the middle of the log, the application
// events around them stay, ReservedRemoved reports the removal, and the
// sweep removes the trimmed events from the index (the sets of their own
// topics, too) without touching the application events'.
func TestReservedTrimmedFromTheMiddle(t *testing.T) {
	url := sharedURL(t)
	l := openUnmaintained(t, url, Options{MaxEvents: 1000, MaxReserved: 10})
	before := []*ssehub.Event{event("app/0", "before"), event("app/1", "before")}
	if err := l.Append(t.Context(), before...); err != nil {
		t.Fatal(err)
	}
	var res []*ssehub.Event
	for i := range 50 {
		batch := []*ssehub.Event{subEvent(8 * i), subEvent(8*i + 1), subEvent(8*i + 2), subEvent(8*i + 3), subEvent(8*i + 4), subEvent(8*i + 5), subEvent(8*i + 6), subEvent(8*i + 7)}
		if err := l.Append(t.Context(), batch...); err != nil {
			t.Fatal(err)
		}
		res = append(res, batch...)
	}
	after := event("app/0", "after")
	if err := l.Append(t.Context(), after); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, l, 100)
	if len(got) > 3+10+100 || len(got) < 3+10 {
		t.Fatalf("the log holds %d events, want the 3 application events and 10 to 110 reserved", len(got))
	}
	if got[0].Pos != before[0].Pos || got[1].Pos != before[1].Pos || got[len(got)-1].Pos != after.Pos {
		t.Fatalf("the application events are not all retained:\n%s", summary(got))
	}
	oldest := got[2].Pos // the oldest reserved event retained
	removed, err := l.ReservedRemoved(t.Context())
	if err != nil || removed != oldest-1 || removed < res[0].Pos {
		t.Fatalf("ReservedRemoved = %d, %v; want %d, the position before the oldest reserved event retained", removed, err, oldest-1)
	}
	if first, _, err := l.Bounds(t.Context()); err != nil || first != before[0].Pos {
		t.Fatalf("Bounds first = %d, %v; want %d", first, err, before[0].Pos)
	}
	if n, _ := l.client.Exists(t.Context(), l.topicKey(res[0].Topics[0], true)).Result(); n != 1 {
		t.Fatal("test bug: the first subscription's topic has no set before the sweep")
	}
	checkReads(t, l) // stale entries are not read
	if err := l.sweepTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := indexDiff(t, l); diff != "" {
		t.Fatal(diff)
	}
	checkReads(t, l)
}

// TestReservedUpgrade writes a log as the previous versions did (one
// stream, reserved events in it; part of it even without the topic
// index), then opens it with MaxReserved and floods it with reserved
// events: nothing of the old log is lost, the old reserved events stay
// where they are, and reads, the index build and the tail see both
// streams in order.
func TestReservedUpgrade(t *testing.T) {
	url := sharedURL(t)
	prefix := newPrefix(t, url)
	older := openUnmaintained(t, url, Options{Prefix: prefix})
	var all []*ssehub.Event
	batch := mixed(0, 30)
	appendOld(t, older, batch...) // the version before the index
	all = append(all, batch...)
	prev := openUnmaintained(t, url, Options{Prefix: prefix}) // the version before MaxReserved
	for b := range 3 {
		batch := mixed(100+10*b, 10)
		if err := prev.Append(t.Context(), batch...); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	l := openUnmaintained(t, url, Options{Prefix: prefix, MaxEvents: 1000, MaxReserved: 5})
	checkReads(t, l) // the index lags: reads scan both streams after the marker
	var flood []*ssehub.Event
	for i := range 30 {
		batch := mixed(1000+7*i, 7)
		if err := l.Append(t.Context(), batch...); err != nil {
			t.Fatal(err)
		}
		flood = append(flood, batch...)
	}
	checkReads(t, l)
	if err := l.buildIndex(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, l, 50)
	byPos := map[uint64]*ssehub.Event{}
	for _, e := range got {
		byPos[e.Pos] = e
	}
	for _, e := range all {
		if g := byPos[e.Pos]; g == nil || g.Data != e.Data {
			t.Fatalf("event %d of the old log (%q) is gone after the upgrade", e.Pos, e.Data)
		}
	}
	nres := 0
	for _, e := range flood {
		if g := byPos[e.Pos]; !e.Reserved() && (g == nil || g.Data != e.Data) {
			t.Fatalf("application event %d appended after the upgrade is gone", e.Pos)
		}
		if byPos[e.Pos] != nil && e.Reserved() {
			nres++
		}
	}
	if nres > 5+100 || streamLen(t, l, l.reserved) != int64(nres) {
		t.Fatalf("%d reserved events of the flood retained, %d in the reserved stream; want at most 105, all there", nres, streamLen(t, l, l.reserved))
	}
	if err := l.sweepTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := indexDiff(t, l); diff != "" {
		t.Fatal(diff)
	}
	checkReads(t, l)
	// The tail from the start delivers what Read does.
	var tailed []*ssehub.Event
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	l.block = 50 * time.Millisecond
	err := l.Tail(ctx, 0, func(events []*ssehub.Event) error {
		tailed = append(tailed, events...)
		if len(tailed) >= len(got) {
			cancel()
		}
		return nil
	})
	if err != context.Canceled {
		t.Fatalf("Tail = %v", err)
	}
	if summary(tailed) != summary(got) {
		t.Fatalf("Tail delivered:\n%s\nRead:\n%s", summary(tailed), summary(got))
	}
}

// TestReservedTail checks that a tail blocked in its XREAD misses no event
// when one append stores events of both streams: Redis before 7.2 answers
// a blocked XREAD with the entries of one stream only, which may be newer
// than the other's. Then concurrent appends from several goroutines: the
// tail delivers every position once, in order, as Read has them.
func TestReservedTail(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{MaxReserved: 100_000})
	l.block = 10 * time.Second // the tail blocks while the test appends
	if err := l.Append(t.Context(), event("app/0", "start")); err != nil {
		t.Fatal(err)
	}
	_, start, _ := l.Bounds(t.Context())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type delivery struct{ events []*ssehub.Event }
	ch := make(chan delivery, 1000)
	done := make(chan error, 1)
	go func() {
		done <- l.Tail(ctx, start, func(events []*ssehub.Event) error {
			ch <- delivery{slices.Clone(events)}
			return nil
		})
	}()
	var tailed []*ssehub.Event
	wait := func(last uint64) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for len(tailed) == 0 || tailed[len(tailed)-1].Pos < last {
			select {
			case d := <-ch:
				tailed = append(tailed, d.events...)
			case err := <-done:
				t.Fatalf("Tail returned %v", err)
			case <-timeout:
				t.Fatalf("the tail did not deliver position %d within 10s; it delivered:\n%s", last, summary(tailed))
			}
		}
	}
	for i := range 5 {
		time.Sleep(100 * time.Millisecond) // the tail blocks again
		batch := []*ssehub.Event{subEvent(3 * i), event("app/1", fmt.Sprint(i)), subEvent(3*i + 1), subEvent(3*i + 2)}
		if err := l.Append(t.Context(), batch...); err != nil {
			t.Fatal(err)
		}
		wait(batch[len(batch)-1].Pos)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if err := l.Append(t.Context(), mixed(10_000*(g+1)+3*i, 1+i%4)...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	_, last, _ := l.Bounds(t.Context())
	wait(last)
	var want []*ssehub.Event
	for _, e := range readAll(t, l, 100) {
		if e.Pos > start {
			want = append(want, e)
		}
	}
	if summary(tailed) != summary(want) {
		t.Fatalf("the tail delivered:\n%s\nRead has:\n%s", summary(tailed), summary(want))
	}
}

// TestReservedSurvivesKill kills the test's own redis-server (SIGKILL,
// appendfsync always) after a flood of reserved events: after the restart
// the log holds what it held, Bounds and ReservedRemoved say what they
// said, and the budgets hold for what is appended next.
func TestReservedSurvivesKill(t *testing.T) {
	srv := startServer(t)
	opts := Options{MaxEvents: 20, MaxReserved: 5, Timeout: time.Second}
	l := openUnmaintained(t, srv.url(), opts)
	var all []*ssehub.Event
	for i := range 40 {
		batch := mixed(5*i, 5)
		if err := l.Append(t.Context(), batch...); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	type state struct {
		events       string
		first, last  uint64
		removed      uint64
		app, reserve int64
	}
	read := func(l *Log) state {
		var s state
		s.events = summary(readAll(t, l, 1000))
		s.first, s.last, _ = l.Bounds(t.Context())
		s.removed, _ = l.ReservedRemoved(t.Context())
		s.app, s.reserve = streamLen(t, l, l.stream), streamLen(t, l, l.reserved)
		return s
	}
	before := read(l)
	if before.removed == 0 || before.reserve == 0 || before.reserve >= 100 {
		t.Fatalf("test bug: the flood did not trim the reserved stream: %+v", before)
	}
	l.Close()
	srv.Kill()
	srv.Start()
	opts.Prefix = l.opts.Prefix
	l = openUnmaintained(t, srv.url(), opts)
	if after := read(l); after != before {
		t.Fatalf("after the kill the log is\n%+v\nwant\n%+v", after, before)
	}
	if err := l.Append(t.Context(), mixed(1000, 300)...); err != nil {
		t.Fatal(err)
	}
	if removed, _ := l.ReservedRemoved(t.Context()); removed <= before.removed {
		t.Fatalf("ReservedRemoved = %d after another flood, want more than %d", removed, before.removed)
	}
	if n := streamLen(t, l, l.reserved); n > 5+100 {
		t.Fatalf("the reserved stream holds %d entries after the restart, budget 5 (+100)", n)
	}
}

// TestReservedMaxAge checks that MaxAge trims both streams, and what
// Bounds and ReservedRemoved say when a stream is left empty.
func TestReservedMaxAge(t *testing.T) {
	url := sharedURL(t)
	l := openUnmaintained(t, url, Options{MaxAge: time.Hour, MaxReserved: 1000})
	old := time.Now().Add(-2 * time.Hour)
	oldApp := &ssehub.Event{Topics: []string{"app/0"}, Data: "old", Time: old}
	oldRes := subEvent(1)
	oldRes.Time = old
	if err := l.Append(t.Context(), subEvent(0), oldApp, oldRes); err != nil {
		t.Fatal(err)
	}
	// subEvent(0) has a fresh Time, but the reserved stream is trimmed
	// from its oldest end.
	res := subEvent(2)
	if err := l.Append(t.Context(), res); err != nil {
		t.Fatal(err)
	}
	if err := l.trimAge(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The application stream is empty: first is the oldest reserved
	// event after the newest application event removed.
	first, last, err := l.Bounds(t.Context())
	if err != nil || first != oldRes.Pos || last != res.Pos {
		t.Fatalf("Bounds = %d, %d, %v; want %d, %d", first, last, err, oldRes.Pos, res.Pos)
	}
	if removed, err := l.ReservedRemoved(t.Context()); err != nil || removed != 0 {
		t.Fatalf("ReservedRemoved = %d, %v; want 0", removed, err)
	}
	expired := subEvent(3)
	expired.Time = old
	if err := l.Append(t.Context(), expired); err != nil {
		t.Fatal(err)
	}
	if err := l.client.XTrimMinID(t.Context(), l.reserved, entryID(expired.Pos)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.trimAge(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := streamLen(t, l, l.reserved); n != 0 {
		t.Fatalf("the reserved stream holds %d entries after trimming, want 0", n)
	}
	if removed, err := l.ReservedRemoved(t.Context()); err != nil || removed != expired.Pos {
		t.Fatalf("ReservedRemoved = %d, %v; want %d, the newest reserved event", removed, err, expired.Pos)
	}
	if first, _, err := l.Bounds(t.Context()); err != nil || first != 0 {
		t.Fatalf("Bounds first = %d, %v with nothing retained; want 0", first, err)
	}
}

// TestReservedIDs checks the id index across the streams: a reserved
// event's id is taken while it is retained and free once it is trimmed.
func TestReservedIDs(t *testing.T) {
	url := sharedURL(t)
	l := openUnmaintained(t, url, Options{MaxReserved: 1})
	e := subEvent(0)
	e.ID = "urn:presence"
	if err := l.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if pos, found, err := l.LookupID(t.Context(), e.ID); err != nil || !found || pos != e.Pos {
		t.Fatalf("LookupID = %d, %v, %v; want %d", pos, found, err, e.Pos)
	}
	again := subEvent(1)
	again.ID = e.ID
	if err := l.Append(t.Context(), again); err == nil {
		t.Fatal("a retained reserved event's id was given again")
	}
	var flood []*ssehub.Event
	for i := range 300 {
		flood = append(flood, subEvent(10+i))
	}
	if err := l.Append(t.Context(), flood...); err != nil {
		t.Fatal(err)
	}
	if _, found, err := l.LookupID(t.Context(), e.ID); err != nil || found {
		t.Fatalf("LookupID of a trimmed reserved event = %v, %v; want not found", found, err)
	}
	if err := l.Append(t.Context(), again); err != nil {
		t.Fatalf("the id of a trimmed reserved event is not free: %v", err)
	}
}

// Without a reserved budget ReservedRemoved is 0 and costs no round trip:
// the hub asks it for every batch of a shared replay scan.
func TestReservedRemovedWithoutBudgetIsFree(t *testing.T) {
	url := sharedURL(t)
	l := openUnmaintained(t, url, Options{Prefix: newPrefix(t, url)})
	var calls atomic.Int64
	l.client.AddHook(countHook{&calls})
	for range 10 {
		if r, err := l.ReservedRemoved(t.Context()); err != nil || r != 0 {
			t.Fatalf("ReservedRemoved = %d, %v; want 0, nil", r, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("ReservedRemoved without MaxReserved sent %d commands to Redis, want none", n)
	}
}

// countHook counts the commands a client sends.
type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}
