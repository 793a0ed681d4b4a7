package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// wantsPoll reports whether a subscribe request asks for long polling: the
// poll=1 query parameter, or an Accept header that wants JSON and not an
// event stream.
func wantsPoll(r *http.Request) bool {
	switch r.URL.Query().Get("poll") {
	case "1", "true", "yes":
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/event-stream")
}

// eventSourceNewlines turns CRLF and CR into LF, as an EventSource does with
// the data lines of an event.
var eventSourceNewlines = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// pollEvent is one event of a long-poll answer.
type pollEvent struct {
	ID     string   `json:"id"`
	Type   string   `json:"type"`
	Data   string   `json:"data"`
	Topics []string `json:"topics,omitempty"`
}

// pollAnswer is the JSON body of a long-poll answer.
type pollAnswer struct {
	Events      []pollEvent `json:"events"`
	LastEventID string      `json:"last_event_id"`
}

// poll answers a long-polling subscription: the events after the client's
// last event id as JSON, as soon as there is at least one, or none after
// the timeout. It runs the same subscription as a stream (same matching,
// authorization, replay and gap signalling) and answers the events behind
// its chunks (hub.Request.Events), so switching between the two modes
// never loses an event.
func (a *API) poll(ctx context.Context, w http.ResponseWriter, r *http.Request, req hub.Request) {
	timeout := a.cfg.PollTimeout
	if v := r.URL.Query().Get("timeout"); v != "" {
		ms, ok := parseDigits(v)
		if !ok {
			httpError(w, http.StatusBadRequest, "timeout must be a number of milliseconds (got "+strconv.Quote(v)+")")
			return
		}
		timeout = min(time.Duration(ms)*time.Millisecond, a.cfg.PollTimeout)
	}
	req.Events = true
	sub, err := a.cfg.Hub.Subscribe(ctx, req)
	if err != nil {
		writeError(w, err)
		return
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	ans := pollAnswer{Events: []pollEvent{}}
	for len(ans.Events) == 0 {
		// How far the client is, should this answer be empty: where the
		// replay got to, or where live delivery started. Polling on from
		// there loses nothing, even when the timeout cut a long replay.
		ans.LastEventID = sub.Cursor()
		_, err := sub.Next(ctx)
		if err != nil {
			if r.Context().Err() != nil {
				return // the client left
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, hub.ErrShutdown) && !errors.Is(err, hub.ErrReconnect) {
				writeError(w, err)
				return
			}
			ans.LastEventID = sub.Cursor() // the replay may have moved on
			break                          // the timeout: answer what we have (nothing)
		}
		for _, ev := range sub.Events() {
			typ := ev.Type
			if typ == "" {
				typ = "message" // as an EventSource reports it
			}
			// Line breaks as an EventSource delivers them, so that a
			// client switching between the two modes sees the same data.
			data := eventSourceNewlines.Replace(ev.Data)
			id := ans.LastEventID // an event without an id (ssehub.reconnect) keeps it, as in a stream
			if ev.ID != "" || ev.Pos != 0 {
				id = ev.WireID()
			}
			ans.Events = append(ans.Events, pollEvent{ID: id, Type: typ, Data: data, Topics: ev.Topics})
			ans.LastEventID = id
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Last-Event-ID", ans.LastEventID)
	if g := sub.Gap(); g.Reason != "" {
		h.Set("Ssehub-Gap", g.Reason)
	}
	json.NewEncoder(w).Encode(ans)
}
