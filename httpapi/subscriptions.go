package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/presence"
)

// The subscriptions API's HTTP face. The state (subscription events through
// the log, heartbeats, reaping, the view) is package presence's; the API
// creates a presence.Presence when Config.Subscriptions is on and closes it
// in Close.

// SubscriptionsPath is the collection of active subscriptions.
const SubscriptionsPath = presence.Path

// trackSubscription announces the subscriptions of a new subscriber (ms,
// its parsed selectors) and their end when it closes. It is called by the
// subscribe handler right after Hub.Subscribe.
func (a *API) trackSubscription(sub *hub.Subscriber, ms []matcher, claims *auth.Claims) {
	if a.subs == nil {
		return
	}
	sels := make([]presence.Selector, len(ms))
	for i, m := range ms {
		sels[i] = presence.Selector{Src: m.src, Type: m.typ}
	}
	a.subs.Track(sub, sels, claims)
}

// closeSubscriptions stops presence: it publishes what is queued and the
// hub's goodbye, waiting at most timeout (so the log is not closed under
// it).
func (a *API) closeSubscriptions(timeout time.Duration) {
	if a.subs != nil {
		a.subs.Close(timeout)
	}
}

// errSubscriptionsOff answers the API when it is not enabled.
const errSubscriptionsOff = "the subscriptions API is not enabled on this hub"

// initSubscriptions mounts the subscriptions API and, when it is enabled,
// starts tracking subscriptions.
func (a *API) initSubscriptions() {
	if a.cfg.Subscriptions {
		a.subs = presence.New(a.cfg.Hub, presence.Options{
			Heartbeat:    a.cfg.SubscriptionsHeartbeat,
			Logger:       a.logger,
			Rate:         a.cfg.SubscriptionsRate,
			MaxSelectors: a.cfg.SubscriptionsMaxSelectors,
		})
		a.met.WatchPresence(a.subs)
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
		httpError(w, http.StatusNotFound, errSubscriptionsOff+a.cfg.hint("Subscriptions"))
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
	if !p.Ready() {
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
		filter func(*presence.Subscription) bool
		single bool
	)
	isType := func(s string) bool { return s == presence.MatchExact || s == presence.MatchURLPattern }
	switch {
	case len(segs) == 0:
		filter = func(*presence.Subscription) bool { return true }
	case len(segs) == 1:
		filter = func(s *presence.Subscription) bool { return s.Topic == segs[0] }
	case len(segs) == 2 && isType(segs[0]):
		filter = func(s *presence.Subscription) bool { return s.MatchType == segs[0] && s.Match == segs[1] }
	case len(segs) == 2:
		filter, single = func(s *presence.Subscription) bool { return s.Topic == segs[0] && s.Subscriber == segs[1] }, true
	case len(segs) == 3 && isType(segs[0]):
		filter, single = func(s *presence.Subscription) bool {
			return s.MatchType == segs[0] && s.Match == segs[1] && s.Subscriber == segs[2]
		}, true
	default:
		httpError(w, http.StatusNotFound, "no such subscription resource: "+path)
		return
	}

	// A snapshot: authorizing every subscription must not hold the view's
	// lock, which the hub's dispatcher takes for every event.
	all, last := p.Snapshot()
	var found []*presence.Subscription
	for _, s := range all {
		if filter(s) && cred.claims.CanReceive(s.Topics) {
			found = append(found, s)
		}
	}

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
		if err := json.Unmarshal(found[0].Raw, &doc); err != nil {
			writeError(w, err)
			return
		}
		doc["lastEventID"], doc["last_event_id"] = lastID, lastID
		body, _ = json.Marshal(doc)
	} else {
		items := make([]json.RawMessage, len(found))
		for i, s := range found {
			items[i] = s.Raw
		}
		body, _ = json.Marshal(struct {
			Context       string            `json:"@context"`
			ID            string            `json:"id"`
			Type          string            `json:"type"`
			LastEventID   string            `json:"lastEventID"`
			LastEventIDSC string            `json:"last_event_id"`
			Subscriptions []json.RawMessage `json:"subscriptions"`
		}{presence.JSONLDContext, path, "Subscriptions", lastID, lastID, items})
	}
	h := w.Header()
	h.Set("Content-Type", "application/ld+json")
	h.Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
}
