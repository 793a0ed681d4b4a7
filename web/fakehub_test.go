package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeHub stands in for the hub's HTTP API in the browser tests of this
// package: the subscribe stream, long polling, publish and the stats stream,
// as the contract between the browser side and package httpapi describes
// them. It exists so that the page and the helper can be tested before and
// apart from the real server (whose own end-to-end browser tests use the
// real hub), and so that a test can make things happen that a real hub
// cannot easily be made to do: a buffering proxy in front of it, a reconnect
// instruction at a chosen moment.
//
// Event ids are positions: "1", "2", …. Topic selectors are exact topics or
// "*". An unknown last event id yields an ssehub.gap event, as the hub does.
type fakeHub struct {
	mu        sync.Mutex
	events    []fakeEvent
	wake      chan struct{} // closed and replaced on every change
	kickGen   int           // bumped by kick
	kickMs    int
	kickedAt  time.Time
	buffered  bool // streams send their headers, then hold every event
	mangled   bool // streams are answered as HTML (a proxy in the way)
	statsAuth bool // the stats stream needs the subscriber token, as a hub without anonymous subscribers
	streams   int  // open subscribe streams
	polls     int  // long polls waiting
	answered  int  // long polls answered
	published int
	delivered int
	requests  []fakeRequest
	done      chan struct{}
}

type fakeEvent struct {
	ID     string   `json:"id"`
	Type   string   `json:"type"`
	Data   string   `json:"data"`
	Topics []string `json:"topics"`
}

// fakeRequest records a subscription request (stream or poll).
type fakeRequest struct {
	At          time.Time
	Poll        bool
	LastEventID string // from the header or the query
	Query       string
}

const (
	fakePublisherToken  = "good-token"
	fakeSubscriberToken = "sub-token" // anonymous subscribers are welcome too
)

func newFakeHub() *fakeHub {
	return &fakeHub{wake: make(chan struct{}), done: make(chan struct{})}
}

// close ends every stream and poll, so that the test server can close.
func (f *fakeHub) close() { close(f.done) }

func (f *fakeHub) changed() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// add appends an event and returns its id.
func (f *fakeHub) add(typ, data string, topics ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if typ == "" {
		typ = "message"
	}
	id := strconv.Itoa(len(f.events) + 1)
	f.events = append(f.events, fakeEvent{ID: id, Type: typ, Data: data, Topics: topics})
	f.published++
	f.changed()
	return id
}

// kick asks every open stream to come back after ms, as a drain does.
func (f *fakeHub) kick(ms int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kickGen++
	f.kickMs = ms
	f.kickedAt = time.Now()
	f.changed()
}

func (f *fakeHub) setBuffered(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buffered = b
}

func (f *fakeHub) setMangled(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mangled = b
}

// authorized answers 401 for a subscriber token that is not ours.
func authorized(w http.ResponseWriter, r *http.Request) bool {
	if tok := r.URL.Query().Get("authorization"); tok != "" && tok != fakeSubscriberToken {
		http.Error(w, "subscriber token expired: get a fresh one", http.StatusUnauthorized)
		return false
	}
	return true
}

func (f *fakeHub) snapshot() (reqs []fakeRequest, polls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		if r.Poll {
			polls++
		}
	}
	return slices.Clone(f.requests), polls
}

func (f *fakeHub) pollsAnswered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.answered
}

// resolve returns the position after which to deliver, and a gap event when
// lastID is not one of ours. Called with f.mu held.
func (f *fakeHub) resolve(lastID string) (int, *fakeEvent) {
	if lastID == "" {
		return len(f.events), nil // only new events
	}
	if n, err := strconv.Atoi(lastID); err == nil && n >= 0 && n <= len(f.events) {
		return n, nil
	}
	head := strconv.Itoa(len(f.events))
	data, _ := json.Marshal(map[string]string{"reason": "unknown", "requested": lastID, "resumed_after": head})
	return len(f.events), &fakeEvent{ID: head, Type: "ssehub.gap", Data: string(data)}
}

// after returns the events after pos that match the selectors. Called with
// f.mu held.
func (f *fakeHub) after(pos int, sels []string) []fakeEvent {
	var out []fakeEvent
	for _, e := range f.events[pos:] {
		for _, t := range e.Topics {
			if slices.Contains(sels, "*") || slices.Contains(sels, t) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

func (f *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/.well-known/ssehub/stats":
		f.stats(w, r)
	case r.URL.Path != "/.well-known/mercure":
		http.NotFound(w, r)
	case r.Method == http.MethodPost:
		f.publish(w, r)
	case r.URL.Query().Get("poll") == "1" || r.Header.Get("Accept") == "application/json":
		f.poll(w, r)
	default:
		f.stream(w, r)
	}
}

func lastEventID(r *http.Request) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	return r.URL.Query().Get("lastEventID")
}

func writeEvent(w io.Writer, e fakeEvent) {
	fmt.Fprintf(w, "id: %s\nevent: %s\n", e.ID, e.Type)
	for _, line := range strings.Split(e.Data, "\n") {
		fmt.Fprintf(w, "data: %s\n", line)
	}
	io.WriteString(w, "\n")
}

func (f *fakeHub) stream(w http.ResponseWriter, r *http.Request) {
	sels := r.URL.Query()["topic"]
	if len(sels) == 0 {
		http.Error(w, "at least one topic selector is required", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{At: time.Now(), LastEventID: lastEventID(r), Query: r.URL.RawQuery})
	mangled := f.mangled
	f.mu.Unlock()
	if !authorized(w, r) {
		return
	}
	if mangled {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>a proxy says hello</html>")
		return
	}
	f.mu.Lock()
	pos, gap := f.resolve(lastEventID(r))
	kick := f.kickGen
	f.streams++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.streams--
		f.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "retry: 250\n\n")
	if gap != nil {
		writeEvent(w, *gap)
	}
	rc := http.NewResponseController(w)
	rc.Flush()
	for {
		f.mu.Lock()
		var evs []fakeEvent
		if !f.buffered {
			evs = f.after(pos, sels)
			pos = len(f.events)
			f.delivered += len(evs)
		}
		kicked, ms, wake := f.kickGen != kick, f.kickMs, f.wake
		f.mu.Unlock()
		for _, e := range evs {
			writeEvent(w, e)
		}
		if kicked {
			fmt.Fprintf(w, "event: ssehub.reconnect\ndata: {\"retry_ms\":%d}\n\nretry: %d\n\n", ms, ms)
		}
		if rc.Flush() != nil || kicked {
			return
		}
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		case <-f.done:
			return
		}
	}
}

func (f *fakeHub) poll(w http.ResponseWriter, r *http.Request) {
	sels := r.URL.Query()["topic"]
	timeout := 25 * time.Second
	if ms, err := strconv.Atoi(r.URL.Query().Get("timeout")); err == nil && ms >= 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	timeout = min(timeout, 5*time.Second)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()

	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{At: time.Now(), Poll: true, LastEventID: lastEventID(r), Query: r.URL.RawQuery})
	f.mu.Unlock()
	if !authorized(w, r) {
		return
	}
	f.mu.Lock()
	pos, gap := f.resolve(lastEventID(r))
	f.polls++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.polls--
		f.mu.Unlock()
	}()

	var res struct {
		Events      []fakeEvent `json:"events"`
		LastEventID string      `json:"last_event_id"`
	}
	res.Events = []fakeEvent{}
	if gap != nil {
		res.Events = append(res.Events, *gap)
	}
	for {
		f.mu.Lock()
		evs := f.after(pos, sels)
		f.delivered += len(evs)
		res.Events = append(res.Events, evs...)
		res.LastEventID = strconv.Itoa(len(f.events))
		wake := f.wake
		f.mu.Unlock()
		if len(res.Events) > 0 {
			res.LastEventID = res.Events[len(res.Events)-1].ID
			break
		}
		select {
		case <-wake:
			continue
		case <-deadline.C:
		case <-r.Context().Done():
			return
		case <-f.done:
		}
		break
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(res)
	f.mu.Lock()
	f.answered++
	f.mu.Unlock()
}

func (f *fakeHub) publish(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+fakePublisherToken {
		http.Error(w, "a valid publisher token is required: send it as Authorization: Bearer <token>", http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	topics := r.PostForm["topic"]
	if len(topics) == 0 || topics[0] == "" {
		http.Error(w, "topic is required", http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(r.PostForm.Get("type"), "ssehub.") {
		http.Error(w, "event types starting with ssehub. are reserved", http.StatusBadRequest)
		return
	}
	io.WriteString(w, f.add(r.PostForm.Get("type"), r.PostForm.Get("data"), topics...))
}

func (f *fakeHub) setStatsAuth(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statsAuth = b
}

func (f *fakeHub) stats(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	needsToken := f.statsAuth
	f.mu.Unlock()
	if needsToken && r.URL.Query().Get("authorization") != fakeSubscriberToken {
		http.Error(w, "a subscriber token is required", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		f.mu.Lock()
		data, _ := json.Marshal(map[string]any{
			"time": time.Now().UnixMilli(), "subscribers": f.streams + f.polls,
			"published": f.published, "delivered": f.delivered,
			"replayed": 0, "gaps": 0, "slow": 0,
		})
		f.mu.Unlock()
		fmt.Fprintf(w, "event: stats\ndata: %s\n\n", data)
		if rc.Flush() != nil {
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-f.done:
			return
		}
	}
}
