package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/ops"
)

// scrape returns the samples of m as "name{labels}" -> value.
func scrape(t *testing.T, m *ops.Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("metrics: %d %s", rec.Code, rec.Body)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricsEnv is newEnv with metrics.
func metricsEnv(t *testing.T, cfg httpapi.Config, hopts hub.Options) (*env, *ops.Metrics) {
	t.Helper()
	var m *ops.Metrics
	e := newEnvWith(t, cfg, hopts, func(h *hub.Hub, c *httpapi.Config) {
		m = ops.NewMetrics(h)
		c.Metrics = m
	})
	return e, m
}

// limitedEnv is metricsEnv with the connection limits lim: an
// ops.ConnLimiter that counts in the metrics and gives the testHints.
func limitedEnv(t *testing.T, cfg httpapi.Config, lim ops.ConnLimits) (*env, *ops.Metrics) {
	t.Helper()
	var m *ops.Metrics
	e := newEnvWith(t, cfg, hub.Options{}, func(h *hub.Hub, c *httpapi.Config) {
		m = ops.NewMetrics(h)
		lim.Metrics, lim.Hints = m, testHints
		c.Metrics, c.Connections = m, ops.NewConnLimiter(lim)
	})
	return e, m
}

// testHints are the hints the tests' APIs (and connection limiters,
// ops.ConnLimits.Hints) add to their errors (unless a test sets its own
// Config.Hints): "hint <setting>", so a test that
// asserts on one checks that the setting behind a refusal reaches the
// client. The binary's own wording (its flags) is checked in cmd/ssehub.
var testHints = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{"Anonymous", "CORSOrigins", "MaxConnections", "MaxConnectionsPerIP",
		"Limits.PublishRate", "Limits.ReadTimeout", "Limits.MaxSelectorCost", "Limits.MaxPublishTopics", "Limits.MaxEventBytes", "Subscriptions"} {
		m[s] = "hint " + s
	}
	return m
}()

// newEnvWith starts the real API on a real HTTP server over a memory log
// (keeping 10,000 events), calling hook, when set, with the hub before the
// API is made.
func newEnvWith(t *testing.T, cfg httpapi.Config, hopts hub.Options, hook func(*hub.Hub, *httpapi.Config)) *env {
	t.Helper()
	return newEnvOn(t, memlog.New(memlog.Options{MaxEvents: 10000}), cfg, hopts, hook)
}

// newEnvOn is newEnvWith over the log l, which closes with the test.
func newEnvOn(t *testing.T, l ssehub.Log, cfg httpapi.Config, hopts hub.Options, hook func(*hub.Hub, *httpapi.Config)) *env {
	t.Helper()
	if hopts.Heartbeat == 0 {
		hopts.Heartbeat = -1
	}
	h, err := hub.New(l, hopts)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Hub = h
	if cfg.Hints == nil {
		cfg.Hints = testHints
	}
	if cfg.Publishers == nil {
		cfg.Publishers = verifier(t, pubKey)
	}
	if cfg.Subscribers == nil {
		cfg.Subscribers = verifier(t, subKey)
	}
	if hook != nil {
		hook(h, &cfg)
	}
	api, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		h.Close()
		api.Close(5 * time.Second)
		srv.Close()
		l.Close()
	})
	return &env{srv: srv, hub: h, url: srv.URL + httpapi.Path, api: api}
}

func TestMetrics(t *testing.T) {
	e, m := metricsEnv(t, httpapi.Config{}, hub.Options{})
	subTok := token(t, subKey, nil, []string{"*"}, time.Hour)
	s := e.open(t, "topic=a&authorization="+subTok, nil)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.publish(t, url.Values{"topic": {"a"}, "data": {fmt.Sprint(i)}}))
		s.next(t)
	}
	// Refusals by reason.
	if code, _ := e.post(t, "", url.Values{"topic": {"a"}}); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := e.post(t, token(t, "wrong-key-wrong-key-wrong-key-00000", []string{"*"}, nil, time.Hour), url.Values{"topic": {"a"}}); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
	if code, _ := e.post(t, token(t, pubKey, []string{"b"}, nil, time.Hour), url.Values{"topic": {"a"}}); code != 403 {
		t.Fatalf("wrong topic: %d", code)
	}
	// Long polls: a replay of 2 events through the topic index, a gap, and
	// a replay of 2 events through the shared scan (a wildcard).
	for _, q := range []string{"topic=a&lastEventID=" + ids[0], "topic=a&lastEventID=nope", "topic=*&lastEventID=" + ids[0]} {
		code, body := do(t, mustReq(t, "GET", e.url+"?"+q+"&poll=1&timeout=1&authorization="+subTok))
		if code != 200 {
			t.Fatalf("poll: %d %s", code, body)
		}
	}

	got := scrape(t, m)
	for name, want := range map[string]float64{
		"ssehub_subscribers":                                               1,
		`ssehub_subscriptions{transport="stream"}`:                         1,
		`ssehub_subscriptions{transport="long_poll"}`:                      0,
		`ssehub_subscriptions_total{transport="stream"}`:                   1,
		`ssehub_subscriptions_total{transport="long_poll"}`:                3,
		"ssehub_events_published_total":                                    3,
		"ssehub_events_delivered_total":                                    3,
		"ssehub_events_replayed_total":                                     4,
		"ssehub_replay_gaps_total":                                         1,
		"ssehub_replays_in_progress":                                       0,
		"ssehub_replay_scans_total":                                        1,
		`ssehub_auth_failures_total{reason="missing"}`:                     1,
		`ssehub_auth_failures_total{reason="signature"}`:                   1,
		`ssehub_auth_failures_total{reason="topic"}`:                       1,
		`ssehub_slow_subscriber_disconnects_total{reason="queue_full"}`:    0,
		`ssehub_slow_subscriber_disconnects_total{reason="write_timeout"}`: 0,
		`ssehub_log_errors_total{operation="append"}`:                      0,
		"ssehub_publish_duration_seconds_count":                            3,
		"ssehub_log_append_duration_seconds_count":                         3,
		"ssehub_delivery_lag_seconds_count":                                3,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if got["go_goroutines"] <= 0 || got["process_open_fds"] <= 0 {
		t.Errorf("runtime metrics missing: go_goroutines %v, process_open_fds %v", got["go_goroutines"], got["process_open_fds"])
	}

	// Closing the stream brings the gauges back to 0.
	s.resp.Body.Close()
	waitFor(t, "the stream to be released", func() bool {
		g := scrape(t, m)
		return g[`ssehub_subscriptions{transport="stream"}`] == 0 && g["ssehub_subscribers"] == 0
	})
}

// retryAfter checks that resp has a Retry-After of whole seconds >= 1.
func retryAfter(t *testing.T, h http.Header) {
	t.Helper()
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Errorf("Retry-After %q, want whole seconds >= 1", h.Get("Retry-After"))
	}
}

func TestConnectionLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits ops.ConnLimits
		status int
		says   string
		metric string
	}{
		{"global", ops.ConnLimits{MaxConnections: 2}, 503, "(hint MaxConnections)", `ssehub_limit_rejections_total{limit="connections"}`},
		{"per IP", ops.ConnLimits{MaxConnectionsPerIP: 2}, 429, "(hint MaxConnectionsPerIP)", `ssehub_limit_rejections_total{limit="connections_per_ip"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, m := limitedEnv(t, httpapi.Config{Anonymous: true}, tc.limits)
			first := e.open(t, "topic=a", nil)
			e.open(t, "topic=a&poll=0", nil)
			for _, q := range []string{"topic=a", "topic=a&poll=1"} {
				resp, err := http.Get(e.url + "?" + q)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.says) {
					t.Fatalf("%s: %d %q, want %d saying %q", q, resp.StatusCode, body, tc.status, tc.says)
				}
				retryAfter(t, resp.Header)
			}
			if got := scrape(t, m)[tc.metric]; got != 2 {
				t.Errorf("%s = %v, want 2", tc.metric, got)
			}
			// Publishing is not limited by subscriptions, and a slot frees
			// up when a stream ends.
			e.publish(t, url.Values{"topic": {"a"}, "data": {"x"}})
			first.resp.Body.Close()
			waitFor(t, "a free slot", func() bool {
				resp, err := http.Get(e.url + "?topic=a&poll=1&timeout=1")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})
		})
	}
}

func TestPublishLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    httpapi.Config
		n      int // publishes that pass before the refusal
		form   url.Values
		status int
		says   string
		retry  bool
	}{
		{"rate", httpapi.Config{Limits: httpapi.Limits{PublishRate: 0.001, PublishBurst: 3}}, 3, url.Values{"topic": {"a"}}, 429, "(hint Limits.PublishRate)", true},
		{"event size", httpapi.Config{Limits: httpapi.Limits{MaxEventBytes: 10}}, 0, url.Values{"topic": {"a"}, "data": {"01234567890"}}, 413, "(hint Limits.MaxEventBytes)", false},
		{"body size", httpapi.Config{MaxBodyBytes: 100}, 0, url.Values{"topic": {"a"}, "data": {strings.Repeat("x", 200)}}, 413, "exceeds 100 bytes", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg, hub.Options{})
			tok := token(t, pubKey, []string{"*"}, nil, time.Hour)
			for i := range tc.n {
				if code, body := e.post(t, tok, url.Values{"topic": {"a"}, "data": {fmt.Sprint(i)}}); code != 200 {
					t.Fatalf("publish %d: %d %s", i, code, body)
				}
			}
			req, _ := http.NewRequest("POST", e.url, strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.says) {
				t.Fatalf("%d %q, want %d saying %q", resp.StatusCode, body, tc.status, tc.says)
			}
			if tc.retry {
				retryAfter(t, resp.Header)
			}
			// Another token is not affected.
			other := token(t, pubKey, []string{"*"}, nil, 2*time.Hour)
			if code, body := e.post(t, other, url.Values{"topic": {"a"}, "data": {"ok"}}); code != 200 {
				t.Fatalf("another token: %d %s", code, body)
			}
		})
	}
}

// The JWT library decodes a signature's base64 without checking its unused
// trailing bits, so an HS256 token (a 43-character signature, 2 bits
// unused) has four spellings that all verify. The rate limit counts the
// token, not its spelling: before, each spelling had its own bucket and
// the rate was multiplied by four.
func TestPublishRateCountsTheTokenNotItsSpelling(t *testing.T) {
	e := newEnv(t, httpapi.Config{Limits: httpapi.Limits{PublishRate: 0.001, PublishBurst: 1}}, hub.Options{})
	tok := token(t, pubKey, []string{"*"}, nil, time.Hour)
	spellings := signatureSpellings(t, tok)
	if len(spellings) != 4 {
		t.Fatalf("%d spellings of an HS256 signature, want 4", len(spellings))
	}
	if code, body := e.post(t, spellings[0], url.Values{"topic": {"a"}}); code != 200 {
		t.Fatalf("first publish: %d %s", code, body)
	}
	for i, sp := range spellings[1:] {
		// 429, not 401: the spelling verifies, and shares the bucket.
		if code, body := e.post(t, sp, url.Values{"topic": {"a"}}); code != 429 || !strings.Contains(body, "(hint Limits.PublishRate)") {
			t.Fatalf("spelling %d of the same token: %d %s, want 429", i+1, code, body)
		}
	}
}

// signatureSpellings returns tok and the other spellings of its signature
// that decode to the same bytes: the last base64 character with its
// unused low bits set otherwise.
func signatureSpellings(t *testing.T, tok string) []string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	unused := uint(len(sig)*6 - len(sig)*6/8*8) // bits of the last character that carry nothing
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	var out []string
	for low := range 1 << unused {
		v := last&^(1<<unused-1) | low
		out = append(out, tok[:len(tok)-1]+alphabet[v:v+1])
	}
	if out[0] != tok { // the canonical spelling has the unused bits at zero
		t.Fatalf("%q is not among its own spellings", tok)
	}
	return out
}

func TestSubscribeTopicLimit(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true, MaxTopics: 2}, hub.Options{})
	code, body := do(t, mustReq(t, "GET", e.url+"?topic=a&topic=b&topic=c"))
	if code != 400 || !strings.Contains(body, "at most 2") {
		t.Fatalf("%d %q", code, body)
	}
}

func mustReq(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestPublishBodyReadTimeout(t *testing.T) {
	e := newEnv(t, httpapi.Config{Limits: httpapi.Limits{ReadTimeout: 200 * time.Millisecond}}, hub.Options{})
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tok := token(t, pubKey, []string{"*"}, nil, time.Hour)
	// Announce 100 bytes, send 5, then nothing.
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntopic", httpapi.Path, tok)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "(hint Limits.ReadTimeout)") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	// A prompt publish on a fresh connection works.
	e.publish(t, url.Values{"topic": {"a"}})
}

func TestReload(t *testing.T) {
	e := newEnv(t, httpapi.Config{CORSOrigins: []string{"https://old.example"}}, hub.Options{})
	api := e.srv.Config.Handler.(*httpapi.API)
	const newPub, newSub = "new-publisher-key-0123456789abcdefgh", "new-subscriber-key-0123456789abcdefg"
	oldStream := e.open(t, "topic=a&authorization="+token(t, subKey, nil, []string{"*"}, time.Hour), nil)

	api.Reload(httpapi.ReloadConfig{Publishers: verifier(t, newPub), Subscribers: verifier(t, newSub), CORSOrigins: []string{"https://new.example"}})

	for _, tc := range []struct {
		name   string
		key    string
		status int
	}{
		{"old publisher key refused", pubKey, 401},
		{"new publisher key accepted", newPub, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.post(t, token(t, tc.key, []string{"*"}, nil, time.Hour), url.Values{"topic": {"a"}, "data": {tc.name}})
			if code != tc.status {
				t.Fatalf("%d %s, want %d", code, body, tc.status)
			}
		})
	}
	// The stream opened before the reload is still there and got the event.
	if ev := oldStream.next(t); ev.Data != "new publisher key accepted" {
		t.Fatalf("old stream got %+v", ev)
	}
	for _, tc := range []struct {
		name   string
		key    string
		status int
	}{
		{"old subscriber key refused", subKey, 401},
		{"new subscriber key accepted", newSub, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := mustReq(t, "GET", e.url+"?topic=a&poll=1&timeout=1&authorization="+token(t, tc.key, nil, []string{"*"}, time.Hour))
			if code, body := do(t, req); code != tc.status {
				t.Fatalf("%d %s, want %d", code, body, tc.status)
			}
		})
	}
	for _, tc := range []struct{ origin, allowed string }{
		{"https://old.example", ""},
		{"https://new.example", "https://new.example"},
	} {
		req := mustReq(t, "OPTIONS", e.url)
		req.Header.Set("Origin", tc.origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.allowed {
			t.Errorf("origin %s: Access-Control-Allow-Origin %q, want %q", tc.origin, got, tc.allowed)
		}
	}
}

// pingLog is a memory log whose Ping fails while down is set.
type pingLog struct {
	*memlog.Log
	down atomic.Bool
}

var errDown = errors.New("engine down")

func (l *pingLog) Ping(context.Context) error {
	if l.down.Load() {
		return errDown
	}
	return nil
}

var _ ssehub.Pinger = (*pingLog)(nil)

func TestReadiness(t *testing.T) {
	l := &pingLog{Log: memlog.New(memlog.Options{})}
	h, err := hub.New(l, hub.Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	m := ops.NewMetrics(h)
	api, err := httpapi.New(httpapi.Config{Hub: h, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer func() {
		h.Close()
		api.Close(time.Second)
		srv.Close()
		l.Close()
	}()
	get := func(path string) (int, string) {
		t.Helper()
		return do(t, mustReq(t, "GET", srv.URL+path))
	}
	steps := []struct {
		name          string
		before        func()
		health, ready int
		says          string
	}{
		{"up", func() {}, 200, 200, "ready"},
		{"log unreachable", func() { l.down.Store(true) }, 200, 503, "log backend unreachable"},
		{"log back", func() { l.down.Store(false) }, 200, 200, "ready"},
		{"shutting down", func() { h.Close() }, 200, 503, "shutting down"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.before()
			if code, _ := get("/healthz"); code != st.health {
				t.Errorf("/healthz %d, want %d", code, st.health)
			}
			code, body := get("/readyz")
			if code != st.ready || !strings.Contains(body, st.says) {
				t.Errorf("/readyz %d %q, want %d saying %q", code, body, st.ready, st.says)
			}
		})
	}
	if got := scrape(t, m)[`ssehub_log_errors_total{operation="ping"}`]; got != 1 {
		t.Errorf("ping errors %v, want 1", got)
	}
}

func TestWriteTimeoutIsCounted(t *testing.T) {
	// NoPark: the handler writes the stream itself, under WriteTimeout; the
	// queue is large, so the stalled write, not the queue, ends it.
	e, m := metricsEnv(t, httpapi.Config{Anonymous: true, WriteTimeout: 200 * time.Millisecond, NoPark: true}, hub.Options{QueueBytes: 256 << 20, QueueEvents: 1 << 20})
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET %s?topic=a HTTP/1.1\r\nHost: x\r\n\r\n", httpapi.Path)
	waitFor(t, "the client to subscribe", func() bool { return e.hub.Stats().Subscribers == 1 })
	big := strings.Repeat("x", 64<<10)
	for i := 0; e.hub.Stats().Subscribers > 0; i++ {
		if i == 1000 {
			t.Fatal("a client that never reads is still connected after 64 MB")
		}
		if err := e.hub.Publish(context.Background(), &ssehub.Event{Topics: []string{"a"}, Data: big}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "the write timeout to be counted", func() bool {
		return scrape(t, m)[`ssehub_slow_subscriber_disconnects_total{reason="write_timeout"}`] == 1
	})
}

// TestErrorsWithoutHints: a program that gives no Config.Hints gets errors
// that say what was refused and why, and name no flag of ssehub's binary.
func TestErrorsWithoutHints(t *testing.T) {
	e := newEnv(t, httpapi.Config{Hints: map[string]string{}, Limits: httpapi.Limits{MaxEventBytes: 5, MaxPublishTopics: 1}}, hub.Options{})
	pub := token(t, pubKey, []string{"*"}, nil, time.Hour)
	for _, tc := range []struct {
		name, method, query, body, auth string
		status                          int
		says                            string
	}{
		{"anonymous", "GET", "topic=a", "", "", 401, "does not allow anonymous subscribers"},
		{"event size", "POST", "", "topic=a&data=123456", "Bearer " + pub, 413, "more than the 5 allowed; send less"},
		{"publish topics", "POST", "", "topic=a&topic=b", "Bearer " + pub, 400, "at most 1 are accepted; publish"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.url+"?"+tc.query, strings.NewReader(tc.body))
			if tc.method == "POST" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			code, body := do(t, req)
			if code != tc.status || !strings.Contains(body, tc.says) || strings.Contains(body, "--") {
				t.Fatalf("got %d %q, want %d saying %q and naming no flag", code, body, tc.status, tc.says)
			}
		})
	}
}
