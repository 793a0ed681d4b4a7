package ops_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/ops"
)

// Metrics live in a registry of their own; mount their handler where the
// operator's Prometheus can reach it. The connection limits are a
// ConnLimiter, counted in the metrics and shared by every handler of
// long-lived requests (here the Mercure API's subscriptions).
func ExampleNewMetrics() {
	l := memlog.New(memlog.Options{})
	defer l.Close()
	h, _ := hub.New(l, hub.Options{})
	defer h.Close()
	m := ops.NewMetrics(h)
	conns := ops.NewConnLimiter(ops.ConnLimits{MaxConnections: 10000, MaxConnectionsPerIP: 100, Metrics: m})
	api, _ := httpapi.New(httpapi.Config{
		Hub:         h,
		Anonymous:   true,
		Metrics:     m,
		Connections: conns,
		Limits:      httpapi.Limits{MaxEventBytes: 64 << 10},
	})
	defer api.Close(time.Second)
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("GET /metrics", m.Handler())

	h.Publish(context.Background(), &ssehub.Event{Topics: []string{"greetings"}, Data: "hello"})

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "ssehub_events_published_total") {
			fmt.Println(sc.Text())
		}
	}
	// Output: ssehub_events_published_total 1
}
