package bench

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stormConfig returns a short storm against h: 6 storm subscribers over 4
// topics, 10 missed events each behind 200 on 5 other topics, and the
// quick run's 20 subscribers as the control group.
func stormConfig(h *fakeHub) Config {
	c := quick(h)
	c.Duration = time.Second
	c.Storm = 6
	c.StormTopics = 4
	c.StormBehind = 200
	c.StormBehindTopics = 5
	c.StormTimeout = 5 * time.Second
	return c
}

func TestStormCountsWhatTheReplayLost(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(topic string, k int) string
		// want: the storm's missing, duplicated and out-of-order counts and
		// how many caught up (of 6).
		missing, dup, ooo, caught int64
	}{
		{name: "clean", caught: 6},
		// Topic storm1 has subscribers 1 and 5: each loses its 4th missed
		// event (seq 4) but gets the last one, so it catches up.
		{name: "drop", fault: faultOn("bench/storm1", 3, "drop"), missing: 2, caught: 6},
		{name: "duplicate", fault: faultOn("bench/storm1", 5, "dup"), dup: 2, caught: 6},
		// Topic storm3 has subscriber 3 alone.
		{name: "reorder", fault: faultOn("bench/storm3", 2, "hold"), ooo: 1, caught: 6},
		// Topic storm0's last event (seq 10) never comes: subscribers 0
		// and 4 do not catch up.
		{name: "drop last", fault: faultOn("bench/storm0", 9, "drop"), missing: 2, caught: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHub(t)
			defer h.close()
			h.replayFault = tc.fault
			cfg := stormConfig(h)
			if tc.caught < 6 {
				cfg.StormTimeout = time.Second // the wait that ends it
			}
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			st := rep.Storm
			if st == nil {
				t.Fatal("no storm report")
			}
			if st.Connected != 6 || st.Primed != 6 || st.Reconnected != 6 || st.ReconnectFailed != 0 {
				t.Errorf("connected %d primed %d reconnected %d failed %d, want 6 6 6 0", st.Connected, st.Primed, st.Reconnected, st.ReconnectFailed)
			}
			// 4 markers, 200 behind, 4 × 10 missed.
			if st.PublishAcked != 244 || st.PublishErrors != 0 {
				t.Errorf("storm publishes: %d acked, %d errors, want 244, 0", st.PublishAcked, st.PublishErrors)
			}
			if st.Expected != 60 || st.Received != 60-tc.missing {
				t.Errorf("expected %d received %d, want 60 and %d", st.Expected, st.Received, 60-tc.missing)
			}
			if st.Missing != tc.missing || st.Duplicated != tc.dup || st.OutOfOrder != tc.ooo || st.Foreign != 0 || st.Other != 0 {
				t.Errorf("missing %d duplicated %d out of order %d foreign %d other %d, want %d %d %d 0 0",
					st.Missing, st.Duplicated, st.OutOfOrder, st.Foreign, st.Other, tc.missing, tc.dup, tc.ooo)
			}
			if st.CaughtUp != tc.caught || st.CatchUp.Count != uint64(tc.caught) {
				t.Errorf("caught up %d (%d times), want %d", st.CaughtUp, st.CatchUp.Count, tc.caught)
			}
			if (st.Error != "") != (tc.caught < 6) {
				t.Errorf("error %q", st.Error)
			}
			// The control group still gets every event of its topics.
			if d := rep.Delivery; d.Expected == 0 || d.Missing != 0 || d.Duplicated != 0 || d.OutOfOrder != 0 {
				t.Errorf("control group delivery = %+v", d)
			}
			var text bytes.Buffer
			rep.WriteText(&text)
			if !strings.Contains(text.String(), "storm ") || !strings.Contains(text.String(), "control group latency") {
				t.Errorf("summary lacks the storm:\n%s", text.String())
			}
		})
	}
}

func faultOn(topic string, k int, action string) func(string, int) string {
	return func(tp string, i int) string {
		if tp == topic && i == k {
			return action
		}
		return ""
	}
}

// TestStormCatchUpFromTheReconnect holds every reconnection's response
// back: catch-up times run from the storm's moment, before the dial, so
// none can be shorter than the hold.
func TestStormCatchUpFromTheReconnect(t *testing.T) {
	h := newFakeHub(t)
	defer h.close()
	const hold = 300 * time.Millisecond
	h.reconnectDelay = hold
	cfg := stormConfig(h)
	cfg.Duration = 2 * time.Second
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := rep.Storm
	if st.CaughtUp != 6 || st.Missing != 0 {
		t.Fatalf("storm = %+v", st)
	}
	if min := st.CatchUp.Min; min < float64(hold.Milliseconds()) {
		t.Errorf("catch-up min %.1f ms, shorter than the %v the hub held the reconnections", min, hold)
	}
	if st.CatchUp.Max > st.StormS*1000+1 {
		t.Errorf("catch-up max %.1f ms beyond the storm's %.3f s", st.CatchUp.Max, st.StormS)
	}
	if st.StartS < rep.Phases.ConnectS+rep.Phases.SettleS {
		t.Errorf("storm at %.2fs, before the publish phase (%.2fs)", st.StartS, rep.Phases.ConnectS+rep.Phases.SettleS)
	}
	// The control group's events published during the storm (300 ms at
	// 100/s) have their latency recorded.
	if st.Control.Count == 0 || st.Control.Count > rep.Delivery.Latency.Count {
		t.Errorf("control latency count %d of %d deliveries", st.Control.Count, rep.Delivery.Latency.Count)
	}
}

// TestReconnectAcrossAnOutage drops every connection in the middle of the
// publish phase and refuses publishes for a while, like a hub restart: the
// subscribers come back with Last-Event-ID and miss nothing acknowledged.
func TestReconnectAcrossAnOutage(t *testing.T) {
	h := newFakeHub(t)
	defer h.close()
	h.retry = 50 * time.Millisecond
	var n atomic.Int64
	h.publishHook = func(r *http.Request) bool {
		switch k := n.Add(1); {
		case k == 20:
			h.srv.CloseClientConnections()
			return false
		case k > 20 && k < 30:
			return false
		}
		return true
	}
	cfg := quick(h)
	cfg.Reconnect = true
	cfg.ReconnectMaxBackoff = 200 * time.Millisecond
	cfg.Duration = time.Second
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, d, c, rc := rep.Publish, rep.Delivery, rep.Connections, rep.Reconnect
	if p.Acked == 0 || p.Errors < 10 || p.Acked+p.Errors+p.Dropped != p.Scheduled {
		t.Errorf("publish = %+v", p)
	}
	if d.Expected != p.Acked*10 || d.Missing != 0 || d.Duplicated != 0 || d.OutOfOrder != 0 {
		t.Errorf("delivery = %+v (acked %d)", d, p.Acked)
	}
	if c.EndedEarly != 0 || c.Failed != 0 {
		t.Errorf("connections = %+v", c)
	}
	if rc == nil || rc.Reconnected < 20 || rc.Ended < 20 || rc.CaughtUp != 20 || rc.NotCaughtUp != 0 || rc.BackS <= 0 || rc.CatchUp.Count != 20 ||
		rc.OwnCatchUp.Count != 20 || rc.OwnCatchUp.Max > rc.CatchUp.Max {
		t.Errorf("reconnect = %+v", rc)
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		retry, ceiling time.Duration
		failures       int
		lo, hi         time.Duration
	}{
		{0, 5 * time.Second, 1, 3 * time.Second, 3 * time.Second},
		{time.Second, 5 * time.Second, 1, time.Second, time.Second},
		{time.Second, 5 * time.Second, 2, time.Second, 2 * time.Second},
		{time.Second, 5 * time.Second, 3, 2 * time.Second, 4 * time.Second},
		{time.Second, 5 * time.Second, 10, 2500 * time.Millisecond, 5 * time.Second},
		{100 * time.Millisecond, time.Second, 2, 250 * time.Millisecond, 500 * time.Millisecond},
		{10 * time.Second, 5 * time.Second, 4, 10 * time.Second, 10 * time.Second},
	} {
		for range 50 {
			if d := backoff(tc.retry, tc.ceiling, tc.failures); d < tc.lo || d > tc.hi {
				t.Errorf("backoff(%v, %v, %d) = %v, want %v to %v", tc.retry, tc.ceiling, tc.failures, d, tc.lo, tc.hi)
				break
			}
		}
	}
}

func TestStormConfig(t *testing.T) {
	c, err := Config{URL: "x", Storm: 10}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.StormTopics != 10 || c.StormMissed != 10 || c.StormBehindTopics != 1000 || c.StormTimeout != time.Minute {
		t.Errorf("storm defaults %+v", c)
	}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{URL: "x", Storm: 2, StormTopics: 3}, "at most 2"},
		{Config{URL: "x", StormBehind: 100}, "--storm"},
		{Config{URL: "x", Storm: 2, SubscribeAll: true}, "exact topics"},
		{Config{URL: "x", Storm: 2, ResumeMissed: 5}, "not both"},
		{Config{URL: "x", Storm: -1}, "negative"},
		{Config{URL: "x", Reconnect: true, ReconnectMaxBackoff: -time.Second}, "negative"},
	} {
		if _, err := tc.c.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one saying %q", tc.c, err, tc.want)
		}
	}
}
