package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/sse"
)

// Operator endpoints.
const (
	// StatsPath streams the hub's counters (the dashboard's feed): an event
	// of type "stats" every second with JSON data.
	StatsPath = "/.well-known/ssehub/stats"
	// ReconnectPath asks every subscriber to come back later: POST with a
	// publisher token allowed to publish to every topic, and an optional
	// window=<duration> (default 30s) over which clients return.
	ReconnectPath = "/.well-known/ssehub/reconnect"
)

// statsEvent is the data of a stats event.
type statsEvent struct {
	Time        int64  `json:"time"` // Unix milliseconds
	Subscribers int    `json:"subscribers"`
	Published   uint64 `json:"published"`
	Delivered   uint64 `json:"delivered"`
	Replayed    uint64 `json:"replayed"`
	Gaps        uint64 `json:"gaps"`
	Slow        uint64 `json:"slow"`
	LastID      string `json:"last_id"`
}

// stats streams the hub's counters every second, to the holder of a
// subscriber token (any: the numbers are the hub's, not a topic's) or,
// when the hub allows anonymous subscribers, to anybody. Like a
// subscription it ends when its token expires.
func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	cred, err := a.authenticate(r, a.cfg.Subscribers, "subscriber")
	if err == nil && cred.claims == nil && !a.cfg.Anonymous {
		err = a.errAnonymousRefused()
	}
	if err != nil {
		a.authError(w, r, err)
		return
	}
	ctx := r.Context()
	if cred.claims != nil && !cred.claims.ExpiresAt.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, cred.claims.ExpiresAt)
		defer cancel()
	}
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var buf []byte
	for {
		st := a.cfg.Hub.Stats()
		data, _ := json.Marshal(statsEvent{
			Time: time.Now().UnixMilli(), Subscribers: st.Subscribers, Published: st.Published,
			Delivered: st.Delivered, Replayed: st.Replayed, Gaps: st.Gaps, Slow: st.Slow,
			LastID: ssehub.FormatID(st.Dispatched),
		})
		buf, _ = sse.AppendEvent(buf[:0], sse.Event{Type: "stats", Data: string(data)})
		if a.write(rc, w, [][]byte{buf}) != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-a.cfg.Hub.Closing():
			return
		case <-t.C:
		}
	}
}

// reconnect handles the operator's "everybody come back later" call.
func (a *API) reconnect(w http.ResponseWriter, r *http.Request) {
	cred, err := a.authenticate(r, a.cfg.Publishers, "publisher")
	if err == nil && cred.claims == nil {
		err = errMissingPublisherToken
	}
	if err == nil && !cred.claims.PublishSet(a.sels).MatchesAll() {
		err = authErr{auth.ErrTopicNotAllowed, "auth: asking every subscriber to reconnect needs a publisher token allowed to publish to every topic (mercure.publish: [\"*\"])"}
	}
	if err != nil {
		a.authError(w, r, err)
		return
	}
	if a.refuseCrossSite(w, r, cred, "reconnect request") {
		return
	}
	window := 30 * time.Second
	if v := r.URL.Query().Get("window"); v != "" {
		d, perr := time.ParseDuration(v)
		if perr != nil || d < 0 || d > time.Hour {
			httpError(w, http.StatusBadRequest, "window must be a duration between 0s and 1h, e.g. 30s (got "+v+")")
			return
		}
		window = d
	}
	n := a.cfg.Hub.Reconnect(window)
	a.logger.Info("httpapi: asked subscribers to reconnect", "subscribers", n, "window", window)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"subscribers": n, "window_ms": window.Milliseconds()})
}
