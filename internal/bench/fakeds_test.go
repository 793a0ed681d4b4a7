package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDS is a small Durable Streams server for the tests: streams at
// /v1/stream/{name}, created with PUT, appended to with POST, read with
// GET ?offset=…&live=sse, offsets being byte positions (16 digits). Its SSE
// reads send what is pending in one data event and then a control event.
// It can lose, duplicate or reorder an append while acknowledging it,
// split data events in two, and end a response between a data event and
// its control event.
type fakeDS struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	streams map[string]*fakeStream
	auth    map[string]string // method -> last Authorization header

	// appendFault returns what to do with the k-th append (from 0) to a
	// stream: "drop" (acknowledge it, store nothing), "dup" (store it
	// twice), "hold" (store it after the next one), "late" (acknowledge
	// it, store it 300 ms later), "slow" (store it, answer 500 ms later)
	// or "".
	appendFault func(name string, k int) string
	// split sends every data event as two, cut in the middle.
	split bool
	// cut reports whether the conn-th response (from 0) of a stream's
	// reads ends right after its ev-th data event (from 0), before the
	// control event that confirms it.
	cut func(name string, conn, ev int) bool
	// noControl sends no control event after data events.
	noControl bool
}

type fakeStream struct {
	data    []byte
	appends int
	held    []byte
	reads   int           // responses so far
	changed chan struct{} // closed and replaced on every append
}

func newFakeDS(t *testing.T) *fakeDS {
	f := &fakeDS{t: t, streams: map[string]*fakeStream{}, auth: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/stream/{name...}", f.serve)
	f.srv = httptest.NewServer(mux)
	return f
}

func (f *fakeDS) close() { f.srv.Close() }

func (f *fakeDS) url() string { return f.srv.URL + "/v1/stream/" }

func offsetText(n int) string { return fmt.Sprintf("%016d", n) }

func (f *fakeDS) serve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f.mu.Lock()
	f.auth[r.Method] = r.Header.Get("Authorization")
	st := f.streams[name]
	f.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		if r.Header.Get("Content-Type") != StreamContentType {
			http.Error(w, "want text/plain", 400)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.streams[name] != nil {
			w.WriteHeader(200)
			return
		}
		f.streams[name] = &fakeStream{changed: make(chan struct{})}
		w.Header().Set("Stream-Next-Offset", offsetText(0))
		w.WriteHeader(201)
	case http.MethodPost:
		if st == nil {
			http.Error(w, "Stream not found", 404)
			return
		}
		if r.Header.Get("Content-Type") != StreamContentType {
			http.Error(w, "content type mismatch", 409)
			return
		}
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		action := ""
		if f.appendFault != nil {
			action = f.appendFault(name, st.appends)
		}
		st.appends++
		switch action {
		case "drop":
		case "late":
			time.AfterFunc(300*time.Millisecond, func() {
				f.mu.Lock()
				defer f.mu.Unlock()
				st.data = append(st.data, b...)
				close(st.changed)
				st.changed = make(chan struct{})
			})
		case "dup":
			st.data = append(st.data, b...)
			st.data = append(st.data, b...)
		case "hold":
			st.held = b
		default:
			st.data = append(st.data, b...)
			st.data = append(st.data, st.held...)
			st.held = nil
		}
		close(st.changed)
		st.changed = make(chan struct{})
		w.Header().Set("Stream-Next-Offset", offsetText(len(st.data)))
		f.mu.Unlock()
		if action == "slow" {
			time.Sleep(500 * time.Millisecond)
		}
		w.WriteHeader(204)
	case http.MethodGet:
		f.read(w, r, name, st)
	default:
		http.Error(w, "method not allowed", 405)
	}
}

func (f *fakeDS) read(w http.ResponseWriter, r *http.Request, name string, st *fakeStream) {
	if st == nil {
		http.Error(w, "Stream not found", 404)
		return
	}
	q := r.URL.Query()
	if q.Get("live") != "sse" {
		http.Error(w, "only live=sse here", 400)
		return
	}
	off := 0
	if v := q.Get("offset"); v != "-1" {
		n, err := strconv.Atoi(v)
		if err != nil || len(v) != 16 {
			http.Error(w, "bad offset "+v, 400)
			return
		}
		off = n
	}
	f.mu.Lock()
	conn := st.reads
	st.reads++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	for ev := 0; ; {
		f.mu.Lock()
		data, changed := st.data[off:], st.changed
		f.mu.Unlock()
		if len(data) > 0 {
			parts := [][]byte{data}
			if f.split && len(data) > 1 {
				parts = [][]byte{data[:len(data)/2], data[len(data)/2:]}
			}
			for _, p := range parts {
				fmt.Fprintf(w, "event: data\ndata:%s\n\n", p)
			}
			if f.cut != nil && f.cut(name, conn, ev) {
				fl.Flush()
				return
			}
			ev++
			off += len(data)
		}
		if !f.noControl || len(data) == 0 {
			fmt.Fprintf(w, "event: control\ndata: {\"streamNextOffset\":%q,\"streamCursor\":\"1\",\"upToDate\":true}\n\n", offsetText(off))
		}
		fl.Flush()
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

// appended returns the names of the streams and their bytes.
func (f *fakeDS) appended() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]string{}
	for k, st := range f.streams {
		m[k] = string(st.data)
	}
	return m
}

// authOf returns the last Authorization header of a method's requests.
func (f *fakeDS) authOf(method string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.auth[method]
}

// hasPrefix reports whether every stream's name starts with prefix.
func (f *fakeDS) hasPrefix(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.streams {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
	}
	return len(f.streams) > 0
}
