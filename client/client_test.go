package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/sse"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server is the test server of this package: see servicetest.NumberedServer.
type server = servicetest.NumberedServer

func newServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *server {
	t.Helper()
	return servicetest.NewNumberedServer(t, h)
}

// stream starts an event stream response and writes body.
func stream(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, body)
	http.NewResponseController(w).Flush()
}

// states records state changes.
type states struct {
	mu  sync.Mutex
	all []StateChange
}

func (s *states) on(sc StateChange) {
	s.mu.Lock()
	s.all = append(s.all, sc)
	s.mu.Unlock()
}

func (s *states) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, sc := range s.all {
		out = append(out, sc.State.String())
	}
	return out
}

func (s *states) last() StateChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all[len(s.all)-1]
}

// collect ranges over c's events until the iteration ends or max events
// arrived, and returns the events and the yielded error.
func collect(t *testing.T, ctx context.Context, c *Client, max int) ([]sse.Event, error) {
	t.Helper()
	var evs []sse.Event
	var yielded error
	n := 0
	for ev, err := range c.Events(ctx) {
		n++
		if err != nil {
			if yielded != nil {
				t.Fatalf("a second error was yielded: %v after %v", err, yielded)
			}
			yielded = err
			continue
		}
		if yielded != nil {
			t.Fatalf("an event was yielded after the error %v", yielded)
		}
		evs = append(evs, ev)
		if len(evs) == max {
			break
		}
	}
	return evs, yielded
}

func msg(id, data string) sse.Event { return sse.Event{ID: id, Type: "message", Data: data} }

func withRetry(ev sse.Event, d time.Duration) sse.Event {
	ev.Retry = d
	return ev
}

func TestResponseChecks(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		ct      string // "-" for no Content-Type at all
		body    string
		wantErr error // nil: the stream opens
		wantIn  []string
	}{
		{"200 event-stream", 200, "text/event-stream", "", nil, nil},
		{"media type is case-insensitive", 200, "Text/Event-Stream", "", nil, nil},
		{"charset parameter", 200, "text/event-stream; charset=utf-8", "", nil, nil},
		{"several parameters and spaces", 200, "text/event-stream ;charset=UTF-8; x=\"y\"", "", nil, nil},
		{"text/html", 200, "text/html; charset=utf-8", "<html>", ErrNotEventStream, []string{`"text/html; charset=utf-8"`, "want text/event-stream", "<html>"}},
		{"text/plain with an event", 200, "text/plain", "data: x\n\n", ErrNotEventStream, []string{`"text/plain"`}},
		{"no content type", 200, "-", "", ErrNotEventStream, []string{"no Content-Type"}},
		{"similar media type", 200, "text/event-streams", "", ErrNotEventStream, []string{`"text/event-streams"`}},
		{"media type with suffix", 200, "text/event-stream+json", "", ErrNotEventStream, nil},
		{"201 Created", 201, "text/event-stream", "", ErrUnexpectedStatus, []string{"201 Created"}},
		{"401 with the reason", 401, "text/plain", "token expired at 2024-01-01T00:00:00Z\n", ErrUnexpectedStatus, []string{"401 Unauthorized", "token expired at 2024-01-01T00:00:00Z"}},
		{"403", 403, "text/plain", "topic not allowed", ErrUnexpectedStatus, []string{"403 Forbidden", "topic not allowed"}},
		{"404", 404, "text/plain", "", ErrUnexpectedStatus, []string{"404 Not Found"}},
		{"500", 500, "text/event-stream", "", ErrUnexpectedStatus, []string{"500 Internal Server Error"}},
		{"502", 502, "text/html", "bad gateway", ErrUnexpectedStatus, []string{"502 Bad Gateway"}},
		{"503", 503, "text/plain", "", ErrUnexpectedStatus, []string{"503 Service Unavailable"}},
		{"301 without Location", 301, "text/plain", "", ErrUnexpectedStatus, []string{"301 Moved Permanently"}},
		{"long body is cut", 400, "text/plain", strings.Repeat("x", 5000), ErrUnexpectedStatus, []string{"400 Bad Request", strings.Repeat("x", errorBodyLimit)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if tc.ct == "-" {
					w.Header()["Content-Type"] = nil
				} else {
					w.Header().Set("Content-Type", tc.ct)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
				if tc.wantErr == nil {
					io.WriteString(w, "data: ok\n\n")
				}
			})
			var st states
			c, err := New(srv.URL, WithOnState(st.on), WithRetry(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := collect(t, context.Background(), c, 1)
			if tc.wantErr == nil {
				if err != nil || len(evs) != 1 || evs[0].Data != "ok" {
					t.Fatalf("events %+v, err %v", evs, err)
				}
				if got, want := st.names(), []string{"connecting", "open", "closed"}; !slices.Equal(got, want) {
					t.Errorf("states %v, want %v", got, want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var re *ResponseError
			if !errors.As(err, &re) || re.StatusCode != tc.status {
				t.Fatalf("err = %#v, want a *ResponseError with status %d", err, tc.status)
			}
			if len(re.Body) > errorBodyLimit {
				t.Errorf("body in error is %d bytes", len(re.Body))
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if srv.Count() != 1 {
				t.Errorf("%d requests, want 1 (a permanent failure must not reconnect)", srv.Count())
			}
			if got, want := st.names(), []string{"connecting", "closed"}; !slices.Equal(got, want) {
				t.Errorf("states %v, want %v", got, want)
			}
			if st.last().Err != err {
				t.Errorf("closed with %v, want %v", st.last().Err, err)
			}
		})
	}
}

func TestNoContentStops(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			stream(w, "retry: 1\nid: 1\ndata: a\n\n")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	var st states
	c, _ := New(srv.URL, WithOnState(st.on))
	evs, err := collect(t, context.Background(), c, 0)
	if err != nil || !slices.Equal(evs, []sse.Event{withRetry(msg("1", "a"), time.Millisecond)}) {
		t.Fatalf("events %+v, err %v", evs, err)
	}
	if srv.Count() != 2 {
		t.Errorf("%d requests, want 2", srv.Count())
	}
	want := []string{"connecting", "open", "reconnecting", "connecting", "closed"}
	if got := st.names(); !slices.Equal(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	if last := st.last(); last.Err != nil {
		t.Errorf("closed with %v after 204, want nil", last.Err)
	}
}

func TestRequestHeaders(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want map[string]string // "" value: must be absent
	}{
		{"defaults", nil, map[string]string{
			"Accept": "text/event-stream", "Cache-Control": "no-cache", "Last-Event-ID": "",
		}},
		{"custom headers", []Option{
			WithHeader("Authorization", "Bearer t0k3n"),
			WithHeader("x-multi", "1"), WithHeader("X-Multi", "2"),
		}, map[string]string{
			"Authorization": "Bearer t0k3n", "X-Multi": "1,2", "Accept": "text/event-stream",
		}},
		{"override a default", []Option{WithHeader("Cache-Control", "no-store")}, map[string]string{
			"Cache-Control": "no-store",
		}},
		{"initial last event id", []Option{WithLastEventID("41")}, map[string]string{
			"Last-Event-ID": "41",
		}},
		{"id with control character not sent", []Option{WithLastEventID("4\x01")}, map[string]string{
			"Last-Event-ID": "",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				stream(w, "data: x\n\n")
			})
			c, _ := New(srv.URL, tc.opts...)
			if _, err := collect(t, context.Background(), c, 1); err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want {
				got, ok := srv.Header(0, k)
				if want == "" && ok {
					t.Errorf("%s: %q sent, want none", k, got)
				} else if want != "" && got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestHostHeader(t *testing.T) {
	var host string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		host = r.Host
		stream(w, "data: x\n\n")
	})
	c, _ := New(srv.URL, WithHeader("Host", "hub.example"))
	if _, err := collect(t, context.Background(), c, 1); err != nil {
		t.Fatal(err)
	}
	if host != "hub.example" {
		t.Fatalf("Host = %q", host)
	}
}

func TestRedirects(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var mu sync.Mutex
			var oldHits int
			var seen []string // Authorization|Last-Event-ID at the target
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				switch r.URL.Path {
				case "/old":
					mu.Lock()
					oldHits++
					mu.Unlock()
					http.Redirect(w, r, "/stream", code)
				case "/stream":
					mu.Lock()
					seen = append(seen, r.Header.Get("Authorization")+"|"+r.Header.Get("Last-Event-ID"))
					k := len(seen)
					mu.Unlock()
					stream(w, fmt.Sprintf("retry: 1\nid: %d\ndata: x\n\n", k))
				}
			})
			c, _ := New(srv.URL+"/old", WithHeader("Authorization", "Bearer a"))
			evs, err := collect(t, context.Background(), c, 2)
			if err != nil || len(evs) != 2 || evs[1].ID != "2" {
				t.Fatalf("events %+v, err %v", evs, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if oldHits != 2 {
				t.Errorf("original URL hit %d times, want 2 (reconnect to the original URL)", oldHits)
			}
			if want := []string{"Bearer a|", "Bearer a|1"}; !slices.Equal(seen, want) {
				t.Errorf("headers at the target %q, want %q", seen, want)
			}
		})
	}
}

func TestRedirectLoopReconnects(t *testing.T) {
	// Too many redirects is a network error in fetch's terms: the client
	// keeps trying (with backoff), it does not give up.
	var st states
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reconnects := 0
	c, _ := New(srv.URL, WithRetry(time.Millisecond), WithOnState(func(sc StateChange) {
		st.on(sc)
		if sc.State == Reconnecting {
			if reconnects++; reconnects == 2 {
				cancel()
			}
		}
	}))
	_, err := collect(t, ctx, c, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	for _, sc := range st.all {
		if sc.State == Reconnecting && (sc.Err == nil || !strings.Contains(sc.Err.Error(), "redirects")) {
			t.Errorf("reconnecting because of %v", sc.Err)
		}
	}
}

func TestReconnectLastEventID(t *testing.T) {
	bodies := []string{
		// A clean end: reconnect. The unfinished event's id must not count.
		"retry: 1\nid: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 99\ndata: unfinished\n",
		// An empty id resets the last event id.
		"id\ndata: c\n\n",
		// An id-only block sets it without an event.
		"id: 9\n\n",
		"data: d\n\n",
	}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > len(bodies) {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		stream(w, bodies[n-1])
	})
	c, _ := New(srv.URL, WithMaxBackoff(time.Millisecond))
	evs, err := collect(t, context.Background(), c, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []sse.Event{withRetry(msg("1", "a"), time.Millisecond), msg("2", "b"), msg("", "c"), msg("9", "d")}
	if !slices.Equal(evs, want) {
		t.Errorf("events %+v, want %+v", evs, want)
	}
	wantIDs := []string{"-", "2", "-", "9", "9"}
	for i, w := range wantIDs {
		got, ok := srv.Header(i, "Last-Event-ID")
		if !ok {
			got = "-"
		}
		if got != w {
			t.Errorf("request %d: Last-Event-ID %q, want %q", i+1, got, w)
		}
	}
	if c.LastEventID() != "9" || c.Retry() != time.Millisecond {
		t.Errorf("LastEventID %q, Retry %v", c.LastEventID(), c.Retry())
	}
}

func TestReconnectAfterBrokenConnection(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// Answer by hand, then cut the connection in the middle of the
		// chunked body.
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		body := "retry: 1\nid: 1\ndata: a\n\ndata: cut"
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(body), body)
		buf.Flush()
	})
	var st states
	c, _ := New(srv.URL, WithOnState(st.on))
	evs, err := collect(t, context.Background(), c, 0)
	if err != nil || !slices.Equal(evs, []sse.Event{withRetry(msg("1", "a"), time.Millisecond)}) {
		t.Fatalf("events %+v, err %v", evs, err)
	}
	var reason error
	for _, sc := range st.all {
		if sc.State == Reconnecting {
			reason = sc.Err
		}
	}
	if reason == nil || reason == io.EOF {
		t.Errorf("reconnecting because of %v, want the broken connection's error", reason)
	}
	if got, _ := srv.Header(1, "Last-Event-ID"); got != "1" {
		t.Errorf("Last-Event-ID %q after the break", got)
	}
}

func TestReconnectAfterRefusedConnection(t *testing.T) {
	// A server that is down: the client reports it and keeps trying.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reasons []error
	c, _ := New(url, WithRetry(time.Millisecond), WithMaxBackoff(time.Millisecond), WithOnState(func(sc StateChange) {
		if sc.State == Reconnecting {
			if reasons = append(reasons, sc.Err); len(reasons) == 3 {
				cancel()
			}
		}
	}))
	_, err := collect(t, ctx, c, 0)
	if !errors.Is(err, context.Canceled) || len(reasons) != 3 {
		t.Fatalf("err %v after %d attempts", err, len(reasons))
	}
	if !strings.Contains(reasons[0].Error(), "connect") {
		t.Errorf("reason %v", reasons[0])
	}
}

func TestCancelWhileReading(t *testing.T) {
	gone := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "data: a\n\n")
		<-r.Context().Done()
		close(gone)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var st states
	c, _ := New(srv.URL, WithOnState(st.on))
	var evs []sse.Event
	var yielded error
	for ev, err := range c.Events(ctx) {
		if err != nil {
			yielded = err
			continue
		}
		evs = append(evs, ev)
		cancel() // the next read blocks until the cancellation ends it
	}
	if !errors.Is(yielded, context.Canceled) || len(evs) != 1 {
		t.Fatalf("events %v, err %v", evs, yielded)
	}
	<-gone // the server saw the connection close
	if l := st.last(); l.State != Closed || !errors.Is(l.Err, context.Canceled) {
		t.Errorf("last state %+v", l)
	}
	srv.Close()
	goleak.VerifyNone(t)
}

func TestBreakClosesConnection(t *testing.T) {
	gone := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "data: a\n\ndata: b\n\n")
		<-r.Context().Done()
		close(gone)
	})
	var st states
	c, _ := New(srv.URL, WithOnState(st.on))
	for range c.Events(context.Background()) {
		break
	}
	<-gone
	if l := st.last(); l.State != Closed || l.Err != nil {
		t.Errorf("last state %+v", l)
	}
	srv.Close()
	goleak.VerifyNone(t)
}

func TestResumeAcrossIterations(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		stream(w, fmt.Sprintf("id: %d\ndata: x\n\n", n))
	})
	c, _ := New(srv.URL)
	if _, err := collect(t, context.Background(), c, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := collect(t, context.Background(), c, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := srv.Header(1, "Last-Event-ID"); got != "1" {
		t.Fatalf("second iteration sent Last-Event-ID %q, want 1", got)
	}
}

func TestEventTooLarge(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "data: ok\n\ndata: "+strings.Repeat("x", 100)+"\n\n")
	})
	c, _ := New(srv.URL, WithMaxEventSize(50))
	evs, err := collect(t, context.Background(), c, 0)
	if !errors.Is(err, sse.ErrEventTooLarge) || len(evs) != 1 {
		t.Fatalf("events %v, err %v", evs, err)
	}
	if srv.Count() != 1 {
		t.Errorf("%d requests, want 1", srv.Count())
	}
}

func TestBusy(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "data: a\n\n")
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, _ := New(srv.URL)
	for range c.Events(context.Background()) {
		_, err := collect(t, context.Background(), c, 0)
		if !errors.Is(err, ErrBusy) {
			t.Errorf("second iteration: %v, want ErrBusy", err)
		}
		break
	}
	close(release)
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"http", "http://localhost:3000/.well-known/mercure?topic=a", true},
		{"https", "https://hub.example/events", true},
		{"no scheme", "localhost:3000/events", false},
		{"ftp", "ftp://hub.example/", false},
		{"no host", "http:///events", false},
		{"empty", "", false},
		{"unparsable", "http://[::1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.url)
			if (err == nil) != tc.ok {
				t.Fatalf("New(%q) = %v", tc.url, err)
			}
			if err != nil && !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("err %v does not wrap ErrInvalidURL", err)
			}
		})
	}
}

func TestNewInvalidHeader(t *testing.T) {
	tests := []struct {
		name, key, value string
	}{
		{"empty name", "", "x"},
		{"space in name", "X Y", "x"},
		{"colon in name", "X:", "x"},
		{"LF in value", "X", "a\nb"},
		{"CR in value", "X", "a\rb"},
		{"NUL in value", "X", "a\x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New("http://hub.test/", WithHeader(tc.key, tc.value)); !errors.Is(err, ErrInvalidHeader) {
				t.Fatalf("err = %v, want ErrInvalidHeader", err)
			}
		})
	}
	if _, err := New("http://hub.test/", WithHeader("X-Tab", "a\tb"), WithHeader("X-Utf8", "é")); err != nil {
		t.Fatalf("valid headers refused: %v", err)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Connecting: "connecting", Open: "open", Reconnecting: "reconnecting", Closed: "closed", 0: "State(0)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int(s), s.String(), want)
		}
	}
}

func TestOpenReportsHeader(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("X-Resumed-From", "17")
		stream(w, "data: a\n\n")
	})
	var st states
	c, _ := New(srv.URL, WithOnState(st.on))
	if _, err := collect(t, context.Background(), c, 1); err != nil {
		t.Fatal(err)
	}
	if h := st.all[1].Header; st.all[1].State != Open || h.Get("X-Resumed-From") != "17" {
		t.Fatalf("open state %+v", st.all[1])
	}
}

// The wire bytes of a server written with bufio, flushing per event, are
// received event by event, not when the stream ends.
func TestEventsArriveLive(t *testing.T) {
	next := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "text/event-stream")
		bw := bufio.NewWriter(w)
		for i := range 3 {
			fmt.Fprintf(bw, "data: %d\n\n", i)
			bw.Flush()
			http.NewResponseController(w).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	c, _ := New(srv.URL)
	i := 0
	for ev, err := range c.Events(context.Background()) {
		if err != nil || ev.Data != fmt.Sprint(i) {
			t.Fatalf("event %d: %+v, %v", i, ev, err)
		}
		if i++; i == 3 {
			break
		}
		next <- struct{}{}
	}
}
