package bench

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub is a small SSE hub for the tests: it fans published events out
// to the subscribers of their topic, keeps a history for Last-Event-ID, and
// can drop, duplicate or reorder one event for one subscriber. In "ssehub"
// style it serves GET and form POST on /hub (topic query parameters, "*"
// for all); in "plain" style GET /sub/{topic} and raw POST /pub?id={topic}.
type fakeHub struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	subs    []*fakeSub
	history []fakeEvent
	nextID  int
	// registered counts first connections, numbering them.
	registered int
	remotes    map[string]int // subscriber source IPs

	// fault returns what to do with the k-th event (from 0) sent to the
	// subscriber registered idx-th (from 0) on its topic: "drop", "dup",
	// "hold" (send it after the next one) or "".
	fault func(idx, k int) string
	// publishHook, if set, runs before a publish is handled; returning
	// false answers 503.
	publishHook func(r *http.Request) bool
	// replayFault returns what to do with the k-th event (from 0) of a
	// reconnection's replay on topic: like fault.
	replayFault func(topic string, k int) string
	// reconnectDelay holds a reconnection's response header back.
	reconnectDelay time.Duration
	// retry is the reconnection time sent at the start of each stream
	// (default 1s).
	retry time.Duration
}

type fakeEvent struct {
	id    int
	topic string
	wire  []byte
}

type fakeSub struct {
	idx    int
	topics []string // "*" for all
	ch     chan []byte
	n      int    // events sent so far
	held   []byte // an event held back by "hold"
}

func (s *fakeSub) matches(topic string) bool {
	for _, t := range s.topics {
		if t == "*" || t == topic {
			return true
		}
	}
	return false
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{t: t, remotes: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hub", func(w http.ResponseWriter, r *http.Request) {
		h.subscribe(w, r, r.URL.Query()["topic"])
	})
	mux.HandleFunc("POST /hub", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		h.publish(w, r, r.PostForm.Get("topic"), r.PostForm.Get("data"))
	})
	mux.HandleFunc("GET /sub/{topic}", func(w http.ResponseWriter, r *http.Request) {
		h.subscribe(w, r, []string{r.PathValue("topic")})
	})
	mux.HandleFunc("POST /pub", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.publish(w, r, r.URL.Query().Get("id"), string(b))
	})
	h.srv = httptest.NewServer(mux)
	return h
}

func (h *fakeHub) close() { h.srv.Close() }

func (h *fakeHub) url(path string) string { return h.srv.URL + path }

func (h *fakeHub) subscribe(w http.ResponseWriter, r *http.Request, topics []string) {
	if len(topics) == 0 {
		http.Error(w, "topic is required", 400)
		return
	}
	last := -1
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		last, _ = strconv.Atoi(v)
	}
	s := &fakeSub{topics: topics, ch: make(chan []byte, 100000)}
	h.mu.Lock()
	s.idx = -1 // a reconnection: no faults
	if last < 0 {
		s.idx = h.registered
		h.registered++
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	h.remotes[host]++
	var replay [][]byte
	var held []byte
	nth := map[string]int{}
	for _, e := range h.history {
		if last < 0 || e.id <= last || !s.matches(e.topic) {
			continue
		}
		k := nth[e.topic]
		nth[e.topic]++
		action := ""
		if h.replayFault != nil {
			action = h.replayFault(e.topic, k)
		}
		replay = append(replay, applyFault(action, e.wire, &held)...)
	}
	delay, retry := h.reconnectDelay, h.retry
	h.subs = append(h.subs, s)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		for i, x := range h.subs {
			if x == s {
				h.subs = append(h.subs[:i], h.subs[i+1:]...)
				break
			}
		}
		h.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if last >= 0 {
		time.Sleep(delay)
	}
	if retry == 0 {
		retry = time.Second
	}
	w.WriteHeader(200)
	fmt.Fprintf(w, ": hello\nretry: %d\n\n", retry.Milliseconds())
	for _, b := range replay {
		w.Write(b)
	}
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case b := <-s.ch:
			w.Write(b)
			// Write what is pending in one go, like a real hub.
			for more := true; more; {
				select {
				case b := <-s.ch:
					w.Write(b)
				default:
					more = false
				}
			}
			w.(http.Flusher).Flush()
		}
	}
}

func (h *fakeHub) publish(w http.ResponseWriter, r *http.Request, topic, data string) {
	if h.publishHook != nil && !h.publishHook(r) {
		http.Error(w, "not now", 503)
		return
	}
	if topic == "" {
		http.Error(w, "topic is required", 400)
		return
	}
	h.mu.Lock()
	h.nextID++
	id := h.nextID
	// Mixed line endings, a comment and an id on every event.
	wire := []byte(fmt.Sprintf(":c\r\nid: %d\r\ndata: %s\n\n", id, strings.ReplaceAll(data, "\n", "\ndata: ")))
	h.history = append(h.history, fakeEvent{id: id, topic: topic, wire: wire})
	for _, s := range h.subs {
		if !s.matches(topic) {
			continue
		}
		k := s.n
		s.n++
		action := ""
		if h.fault != nil {
			action = h.fault(s.idx, k)
		}
		for _, b := range applyFault(action, wire, &s.held) {
			s.ch <- b
		}
	}
	h.mu.Unlock()
	fmt.Fprint(w, id)
}

// applyFault returns what to send for an event given a fault action:
// nothing ("drop"), it twice ("dup"), nothing now but it after the next
// one ("hold", kept in *held), or it (and what was held).
func applyFault(action string, wire []byte, held *[]byte) [][]byte {
	switch action {
	case "drop":
		return nil
	case "dup":
		return [][]byte{wire, wire}
	case "hold":
		*held = wire
		return nil
	}
	out := [][]byte{wire}
	if *held != nil {
		out = append(out, *held)
		*held = nil
	}
	return out
}
