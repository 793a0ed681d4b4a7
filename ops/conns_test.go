package ops_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/ops"
)

// limited returns ssehub_limit_rejections_total{limit} of m.
func limited(t *testing.T, m *ops.Metrics, limit string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", ops.MetricsPath, nil))
	prefix := `ssehub_limit_rejections_total{limit="` + limit + `"} `
	for line := range strings.Lines(rec.Body.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			return v
		}
	}
	return "0"
}

func newMetrics(t *testing.T) *ops.Metrics {
	t.Helper()
	l := memlog.New(memlog.Options{})
	h, err := hub.New(l, hub.Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); l.Close() })
	return ops.NewMetrics(h)
}

func TestConnLimiter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lim    ops.ConnLimits
		other  string // RemoteAddr of a third request beside two from 192.0.2.1
		status int    // of the third request
		says   string
		metric string
	}{
		{"global", ops.ConnLimits{MaxConnections: 2}, "192.0.2.2:1", 503, "maximum of 2 subscriptions (set MaxConnections)", "connections"},
		{"per IP", ops.ConnLimits{MaxConnectionsPerIP: 2}, "192.0.2.1:3", 429, "192.0.2.1 already holds 2 subscriptions, the most one address may (set MaxConnectionsPerIP)", "connections_per_ip"},
		{"per IP, another address", ops.ConnLimits{MaxConnectionsPerIP: 2}, "192.0.2.2:1", 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMetrics(t)
			tc.lim.Metrics = m
			tc.lim.Hints = map[string]string{"MaxConnections": "set MaxConnections", "MaxConnectionsPerIP": "set MaxConnectionsPerIP"}
			l := ops.NewConnLimiter(tc.lim)
			admit := func(remote string) (*httptest.ResponseRecorder, func(), bool) {
				r := httptest.NewRequest("GET", "/live", nil)
				r.RemoteAddr = remote
				rec := httptest.NewRecorder()
				release, ok := l.Admit(rec, r)
				return rec, release, ok
			}
			var releases []func()
			for _, remote := range []string{"192.0.2.1:1", "192.0.2.1:2"} {
				_, release, ok := admit(remote)
				if !ok {
					t.Fatalf("%s refused below the limits", remote)
				}
				releases = append(releases, release)
			}
			rec, release, ok := admit(tc.other)
			if tc.status == 200 {
				if !ok {
					t.Fatalf("%s refused: %d %q", tc.other, rec.Code, rec.Body)
				}
				release()
				return
			}
			if ok || rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.says) {
				t.Fatalf("third request: ok %v, %d %q; want %d saying %q", ok, rec.Code, rec.Body, tc.status, tc.says)
			}
			if n, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || n < 5 || n > 10 {
				t.Errorf("Retry-After %q, want 5 to 10 (5s and up to 5s of jitter)", rec.Header().Get("Retry-After"))
			}
			if got := limited(t, m, tc.metric); got != "1" {
				t.Errorf("%s refusals counted %s, want 1", tc.metric, got)
			}
			// A release frees a slot, once however often it is called.
			releases[0]()
			releases[0]()
			if _, release, ok := admit(tc.other); !ok {
				t.Fatal("refused after a release")
			} else {
				defer release()
			}
			if _, _, ok := admit(tc.other); ok {
				t.Fatal("a second release of one slot freed another")
			}
		})
	}
	t.Run("nil admits everything", func(t *testing.T) {
		var l *ops.ConnLimiter
		release, ok := l.Admit(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if !ok {
			t.Fatal("refused")
		}
		release()
	})
}

// tracker records what Track tells it.
type tracker struct {
	mu       sync.Mutex
	statuses []int
	done     chan [2]any // status, writeTimedOut
}

func (t *tracker) Status(code int) {
	t.mu.Lock()
	t.statuses = append(t.statuses, code)
	t.mu.Unlock()
}

func (t *tracker) Done(status int, writeTimedOut bool) { t.done <- [2]any{status, writeTimedOut} }

// Track tells its Tracker the status once, and the end once: when the
// handler returns, or when the connection it hijacked closes.
func TestTrack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter, hijacked chan<- net.Conn)
		status  int
		hijacks bool
	}{
		{"handler returns", func(w http.ResponseWriter, _ chan<- net.Conn) {
			w.WriteHeader(http.StatusEarlyHints) // informational: not the status
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "short and stout\n")
		}, http.StatusTeapot, false},
		{"first write", func(w http.ResponseWriter, _ chan<- net.Conn) { io.WriteString(w, "ok\n") }, http.StatusOK, false},
		{"hijacked connection", func(w http.ResponseWriter, hijacked chan<- net.Conn) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			hijacked <- c // the handler returns; closing c ends the response
		}, http.StatusOK, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &tracker{done: make(chan [2]any, 2)}
			hijacked := make(chan net.Conn, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tw := ops.Track(w, tr)
				tc.handler(tw, hijacked)
				tw.HandlerDone()
			}))
			defer srv.Close()
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			for err == nil && resp.StatusCode < 200 { // informational
				resp, err = http.ReadResponse(br, nil)
			}
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("%v %v", resp, err)
			}
			if tc.hijacks {
				hc := <-hijacked
				select {
				case <-tr.done:
					t.Fatal("the response ended before its hijacked connection closed")
				case <-time.After(50 * time.Millisecond):
				}
				hc.Close()
			}
			select {
			case got := <-tr.done:
				if got != [2]any{tc.status, false} {
					t.Errorf("Done(%v, %v), want Done(%d, false)", got[0], got[1], tc.status)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Done was not called")
			}
			tr.mu.Lock()
			defer tr.mu.Unlock()
			if len(tr.statuses) != 1 || tr.statuses[0] != tc.status {
				t.Errorf("Status calls %v, want [%d]", tr.statuses, tc.status)
			}
			if len(tr.done) != 0 {
				t.Error("Done was called twice")
			}
		})
	}
}
