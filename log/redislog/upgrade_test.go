package redislog

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub"
)

// oldAppendScript is the append script of the version before the topic
// index (ae01f79~1), verbatim: tests write streams with it as a node of
// that version would, to check the upgrade.
var oldAppendScript = redis.NewScript(`
local maxlen = ARGV[1]
local function uvarint(n)
	local t = {}
	while n >= 128 do
		t[#t+1] = string.char(n % 128 + 128)
		n = math.floor(n / 128)
	end
	t[#t+1] = string.char(n)
	return table.concat(t)
end
local function retained(p)
	return #redis.call('XRANGE', KEYS[1], p .. '-0', p .. '-0') > 0
end
local function alloc(k)
	local last = redis.call('INCRBY', KEYS[2], k)
	if last == k then
		local base = nil
		if redis.call('EXISTS', KEYS[1]) == 1 then
			local info = redis.call('XINFO', 'STREAM', KEYS[1])
			for i = 1, #info, 2 do
				if info[i] == 'last-generated-id' then
					base = tonumber(string.match(info[i+1], '^(%d+)'))
				end
			end
		end
		if base == nil or base == 0 then
			local t = redis.call('TIME')
			base = tonumber(t[1]) * 1000000 + tonumber(t[2])
		end
		last = redis.call('INCRBY', KEYS[2], base)
	end
	return last - k + 1
end
local out = {}
local a = 2
while a <= #ARGV do
	local k = tonumber(ARGV[a])
	local dup = 0
	for i = 1, k do
		local id = ARGV[a + 2*i - 1]
		if id ~= '' then
			local p = redis.call('HGET', KEYS[3], id)
			if p and retained(p) then
				dup = i
				break
			end
		end
	end
	if dup > 0 then
		out[#out+1] = 0
		out[#out+1] = dup
	else
		local first = alloc(k)
		for i = 1, k do
			local pos = string.format('%d', first + i - 1)
			local id = ARGV[a + 2*i - 1]
			local e = ARGV[a + 2*i]
			local v = string.sub(e, 1, 2) .. uvarint(first + i - 1) .. string.sub(e, 4)
			if maxlen ~= '0' then
				redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, pos .. '-0', 'e', v)
			else
				redis.call('XADD', KEYS[1], pos .. '-0', 'e', v)
			end
			if id ~= '' then
				redis.call('HSET', KEYS[3], id, pos)
			end
		end
		out[#out+1] = first
		out[#out+1] = 0
	end
	a = a + 1 + 2*k
end
return out
`)

// appendOld stores events in one call of the old append script, as a node
// of the previous version did (no index), and sets their Pos.
func appendOld(t testing.TB, l *Log, events ...*ssehub.Event) {
	t.Helper()
	args := []any{strconv.Itoa(l.opts.MaxEvents), len(events)}
	for _, e := range events {
		c := *e
		c.Pos = 0
		if c.Time.IsZero() {
			c.Time = time.Now()
		}
		enc, _ := c.AppendBinary(nil)
		args = append(args, e.ID, enc)
	}
	res, err := oldAppendScript.Run(t.Context(), l.client, []string{l.stream, l.counter, l.ids}, args...).Int64Slice()
	if err != nil || len(res) != 2 || res[0] == 0 {
		t.Fatalf("old append script: %v, %v", res, err)
	}
	for i, e := range events {
		e.Pos = uint64(res[0]) + uint64(i)
	}
}

// sample returns n events for the upgrade tests, from number start on:
// topics "t/0".."t/9", every third also "shared", every seventh with an id.
func sample(start, n int) []*ssehub.Event {
	events := make([]*ssehub.Event, n)
	for i := range events {
		k := start + i
		e := &ssehub.Event{Topics: []string{fmt.Sprintf("t/%d", k%10)}, Data: fmt.Sprintf("event %d", k)}
		if k%3 == 0 {
			e.Topics = append(e.Topics, "shared")
		}
		if k%7 == 0 {
			e.ID = fmt.Sprintf("urn:%d", k)
		}
		events[i] = e
	}
	return events
}

// TestUpgrade writes a stream as the previous version did, then opens it
// with this one: reads by topic are right before, during and after the
// index is built chunk by chunk while both versions keep appending, ids
// still resolve, and once built the index holds exactly the stream.
func TestUpgrade(t *testing.T) {
	url := sharedURL(t)
	prefix := newPrefix(t, url)
	old := openUnmaintained(t, url, Options{Prefix: prefix}) // its client runs the old script
	var stored []*ssehub.Event
	for b := range 5 {
		batch := sample(100*b, 100)
		appendOld(t, old, batch...)
		stored = append(stored, batch...)
	}
	l := openUnmaintained(t, url, Options{Prefix: prefix})
	l.chunk = 100
	if n, err := l.client.Exists(t.Context(), l.marker).Result(); err != nil || n != 0 {
		t.Fatalf("the old version wrote the index marker: %d, %v", n, err)
	}
	checkReads(t, l) // nothing indexed: every read scans
	chunks := 0
	for k := 0; ; k++ {
		done, err := l.buildChunk(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
		if chunks++; chunks > 100 {
			t.Fatal("the build does not finish")
		}
		if k >= 3 {
			continue
		}
		// Both versions append between the first chunks.
		batch := sample(10000+20*k, 20)
		appendOld(t, old, batch[:10]...)
		if err := l.Append(t.Context(), batch[10:]...); err != nil {
			t.Fatal(err)
		}
		checkReads(t, l)
	}
	if chunks < 5 {
		t.Fatalf("the index was built in %d chunks: the test means to read between chunks", chunks)
	}
	if diff := indexDiff(t, l); diff != "" {
		t.Fatalf("after the build: %s", diff)
	}
	checkReads(t, l)
	for _, e := range stored {
		if e.ID == "" {
			continue
		}
		if pos, found, err := l.LookupID(t.Context(), e.ID); err != nil || !found || pos != e.Pos {
			t.Fatalf("LookupID(%q) = %d, %v, %v; want %d", e.ID, pos, found, err, e.Pos)
		}
	}
	// An old node appends after the build (a rolling upgrade): the index
	// lags, reads stay right, and the next build catches up.
	appendOld(t, old, sample(20000, 30)...)
	if err := l.Append(t.Context(), sample(20030, 5)...); err != nil {
		t.Fatal(err)
	}
	if marker, counter, err := l.indexState(t.Context()); err != nil || marker == counter {
		t.Fatalf("after an old node appended, the marker is %q, the counter %q (%v): want it behind", marker, counter, err)
	}
	checkReads(t, l)
	if err := l.buildIndex(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := indexDiff(t, l); diff != "" {
		t.Fatalf("after the second build: %s", diff)
	}
	checkReads(t, l)
}

// TestUpgradeWhileAppending appends an event between every chunk's read
// and its script call: the build still ends, stepping over what this
// version appended (and indexed) meanwhile instead of chasing it.
func TestUpgradeWhileAppending(t *testing.T) {
	l := openUnmaintained(t, sharedURL(t), Options{})
	l.chunk = 100
	appendOld(t, l, sample(0, 300)...)
	k := 0
	l.beforeBuildScript = func() {
		k++
		if err := l.Append(t.Context(), sample(1000+k, 1)...); err != nil {
			t.Error(err)
		}
	}
	for chunks := 0; ; chunks++ {
		if chunks > 50 {
			t.Fatal("the build does not end while a node appends")
		}
		done, err := l.buildChunk(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
	}
	l.beforeBuildScript = nil
	if diff := indexDiff(t, l); diff != "" {
		t.Fatal(diff)
	}
	checkReads(t, l)
}

// TestUpgradeBuildersRace builds the index of an old stream on three nodes
// at once while two nodes keep appending: every builder finishes (the
// appends do not keep the index behind for ever) and the index is exact.
func TestUpgradeBuildersRace(t *testing.T) {
	url := sharedURL(t)
	prefix := newPrefix(t, url)
	nodes := []*Log{
		openUnmaintained(t, url, Options{Prefix: prefix}),
		openUnmaintained(t, url, Options{Prefix: prefix}),
		openUnmaintained(t, url, Options{Prefix: prefix}),
	}
	for b := range 20 {
		appendOld(t, nodes[0], sample(100*b, 100)...)
	}
	for _, l := range nodes {
		l.chunk = 100
	}
	ctx, stop := context.WithCancel(t.Context())
	var appender sync.WaitGroup
	for g := range 16 { // so that an append is always under way
		appender.Go(func() {
			// Appends use the test's context: one cancelled while queued
			// could still be stored after the check below read the stream.
			for k := 0; ctx.Err() == nil; k++ {
				if err := nodes[g%2].Append(t.Context(), sample(100000*(g+1)+k, 1)...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var builders sync.WaitGroup
	errs := make(chan error, len(nodes))
	for _, l := range nodes {
		builders.Go(func() { errs <- l.buildIndex(ctx) })
	}
	finished := make(chan struct{})
	go func() { builders.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		stop()
		<-finished
		appender.Wait()
		t.Fatal("the builders did not finish within 20s while nodes appended")
	}
	stop()
	appender.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if diff := indexDiff(t, nodes[1]); diff != "" {
		t.Fatal(diff)
	}
	checkReads(t, nodes[2])
}
