package ops

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/presence"
)

// MetricsPath is where the binary serves the metrics by default.
const MetricsPath = "/metrics"

// Transports label the subscription metrics (ssehub_subscriptions): a
// stream (text/event-stream) or a long poll.
const (
	TransportStream   = "stream"
	TransportLongPoll = "long_poll"
)

// Metrics are the Prometheus metrics of a hub and the handlers in front of
// it, in a registry of their own (no global state). Create them with
// NewMetrics, pass them to the handlers (httpapi.Config.Metrics,
// ConnLimits.Metrics) and serve Handler. The hub's
// counters are read from Hub.Stats when Prometheus scrapes, so they cost
// nothing per event; only the latency histograms observe each publish and
// each fanned-out event.
//
// Exported metrics (all prefixed ssehub_, plus the standard go_* and
// process_* ones; docs/operations.md has the full table):
//
//	ssehub_subscribers                                gauge      subscribers connected to the hub now
//	ssehub_subscriptions{transport}                   gauge      subscribe requests open now (stream, long_poll)
//	ssehub_subscriptions_total{transport}             counter    subscriptions accepted (200)
//	ssehub_events_published_total                     counter    events appended through this hub
//	ssehub_events_delivered_total                     counter    live events queued to subscribers (one per subscriber)
//	ssehub_events_replayed_total                      counter    events sent from history on reconnect
//	ssehub_replay_gaps_total                          counter    gap events sent (expired, unknown, replay_limit, damaged)
//	ssehub_replay_reserved_gaps_total                 counter    of those, for presence events removed by --subscriptions-history
//	ssehub_damaged_events_total                       counter    damaged events met in the log (skipped; readers get a gap)
//	ssehub_replays_in_progress                        gauge      resuming subscribers still receiving history
//	ssehub_replay_scans_total                         counter    history batches read by the shared replay scan
//	ssehub_slow_subscriber_disconnects_total{reason}  counter    queue_full, write_timeout
//	ssehub_auth_failures_total{reason}                counter    refused tokens, by auth.Reason
//	ssehub_limit_rejections_total{limit}              counter    requests refused by a limit
//	ssehub_log_errors_total{operation}                counter    log backend errors: append, ping
//	ssehub_log_position                               gauge      position of the last event fanned out
//	ssehub_publish_duration_seconds                   histogram  publishes answered 200, request to answer
//	ssehub_log_append_duration_seconds                histogram  successful log appends
//	ssehub_delivery_lag_seconds                       histogram  from the log accepting an event to its fan-out
//	ssehub_presence_dropped_total{reason}             counter    subscriptions never announced: coalesced, selectors
//	ssehub_presence_waiting                           gauge      subscription start events waiting for the presence rate
//	ssehub_lean_http_connections                      gauge      keep-alive connections served by the lean HTTP/1.1 loop
//
// Metrics are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	subsOpen        [2]prometheus.Gauge   // by transportIndex
	subsTotal       [2]prometheus.Counter // by transportIndex
	authFailures    *prometheus.CounterVec
	limits          *prometheus.CounterVec
	publishDuration prometheus.Histogram
	appendDuration  prometheus.Histogram
	deliveryLag     prometheus.Histogram
	writeTimeouts   atomic.Uint64
	pingFailures    atomic.Uint64
}

// latencyBuckets go from 100µs to about 15s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 14)

// NewMetrics returns the metrics of h, registered in a new registry
// together with the Go runtime and process collectors. It installs h's
// OnPublishLatency and OnDeliveryLag hooks (replacing any set before).
func NewMetrics(h *hub.Hub) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	subsOpen := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ssehub_subscriptions",
		Help: "Subscribe requests open now, by transport (stream or long_poll).",
	}, []string{"transport"})
	subsTotal := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssehub_subscriptions_total",
		Help: "Subscriptions accepted (answered 200), by transport (stream or long_poll).",
	}, []string{"transport"})
	for i, tr := range []string{TransportStream, TransportLongPoll} {
		m.subsOpen[i] = subsOpen.WithLabelValues(tr)
		m.subsTotal[i] = subsTotal.WithLabelValues(tr)
	}
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssehub_auth_failures_total",
		Help: "Requests refused with 401 or 403, by reason (missing, malformed, signature, expired, not_yet_valid, algorithm, type, issuer, audience, topic, key).",
	}, []string{"reason"})
	m.limits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssehub_limit_rejections_total",
		Help: "Requests refused by a limit: connections, connections_per_ip, publish_rate, event_size, read_timeout, selector_cost, publish_topics, stream_input (a subscriber that kept sending bytes on its stream).",
	}, []string{"limit"})
	m.publishDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ssehub_publish_duration_seconds",
		Help:    "Time from receiving a publish request to answering it, for publishes answered 200.",
		Buckets: latencyBuckets,
	})
	m.appendDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ssehub_log_append_duration_seconds",
		Help:    "Time the log backend took to accept (durably) a successful append.",
		Buckets: latencyBuckets,
	})
	m.deliveryLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ssehub_delivery_lag_seconds",
		Help:    "Time from the log accepting an event to the hub queueing it to subscribers.",
		Buckets: latencyBuckets,
	})
	m.reg.MustRegister(subsOpen, subsTotal, m.authFailures, m.limits,
		m.publishDuration, m.appendDuration, m.deliveryLag,
		&hubCollector{h: h, m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h.OnPublishLatency(func(d time.Duration) { m.appendDuration.Observe(d.Seconds()) })
	h.OnDeliveryLag(func(d time.Duration) { m.deliveryLag.Observe(d.Seconds()) })
	return m
}

// Registry returns the registry, to add an application's own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func transportIndex(transport string) int {
	if transport == TransportLongPoll {
		return 1
	}
	return 0
}

// The recording methods below are for the handlers that Metrics measure
// (httpapi's, streams', a program's own). Each does nothing on a nil
// *Metrics, so handlers call them without checking; all are safe for
// concurrent use.

// SubscriptionOpened counts a subscribe request of transport (TransportStream
// or TransportLongPoll) in ssehub_subscriptions from its start;
// SubscriptionClosed takes it out when it is over.
func (m *Metrics) SubscriptionOpened(transport string) {
	if m != nil {
		m.subsOpen[transportIndex(transport)].Inc()
	}
}

// SubscriptionClosed undoes SubscriptionOpened.
func (m *Metrics) SubscriptionClosed(transport string) {
	if m != nil {
		m.subsOpen[transportIndex(transport)].Dec()
	}
}

// SubscriptionAccepted counts a subscription answered 200 in
// ssehub_subscriptions_total.
func (m *Metrics) SubscriptionAccepted(transport string) {
	if m != nil {
		m.subsTotal[transportIndex(transport)].Inc()
	}
}

// AuthFailure counts a request refused with 401 or 403 in
// ssehub_auth_failures_total{reason} (reason: auth.Reason of the error).
func (m *Metrics) AuthFailure(reason string) {
	if m != nil {
		m.authFailures.WithLabelValues(reason).Inc()
	}
}

// Limited counts a request refused by a limit in
// ssehub_limit_rejections_total{limit}.
func (m *Metrics) Limited(limit string) {
	if m != nil {
		m.limits.WithLabelValues(limit).Inc()
	}
}

// WriteTimedOut counts a subscriber disconnected because a write to it
// missed its deadline, in
// ssehub_slow_subscriber_disconnects_total{reason="write_timeout"}.
func (m *Metrics) WriteTimedOut() {
	if m != nil {
		m.writeTimeouts.Add(1)
	}
}

// PingFailed counts a failed readiness ping of the log in
// ssehub_log_errors_total{operation="ping"}.
func (m *Metrics) PingFailed() {
	if m != nil {
		m.pingFailures.Add(1)
	}
}

// TimePublishes wraps a publish handler: the time from the request to the
// answer of each publish it answers 200 goes to
// ssehub_publish_duration_seconds. On a nil *Metrics it returns next.
func (m *Metrics) TimePublishes(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 || sw.status == http.StatusOK {
			m.publishDuration.Observe(time.Since(start).Seconds())
		}
	})
}

// WatchLeanHTTP adds ssehub_lean_http_connections, the keep-alive
// connections served by the lean HTTP/1.1 loop now (internal/h1), which
// taken reports at scrape time.
func (m *Metrics) WatchLeanHTTP(taken func() int) {
	if m != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ssehub_lean_http_connections",
			Help: "Keep-alive connections whose POSTs (publishes, appends) ssehub's own HTTP/1.1 loop serves now instead of net/http (--lean-http).",
		}, func() float64 { return float64(taken()) }))
	}
}

// WatchPresence adds the metrics of p (the subscriptions API's state):
// ssehub_presence_dropped_total and ssehub_presence_waiting. A second
// presence on the same Metrics is not counted.
func (m *Metrics) WatchPresence(p *presence.Presence) {
	if m != nil {
		m.reg.Register(presenceCollector{p}) // fails only for a second presence
	}
}

var (
	descPresenceDropped = prometheus.NewDesc("ssehub_presence_dropped_total",
		"Subscriptions (one per selector) never announced in the log: coalesced (ended before their start event was written, so neither was) or selectors (beyond presence.Options.MaxSelectors of one request).",
		[]string{"reason"}, nil)
	descPresenceWaiting = prometheus.NewDesc("ssehub_presence_waiting",
		"Subscription start events waiting for the presence rate (presence.Options.Rate).", nil, nil)
)

// presenceCollector turns presence.Stats into metrics at scrape time.
type presenceCollector struct{ p *presence.Presence }

func (c presenceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPresenceDropped
	ch <- descPresenceWaiting
}

func (c presenceCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.p.Stats()
	ch <- prometheus.MustNewConstMetric(descPresenceDropped, prometheus.CounterValue, float64(st.Coalesced), "coalesced")
	ch <- prometheus.MustNewConstMetric(descPresenceDropped, prometheus.CounterValue, float64(st.Unannounced), "selectors")
	ch <- prometheus.MustNewConstMetric(descPresenceWaiting, prometheus.GaugeValue, float64(st.Waiting))
}

// hubCollector turns Hub.Stats into metrics at scrape time.
type hubCollector struct {
	h *hub.Hub
	m *Metrics
}

var (
	descSubscribers = prometheus.NewDesc("ssehub_subscribers",
		"Subscribers connected to the hub now (streams and long polls).", nil, nil)
	descPublished = prometheus.NewDesc("ssehub_events_published_total",
		"Events appended to the log through this hub.", nil, nil)
	descDelivered = prometheus.NewDesc("ssehub_events_delivered_total",
		"Live events queued to subscribers, one per subscriber.", nil, nil)
	descReplayed = prometheus.NewDesc("ssehub_events_replayed_total",
		"Events sent from history to subscribers that resumed with Last-Event-ID.", nil, nil)
	descGaps = prometheus.NewDesc("ssehub_replay_gaps_total",
		"Gap events sent to subscribers whose replay could not send everything after their id (expired, unknown, replay_limit or damaged).", nil, nil)
	descReservedGaps = prometheus.NewDesc("ssehub_replay_reserved_gaps_total",
		"Of the gap events, those for the hub's own events (subscription events, heartbeats) that the log removed on their own budget (each engine's MaxReserved), sent to subscribers that may receive them.", nil, nil)
	descDamaged = prometheus.NewDesc("ssehub_damaged_events_total",
		"Damaged events met in the log by replays and the tail (a stored event that fails its checksum or does not decode): each is skipped, and its readers get a gap instead.", nil, nil)
	descSlow = prometheus.NewDesc("ssehub_slow_subscriber_disconnects_total",
		"Subscribers disconnected for reading too slowly, by reason: queue_full (their queue overflowed) or write_timeout (a write stalled past the write timeout).",
		[]string{"reason"}, nil)
	descLogErrors = prometheus.NewDesc("ssehub_log_errors_total",
		"Log backend errors, by operation: append (a publish failed) or ping (a readiness probe failed).",
		[]string{"operation"}, nil)
	descReplaying = prometheus.NewDesc("ssehub_replays_in_progress",
		"Subscribers that resumed with Last-Event-ID and are still receiving history.", nil, nil)
	descScans = prometheus.NewDesc("ssehub_replay_scans_total",
		"History batches read by the shared scan that serves resumes no topic index can (wildcards, templates, URL patterns).", nil, nil)
	descPosition = prometheus.NewDesc("ssehub_log_position",
		"Position in the log of the last event fanned out to subscribers.", nil, nil)
)

// Describe sends the descriptors of the collected metrics.
func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSubscribers, descPublished, descDelivered, descReplayed, descGaps, descReservedGaps, descDamaged, descReplaying, descScans, descSlow, descLogErrors, descPosition} {
		ch <- d
	}
}

// Collect reads the hub's counters once.
func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(descSubscribers, prometheus.GaugeValue, float64(st.Subscribers))
	counter(descPublished, st.Published)
	counter(descDelivered, st.Delivered)
	counter(descReplayed, st.Replayed)
	counter(descGaps, st.Gaps)
	counter(descReservedGaps, st.ReservedGaps)
	counter(descDamaged, st.Damaged)
	ch <- prometheus.MustNewConstMetric(descReplaying, prometheus.GaugeValue, float64(st.Replaying))
	counter(descScans, st.ReplayScans)
	counter(descSlow, st.Slow, "queue_full")
	counter(descSlow, c.m.writeTimeouts.Load(), "write_timeout")
	counter(descLogErrors, st.AppendErrors, "append")
	counter(descLogErrors, c.m.pingFailures.Load(), "ping")
	ch <- prometheus.MustNewConstMetric(descPosition, prometheus.GaugeValue, float64(st.Dispatched))
}
