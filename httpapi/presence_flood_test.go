package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/ops"
)

// Presence shares the log's retention with application events: many short
// subscriptions with many selectors must not push an application event out
// of a small history, so a client resuming from before it still receives
// it, without a gap (issue 13, item 5). With the bounds off, as before
// them, the same requests evict it: the test sees the flood.
func TestPresenceDoesNotEvictApplicationEvents(t *testing.T) {
	for _, tc := range []struct {
		name         string
		rate         float64
		maxSelectors int
		maxReserved  int // the log's budget for the hub's own events
		wantGap      bool
	}{
		{"bounds off, as before: evicted", -1, -1, 0, true},
		{"bounded: kept", 10, 5, 0, false},
		{"bounds off, own budget: kept", -1, -1, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := memlog.New(memlog.Options{MaxEvents: 200, MaxReserved: tc.maxReserved})
			defer l.Close()
			h, err := hub.New(l, hub.Options{Heartbeat: -1})
			if err != nil {
				t.Fatal(err)
			}
			metrics := ops.NewMetrics(h)
			api, err := httpapi.New(httpapi.Config{Hub: h, Anonymous: true, Subscriptions: true, Metrics: metrics,
				SubscriptionsRate: tc.rate, SubscriptionsMaxSelectors: tc.maxSelectors,
				Publishers: verifier(t, pubKey), Subscribers: verifier(t, subKey)})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(api)
			defer func() {
				h.Close()
				api.Close(5 * time.Second)
				srv.CloseClientConnections()
				srv.Close()
			}()
			e := &env{srv: srv, hub: h, url: srv.URL + httpapi.Path}
			first := e.publish(t, url.Values{"topic": {"/app"}, "data": {"first"}})
			e.publish(t, url.Values{"topic": {"/app"}, "data": {"keep"}})

			// 40 subscribe-and-close requests of 25 selectors: 2,000
			// presence events without bounds, ten times the history.
			q := url.Values{}
			for i := range 25 {
				q.Add("topic", fmt.Sprintf("/room/%d", i))
			}
			for range 40 {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"?"+q.Encode(), nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != 200 {
					b, _ := io.ReadAll(resp.Body)
					t.Fatalf("subscribe: %d %s", resp.StatusCode, b)
				}
				cancel()
				resp.Body.Close()
			}
			deadline := time.Now().Add(5 * time.Second)
			for h.Stats().Subscribers > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d subscribers still open", h.Stats().Subscribers)
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // presence writes what it may
			e.settle(t)

			s := e.open(t, "topic=/app", http.Header{"Last-Event-Id": {first}})
			gap := s.resp.Header.Get("Ssehub-Gap")
			if tc.wantGap {
				if gap != hub.GapExpired {
					t.Fatalf("Ssehub-Gap %q, want %q: the flood did not reach the history", gap, hub.GapExpired)
				}
				return
			}
			if gap != "" {
				t.Fatalf("Ssehub-Gap %q: presence events pushed application events out", gap)
			}
			if ev := s.next(t); ev.Data != "keep" {
				t.Fatalf("resumed with %+v, want keep", ev)
			}
			if tc.maxReserved > 0 {
				// The flood went to the log, on its own budget: several
				// times the history's 200.
				if st := h.Stats(); st.Published < 1000 {
					t.Fatalf("%d events published through the hub, want over 1,000 (the flood is 2,000)", st.Published)
				}
				return
			}
			if st := h.Stats(); st.Published > 150 {
				t.Fatalf("%d events published through the hub, want far fewer than the history (200)", st.Published)
			}
			rec := httptest.NewRecorder()
			metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			if want := `ssehub_presence_dropped_total{reason="selectors"} 800`; !strings.Contains(rec.Body.String(), want) {
				t.Fatalf("metrics lack %s (40 requests, 20 selectors each beyond the bound):\n%s", want, grepLines(rec.Body.String(), "ssehub_presence"))
			}
		})
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
