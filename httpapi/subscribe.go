package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/sse"
)

// subscribe handles GET /.well-known/mercure: an SSE stream of the updates
// matching the topic selectors, after a replay from Last-Event-ID.
func (a *API) subscribe(w http.ResponseWriter, r *http.Request) {
	ms, err := a.matchers(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	sels := selectorsOf(ms)

	cred, err := a.authenticate(r, a.cfg.Subscribers, "subscriber")
	if err != nil {
		a.authError(w, r, err)
		return
	}
	claims := cred.claims
	if claims == nil && !a.cfg.Anonymous {
		a.authError(w, r, a.errAnonymousRefused())
		return
	}

	req := hub.Request{Selectors: sels, LastEventID: lastEventID(r)}
	ctx := r.Context()
	if claims != nil {
		req.Private = privateMatcher(claims, a.sels)
		if exp := claims.ExpiresAt; !exp.IsZero() {
			// The stream ends when the token expires; the client comes back
			// with a fresh token and resumes.
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, exp)
			defer cancel()
		}
	}
	if wantsPoll(r) {
		a.poll(ctx, w, r, req)
		return
	}
	if r.Method == http.MethodHead {
		// What a GET would answer, without the stream.
		setStreamHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
		return
	}
	sub, err := a.cfg.Hub.Subscribe(ctx, req)
	if err != nil {
		writeError(w, err)
		return
	}
	// Presence (subscriptions.go): announce the subscription, and its end on Close.
	a.trackSubscription(sub, ms, claims)
	parked := false // once parked, the parker closes sub
	defer func() {
		if !parked {
			sub.Close()
		}
	}()

	h := w.Header()
	setStreamHeaders(h)
	h.Set("Last-Event-ID", sub.LastID())
	h.Set("Mercure-Last-Event-ID", sub.LastID())
	if g := sub.Gap(); g.Reason != "" {
		h.Set("Ssehub-Gap", g.Reason)
	}
	a.parker.MayPark(h, r)
	w.WriteHeader(http.StatusOK)

	rc := http.NewResponseController(w)
	var open []byte
	if a.cfg.Retry > 0 {
		open = sse.AppendRetry(open, a.cfg.Retry)
	} else {
		open = sse.AppendComment(open, "")
	}
	if err := a.write(rc, w, [][]byte{open}); err != nil {
		return
	}
	mayPark := a.parker != nil // until the parker declines (HTTP/2, closing)
	for {
		if mayPark && sub.Live() {
			// Replay done: hand the idle connection to the parker, which
			// holds it without this goroutine and its buffers.
			var expires time.Time
			if claims != nil {
				expires = claims.ExpiresAt
			}
			if a.parker.Park(w, r, sub, expires) {
				parked = true
				return
			}
			mayPark = false
		}
		next := sub.Next
		if mayPark && !sub.Live() {
			next = sub.Replay // nil, nil once Live: park without waiting for an event
		}
		chunks, err := next(ctx)
		if err == nil && chunks == nil {
			continue
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, hub.ErrShutdown) {
				a.logger.Debug("httpapi: stream ended", "err", err, "remote", r.RemoteAddr)
			}
			return
		}
		if err := a.write(rc, w, chunks); err != nil {
			a.logger.Debug("httpapi: stream write failed", "err", err, "remote", r.RemoteAddr)
			return
		}
	}
}

// write writes chunks under a deadline and flushes them in one go.
func (a *API) write(rc *http.ResponseController, w http.ResponseWriter, chunks [][]byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(a.cfg.WriteTimeout))
	for _, c := range chunks {
		if _, err := w.Write(c); err != nil {
			return err
		}
	}
	return rc.Flush()
}

// lastEventID returns the client's last event id: the Last-Event-ID header
// (what EventSource sends on reconnect) or, for clients that cannot set
// headers, the lastEventID (0.x) or last_event_id (draft-08) query parameter.
func lastEventID(r *http.Request) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	q := r.URL.Query()
	if id := q.Get("lastEventID"); id != "" {
		return id
	}
	return q.Get("last_event_id")
}

// setStreamHeaders sets the headers of an event stream.
func setStreamHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}
