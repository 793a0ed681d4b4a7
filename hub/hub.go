package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub"
)

// Errors a Subscriber ends with (Subscriber.Err, Next).
var (
	// ErrSlow: the subscriber's queue overflowed (it read too slowly); it
	// should reconnect with its last event id and lose nothing.
	ErrSlow = errors.New("hub: subscriber too slow, queue full")
	// ErrShutdown: the hub is shutting down; the client was told when to
	// come back with a retry field.
	ErrShutdown = errors.New("hub: shutting down")
	// ErrReconnect: Hub.Reconnect asked the subscriber to come back later.
	ErrReconnect = errors.New("hub: asked to reconnect later")
	// ErrBehind: the hub's tail fell behind the log's retention, so live
	// events were lost before they could be fanned out; the subscriber is
	// told to reconnect, and its resume reports the gap.
	ErrBehind = errors.New("hub: fell behind the log's retention; reconnect to resume")
	// ErrDamaged: the hub's tail met a damaged event in the log (see
	// ssehub.DamagedError), which live subscribers may have missed; they
	// reconnect, and their replay tells them of the gap.
	ErrDamaged = errors.New("hub: skipped a damaged event of the log; reconnect to resume")
	// ErrUnsubscribed: Close was called on the subscriber.
	ErrUnsubscribed = errors.New("hub: unsubscribed")
	// ErrNoSelector: a subscription named no topic selector.
	ErrNoSelector = errors.New("hub: at least one topic selector is required")
	// errNotLive: TryNext was called before the replay was done.
	errNotLive = errors.New("hub: TryNext before the replay is done; use Next until Live")
	// ErrReservedType: a publisher used an event type reserved for the hub
	// (ssehub.ErrReservedType).
	ErrReservedType = ssehub.ErrReservedType
)

// GapType is the event type of the event a subscriber receives first when
// history could not fill the gap since its last event id. Its data is JSON:
//
//	{"reason":"expired|unknown|replay_limit|damaged","requested":"<last event id>","resumed_after":"<id>"}
//
// and its id is resumed_after, so a client that reconnects after it resumes
// from where the replay started.
const GapType = "ssehub.gap"

// ReconnectType is the event type of the hub's "come back later"
// instruction, sent before it ends a stream on shutdown or Reconnect. Its
// data is JSON {"retry_ms": N}: reconnect after N milliseconds, resuming
// from the last event id. A retry field with the same time follows it, so a
// plain EventSource does the same by itself.
const ReconnectType = "ssehub.reconnect"

// ReservedTypePrefix starts every event type the hub itself sends.
const ReservedTypePrefix = ssehub.ReservedTypePrefix

// Gap reasons, as in GapType events and Subscriber.Gap.
const (
	GapExpired     = "expired"      // the id is older than retained history
	GapUnknown     = "unknown"      // the id was never issued by this log
	GapReplayLimit = "replay_limit" // more events were missed than may be replayed
	GapDamaged     = "damaged"      // a stored event could not be read back (ssehub.DamagedError)
)

// LastEventIDEarliest as a last event id asks for every retained event.
const LastEventIDEarliest = ssehub.EarliestID

// Options configure a Hub. The zero value is usable: every field has a default.
type Options struct {
	// Heartbeat is how often an idle stream gets a comment line, keeping
	// proxies from closing it. Default 15s; negative disables.
	Heartbeat time.Duration
	// QueueEvents and QueueBytes bound each subscriber's queue. A subscriber
	// whose queue would exceed either is closed with ErrSlow. Defaults 4096
	// events and 4 MiB.
	QueueEvents int
	QueueBytes  int
	// ReplayBatch and ReplayBytes bound one step of a replay: at most
	// this many events, and at most about this many bytes of events, are
	// read from the log and held for one subscriber at a time. Defaults
	// 512 events and 256 KiB.
	ReplayBatch int
	ReplayBytes int
	// ReplayConcurrency is how many indexed replay reads (exact-topic
	// subscriptions on a log with a topic index) run at once; the others
	// wait their turn, so that a storm of reconnects leaves the CPU to
	// live delivery. Replays that no index can serve share one scan of
	// the log instead. Default 4.
	ReplayConcurrency int
	// ReplayLimit caps how many events one reconnect replays (positions
	// of the log, not counting those a ssehub.PositionJumps log jumped
	// over); beyond it the oldest are skipped and the gap is signalled.
	// 0: no cap.
	ReplayLimit uint64
	// ShutdownRetry is the base reconnection time sent to clients when the
	// hub shuts down; each client gets it plus a random share of
	// ShutdownJitter so they do not all return in the same second.
	// Defaults 1s and 5s.
	ShutdownRetry  time.Duration
	ShutdownJitter time.Duration
	// Logger receives the hub's logs. Default: slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Heartbeat == 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.QueueEvents <= 0 {
		o.QueueEvents = 4096
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 4 << 20
	}
	if o.ReplayBatch <= 0 {
		o.ReplayBatch = 512
	}
	if o.ReplayBytes <= 0 {
		o.ReplayBytes = 256 << 10
	}
	if o.ReplayConcurrency <= 0 {
		o.ReplayConcurrency = 4
	}
	if o.ShutdownRetry <= 0 {
		o.ShutdownRetry = time.Second
	}
	if o.ShutdownJitter <= 0 {
		o.ShutdownJitter = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Hub fans events from a Log out to Subscribers. Create it with New; all
// methods are safe for concurrent use.
type Hub struct {
	log    ssehub.Log
	index  ssehub.TopicIndex // log's topic index, or nil
	opts   Options
	logger *slog.Logger

	replaySlots chan struct{} // one token per indexed replay read under way
	scan        *scanner      // the shared history reader of other replays

	mu         sync.RWMutex                        // guards the maps and closed
	exact      map[string]map[*Subscriber]struct{} // exact selector -> subscribers
	wild       map[*Subscriber]struct{}            // subscribers with a non-exact selector
	all        map[*Subscriber]struct{}            // every subscriber
	closed     bool                                //
	dispatched atomic.Uint64                       // last position fanned out; written under mu.RLock by the one dispatcher, read under mu.Lock

	stats       counters
	lastDamaged atomic.Uint64 // position of the last damaged event logged

	observeMu sync.Mutex                            // serializes OnEvent's changes to observers
	observers atomic.Pointer[[]func(*ssehub.Event)] // set by OnEvent; called by the dispatcher
	slots     []*int                                // guarded by observeMu: one per observer, same order

	closing chan struct{} // closed by Close
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// New starts a hub on l: one goroutine tails the log from its current end,
// one reads history for replays (see Subscribe) and one sends heartbeats.
// Close stops them. The hub does not own l: close the log after the hub.
func New(l ssehub.Log, opts Options) (*Hub, error) {
	opts.setDefaults()
	_, last, err := l.Bounds(context.Background())
	if err != nil {
		return nil, fmt.Errorf("hub: reading log bounds: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		log:     l,
		opts:    opts,
		logger:  opts.Logger,
		exact:   make(map[string]map[*Subscriber]struct{}),
		wild:    make(map[*Subscriber]struct{}),
		all:     make(map[*Subscriber]struct{}),
		cancel:  cancel,
		closing: make(chan struct{}),
	}
	h.index, _ = l.(ssehub.TopicIndex)
	h.replaySlots = make(chan struct{}, opts.ReplayConcurrency)
	h.scan = newScanner(h)
	h.dispatched.Store(last)
	h.done.Add(2)
	go h.tail(ctx)
	go func() {
		defer h.done.Done()
		h.scan.run(ctx)
	}()
	if opts.Heartbeat > 0 {
		h.done.Add(1)
		go h.heartbeat(ctx)
	}
	return h, nil
}

// OnEvent makes the hub call fn with every event it fans out, in log
// order, once each, before the event is queued to subscribers, until the
// returned remove is called. It is how a component builds state from the
// log (presence and the Durable Streams layer do); each caller gets its
// own slot. fn runs on the hub's dispatcher goroutine: it must be quick,
// must not block and must not call the Hub's methods. The events are
// shared: fn must not modify them. Safe for concurrent use.
func (h *Hub) OnEvent(fn func(*ssehub.Event)) (remove func()) {
	id := new(int) // identifies this slot
	h.observeMu.Lock()
	defer h.observeMu.Unlock()
	var fns []func(*ssehub.Event)
	if old := h.observers.Load(); old != nil {
		fns = append(fns, *old...)
	}
	fns = append(fns, fn)
	h.observers.Store(&fns)
	h.slots = append(h.slots, id)
	return func() {
		h.observeMu.Lock()
		defer h.observeMu.Unlock()
		i := slices.Index(h.slots, id)
		if i < 0 {
			return
		}
		fns := slices.Clone(*h.observers.Load())
		fns = slices.Delete(fns, i, i+1)
		h.slots = slices.Delete(h.slots, i, i+1)
		h.observers.Store(&fns)
	}
}

// Closing returns a channel closed when Close starts: long-lived handlers
// that are not subscribers (a stats stream) end then.
func (h *Hub) Closing() <-chan struct{} { return h.closing }

// Log returns the log the hub reads from.
func (h *Hub) Log() ssehub.Log { return h.log }

// LastPos returns the position of the last event fanned out to subscribers.
func (h *Hub) LastPos() uint64 { return h.dispatched.Load() }

// Publish validates events and appends them to the log. It returns once the
// log has accepted them (their Pos set); subscribers receive them through
// the hub's tail, on this process and on every other hub sharing the log.
// Errors wrap ssehub.ErrInvalid for bad events.
func (h *Hub) Publish(ctx context.Context, events ...*ssehub.Event) error {
	for _, ev := range events {
		if err := ev.Validate(); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := h.log.Append(ctx, events...); err != nil {
		if !errors.Is(err, ssehub.ErrDuplicateID) { // a refusal, not a failure
			h.stats.appendErrors.Add(1)
		}
		return err
	}
	h.stats.published.Add(uint64(len(events)))
	h.stats.observePublish(time.Since(start))
	return nil
}

// tail runs the log's Tail until the hub closes, restarting it after errors
// from the position last dispatched.
func (h *Hub) tail(ctx context.Context) {
	defer h.done.Done()
	backoff := 100 * time.Millisecond
	for {
		err := h.log.Tail(ctx, h.dispatched.Load(), h.dispatch)
		if ctx.Err() != nil || errors.Is(err, ssehub.ErrClosed) {
			return
		}
		if d := damage(err); d != nil && d.Pos > h.dispatched.Load() {
			h.skipDamaged(d)
			backoff = 100 * time.Millisecond
			continue
		}
		h.logger.Error("hub: log tail failed; retrying", "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// dispatch fans a batch of log events out. It is only called by tail.
func (h *Hub) dispatch(events []*ssehub.Event) error {
	// Encode the whole batch into one buffer: one allocation per batch, and
	// every subscriber shares the same bytes.
	size := 0
	for _, ev := range events {
		size += encodedSizeHint(ev)
	}
	arena := make([]byte, 0, size)
	wires := make([][]byte, len(events))
	for i, ev := range events {
		start := len(arena)
		var err error
		arena, err = appendEvent(arena, ev)
		if err != nil { // the log accepted something the encoder refuses: skip, loudly
			h.logger.Error("hub: cannot encode event; skipped", "pos", ev.Pos, "err", err)
			continue
		}
		wires[i] = arena[start:len(arena):len(arena)]
	}

	var observe []func(*ssehub.Event)
	if fns := h.observers.Load(); fns != nil {
		observe = *fns
	}
	var fl *floors // read at the batch's first hole
	for i, ev := range events {
		d := h.dispatched.Load()
		if ev.Pos <= d {
			continue // already fanned out (a Tail restarted)
		}
		if d > 0 && ev.Pos > d+1 {
			// A hole, at the batch's start or in its middle (reserved
			// events are removed from the middle of the log).
			fl = h.checkBehind(d, fl)
		}
		h.fanOut(ev, wires[i], observe)
	}
	return nil
}

// fanOut queues one event to its subscribers. It holds Hub.mu (read) for
// this event only, so a Subscribe or Close waits for at most one event's
// matching, not a whole batch's. Only called by the dispatcher.
func (h *Hub) fanOut(ev *ssehub.Event, wire []byte, observe []func(*ssehub.Event)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, fn := range observe {
		fn(ev)
	}
	if wire != nil {
		var n uint64
		for _, t := range ev.Topics {
			for s := range h.exact[t] {
				n += h.offer(s, ev, wire)
			}
		}
		for s := range h.wild {
			if s.filter.matchTopics(ev.Topics) {
				n += h.offer(s, ev, wire)
			}
		}
		h.stats.delivered.Add(n)
		if !ev.Time.IsZero() {
			h.stats.observeLag(time.Since(ev.Time))
		}
	}
	h.dispatched.Store(ev.Pos)
}

// skipDamaged moves the tail past a damaged event it cannot fan out (the
// log reports it when it is the first after the position dispatched):
// every live subscriber may have missed it, so their streams end with a
// quick reconnect; they resume from their last id and the replay, which
// meets the same event, tells them of the gap. Only called by the
// dispatcher.
func (h *Hub) skipDamaged(d *ssehub.DamagedError) {
	h.noteDamaged(d)
	h.mu.RLock()
	h.dispatched.Store(d.Pos)
	h.mu.RUnlock()
	n := h.sendAway(ErrDamaged, 0, time.Second)
	h.logger.Warn("hub: skipped a damaged event of the log; live subscribers resume to learn of the gap", "pos", d.Pos, "subscribers", n)
}

// damage returns the *ssehub.DamagedError in err's chain, or nil.
func damage(err error) *ssehub.DamagedError {
	var d *ssehub.DamagedError
	if errors.As(err, &d) {
		return d
	}
	return nil
}

// noteDamaged counts a damaged event met in the log and logs it at warn,
// once per position in a row (a reconnect storm meets it many times).
func (h *Hub) noteDamaged(d *ssehub.DamagedError) {
	h.stats.damaged.Add(1)
	if h.lastDamaged.Swap(d.Pos) != d.Pos {
		h.logger.Warn("hub: the log holds a damaged event; readers get a gap in its place", "pos", d.Pos, "err", d.Err)
	}
}

// checkBehind handles a jump in the tail after position d: if retention
// removed events the hub never fanned out (its tail fell too far behind, or
// the engine lost its data), every live subscriber missed them. Their
// streams end with a quick reconnect; they resume from their last id and
// the replay tells them of the gap. known, when not nil, holds the floors
// read for an earlier hole of the same batch (read after the batch, they
// cover all its holes); checkBehind returns the floors it used (nil when
// it could not read them). Only called by the dispatcher.
func (h *Hub) checkBehind(d uint64, known *floors) *floors {
	fl := known
	if fl == nil {
		f, err := h.floors(context.Background(), true)
		if err != nil {
			return nil // we cannot tell
		}
		fl = &f
	}
	if fl.first != 0 && fl.first <= d+1 && fl.reserved <= d {
		return fl // nothing was lost (a sparse log)
	}
	var only func(*Subscriber) bool
	if fl.first != 0 && fl.first <= d+1 {
		// Only the hub's own events are gone: only the subscribers that
		// may receive them missed something.
		only = func(s *Subscriber) bool { return s.filter.reserved }
	}
	n := h.sendAwayIf(ErrBehind, 0, time.Second, only)
	h.logger.Warn("hub: events were removed from the log before they were fanned out; subscribers resume to learn of the gap",
		"dispatched", d, "first_retained", fl.first, "reserved_removed", fl.reserved, "subscribers", n)
	return fl
}

// offer queues wire to s once per event; it returns 1 if it did.
func (h *Hub) offer(s *Subscriber, ev *ssehub.Event, wire []byte) uint64 {
	if s.mark == ev.Pos {
		return 0 // matched through another topic already
	}
	s.mark = ev.Pos
	if ev.Private && !s.filter.mayReceivePrivate(ev.Topics) {
		return 0
	}
	if s.enqueue(wire, ev) {
		return 1
	}
	return 0
}

// heartbeat sends a comment to every stream that had nothing to write
// during the last period.
func (h *Hub) heartbeat(ctx context.Context) {
	defer h.done.Done()
	t := time.NewTicker(h.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.RLock()
		for s := range h.all {
			s.heartbeat()
		}
		h.mu.RUnlock()
	}
}

// Close shuts the hub down: it refuses new subscribers, tells every
// subscriber to come back after ShutdownRetry plus a random share of
// ShutdownJitter (a ReconnectType event and a retry field) and ends its
// stream (Next returns what was pending, then ErrShutdown), and stops the
// hub's goroutines. It does not close the log. Safe to call more than once.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.closing)
	h.mu.Unlock()
	h.sendAway(ErrShutdown, h.opts.ShutdownRetry, h.opts.ShutdownJitter)
	h.cancel()
	h.done.Wait()
	return nil
}

// Reconnect asks every current subscriber to come back later: each gets a
// ReconnectType event and a retry field with its own random time within
// window, and its stream ends (Next returns ErrReconnect). The clients
// return spread over the window instead of all in the same second, and
// resume from their last event id, so nothing is lost. It returns how many
// subscribers were asked. Use it to rebalance load or before maintenance.
func (h *Hub) Reconnect(window time.Duration) int {
	return h.sendAway(ErrReconnect, 0, window)
}

// sendAway ends every subscriber's stream with err after telling it to
// reconnect in base plus a random share of jitter.
func (h *Hub) sendAway(err error, base, jitter time.Duration) int {
	return h.sendAwayIf(err, base, jitter, nil)
}

// sendAwayIf is sendAway for the subscribers only selects (all when nil).
func (h *Hub) sendAwayIf(err error, base, jitter time.Duration, only func(*Subscriber) bool) int {
	h.mu.RLock()
	subs := make([]*Subscriber, 0, len(h.all))
	for s := range h.all {
		if only == nil || only(s) {
			subs = append(subs, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range subs {
		d := base
		if jitter > 0 {
			d += rand.N(jitter)
		}
		s.finish(err, reconnectEvent(d), reconnectAsEvent(d))
	}
	return len(subs)
}

// Stats returns counters for metrics and the dashboard.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	n := len(h.all)
	h.mu.RUnlock()
	st := h.stats.snapshot(n)
	st.Dispatched = h.dispatched.Load()
	return st
}

func (h *Hub) register(s *Subscriber) (start uint64, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, ErrShutdown
	}
	for _, sel := range s.filter.exact {
		m := h.exact[sel]
		if m == nil {
			m = make(map[*Subscriber]struct{})
			h.exact[sel] = m
		}
		m[s] = struct{}{}
	}
	if len(s.filter.wild) > 0 {
		h.wild[s] = struct{}{}
	}
	h.all[s] = struct{}{}
	return h.dispatched.Load(), nil
}

func (h *Hub) unregister(s *Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.all[s]; !ok {
		return
	}
	for _, sel := range s.filter.exact {
		if m := h.exact[sel]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(h.exact, sel)
			}
		}
	}
	delete(h.wild, s)
	delete(h.all, s)
}
