package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
)

// The subscriptions API (presence), built on the log.
//
// When Config.Subscriptions is on, the hub publishes a private update when
// a subscription starts and when it ends, and serves the active
// subscriptions at SubscriptionsPath. Nothing of it lives only in this
// process's memory:
//
//   - start and end events go through the log (Hub.Publish), like any
//     update, so every hub sharing the log sees them;
//   - each hub builds its view of the active subscriptions from the events
//     it fans out (Hub.OnEvent), after reading the retained history once at
//     start, so a hub that starts later or restarts knows about the
//     subscriptions held by the others;
//   - the view's position in the log is the cursor of the API: a client
//     lists, then subscribes with the returned lastEventID and receives
//     every later subscription event exactly once, with no gap.
//
// A hub that dies (kill -9, a lost machine) never publishes its "ended"
// events. So each hub also publishes, every SubscriptionsHeartbeat, a
// private "node" event saying until when it is alive (three periods), and
// a final one with an expiry of now when it shuts down. When a hub's
// heartbeat expires, the live hub with the smallest node id publishes the
// "ended" events of the dead hub's subscriptions on its behalf; a hub that
// sees its own live subscriptions ended by another (after a network
// partition) announces them again.

// SubscriptionsPath is the collection of active subscriptions.
const SubscriptionsPath = "/.well-known/mercure/subscriptions"

// nodesPath is the topic prefix of the hubs' heartbeat events.
const nodesPath = "/.well-known/ssehub/nodes/"

// jsonLDContext is the @context of the subscriptions API's documents.
const jsonLDContext = "https://mercure.rocks/"

// Defaults of the subscriptions API.
const (
	defaultPresenceHeartbeat = 30 * time.Second
	presenceTTLFactor        = 3 // a hub is dead after this many missed heartbeats
	presenceBatch            = 256
)

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

// activeSub is a subscription in a hub's view.
type activeSub struct {
	doc    subscriptionDoc
	topics []string // the topics of its events (authorization of readers)
	raw    []byte   // the event data, served as is
}

// presence keeps the view of the active subscriptions and publishes this
// hub's subscription and heartbeat events. Create it with newPresence; its
// goroutine stops when the hub closes.
type presence struct {
	h         *hub.Hub
	node      string
	heartbeat time.Duration
	logger    *slog.Logger

	// Outgoing events, published in order by run. Lock order: vmu, then
	// qmu (apply re-announces with vmu held).
	qmu     sync.Mutex
	queue   []*ssehub.Event
	stopped bool
	local   map[string]*ssehub.Event // start events of this hub's active subscriptions, by id
	wake    chan struct{}            // capacity 1

	// The view, updated by observe (the hub's dispatcher) and load.
	vmu        sync.Mutex
	ready      atomic.Bool
	pos        atomic.Uint64 // the last log position the view reflects
	pending    []*ssehub.Event
	pendingMax uint64
	subs       map[string]*activeSub // by id (the canonical topic)
	nodes      map[string]time.Time  // node -> heartbeat expiry
	reaped     map[string]bool       // ids whose end this hub published for a dead hub, not seen yet

	done chan struct{} // closed when run returns
}

func newPresence(a *API) *presence {
	p := &presence{
		h:         a.cfg.Hub,
		node:      "urn:uuid:" + newUUID(),
		heartbeat: a.cfg.SubscriptionsHeartbeat,
		logger:    a.logger,
		local:     make(map[string]*ssehub.Event),
		wake:      make(chan struct{}, 1),
		subs:      make(map[string]*activeSub),
		nodes:     make(map[string]time.Time),
		reaped:    make(map[string]bool),
		done:      make(chan struct{}),
	}
	if p.heartbeat <= 0 {
		p.heartbeat = defaultPresenceHeartbeat
	}
	p.h.OnEvent(p.observe)
	go p.run()
	return p
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
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
// 0.x form /subscriptions/{topic}/{subscriber} and, when the matcher has a
// draft-08 type, /subscriptions/{match_type}/{match}/{subscriber}. The
// first is the form the subscriber used.
func subscriptionTopics(m matcher, matchType, subscriber string) []string {
	sel, sub := escapeComponent(m.src), escapeComponent(subscriber)
	old := SubscriptionsPath + "/" + sel + "/" + sub
	if matchType == "" {
		return []string{old}
	}
	draft08 := SubscriptionsPath + "/" + matchType + "/" + sel + "/" + sub
	if m.typ == "" {
		return []string{old, draft08}
	}
	return []string{draft08, old}
}

// matchTypeOf returns the draft-08 matcher type of a matcher: its own, or
// "exact" for a 0.x selector that means the same ("*" or no "{").
func matchTypeOf(m matcher) string {
	if m.typ != "" {
		return m.typ
	}
	if !strings.Contains(m.src, "{") {
		return matchExact
	}
	return ""
}

// subscriptionEvent returns the event announcing that a subscription
// started (active) or ended.
func (p *presence) subscriptionEvent(doc subscriptionDoc, topics []string) *ssehub.Event {
	data, _ := json.Marshal(doc)
	return &ssehub.Event{Topics: topics, Data: string(data), Private: true}
}

// trackSubscription announces the subscriptions of a new subscriber and their end when
// it closes. It is called by the subscribe handler right after
// Hub.Subscribe.
func (a *API) trackSubscription(sub *hub.Subscriber, r *http.Request, claims *auth.Claims) {
	p := a.subs
	if p == nil {
		return
	}
	ms, err := a.matchers(r.URL.Query())
	if err != nil {
		return // the handler validated them already
	}
	subscriber := "urn:uuid:" + newUUID()
	starts := make([]*ssehub.Event, 0, len(ms))
	ends := make([]*ssehub.Event, 0, len(ms))
	for _, m := range ms {
		mt := matchTypeOf(m)
		topics := subscriptionTopics(m, mt, subscriber)
		doc := subscriptionDoc{
			Context: jsonLDContext, ID: topics[0], Type: "Subscription",
			Topic: m.src, Match: m.src, MatchType: mt,
			Subscriber: subscriber, Active: true,
			Payload: claims.PayloadFor(m.src), Node: p.node,
		}
		starts = append(starts, p.subscriptionEvent(doc, topics))
		doc.Active = false
		ends = append(ends, p.subscriptionEvent(doc, topics))
	}
	p.qmu.Lock()
	for _, ev := range starts {
		p.local[ev.Topics[0]] = ev
	}
	p.qmu.Unlock()
	p.enqueue(starts...)
	sub.OnClose(func() {
		p.qmu.Lock()
		for _, ev := range ends {
			delete(p.local, ev.Topics[0])
		}
		p.qmu.Unlock()
		p.enqueue(ends...)
	})
}

// enqueue queues events for run to publish, in order. It never blocks on
// the log. Once the hub is closing, subscription ends are not published
// one by one: the hub's final heartbeat says they all ended.
func (p *presence) enqueue(evs ...*ssehub.Event) {
	p.qmu.Lock()
	if p.stopped {
		p.qmu.Unlock()
		return
	}
	p.queue = append(p.queue, evs...)
	p.qmu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run is the presence goroutine: it reads the history into the view, then
// publishes queued events and heartbeats, and reaps dead hubs, until the
// hub closes.
func (p *presence) run() {
	defer close(p.done)
	closing := p.h.Closing()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the load must not outlive the hub
		select {
		case <-closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	p.publish(ctx, p.heartbeatEvent(time.Now().Add(presenceTTLFactor*p.heartbeat)))
	p.load(ctx)
	p.reap(ctx)
	t := time.NewTicker(p.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-closing:
			p.qmu.Lock()
			p.stopped = true
			rest := p.queue
			p.queue = nil
			p.qmu.Unlock()
			// The log outlives the hub a little (it closes after the
			// requests finished): write what is queued and say goodbye.
			fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Second)
			p.publish(fctx, rest...)
			p.publish(fctx, p.heartbeatEvent(time.Now()))
			fcancel()
			return
		case <-p.wake:
			p.flush(ctx)
		case <-t.C:
			p.publish(ctx, p.heartbeatEvent(time.Now().Add(presenceTTLFactor*p.heartbeat)))
			p.reap(ctx)
		}
	}
}

// flush publishes what is queued, in batches.
func (p *presence) flush(ctx context.Context) {
	for {
		p.qmu.Lock()
		n := min(len(p.queue), presenceBatch)
		batch := slices.Clone(p.queue[:n])
		p.queue = p.queue[n:]
		if len(p.queue) == 0 {
			p.queue = nil
		}
		p.qmu.Unlock()
		if n == 0 {
			return
		}
		p.publish(ctx, batch...)
	}
}

func (p *presence) publish(ctx context.Context, evs ...*ssehub.Event) error {
	if len(evs) == 0 {
		return nil
	}
	err := p.h.Publish(ctx, evs...)
	if err != nil && ctx.Err() == nil {
		p.logger.Warn("httpapi: publishing subscription events failed", "events", len(evs), "err", err)
	}
	return err
}

func (p *presence) heartbeatEvent(expires time.Time) *ssehub.Event {
	data, _ := json.Marshal(nodeDoc{Type: "Node", Node: p.node, Expires: expires.UnixMilli()})
	// Type "mercure" (reserved for the hub's own events) keeps heartbeats
	// out of the onmessage handlers of subscribers allowed to see them.
	return &ssehub.Event{Topics: []string{nodesPath + escapeComponent(p.node)}, Type: ReservedType, Data: string(data), Private: true}
}

// load reads the retained history into the view, then applies what the
// hub dispatched meanwhile, and marks the view ready.
func (p *presence) load(ctx context.Context) {
	l := p.h.Log()
	var after uint64
	for {
		evs, err := l.Read(ctx, after, 1024)
		if err != nil {
			if ctx.Err() == nil {
				p.logger.Warn("httpapi: reading history for the subscriptions API failed; it lists what it sees from now on", "err", err)
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

// observe is the hub's OnEvent hook: it runs on the dispatcher, for every
// event, in log order.
func (p *presence) observe(ev *ssehub.Event) {
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
		(strings.HasPrefix(ev.Topics[0], SubscriptionsPath+"/") || strings.HasPrefix(ev.Topics[0], nodesPath))
}

// apply updates the view with one event. Called with vmu held.
func (p *presence) apply(ev *ssehub.Event) {
	if ev.Pos <= p.pos.Load() {
		return // seen already (the history and the hook overlap)
	}
	p.pos.Store(ev.Pos)
	if !isPresenceEvent(ev) {
		return
	}
	if strings.HasPrefix(ev.Topics[0], nodesPath) {
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
	p.subs[id] = &activeSub{doc: doc, topics: ev.Topics, raw: []byte(ev.Data)}
	if _, known := p.nodes[doc.Node]; !known && doc.Node != "" {
		// Until its first heartbeat, a hub counts as alive for one TTL.
		p.nodes[doc.Node] = ev.Time.Add(presenceTTLFactor * p.heartbeat)
	}
}

// reannounce publishes again a subscription of this hub that another hub
// ended (it thought this one dead). Called with vmu held.
func (p *presence) reannounce(id string) {
	p.qmu.Lock()
	ev, live := p.local[id]
	p.qmu.Unlock()
	if live {
		p.enqueue(&ssehub.Event{Topics: ev.Topics, Data: ev.Data, Private: true})
	}
}

// reap publishes the end of the subscriptions of dead hubs when this hub is
// the live hub with the smallest node id.
func (p *presence) reap(ctx context.Context) {
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
			if dead[s.doc.Node] && !p.reaped[id] {
				p.reaped[id] = true // once: the end may not be back from the log yet
				doc := s.doc
				doc.Active = false
				ends = append(ends, p.subscriptionEvent(doc, s.topics))
			}
		}
	}
	for n := range dead {
		has := false
		for _, s := range p.subs {
			if s.doc.Node == n {
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
		p.logger.Debug("httpapi: ending the subscriptions of hubs that stopped announcing themselves", "subscriptions", len(ends))
		for len(ends) > 0 {
			batch := ends[:min(len(ends), presenceBatch)]
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

// closeSubscriptions waits, at most timeout, for the presence goroutine to
// publish what it has queued and the hub's goodbye, once the hub closed
// (so the log is not closed under it).
func (a *API) closeSubscriptions(timeout time.Duration) {
	if a.subs == nil {
		return
	}
	select {
	case <-a.subs.done:
	case <-a.cfg.Hub.Closing(): // closed, but the goodbye may still be on its way
		t := time.NewTimer(max(timeout, time.Second))
		defer t.Stop()
		select {
		case <-a.subs.done:
		case <-t.C:
		}
	default: // the hub is still open: nothing to wait for
	}
}

// errSubscriptionsOff answers the API when it is not enabled.
const errSubscriptionsOff = "the subscriptions API is not enabled on this hub: start it with --subscriptions (httpapi.Config.Subscriptions)"

// initSubscriptions mounts the subscriptions API and, when it is enabled,
// starts tracking subscriptions.
func (a *API) initSubscriptions() {
	if a.cfg.Subscriptions {
		a.subs = newPresence(a)
	}
	a.mux.HandleFunc("GET "+SubscriptionsPath, a.subscriptions)
	a.mux.HandleFunc("GET "+SubscriptionsPath+"/", a.subscriptions)
}

// subscriptions serves GET /.well-known/mercure/subscriptions[/…]:
//
//	/subscriptions                                  every active subscription
//	/subscriptions/{topic}                          0.x: those of one selector
//	/subscriptions/{topic}/{subscriber}             0.x: one subscription
//	/subscriptions/{match_type}/{match}             draft-08: those of one matcher
//	/subscriptions/{match_type}/{match}/{subscriber} draft-08: one subscription
//
// as JSON-LD, with lastEventID: the position in the log the answer
// reflects, to subscribe from without a gap. The caller needs a subscriber
// token allowed to receive the requested URL's path as a topic; listed
// subscriptions are those whose events the token may receive.
func (a *API) subscriptions(w http.ResponseWriter, r *http.Request) {
	p := a.subs
	if p == nil {
		httpError(w, http.StatusNotFound, errSubscriptionsOff)
		return
	}
	cred, err := a.authenticate(r, a.cfg.Subscribers, "subscriber")
	if err == nil && cred.claims == nil {
		err = authErr{auth.ErrMissing, "auth: the subscriptions API needs a subscriber token whose mercure.subscribe selectors match " + SubscriptionsPath + "/… (Authorization: Bearer header, ?authorization= query parameter or mercureAuthorization cookie)"}
	}
	path := r.URL.EscapedPath()
	if err == nil && !cred.claims.CanReceive([]string{path}) {
		err = authErr{auth.ErrTopicNotAllowed, "auth: topic not allowed: the token's subscribe selectors do not match " + strconv.Quote(path) + " (add a selector such as " + SubscriptionsPath + "{/topic}{/subscriber} or /.well-known/mercure/subscriptions/*)"}
	}
	if err != nil {
		a.authError(w, r, err)
		return
	}
	if !p.ready.Load() {
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "the subscriptions API is still reading the history; retry in a moment")
		return
	}
	var segs []string
	if rest := strings.TrimPrefix(path, SubscriptionsPath); rest != "" {
		for _, s := range strings.Split(strings.TrimPrefix(rest, "/"), "/") {
			u, uerr := url.PathUnescape(s)
			if uerr != nil || s == "" {
				httpError(w, http.StatusNotFound, "no such subscription resource: "+path)
				return
			}
			segs = append(segs, u)
		}
	}
	var (
		filter func(*activeSub) bool
		single bool
	)
	isType := func(s string) bool { return s == matchExact || s == matchURLPattern }
	switch {
	case len(segs) == 0:
		filter = func(*activeSub) bool { return true }
	case len(segs) == 1:
		filter = func(s *activeSub) bool { return s.doc.Topic == segs[0] }
	case len(segs) == 2 && isType(segs[0]):
		filter = func(s *activeSub) bool { return s.doc.MatchType == segs[0] && s.doc.Match == segs[1] }
	case len(segs) == 2:
		filter, single = func(s *activeSub) bool { return s.doc.Topic == segs[0] && s.doc.Subscriber == segs[1] }, true
	case len(segs) == 3 && isType(segs[0]):
		filter, single = func(s *activeSub) bool {
			return s.doc.MatchType == segs[0] && s.doc.Match == segs[1] && s.doc.Subscriber == segs[2]
		}, true
	default:
		httpError(w, http.StatusNotFound, "no such subscription resource: "+path)
		return
	}

	p.vmu.Lock()
	last := p.pos.Load()
	var found []*activeSub
	for _, s := range p.subs {
		if filter(s) && cred.claims.CanReceive(s.topics) {
			found = append(found, s)
		}
	}
	p.vmu.Unlock()
	slices.SortFunc(found, func(x, y *activeSub) int { return strings.Compare(x.doc.ID, y.doc.ID) })

	lastID := hub.LastEventIDEarliest
	if last > 0 {
		lastID = ssehub.FormatID(last)
	}
	var body []byte
	if single {
		if len(found) == 0 {
			httpError(w, http.StatusNotFound, "no active subscription at "+path)
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(found[0].raw, &doc); err != nil {
			writeError(w, err)
			return
		}
		doc["lastEventID"], doc["last_event_id"] = lastID, lastID
		body, _ = json.Marshal(doc)
	} else {
		items := make([]json.RawMessage, len(found))
		for i, s := range found {
			items[i] = s.raw
		}
		body, _ = json.Marshal(struct {
			Context       string            `json:"@context"`
			ID            string            `json:"id"`
			Type          string            `json:"type"`
			LastEventID   string            `json:"lastEventID"`
			LastEventIDSC string            `json:"last_event_id"`
			Subscriptions []json.RawMessage `json:"subscriptions"`
		}{jsonLDContext, path, "Subscriptions", lastID, lastID, items})
	}
	h := w.Header()
	h.Set("Content-Type", "application/ld+json")
	h.Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
}
