package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
)

// Path is the collection of active subscriptions, and the prefix of the
// topics of subscription events.
const Path = "/.well-known/mercure/subscriptions"

// NodesPath is the topic prefix of the hubs' heartbeat events.
const NodesPath = "/.well-known/ssehub/nodes/"

// ReservedType is the event type the Mercure protocol reserves for events
// the hub itself generates (heartbeats carry it, so they stay out of the
// onmessage handlers of subscribers allowed to see them).
const ReservedType = "mercure"

// Matcher types of draft-08, as they appear in subscription events and in
// the subscriptions API.
const (
	MatchExact      = "exact"
	MatchURLPattern = "urlpattern"
)

// JSONLDContext is the @context of the subscriptions API's documents.
const JSONLDContext = "https://mercure.rocks/"

// Defaults.
const (
	DefaultHeartbeat    = 30 * time.Second
	DefaultRate         = 100 // subscription start events per second
	DefaultMaxSelectors = 20  // selectors announced per subscriber
	ttlFactor           = 3   // a hub is dead after this many missed heartbeats
	batchSize           = 256
)

// Options configure a Presence. The zero value is usable.
type Options struct {
	// Heartbeat is how often the hub announces it is alive; a hub whose
	// announcement is three periods old is dead and its subscriptions
	// end. 0: DefaultHeartbeat.
	Heartbeat time.Duration
	// Logger receives failures to publish or read; nil: slog.Default().
	Logger *slog.Logger
	// Rate bounds how many subscription start events this hub publishes
	// per second (a token bucket of one second's worth): presence events
	// share the log's retention with application events, and must not
	// push them out. Starts beyond it wait in a queue; a subscription that
	// ends while its start waits publishes neither event. End events are
	// not limited (there is one per published start), so presence writes
	// at most about twice Rate events per second, plus heartbeats.
	// 0: DefaultRate; negative: no limit.
	Rate float64
	// MaxSelectors bounds the selectors of one subscriber that are
	// announced (the first ones, in the order given to Track); the others
	// are counted (Stats.Unannounced) and never appear in the view.
	// 0: DefaultMaxSelectors; negative: no limit.
	MaxSelectors int
}

// Stats are counters of a Presence since New.
type Stats struct {
	// Coalesced counts subscriptions that ended before their start event
	// was published: neither event was written.
	Coalesced uint64
	// Unannounced counts selectors beyond Options.MaxSelectors.
	Unannounced uint64
	// Waiting is how many start events wait for the rate now.
	Waiting int
}

// Selector is one topic selector of a subscription, as the subscriber
// wrote it.
type Selector struct {
	Src  string // the selector or matcher
	Type string // "" for a 0.x topic= selector, else MatchExact or MatchURLPattern
}

// Subscription is an active subscription in the view. It is shared and
// never modified: callers must not modify it either.
type Subscription struct {
	ID         string   // the canonical topic of its events
	Topic      string   // the 0.x selector (also Match)
	Match      string   // the draft-08 matcher
	MatchType  string   // the draft-08 matcher type; "" for a 0.x URI template
	Subscriber string   // the subscriber's id
	Topics     []string // the topics of its events (to authorize readers)
	Raw        []byte   // the event's data: the JSON-LD document, served as is
	node       string
	doc        subscriptionDoc
}

// subscriptionDoc is the JSON-LD document of one subscription: the data of
// its events and an item of the API's collections. "topic" is the 0.x
// field, "match" and "match_type" the draft-08 ones; "node" (an ssehub
// extension) names the hub that holds the subscription.
type subscriptionDoc struct {
	Context    string          `json:"@context,omitempty"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Topic      string          `json:"topic"`
	Match      string          `json:"match"`
	MatchType  string          `json:"match_type,omitempty"`
	Subscriber string          `json:"subscriber"`
	Active     bool            `json:"active"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	Node       string          `json:"node,omitempty"`
}

// nodeDoc is the data of a hub's heartbeat event.
type nodeDoc struct {
	Type    string `json:"type"` // "Node"
	Node    string `json:"node"`
	Expires int64  `json:"expires"` // Unix milliseconds; now or earlier: the hub left
}

// Presence keeps the view of the active subscriptions and publishes this
// hub's subscription and heartbeat events. Create it with New and stop it
// with Close. Its methods are safe for concurrent use.
type Presence struct {
	h         *hub.Hub
	node      string
	heartbeat time.Duration
	logger    *slog.Logger

	rate         float64 // start events per second; <= 0: no limit
	maxSelectors int     // <= 0: no limit

	// Outgoing events, published by run: ends (and nothing else) in queue,
	// in order; starts in starts, as fast as the token bucket allows.
	// Lock order: vmu, then qmu (apply re-announces with vmu held).
	qmu         sync.Mutex
	queue       []*ssehub.Event
	starts      []*ssehub.Event          // in order; entries no longer in waiting are withdrawn
	waiting     map[string]*ssehub.Event // start events not taken by run yet, by id
	stopped     bool
	local       map[string]*ssehub.Event // start events of this hub's active subscriptions, by id
	wake        chan struct{}            // capacity 1
	tokens      float64                  // the bucket, used by run only
	refilled    time.Time                // when tokens was last refilled
	coalesced   atomic.Uint64
	unannounced atomic.Uint64

	// The view, updated by observe (the hub's dispatcher) and load.
	vmu        sync.Mutex
	ready      atomic.Bool
	pos        atomic.Uint64 // the last log position the view reflects
	pending    []*ssehub.Event
	pendingMax uint64
	subs       map[string]*Subscription // by id (the canonical topic)
	nodes      map[string]time.Time     // node -> heartbeat expiry
	reaped     map[string]bool          // ids whose end this hub published for a dead hub, not seen yet

	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	done     chan struct{} // closed when run returns
}

// New starts tracking presence on h: it registers h's OnEvent hook (the
// hub's one slot) and starts a goroutine that reads the retained history
// into the view and then publishes. Close stops it.
func New(h *hub.Hub, opts Options) *Presence {
	p := &Presence{
		h:            h,
		node:         "urn:uuid:" + NewUUID(),
		heartbeat:    opts.Heartbeat,
		logger:       opts.Logger,
		rate:         opts.Rate,
		maxSelectors: opts.MaxSelectors,
		waiting:      make(map[string]*ssehub.Event),
		local:        make(map[string]*ssehub.Event),
		wake:         make(chan struct{}, 1),
		subs:         make(map[string]*Subscription),
		nodes:        make(map[string]time.Time),
		reaped:       make(map[string]bool),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	if p.heartbeat <= 0 {
		p.heartbeat = DefaultHeartbeat
	}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	if p.rate == 0 {
		p.rate = DefaultRate
	}
	if p.maxSelectors == 0 {
		p.maxSelectors = DefaultMaxSelectors
	}
	p.tokens, p.refilled = p.burst(), time.Now()
	h.OnEvent(p.observe)
	go p.run()
	return p
}

// Node returns this hub's node id.
func (p *Presence) Node() string { return p.node }

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// escapeComponent percent-encodes everything but RFC 3986 unreserved
// characters, as an RFC 6570 simple expansion does: the topic and the
// subscriber become one path segment each.
func escapeComponent(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// subscriptionTopics returns the topics of a subscription's events: the
// 0.x form /subscriptions/{topic}/{subscriber} and, when the selector has a
// draft-08 type, /subscriptions/{match_type}/{match}/{subscriber}. The
// first is the form the subscriber used.
func subscriptionTopics(s Selector, matchType, subscriber string) []string {
	sel, sub := escapeComponent(s.Src), escapeComponent(subscriber)
	old := Path + "/" + sel + "/" + sub
	if matchType == "" {
		return []string{old}
	}
	draft08 := Path + "/" + matchType + "/" + sel + "/" + sub
	if s.Type == "" {
		return []string{old, draft08}
	}
	return []string{draft08, old}
}

// matchTypeOf returns the draft-08 matcher type of a selector: its own, or
// "exact" for a 0.x selector that means the same ("*" or no "{").
func matchTypeOf(s Selector) string {
	if s.Type != "" {
		return s.Type
	}
	if !strings.Contains(s.Src, "{") {
		return MatchExact
	}
	return ""
}

// subscriptionEvent returns the event announcing that a subscription
// started (active) or ended.
func subscriptionEvent(doc subscriptionDoc, topics []string) *ssehub.Event {
	data, _ := json.Marshal(doc)
	return &ssehub.Event{Topics: topics, Data: string(data), Private: true}
}

// Track announces the subscriptions of a new subscriber, one per selector
// (already parsed and validated by the caller; at most
// Options.MaxSelectors), and their end when sub closes. claims (nil:
// anonymous) give each subscription its payload. Call it right after
// Hub.Subscribe.
func (p *Presence) Track(sub *hub.Subscriber, sels []Selector, claims *auth.Claims) {
	if p.maxSelectors > 0 && len(sels) > p.maxSelectors {
		p.unannounced.Add(uint64(len(sels) - p.maxSelectors))
		sels = sels[:p.maxSelectors]
	}
	if len(sels) == 0 {
		return
	}
	subscriber := "urn:uuid:" + NewUUID()
	starts := make([]*ssehub.Event, 0, len(sels))
	ends := make([]*ssehub.Event, 0, len(sels))
	for _, s := range sels {
		mt := matchTypeOf(s)
		topics := subscriptionTopics(s, mt, subscriber)
		doc := subscriptionDoc{
			Context: JSONLDContext, ID: topics[0], Type: "Subscription",
			Topic: s.Src, Match: s.Src, MatchType: mt,
			Subscriber: subscriber, Active: true,
			Payload: claims.PayloadFor(s.Src), Node: p.node,
		}
		starts = append(starts, subscriptionEvent(doc, topics))
		doc.Active = false
		ends = append(ends, subscriptionEvent(doc, topics))
	}
	p.qmu.Lock()
	for _, ev := range starts {
		p.local[ev.Topics[0]] = ev
	}
	p.qmu.Unlock()
	p.enqueueStarts(starts...)
	sub.OnClose(func() {
		p.qmu.Lock()
		for _, ev := range ends {
			delete(p.local, ev.Topics[0])
		}
		p.qmu.Unlock()
		p.enqueueEnds(ends...)
	})
}

// enqueueStarts queues start events for run to publish, at the rate. It
// never blocks on the log.
func (p *Presence) enqueueStarts(evs ...*ssehub.Event) {
	p.qmu.Lock()
	if p.stopped {
		p.qmu.Unlock()
		return
	}
	for _, ev := range evs {
		p.waiting[ev.Topics[0]] = ev
	}
	p.starts = append(p.starts, evs...)
	p.qmu.Unlock()
	p.signal()
}

// enqueueEnds queues end events for run to publish, in order, except those
// whose start still waits: that start is withdrawn and neither is
// published. It never blocks on the log. Once stopping, subscription ends
// are not published one by one: the hub's final heartbeat says they all
// ended.
func (p *Presence) enqueueEnds(evs ...*ssehub.Event) {
	p.qmu.Lock()
	if p.stopped {
		p.qmu.Unlock()
		return
	}
	for _, ev := range evs {
		id := ev.Topics[0]
		if _, ok := p.waiting[id]; ok {
			delete(p.waiting, id)
			p.coalesced.Add(1)
			continue
		}
		p.queue = append(p.queue, ev)
	}
	if len(p.starts) > 64 && len(p.starts) > 2*len(p.waiting) {
		// Many withdrawn starts wait behind live ones: drop them.
		live := p.starts[:0]
		for _, ev := range p.starts {
			if p.waiting[ev.Topics[0]] == ev {
				live = append(live, ev)
			}
		}
		clear(p.starts[len(live):])
		p.starts = live
	}
	p.qmu.Unlock()
	p.signal()
}

func (p *Presence) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Stats returns the Presence's counters. Safe for concurrent use.
func (p *Presence) Stats() Stats {
	p.qmu.Lock()
	waiting := len(p.waiting)
	p.qmu.Unlock()
	return Stats{Coalesced: p.coalesced.Load(), Unannounced: p.unannounced.Load(), Waiting: waiting}
}

// run is the presence goroutine: it reads the history into the view, then
// publishes queued events and heartbeats, and reaps dead hubs, until Close
// or the hub closes.
func (p *Presence) run() {
	defer close(p.done)
	closing := p.h.Closing()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the load must not outlive the hub or Close
		select {
		case <-closing:
			cancel()
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	p.publish(ctx, p.heartbeatEvent(time.Now().Add(ttlFactor*p.heartbeat)))
	p.load(ctx)
	p.reap(ctx)
	t := time.NewTicker(p.heartbeat)
	defer t.Stop()
	retry := time.NewTimer(time.Hour) // fires when starts wait for tokens
	retry.Stop()
	defer retry.Stop()
	flush := func() {
		if d := p.flush(ctx); d > 0 {
			retry.Reset(d)
		}
	}
	for {
		select {
		case <-closing:
			p.goodbye()
			return
		case <-p.stop:
			p.goodbye()
			return
		case <-p.wake:
			flush()
		case <-retry.C:
			flush()
		case <-t.C:
			p.publish(ctx, p.heartbeatEvent(time.Now().Add(ttlFactor*p.heartbeat)))
			p.reap(ctx)
		}
	}
}

// goodbye publishes the queued ends and the final heartbeat (starts that
// still wait are not: the heartbeat ends them all). The log outlives the
// hub a little (it closes after the requests finished).
func (p *Presence) goodbye() {
	p.qmu.Lock()
	p.stopped = true
	rest := p.queue
	p.queue, p.starts = nil, nil
	clear(p.waiting)
	p.qmu.Unlock()
	fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer fcancel()
	p.publish(fctx, rest...)
	p.publish(fctx, p.heartbeatEvent(time.Now()))
}

// Close stops tracking: it publishes what is queued and this hub's
// goodbye (its subscriptions end with it), then waits, at most timeout
// (at least a second), for that to finish. Call it before closing the
// log; before or after Hub.Close. Safe to call more than once and
// concurrently.
func (p *Presence) Close(timeout time.Duration) {
	p.stopOnce.Do(func() { close(p.stop) })
	t := time.NewTimer(max(timeout, time.Second))
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	}
}

// burst is the token bucket's size: one second's worth, at least one.
func (p *Presence) burst() float64 { return max(1, p.rate) }

// flush publishes what is queued, in batches: every end, and the starts
// the token bucket allows. It returns how long until the next waiting
// start may go, or 0 when none waits.
func (p *Presence) flush(ctx context.Context) time.Duration {
	for {
		if p.rate > 0 {
			now := time.Now()
			p.tokens = min(p.burst(), p.tokens+now.Sub(p.refilled).Seconds()*p.rate)
			p.refilled = now
		}
		p.qmu.Lock()
		n := min(len(p.queue), batchSize)
		batch := slices.Clone(p.queue[:n])
		p.queue = p.queue[n:]
		if len(p.queue) == 0 {
			p.queue = nil
		}
		taken := 0
		for len(p.starts) > 0 && len(batch) < batchSize && (p.rate <= 0 || float64(taken+1) <= p.tokens) {
			ev := p.starts[0]
			p.starts[0] = nil
			p.starts = p.starts[1:]
			if id := ev.Topics[0]; p.waiting[id] == ev {
				delete(p.waiting, id)
				batch = append(batch, ev)
				taken++
			}
		}
		if len(p.starts) == 0 {
			p.starts = nil
		}
		more := len(p.waiting) > 0
		p.qmu.Unlock()
		if p.rate > 0 {
			p.tokens -= float64(taken)
		}
		if len(batch) == 0 {
			if !more {
				return 0
			}
			return max(time.Millisecond, time.Duration((1-p.tokens)/p.rate*float64(time.Second)))
		}
		p.publish(ctx, batch...)
	}
}

func (p *Presence) publish(ctx context.Context, evs ...*ssehub.Event) error {
	if len(evs) == 0 {
		return nil
	}
	err := p.h.Publish(ctx, evs...)
	if err != nil && ctx.Err() == nil {
		p.logger.Warn("presence: publishing subscription events failed", "events", len(evs), "err", err)
	}
	return err
}

func (p *Presence) heartbeatEvent(expires time.Time) *ssehub.Event {
	data, _ := json.Marshal(nodeDoc{Type: "Node", Node: p.node, Expires: expires.UnixMilli()})
	return &ssehub.Event{Topics: []string{NodesPath + escapeComponent(p.node)}, Type: ReservedType, Data: string(data), Private: true}
}

// load reads the retained history into the view, then applies what the
// hub dispatched meanwhile, and marks the view ready.
func (p *Presence) load(ctx context.Context) {
	l := p.h.Log()
	var after uint64
	for {
		evs, err := l.Read(ctx, after, 1024)
		if err != nil {
			if ctx.Err() == nil {
				p.logger.Warn("presence: reading history for the subscriptions API failed; it lists what it sees from now on", "err", err)
			}
			break
		}
		if len(evs) == 0 {
			break
		}
		p.vmu.Lock()
		for _, ev := range evs {
			p.apply(ev)
		}
		p.vmu.Unlock()
		after = evs[len(evs)-1].Pos
	}
	p.vmu.Lock()
	for _, ev := range p.pending {
		p.apply(ev)
	}
	if p.pendingMax > p.pos.Load() {
		p.pos.Store(p.pendingMax)
	}
	p.pending = nil
	p.ready.Store(true)
	p.vmu.Unlock()
}

// observe is the hub's OnEvent hook: it runs on the dispatcher, with
// Hub.mu held, for every event, in log order.
func (p *Presence) observe(ev *ssehub.Event) {
	if !isPresenceEvent(ev) {
		if p.ready.Load() {
			p.pos.Store(ev.Pos)
			return
		}
	}
	p.vmu.Lock()
	if !p.ready.Load() {
		if isPresenceEvent(ev) {
			p.pending = append(p.pending, ev)
		}
		p.pendingMax = max(p.pendingMax, ev.Pos)
		p.vmu.Unlock()
		return
	}
	p.apply(ev)
	p.vmu.Unlock()
}

func isPresenceEvent(ev *ssehub.Event) bool {
	return ev.Private && len(ev.Topics) > 0 &&
		(strings.HasPrefix(ev.Topics[0], Path+"/") || strings.HasPrefix(ev.Topics[0], NodesPath))
}

// apply updates the view with one event. Called with vmu held.
func (p *Presence) apply(ev *ssehub.Event) {
	if ev.Pos <= p.pos.Load() {
		return // seen already (the history and the hook overlap)
	}
	p.pos.Store(ev.Pos)
	if !isPresenceEvent(ev) {
		return
	}
	if strings.HasPrefix(ev.Topics[0], NodesPath) {
		var n nodeDoc
		if json.Unmarshal([]byte(ev.Data), &n) == nil && n.Node != "" {
			p.nodes[n.Node] = time.UnixMilli(n.Expires)
		}
		return
	}
	var doc subscriptionDoc
	if err := json.Unmarshal([]byte(ev.Data), &doc); err != nil || doc.Type != "Subscription" {
		return
	}
	id := ev.Topics[0]
	delete(p.reaped, id)
	if !doc.Active {
		delete(p.subs, id)
		if doc.Node == p.node {
			p.reannounce(id)
		}
		return
	}
	p.subs[id] = &Subscription{
		ID: doc.ID, Topic: doc.Topic, Match: doc.Match, MatchType: doc.MatchType,
		Subscriber: doc.Subscriber, Topics: ev.Topics, Raw: []byte(ev.Data),
		node: doc.Node, doc: doc,
	}
	if _, known := p.nodes[doc.Node]; !known && doc.Node != "" {
		// Until its first heartbeat, a hub counts as alive for one TTL.
		p.nodes[doc.Node] = ev.Time.Add(ttlFactor * p.heartbeat)
	}
}

// reannounce publishes again a subscription of this hub that another hub
// ended (it thought this one dead). Called with vmu held.
func (p *Presence) reannounce(id string) {
	p.qmu.Lock()
	ev, live := p.local[id]
	p.qmu.Unlock()
	if live {
		p.enqueueStarts(&ssehub.Event{Topics: ev.Topics, Data: ev.Data, Private: true})
	}
}

// reap publishes the end of the subscriptions of dead hubs when this hub is
// the live hub with the smallest node id.
func (p *Presence) reap(ctx context.Context) {
	now := time.Now()
	var ends []*ssehub.Event
	p.vmu.Lock()
	smallest := p.node
	dead := map[string]bool{}
	for n, exp := range p.nodes {
		switch {
		case n == p.node:
		case now.Before(exp):
			smallest = min(smallest, n)
		default:
			dead[n] = true
		}
	}
	if smallest == p.node {
		for id, s := range p.subs {
			if dead[s.node] && !p.reaped[id] {
				p.reaped[id] = true // once: the end may not be back from the log yet
				doc := s.doc
				doc.Active = false
				ends = append(ends, subscriptionEvent(doc, s.Topics))
			}
		}
	}
	for n := range dead {
		has := false
		for _, s := range p.subs {
			if s.node == n {
				has = true
				break
			}
		}
		if !has {
			delete(p.nodes, n)
		}
	}
	p.vmu.Unlock()
	if len(ends) > 0 {
		p.logger.Debug("presence: ending the subscriptions of hubs that stopped announcing themselves", "subscriptions", len(ends))
		for len(ends) > 0 {
			batch := ends[:min(len(ends), batchSize)]
			ends = ends[len(batch):]
			if err := p.publish(ctx, batch...); err != nil {
				p.vmu.Lock()
				for _, ev := range batch {
					delete(p.reaped, ev.Topics[0]) // retried at the next tick
				}
				p.vmu.Unlock()
			}
		}
	}
}

// Ready reports whether the view has read the retained history; until
// then List answers nothing useful.
func (p *Presence) Ready() bool { return p.ready.Load() }

// Snapshot returns the active subscriptions, sorted by id, and the log
// position the view reflects. It holds the view's lock only to copy it:
// callers filter and authorize the copy without stalling the dispatcher.
func (p *Presence) Snapshot() (subs []*Subscription, pos uint64) {
	p.vmu.Lock()
	pos = p.pos.Load()
	subs = make([]*Subscription, 0, len(p.subs))
	for _, s := range p.subs {
		subs = append(subs, s)
	}
	p.vmu.Unlock()
	slices.SortFunc(subs, func(x, y *Subscription) int { return strings.Compare(x.ID, y.ID) })
	return subs, pos
}
