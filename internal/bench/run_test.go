package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quick returns a configuration for a short run against h.
func quick(h *fakeHub) Config {
	return quickRun(Config{URL: h.url("/hub"), Subscribers: 20, Topics: 2, Rate: 100, Payload: 64, Concurrency: 4})
}

// quickRun returns c with the phases and timeouts of a short test run.
func quickRun(c Config) Config {
	c.Duration, c.Settle, c.Drain = 500*time.Millisecond, 100*time.Millisecond, 2*time.Second
	c.ConnectRate, c.ConnectTimeout, c.PublishTimeout = 1000, 2*time.Second, 5*time.Second
	return c
}

func TestRunCountsLossDuplicatesAndReordering(t *testing.T) {
	h := newFakeHub(t)
	defer h.close()
	// Subscriber 3 loses its 6th event, subscriber 5 gets its 5th twice,
	// subscriber 7 gets its 7th after its 8th.
	h.fault = func(idx, k int) string {
		switch {
		case idx == 3 && k == 5:
			return "drop"
		case idx == 5 && k == 4:
			return "dup"
		case idx == 7 && k == 6:
			return "hold"
		}
		return ""
	}
	var progress bytes.Buffer
	cfg := quick(h)
	cfg.Drain = 500 * time.Millisecond // one event never arrives
	cfg.Progress = &progress
	cfg.ProgressInterval = 200 * time.Millisecond
	cfg.Token = "secret-token"
	var auth atomic.Value
	h.publishHook = func(r *http.Request) bool {
		auth.Store(r.Header.Get("Authorization"))
		return true
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a := auth.Load(); a != "Bearer secret-token" {
		t.Errorf("publish Authorization = %q", a)
	}
	c := rep.Connections
	if c.Attempted != 20 || c.Established != 20 || c.Failed != 0 || c.EndedEarly != 0 || c.Late != 0 {
		t.Errorf("connections = %+v", c)
	}
	p := rep.Publish
	if p.Scheduled != 50 || p.Sent != 50 || p.Acked != 50 || p.Errors != 0 || p.Dropped != 0 {
		t.Errorf("publish = %+v", p)
	}
	d := rep.Delivery
	// 50 events over 2 topics, 10 subscribers on each: 25*20 expected.
	want := DeliveryReport{Expected: 500, Received: 499, Missing: 1, Duplicated: 1, OutOfOrder: 1, SubscribersWithLoss: 1}
	got := d
	got.Latency, got.PerSecond = LatencyStats{}, 0
	if got != want {
		t.Errorf("delivery = %+v\nwant       %+v", got, want)
	}
	if d.Latency.Count != 499 {
		t.Errorf("latency count = %d, want 499", d.Latency.Count)
	}
	checkLatency(t, "delivery", d.Latency)
	checkLatency(t, "publish", p.Latency)
	if d.PerSecond <= 0 {
		t.Errorf("delivered per second = %v", d.PerSecond)
	}
	if !strings.Contains(progress.String(), "received") {
		t.Errorf("no progress lines: %q", progress.String())
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, s := range []string{"missing 1", "duplicated 1", "out of order 1", "20 established"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, text.String())
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	json.Unmarshal(js, &back)
	if back["delivery"].(map[string]any)["missing"] != 1.0 {
		t.Errorf("JSON: %s", js)
	}
}

func checkLatency(t *testing.T, what string, l LatencyStats) {
	t.Helper()
	if l.Count == 0 || l.Min < 0 || l.Min > l.P50 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max ||
		l.Mean < l.Min || l.Mean > l.Max || l.Max > 10000 {
		t.Errorf("%s latency not sane: %+v", what, l)
	}
}

func TestRunAllTopicsPlainSourcesAndResume(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(h *fakeHub) Config
		want int64 // expected deliveries
	}{
		{"all topics", func(h *fakeHub) Config {
			c := quick(h)
			c.SubscribeAll = true
			c.Topics = 5
			return c
		}, 20 * 50},
		{"plain raw", func(h *fakeHub) Config {
			c := quick(h)
			c.Mode = ModePlain
			c.URL = h.url("/sub/{topic}")
			c.PublishURL = h.url("/pub?id={topic}")
			c.TopicPrefix = "t-"
			return c
		}, 20 * 25},
		{"source addresses", func(h *fakeHub) Config {
			c := quick(h)
			c.SourceAddrs = "2"
			return c
		}, 20 * 25},
		{"publish only", func(h *fakeHub) Config {
			c := quick(h)
			c.Subscribers = 0
			return c
		}, 0},
		{"resume", func(h *fakeHub) Config {
			c := quick(h)
			c.ResumeMissed = 100
			return c
		}, 20 * 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHub(t)
			defer h.close()
			cfg := tc.cfg(h)
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			d := rep.Delivery
			if d.Expected != tc.want || d.Received != tc.want || d.Missing != 0 || d.Duplicated != 0 || d.OutOfOrder != 0 || d.Foreign != 0 {
				t.Errorf("delivery = %+v, want %d received\npublish %+v", d, tc.want, rep.Publish)
			}
			if tc.want > 0 {
				checkLatency(t, "delivery", d.Latency)
			}
			if p := rep.Publish; p.Acked != 50 {
				t.Errorf("publish = %+v", p)
			}
			switch tc.name {
			case "source addresses":
				h.mu.Lock()
				if h.remotes["127.0.0.2"] != 10 || h.remotes["127.0.0.3"] != 10 {
					t.Errorf("subscribers came from %v, want 10 from each of 127.0.0.2 and 127.0.0.3", h.remotes)
				}
				h.mu.Unlock()
			case "resume":
				rs := rep.Resume
				if rs == nil || rs.Error != "" || rs.Acked != 100 || rs.Received != 100 || rs.Missing != 0 || rs.Duplicated != 0 || rs.AllMS < 0 || rs.FirstMS < 0 || rs.FirstMS > rs.AllMS {
					t.Errorf("resume = %+v", rs)
				}
			}
		})
	}
}

func TestRunStopsWithinItsBounds(t *testing.T) {
	t.Run("publishes hang", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		defer h.close()
		h.publishHook = func(r *http.Request) bool {
			<-r.Context().Done()
			return false
		}
		cfg := quick(h)
		cfg.Duration = 500 * time.Millisecond
		cfg.PublishTimeout = 300 * time.Millisecond
		cfg.Drain = 200 * time.Millisecond
		start := time.Now()
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		// connect + settle + duration + publish timeout + drain, with room
		// for a loaded machine: this catches a run that does not stop.
		if el := time.Since(start); el > 7*time.Second {
			t.Errorf("run took %v", el)
		}
		p := rep.Publish
		if p.Acked != 0 || p.Errors == 0 || p.Errors+p.Dropped != p.Scheduled || len(p.ErrorKinds) == 0 {
			t.Errorf("publish = %+v", p)
		}
		if rep.Delivery.Expected != 0 || rep.Delivery.Missing != 0 {
			t.Errorf("delivery = %+v", rep.Delivery)
		}
	})
	t.Run("max time", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		defer h.close()
		cfg := quick(h)
		cfg.Duration = time.Minute
		cfg.MaxTime = 800 * time.Millisecond
		start := time.Now()
		rep, err := Run(context.Background(), cfg)
		t.Logf("stopped after %v", time.Since(start))
		if err == nil || rep == nil || !strings.Contains(rep.Error, "maximum time") {
			t.Fatalf("err = %v, report error %q", err, rep.Error)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("run took %v with a maximum of 800ms", el)
		}
		if c := rep.Connections; c.Attempted == 0 || c.Established+c.Failed != c.Attempted {
			t.Errorf("the partial report lost what was done: %+v", c)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		h := newFakeHub(t)
		defer h.close()
		cfg := quick(h)
		cfg.Duration = time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := Run(ctx, cfg); err == nil {
			t.Fatal("no error")
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("run took %v after cancel at 500ms", el)
		}
	})
}

func TestRunConnectionFailures(t *testing.T) {
	h := newFakeHub(t)
	defer h.close()
	cfg := quick(h)
	cfg.URL = h.url("/nowhere")
	cfg.Duration = 100 * time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Connections
	if c.Established != 0 || c.Failed != 20 || len(c.Errors) != 1 || !strings.Contains(c.Errors[0].Error, "status 404") {
		t.Errorf("connections = %+v", c)
	}
}

// A refused publish is reported with the hub's whole reason, which says
// what to fix (a JWKS error names the key id and the URL: longer than a
// line of a terminal).
func TestRunReportsTheWholeRefusal(t *testing.T) {
	reason := "auth: unknown key id (kid) \"k1\": the JWKS at https://issuer.example.com/" + strings.Repeat("x", 300) + " has no ES256 key with this kid"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, reason, http.StatusUnauthorized)
	}))
	defer srv.Close()
	rep, err := Run(context.Background(), Config{URL: srv.URL, Subscribers: 0, Rate: 20, Duration: 100 * time.Millisecond, Settle: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	errs := rep.Publish.ErrorKinds
	if len(errs) != 1 || errs[0].Error != "status 401: "+reason {
		t.Fatalf("publish errors %+v, want the whole reason", errs)
	}
}
