package hub

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// Replay: how a resuming subscriber gets what it missed, at a cost that
// follows what it receives, without starving live delivery.
//
//   - A subscription of exact topics only, on a log with an
//     ssehub.TopicIndex, reads its own topics' events (replayIndexed). At
//     most Options.ReplayConcurrency such reads run at once, so a storm of
//     thousands of reconnects queues here instead of crowding out the
//     dispatcher.
//   - Every other subscription (wildcards, URI templates, URL patterns, or
//     a log without an index) asks the hub's one scanner, which reads each
//     history batch once and offers it to every waiting subscriber whose
//     position it covers, the way the dispatcher shares one tail. A storm
//     of N such subscribers costs about one scan of the history, not N.
//
// Both read in steps bounded by Options.ReplayBatch events and
// Options.ReplayBytes bytes, and a subscriber drops its replay buffer once
// it is live.

// replayStep reads and encodes the next part of the replay; the chunk may
// be empty (nothing matched) while the replay goes on.
func (s *Subscriber) replayStep(ctx context.Context) ([]byte, error) {
	if s.indexed {
		return s.replayIndexed(ctx)
	}
	return s.hub.scan.step(ctx, s)
}

// replayIndexed is one step of an exact-topic replay through the log's
// topic index.
func (s *Subscriber) replayIndexed(ctx context.Context) ([]byte, error) {
	h := s.hub
	select {
	case h.replaySlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.closing:
		return nil, ErrShutdown
	}
	defer func() { <-h.replaySlots }()
	evs, through, err := h.index.ReadTopics(ctx, ssehub.TopicQuery{
		Topics:   s.filter.exact,
		After:    s.replayAfter,
		Until:    s.replayTo,
		Limit:    h.opts.ReplayBatch,
		MaxBytes: h.opts.ReplayBytes,
	})
	damaged, err := h.damagedRead(err, s.replayAfter)
	if damaged != 0 {
		evs, through = nil, damaged // the step is its gap
	}
	if err != nil {
		return nil, fmt.Errorf("hub: replaying history: %w", err)
	}
	if through <= s.replayAfter && len(evs) == 0 {
		// The log's answer is complete through no further position than
		// asked: it would be asked the same for ever.
		return nil, fmt.Errorf("hub: replaying history: the log's topic read after %d did not advance (complete through %d)", s.replayAfter, through)
	}
	fl, err := h.floors(ctx, s.filter.reserved)
	if err != nil {
		return nil, fmt.Errorf("hub: replaying history: %w", err)
	}
	return s.fill(s.buf[:0], evs, nil, through, fl, damaged)
}

// floors says, after a read, from where the log's history is complete.
type floors struct {
	first    uint64 // Bounds' first: the oldest retained (application) event
	reserved uint64 // ReservedRemoved: reserved events up to here may be gone
}

// floors reads the log's floors; the reserved one only when asked (it may
// cost the engine a round trip).
func (h *Hub) floors(ctx context.Context, reserved bool) (floors, error) {
	var fl floors
	var err error
	if fl.first, _, err = h.log.Bounds(ctx); err != nil {
		return fl, err
	}
	if rr, ok := h.log.(ssehub.ReservedRetention); ok && reserved {
		fl.reserved, err = rr.ReservedRemoved(ctx)
	}
	return fl, err
}

// fill appends to buf the events of evs (in log order) that the
// subscriber's replay still needs and its filter matches, preceded by a
// gap event if retention removed positions it had not read yet, and
// advances the replay to through. fl holds the oldest retained position,
// read after evs, and the newest reserved event removed out of order (for
// a subscriber that may receive them: a gap when the replay passes it,
// application events before it still sent). damaged, when not zero, is the
// position of a damaged event the read stopped at (evs is then empty and
// through is damaged): if the replay needs it, a gap event says it is
// missing. cache, when not nil, holds the batch's encodings and matches (a
// scan shares them between subscribers). Only called with the replay owned
// by the caller: the Next goroutine, or the scanner while that goroutine
// waits for it.
func (s *Subscriber) fill(buf []byte, evs []*ssehub.Event, cache *batchCache, through uint64, fl floors, damaged uint64) ([]byte, error) {
	from := s.replayAfter
	to := min(through, s.replayTo)
	first := fl.first
	var gap, resGap Gap
	if first == 0 || first > from+1 {
		// Retention may have removed what the replay had still to send
		// since it started: say so, never skip silently. (The events were
		// read before first was, so an event below first in evs was read
		// while it existed: it is sent, before the gap.)
		after := s.replayTo
		if first > 0 {
			after = min(first-1, s.replayTo)
		}
		gap = Gap{Reason: GapExpired, Requested: s.requested, After: after}
	}
	if r := min(fl.reserved, s.replayTo); s.filter.reserved && r > max(from, s.reservedKnown) && (gap.Reason == "" || gap.After < r) {
		// Reserved events up to r may be gone: a gap when the replay
		// passes r, not before (the application events up to it are
		// all there).
		resGap = Gap{Reason: GapExpired, Requested: s.requested, After: r}
	}
	var n uint64
	matching := cache.matching(&s.filter, evs)
	k, _ := slices.BinarySearchFunc(matching, from+1, func(i int32, pos uint64) int { return cmp.Compare(evs[i].Pos, pos) })
	for ; k < len(matching) && evs[matching[k]].Pos <= to; k++ {
		i := int(matching[k])
		ev := evs[i]
		if ev.Private && !s.filter.mayReceivePrivate(ev.Topics) {
			continue
		}
		if gap.Reason != "" && ev.Pos > gap.After {
			buf = s.appendGap(buf, gap)
			gap = Gap{}
		}
		if resGap.Reason != "" && ev.Pos > resGap.After {
			buf = s.appendReservedGap(buf, resGap)
			resGap = Gap{}
		}
		var err error
		if buf, err = cache.append(buf, i, ev); err != nil {
			return nil, fmt.Errorf("hub: encoding event %d: %w", ev.Pos, err)
		}
		if s.collect {
			s.stepEvents = append(s.stepEvents, ev)
		}
		n++
	}
	s.replayAfter = to
	if gap.Reason != "" {
		buf = s.appendGap(buf, gap)
		s.replayAfter = max(s.replayAfter, gap.After)
	}
	if resGap.Reason != "" && s.replayAfter >= resGap.After {
		buf = s.appendReservedGap(buf, resGap)
	}
	if damaged > from && damaged <= s.replayTo && (gap.Reason == "" || gap.After < damaged) {
		// Within the replay, and not removed by retention meanwhile (an
		// expired gap beyond it covers it): the client may want it.
		buf = s.appendGap(buf, Gap{Reason: GapDamaged, Requested: s.requested, After: damaged})
		s.replayAfter = damaged
	}
	s.buf = buf
	s.hub.stats.replayed.Add(n)
	return buf, nil
}

// appendReservedGap appends the gap for reserved events removed up to
// g.After, which the client then knows of.
func (s *Subscriber) appendReservedGap(buf []byte, g Gap) []byte {
	s.hub.stats.reservedGaps.Add(1)
	s.reservedKnown = g.After
	return s.appendGap(buf, g)
}

func (s *Subscriber) appendGap(buf []byte, g Gap) []byte {
	s.hub.stats.gaps.Add(1)
	if s.gap.Reason == "" {
		s.gap = g
	}
	if s.collect {
		s.stepEvents = append(s.stepEvents, gapAsEvent(g))
	}
	return append(buf, gapEvent(g)...)
}

// damagedRead takes a replay read's error: a *ssehub.DamagedError at a
// position after the read's start means nothing could be read before that
// event, so the read yields only a gap for it; damagedRead counts and logs
// it and returns its position. Other errors are returned as they are.
func (h *Hub) damagedRead(err error, after uint64) (damaged uint64, _ error) {
	if d := damage(err); d != nil && d.Pos > after {
		h.noteDamaged(d)
		return d.Pos, nil
	}
	return 0, err
}

// batchCache encodes each event of a batch once, on first use, for every
// subscriber the batch is offered to, and remembers which events each
// distinct set of selectors matches, so that a storm of subscribers with
// the same selectors (a URI template shared by a whole app) matches each
// event once, not once per subscriber. A nil *batchCache caches nothing.
type batchCache struct {
	wires   [][]byte
	arena   []byte
	matches map[string][]int32 // filter signature -> indexes of the events it matches
}

// matching returns the indexes of the events of evs whose topics f's
// selectors match, in order; with a cache, computed once per batch for
// every subscriber with the same selectors.
func (c *batchCache) matching(f *filter, evs []*ssehub.Event) []int32 {
	if c != nil {
		if m, ok := c.matches[f.signature()]; ok {
			return m
		}
	}
	m := make([]int32, 0, len(evs))
	for i, ev := range evs {
		if f.matchTopics(ev.Topics) {
			m = append(m, int32(i))
		}
	}
	if c != nil {
		if c.matches == nil {
			c.matches = make(map[string][]int32)
		}
		c.matches[f.signature()] = m
	}
	return m
}

func (w *batchCache) append(dst []byte, i int, ev *ssehub.Event) ([]byte, error) {
	if w == nil {
		return appendEvent(dst, ev)
	}
	if w.wires[i] == nil {
		start := len(w.arena)
		arena, err := appendEvent(w.arena, ev)
		if err != nil {
			return nil, err
		}
		w.arena = arena
		w.wires[i] = arena[start:len(arena):len(arena)]
	}
	return append(dst, w.wires[i]...), nil
}

// scanner is the hub's one reader of history for the replays no topic
// index can serve. Subscribers queue a request for their next step; the
// scanner reads a batch after the lowest waiting position and serves every
// request whose position the batch covers. Starting from the lowest makes
// a herd that resumed from nearby positions move together (a straggler
// catches up with the others, and then they share every batch); a request
// that has waited maxScanWait batches is served next, so requests that
// keep arriving behind cannot starve one ahead.
type scanner struct {
	h       *Hub
	kick    chan struct{} // capacity 1: a request was queued
	stopped chan struct{} // closed when run returns

	mu       sync.Mutex  // guards the fields below
	waiting  []*scanStep // requests not taken yet
	batches  uint64      // batches read so far
	round    uint64      // rounds served so far (a batch read or kept)
	returned int         // requests served in the last round that are back

	recent []*scanBatch // the newest batches read, oldest first; owned by run
}

// scanBatch is one read of the scanner: every event in (from, through],
// complete when it was read, and the oldest retained position then. The
// scanner keeps the last few, so that subscribers of one herd that come
// back for their next step a little late are served from memory instead
// of reading the batch again.
type scanBatch struct {
	evs           []*ssehub.Event
	from, through uint64
	floors        floors
	damaged       uint64 // not zero: the read met a damaged event here (evs is empty, through is it)
	cache         batchCache
}

// maxGather is how long the scanner waits for the subscribers it just
// served to come back before it reads the next batch for those already
// waiting.
const maxGather = 2 * time.Millisecond

// recentBatches is how many batches the scanner keeps (each at most about
// Options.ReplayBytes, plus its encoding).
const recentBatches = 4

// covering returns the kept batch whose range serves a request at pos.
func (sc *scanner) covering(pos uint64) *scanBatch {
	for _, b := range sc.recent {
		if b.from <= pos && pos < b.through {
			return b
		}
	}
	return nil
}

// maxScanWait is how many batches a request may wait before it is served
// first.
const maxScanWait = 8

// scanStep is a subscriber's request for its next replay step; the
// subscriber owns one and reuses it.
type scanStep struct {
	s      *Subscriber
	buf    []byte        // the step's chunk, on return
	err    error         // set when the step failed
	queued uint64        // scanner.batches when queued
	served uint64        // scanner.round when last served
	done   chan struct{} // capacity 1: the scanner served the request
}

func newScanner(h *Hub) *scanner {
	return &scanner{h: h, kick: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// step queues s's request and waits for the scanner to serve it. Called by
// s's Next goroutine.
func (sc *scanner) step(ctx context.Context, s *Subscriber) ([]byte, error) {
	r := s.scanStep
	if r == nil {
		r = &scanStep{s: s, done: make(chan struct{}, 1)}
		s.scanStep = r
	}
	r.buf, r.err = s.buf[:0], nil
	sc.mu.Lock()
	r.queued = sc.batches
	if r.served == sc.round && r.served != 0 {
		sc.returned++
	}
	sc.waiting = append(sc.waiting, r)
	sc.mu.Unlock()
	select {
	case sc.kick <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if sc.withdraw(r) {
			return nil, ctx.Err()
		}
		<-r.done // the scanner has it: it finishes soon, and owns r meanwhile
	case <-sc.stopped:
		if sc.withdraw(r) {
			return nil, ErrShutdown
		}
		<-r.done
	}
	// Served, even if ctx ended meanwhile: the step has advanced the
	// replay, so its chunk must reach the caller (a long poll's timeout
	// would otherwise drop it while Cursor moved past it).
	return r.buf, r.err
}

// withdraw removes r from the waiting requests; false if the scanner took
// it already.
func (sc *scanner) withdraw(r *scanStep) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	i := slices.Index(sc.waiting, r)
	if i < 0 {
		return false
	}
	sc.waiting = slices.Delete(sc.waiting, i, i+1)
	return true
}

// run serves requests until ctx is done.
func (sc *scanner) run(ctx context.Context) {
	defer close(sc.stopped)
	var taken []*scanStep
	gather := 0 // requests served by the last batch that will come back
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	for {
		sc.mu.Lock()
		for len(sc.waiting) == 0 {
			sc.mu.Unlock()
			idle.Reset(time.Second)
			select {
			case <-sc.kick:
			case <-idle.C:
				clear(sc.recent) // the storm is over: hold no history
				sc.recent = sc.recent[:0]
			case <-ctx.Done():
				return
			}
			idle.Stop()
			sc.mu.Lock()
		}
		// The subscribers just served come back for their next step once
		// they have written the last one: wait a moment for them, so the
		// herd shares the next batch instead of reading it again.
		if sc.returned < gather {
			idle.Reset(maxGather)
			for sc.returned < gather {
				sc.mu.Unlock()
				select {
				case <-sc.kick:
				case <-idle.C:
					gather = 0
				case <-ctx.Done():
					return
				}
				sc.mu.Lock()
			}
			idle.Stop()
		}
		from, until := sc.next()
		sc.mu.Unlock()

		b := sc.covering(from)
		var err error
		if b == nil {
			b, err = sc.read(ctx, from, until)
			if ctx.Err() != nil {
				return // the waiting subscribers see stopped
			}
		}
		// Take every request the batch covers; on error, the ones that
		// asked for this position get the error.
		sc.mu.Lock()
		taken = taken[:0]
		sc.round++
		sc.returned = 0
		sc.waiting = slices.DeleteFunc(sc.waiting, func(r *scanStep) bool {
			a := r.s.replayAfter
			covered := (err == nil && b.from <= a && a < b.through) || (err != nil && a == from)
			if covered {
				r.served = sc.round
				taken = append(taken, r)
			}
			return covered
		})
		sc.mu.Unlock()
		gather = 0
		for _, r := range taken {
			if err != nil {
				r.err = err
			} else {
				r.buf, r.err = r.s.fill(r.buf, b.evs, &b.cache, b.through, b.floors, b.damaged)
				if r.err == nil && r.s.replayAfter < r.s.replayTo {
					gather++ // it will be back
				}
			}
			r.done <- struct{}{}
		}
		clear(taken)
	}
}

// next picks the position the next batch is read after: the lowest
// waiting position, or the position of a request that waited too long;
// and the highest position any request at or beyond it needs. Called with
// mu held.
func (sc *scanner) next() (from, until uint64) {
	for i, r := range sc.waiting {
		if a := r.s.replayAfter; i == 0 || a < from {
			from = a
		}
	}
	for _, r := range sc.waiting {
		if sc.batches-r.queued >= maxScanWait {
			from = r.s.replayAfter
			break
		}
	}
	for _, r := range sc.waiting {
		if r.s.replayAfter >= from {
			until = max(until, r.s.replayTo)
		}
	}
	return from, until
}

// read reads one batch of every topic in (from, through], bounded by the
// hub's replay options, with the oldest retained position after it, and
// keeps it with the recent batches.
func (sc *scanner) read(ctx context.Context, from, until uint64) (*scanBatch, error) {
	h := sc.h
	q := ssehub.TopicQuery{After: from, Until: until, Limit: h.opts.ReplayBatch, MaxBytes: h.opts.ReplayBytes}
	var (
		evs     []*ssehub.Event
		through uint64
		err     error
	)
	if h.index != nil {
		evs, through, err = h.index.ReadTopics(ctx, q)
	} else {
		evs, through, err = readBounded(ctx, h.log, q)
	}
	damaged, err := h.damagedRead(err, from)
	if damaged != 0 {
		evs, through = nil, damaged // the batch is its gap
	}
	if err != nil {
		return nil, fmt.Errorf("hub: replaying history: %w", err)
	}
	if through <= from {
		return nil, fmt.Errorf("hub: replaying history: the log read after %d did not advance", from)
	}
	fl, err := h.floors(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("hub: replaying history: %w", err)
	}
	b := &scanBatch{evs: evs, from: from, through: through, floors: fl, damaged: damaged, cache: batchCache{wires: make([][]byte, len(evs))}}
	if len(sc.recent) == recentBatches {
		sc.recent[0] = nil
		sc.recent = sc.recent[1:]
	}
	sc.recent = append(sc.recent, b)
	sc.mu.Lock()
	sc.batches++
	sc.mu.Unlock()
	h.stats.scans.Add(1)
	return b, nil
}

// readBounded answers q (without topics) with Log.Read, for logs without a
// TopicIndex: it reads q.Limit events and cuts the answer at q.MaxBytes.
func readBounded(ctx context.Context, l ssehub.Log, q ssehub.TopicQuery) ([]*ssehub.Event, uint64, error) {
	_, newest, err := l.Bounds(ctx)
	if err != nil {
		return nil, 0, err
	}
	evs, err := l.Read(ctx, q.After, q.Limit)
	if err != nil {
		return nil, 0, err
	}
	c := eventlog.NewCollector(q)
	for _, ev := range evs {
		if !c.Offer(ev) {
			break
		}
	}
	if n := len(evs); n > 0 && !c.Full() && !c.Beyond(evs[n-1].Pos) {
		// Log.Read promises up to Limit events, not that a shorter page
		// is all there is: the answer is complete only through the last
		// event read. (An empty page is: nothing after q.After then, so
		// complete through the newest position read before it.)
		newest = evs[n-1].Pos
	}
	out, through := c.Result(newest)
	return out, through, nil
}
