package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/sse"
	"github.com/ssehub/ssehub/topic"
)

// Request describes a subscription.
type Request struct {
	// Selectors are compiled topic selectors (exact topic, "*", URI
	// template; see package topic); an event is delivered when one of its
	// topics matches one of them.
	Selectors []topic.Selector
	// Private reports whether the subscriber is authorized for a private
	// event with these topics. nil: it receives no private event.
	Private func(topics []string) bool
	// LastEventID is the id of the last event the client has: replay starts
	// after it. "" means live events only; LastEventIDEarliest means every
	// retained event.
	LastEventID string
	// Events makes the subscriber also keep, for each Next, the events
	// its chunks hold (Subscriber.Events): for answers that are not an
	// event stream, such as long polling, which need the events' fields
	// (topics among them) rather than their wire bytes.
	Events bool
}

// Gap says why a subscriber's replay could not start right after its last
// event id. The zero Gap (Reason "") means there was no gap.
type Gap struct {
	Reason    string // GapExpired, GapUnknown, GapReplayLimit or GapDamaged
	Requested string // the last event id the client sent
	After     uint64 // the position replay resumed after
}

// Subscriber is one subscription: a cursor in the log plus a filter. Create
// it with Hub.Subscribe; one goroutine (the connection's writer) calls Next
// in a loop, and any goroutine may call Close.
type Subscriber struct {
	// The fields a live delivery touches come first, together, so that
	// fanning an event out to thousands of subscribers touches few cache
	// lines of each.
	mark uint64 // last position offered; touched only by the hub's dispatcher

	mu     sync.Mutex
	queue  [][]byte        // wire chunks waiting to be written
	evq    []*ssehub.Event // with collect: the events of queue, in order
	qbytes int
	minPos uint64        // live events at or before this position are already with the client
	err    error         // set once the subscriber is done; Next returns it after the queue
	end    []byte        // the last chunk finish queued (a reconnect event), for a replay that ends
	endEv  *ssehub.Event // with collect: end as an event
	busy   bool          // something was queued since the last heartbeat tick

	onWake atomic.Pointer[func()] // when set, called instead of waking Next

	// Owned by the goroutine calling Next.
	out         [][]byte // returned by the previous Next; recycled by the next
	head        []byte   // gap event, sent before the replay
	replayAfter uint64   // the replay has sent everything up to here
	replayTo    uint64   // and goes on up to here, where live delivery started
	// reservedKnown: the client knows reserved events up to here may be
	// missing (a gap said so, or it asked for the earliest retained).
	reservedKnown uint64
	indexed       bool            // the replay reads the log's topic index
	collect       bool            // Request.Events: keep the events of each Next
	outEvents     []*ssehub.Event // with collect: the events of what Next returned last
	stepEvents    []*ssehub.Event // with collect: the events of the replay step under way
	buf           []byte          // the replay's chunk; nil once live
	scanStep      *scanStep

	hub       *Hub
	filter    filter
	gap       Gap
	lastID    string // id of the newest event when the subscription started
	requested string // the last event id the client sent

	wake chan struct{} // capacity 1: "the queue or err changed"

	onClose   func()      // set by OnClose before the subscriber is shared
	closed    atomic.Bool // Close ran (onClose is called once)
	replaying atomic.Bool // counted in the hub's replaying gauge
}

// Subscribe registers a subscriber and prepares the replay its LastEventID
// asks for. Live events start queueing at once; Next returns the replay
// first, then them, with no gap and no duplicate between the two.
func (h *Hub) Subscribe(ctx context.Context, req Request) (*Subscriber, error) {
	if len(req.Selectors) == 0 {
		return nil, ErrNoSelector
	}
	s := &Subscriber{hub: h, filter: newFilter(req), wake: make(chan struct{}, 1), collect: req.Events}

	var (
		cursor uint64
		replay = req.LastEventID != ""
	)
	if replay {
		first, last, err := h.log.Bounds(ctx)
		if err != nil {
			return nil, fmt.Errorf("hub: reading log bounds: %w", err)
		}
		cursor, s.gap = h.resolve(ctx, req.LastEventID, first, last)
		if req.LastEventID == LastEventIDEarliest && s.filter.reserved {
			// Every retained event: what is already gone is no gap.
			fl, err := h.floors(ctx, true)
			if err != nil {
				return nil, fmt.Errorf("hub: reading log bounds: %w", err)
			}
			s.reservedKnown = fl.reserved
		}
	}

	// The client has everything up to cursor: live events at or before it
	// are dropped. This must hold from the moment the subscriber is
	// registered, for when this hub has not yet dispatched what the client
	// has (it resumes with the id its own publish returned, or lands on a
	// cluster node that lags).
	s.minPos = cursor
	s.requested = req.LastEventID
	start, err := h.register(s)
	if err != nil {
		return nil, err
	}
	s.lastID = ssehub.FormatID(start)
	if !replay {
		return s, nil
	}
	if lim := h.opts.ReplayLimit; lim > 0 && start > cursor && start-cursor > lim {
		after := start - lim
		if pj, ok := h.log.(ssehub.PositionJumps); ok {
			// Positions jump at restarts: count the ones that held events.
			if after, err = pj.LastN(ctx, start, lim); err != nil {
				s.Close()
				return nil, fmt.Errorf("hub: counting the replay: %w", err)
			}
		}
		if after > cursor {
			s.gap = Gap{Reason: GapReplayLimit, Requested: req.LastEventID, After: after}
			cursor = after
		}
	}
	if cursor < start {
		s.replayAfter, s.replayTo = cursor, start
		s.indexed = h.index != nil && len(s.filter.wild) == 0
		s.replaying.Store(true)
		h.stats.replaying.Add(1)
	}
	if s.gap.Reason != "" {
		s.head = gapEvent(s.gap)
		h.stats.gaps.Add(1)
	}
	return s, nil
}

// resolve turns a last event id into the position to replay after.
func (h *Hub) resolve(ctx context.Context, id string, first, last uint64) (uint64, Gap) {
	oldest := uint64(0) // replay after this to get everything retained
	if first > 0 {
		oldest = first - 1
	} else {
		oldest = last // nothing retained
	}
	if id == LastEventIDEarliest {
		return oldest, Gap{}
	}
	pos, ok := ssehub.ParseID(id)
	if !ok {
		if idx, isIdx := h.log.(ssehub.IDIndex); isIdx {
			p, found, err := idx.LookupID(ctx, id)
			if err != nil {
				h.logger.Warn("hub: looking up last event id failed", "id", id, "err", err)
			}
			pos, ok = p, found && err == nil
		}
	}
	switch {
	case !ok || pos > last:
		return oldest, Gap{Reason: GapUnknown, Requested: id, After: oldest}
	case pos < oldest:
		return oldest, Gap{Reason: GapExpired, Requested: id, After: oldest}
	}
	return pos, Gap{}
}

func newFilter(req Request) filter {
	f := filter{private: req.Private}
	for _, sel := range req.Selectors {
		if sel.Kind() == topic.KindExact {
			if !contains(f.exact, sel.String()) {
				f.exact = append(f.exact, sel.String())
			}
			continue
		}
		f.wild = append(f.wild, sel)
	}
	f.reserved = f.private != nil && (slices.ContainsFunc(f.exact, reservedTopic) || slices.ContainsFunc(f.wild, mayMatchReserved))
	return f
}

// reservedTopic reports whether t is in the hub's reserved namespace.
func reservedTopic(t string) bool {
	return (&ssehub.Event{Topics: []string{t}}).Reserved()
}

// mayMatchReserved reports whether a selector might match a topic of the
// reserved namespace: "*", a URL pattern, or a template whose literal
// start does not rule it out. It errs towards yes: a yes costs at most a
// gap event that was not needed, a wrong no a silent hole.
func mayMatchReserved(sel topic.Selector) bool {
	if sel.Kind() != topic.KindTemplate {
		return true
	}
	src := sel.String()
	lit := src[:strings.IndexByte(src, '{')]
	for _, p := range ssehub.ReservedPrefixes {
		if strings.HasPrefix(lit, p) || strings.HasPrefix(p, lit) {
			return true
		}
	}
	return false
}

// Gap returns why the replay could not start right after the requested
// last event id; Reason is empty when it could.
func (s *Subscriber) Gap() Gap { return s.gap }

// LastID returns the id of the newest event fanned out when the
// subscription started (the Mercure "Last-Event-ID" response header).
func (s *Subscriber) LastID() string { return s.lastID }

// Next blocks until there is something to write to the client and returns
// it as wire chunks (SSE bytes): first the gap event, then the replay, then
// live events and heartbeats. The chunks stay valid until the next call.
// When the subscriber is done, Next returns what was pending and then the
// reason: ErrSlow, ErrShutdown, ErrReconnect, ErrBehind, ErrDamaged or
// ErrUnsubscribed; or
// ctx.Err(). (Done during the replay, it stops the replay and returns only
// the reconnect event, if any, before the reason.)
// Only one goroutine may call Next.
func (s *Subscriber) Next(ctx context.Context) ([][]byte, error) {
	spare := s.recycle()
	if out, err := s.replayNext(ctx, spare); out != nil || err != nil {
		return out, err
	}
	for {
		if out, err := s.take(spare); out != nil || err != nil {
			return out, err
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Replay is Next until the subscriber is Live: it returns the gap event
// and the replay's chunks as Next does, and nil, nil once the replay is
// over, without waiting for live events. A server that hands Live
// subscribers to a poller (internal/park) calls it first, so that a
// resumed subscriber whose replay brings nothing is handed over at once.
// Only one goroutine may call it (or Next).
func (s *Subscriber) Replay(ctx context.Context) ([][]byte, error) {
	return s.replayNext(ctx, s.recycle())
}

// recycle empties the previous call's chunks and events and returns the
// chunks' slice for reuse.
func (s *Subscriber) recycle() [][]byte {
	clear(s.out)
	spare := s.out[:0]
	s.out = nil
	clear(s.outEvents)
	s.outEvents = s.outEvents[:0]
	return spare
}

// replayNext returns the gap event or the next replayed chunk (in spare),
// or the reason the subscriber ended during its replay, or nil, nil once
// the replay is over.
func (s *Subscriber) replayNext(ctx context.Context, spare [][]byte) ([][]byte, error) {
	if s.head != nil {
		s.out = append(spare, s.head)
		s.head = nil
		if s.collect {
			s.outEvents = append(s.outEvents, gapAsEvent(s.gap))
		}
		return s.out, nil
	}
	for s.replayAfter < s.replayTo {
		if err := ctx.Err(); err != nil {
			return nil, err // a long replay of events the filter skips
		}
		if end, endEv, err := s.ended(); err != nil {
			// The stream ends during its replay (the hub closes, asks
			// everyone to reconnect, or it was closed): stop replaying
			// and send only its last chunk, the reconnect event. It has
			// no id, so the client resumes after what it got; the live
			// events queued after the replay are not for it yet.
			if end != nil {
				s.out = append(spare, end)
				if endEv != nil {
					s.outEvents = append(s.outEvents, endEv)
				}
				return s.out, nil
			}
			return nil, err
		}
		s.stepEvents = s.stepEvents[:0]
		chunk, err := s.replayStep(ctx)
		if errors.Is(err, ErrShutdown) {
			// Close ends every subscriber right after it starts closing:
			// wait for that, and end as above.
			if err := s.waitEnded(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(chunk) > 0 {
			s.out = append(spare, chunk)
			if s.collect {
				s.outEvents, s.stepEvents = s.stepEvents, s.outEvents
			}
			return s.out, nil
		}
	}
	s.dropReplay()
	return nil, nil
}

// take returns the queued chunks (recycling spare as the next queue), or
// the subscriber's error once the queue is empty, or nil, nil.
func (s *Subscriber) take(spare [][]byte) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		s.out, s.queue = s.queue, spare
		s.qbytes = 0
		if s.collect {
			s.outEvents, s.evq = s.evq, s.outEvents[:0]
		}
		return s.out, nil
	}
	return nil, s.err
}

// Events returns the events of the chunks the last Next returned, for a
// subscriber made with Request.Events (nil otherwise): replayed and live
// events, the GapType event and the ReconnectType event that ends a stream
// sent away, in order; heartbeats are not events. Gap and reconnect events
// have no topics; a reconnect event has no id. The slice is valid until
// the next call to Next; the events are shared and must not be modified.
// Only the goroutine calling Next may call it.
func (s *Subscriber) Events() []*ssehub.Event { return s.outEvents }

// ended returns the subscriber's end, once it is done, and the last chunk
// finish queued the first time it is asked for.
func (s *Subscriber) ended() ([]byte, *ssehub.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	end, endEv := s.end, s.endEv
	if s.err != nil {
		s.end, s.endEv = nil, nil
	}
	return end, endEv, s.err
}

// waitEnded waits until the subscriber is done.
func (s *Subscriber) waitEnded(ctx context.Context) error {
	for {
		s.mu.Lock()
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Cursor returns the id of the position the client is up to date with,
// given what Next has returned so far: during the replay, the last replayed
// position; once live, the position where live delivery started (or the
// client's own, when it was ahead). A client that resumes from it misses
// nothing. Only the goroutine calling Next may call it.
func (s *Subscriber) Cursor() string {
	if !s.Live() {
		return ssehub.FormatID(s.replayAfter)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start, _ := ssehub.ParseID(s.lastID)
	return ssehub.FormatID(max(start, s.minPos))
}

// Live reports whether Next has returned the gap event and the whole
// replay, so that only live events, heartbeats and the end remain. Only the
// goroutine calling Next may call it.
func (s *Subscriber) Live() bool { return s.head == nil && s.replayAfter >= s.replayTo }

// TryNext is Next for a Live subscriber without waiting: it returns the
// pending chunks, or nil and the reason once the subscriber is done, or
// nil, nil when there is nothing to write now. The chunks stay valid until
// the next call. Only one goroutine at a time may call it (or Next).
func (s *Subscriber) TryNext() ([][]byte, error) {
	if !s.Live() {
		return nil, errNotLive
	}
	s.dropReplay()
	clear(s.out)
	spare := s.out[:0]
	s.out = nil
	return s.take(spare)
}

// OnWake makes the subscriber call f, instead of waking a waiting Next,
// whenever it may have something new for TryNext: an event, a heartbeat or
// its end. f runs on the hub's goroutines (the dispatcher among them), so
// it must be quick and must not block. It is called without the
// subscriber's lock, but the dispatcher and the heartbeat call it while
// they hold Hub.mu for reading: f must not call the Hub's or the
// Subscriber's methods that take Hub.mu (Subscribe, Close, Stats, …), or
// it deadlocks with a waiting writer. Set it before relying on TryNext; a
// pending wake is delivered to f.
func (s *Subscriber) OnWake(f func()) {
	s.onWake.Store(&f)
	f()
}

// enqueue adds a live event's wire bytes; false if the subscriber is done
// or already has the event. Called by the hub's dispatcher.
func (s *Subscriber) enqueue(wire []byte, ev *ssehub.Event) bool {
	s.mu.Lock()
	if s.err != nil || ev.Pos <= s.minPos {
		s.mu.Unlock()
		return false
	}
	if len(s.queue)+1 > s.hub.opts.QueueEvents || s.qbytes+len(wire) > s.hub.opts.QueueBytes {
		s.queue, s.qbytes, s.evq = nil, 0, nil
		s.err = ErrSlow
		s.mu.Unlock()
		s.hub.stats.slow.Add(1)
		s.signal() // the writer sees ErrSlow and Closes, which unregisters
		return false
	}
	s.queue = append(s.queue, wire)
	if s.collect {
		s.evq = append(s.evq, ev)
	}
	s.qbytes += len(wire)
	s.busy = true
	s.mu.Unlock()
	s.signal()
	return true
}

func (s *Subscriber) heartbeat() {
	s.mu.Lock()
	if s.busy || s.err != nil {
		s.busy = false
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, heartbeatLine)
	s.mu.Unlock()
	s.signal()
}

// finish ends the subscriber with err after the pending queue and last.
func (s *Subscriber) finish(err error, last []byte, lastEv *ssehub.Event) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		if last != nil {
			s.queue = append(s.queue, last)
			s.end = last
			if s.collect && lastEv != nil {
				s.evq = append(s.evq, lastEv)
				s.endEv = lastEv
			}
		}
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Subscriber) signal() {
	if f := s.onWake.Load(); f != nil {
		(*f)()
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dropReplay releases the replay's memory once the subscriber is live (the
// last replay chunk is no longer in use when Next or TryNext is called
// again): an idle stream that replayed megabytes goes back to its small
// size.
func (s *Subscriber) dropReplay() {
	s.buf, s.scanStep, s.stepEvents = nil, nil, nil
	s.replayDone()
}

// replayDone takes the subscriber out of the replaying gauge, once.
func (s *Subscriber) replayDone() {
	if s.replaying.CompareAndSwap(true, false) {
		s.hub.stats.replaying.Add(-1)
	}
}

// Close unregisters the subscriber; a Next in progress returns
// ErrUnsubscribed once the queue is empty. Safe to call more than once and
// from any goroutine.
func (s *Subscriber) Close() {
	s.hub.unregister(s)
	s.replayDone()
	s.finish(ErrUnsubscribed, nil, nil)
	if s.closed.CompareAndSwap(false, true) && s.onClose != nil {
		s.onClose()
	}
}

// OnClose makes the first Close call f (after unregistering), whoever
// closes the subscriber: the connection's handler, or whatever holds the
// stream after it (a parked connection). Call it right after Subscribe,
// before handing the subscriber to another goroutine; f must not block
// for long.
func (s *Subscriber) OnClose(f func()) { s.onClose = f }

// Err returns why the subscriber ended, or nil while it is live.
func (s *Subscriber) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// filter is a subscriber's compiled selection.
type filter struct {
	exact   []string
	wild    []topic.Selector
	private func([]string) bool
	sig     string // signature(), once computed
	// reserved: the subscriber may receive the hub's own events
	// (presence, which are private), so its history is incomplete before
	// the newest one a ReservedRetention log removed.
	reserved bool
}

// signature returns a string that is the same for two filters exactly when
// their selectors are (in the same order), for sharing match results. Only
// the goroutine that owns the subscriber's replay may call it.
func (f *filter) signature() string {
	if f.sig == "" {
		// Each selector as kind, length and text: no two sets of
		// selectors spell the same signature, whatever bytes they hold.
		var b strings.Builder
		add := func(kind, s string) {
			b.WriteString(kind + ":" + strconv.Itoa(len(s)) + ":" + s)
		}
		for _, e := range f.exact {
			add("e", e)
		}
		for _, w := range f.wild {
			add(w.Kind().String(), w.String())
		}
		f.sig = b.String()
	}
	return f.sig
}

func (f *filter) matchTopics(topics []string) bool {
	for _, t := range topics {
		for _, e := range f.exact {
			if e == t {
				return true
			}
		}
		for _, w := range f.wild {
			if w.Match(t) {
				return true
			}
		}
	}
	return false
}

func (f *filter) mayReceivePrivate(topics []string) bool {
	return f.private != nil && f.private(topics)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// heartbeatLine is the shortest comment block: what an idle stream gets.
var heartbeatLine = sse.AppendComment(nil, "")

// reconnectEvent is the "come back in d" instruction: a ReconnectType event
// for clients that look at it, then a retry field for every EventSource.
func reconnectEvent(d time.Duration) []byte {
	ev := reconnectAsEvent(d)
	b, _ := sse.AppendEvent(nil, sse.Event{Type: ev.Type, Data: ev.Data})
	return sse.AppendRetry(b, d.Truncate(time.Millisecond))
}

// reconnectAsEvent is the ReconnectType event as an event (for
// Subscriber.Events).
func reconnectAsEvent(d time.Duration) *ssehub.Event {
	return &ssehub.Event{Type: ReconnectType, Data: `{"retry_ms":` + strconv.FormatInt(d.Milliseconds(), 10) + `}`}
}

// gapEvent is the GapType event that tells a client what history could not
// fill; its id is where the replay resumed.
func gapEvent(g Gap) []byte {
	ev := gapAsEvent(g)
	b, _ := sse.AppendEvent(nil, sse.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data})
	return b
}

// gapAsEvent is the GapType event as an event (for Subscriber.Events).
func gapAsEvent(g Gap) *ssehub.Event {
	data, _ := json.Marshal(struct {
		Reason       string `json:"reason"`
		Requested    string `json:"requested"`
		ResumedAfter string `json:"resumed_after"`
	}{g.Reason, g.Requested, ssehub.FormatID(g.After)})
	return &ssehub.Event{Pos: g.After, ID: ssehub.FormatID(g.After), Type: GapType, Data: string(data)}
}
