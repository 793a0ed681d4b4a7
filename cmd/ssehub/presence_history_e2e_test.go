package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/servicetest"
)

// A subscribe-and-close flood with --subscriptions writes many times the
// history's size in presence events; on their own budget
// (--subscriptions-history) they never push an application event out, in
// any engine and across a restart (kill -9 for bbolt), and a subscriber
// that may receive them learns by a gap event that the oldest are gone
// (issue 13, item 5). With one budget for both (--subscriptions-history 0,
// as before), the same flood evicts the application events.
func TestPresenceFloodKeepsApplicationHistory(t *testing.T) {
	engines := map[string]func(t *testing.T) []string{
		"memory": func(*testing.T) []string { return []string{"--history", "memory"} },
		"bolt":   func(*testing.T) []string { return []string{"--history", "bolt"} },
		"redis": func(t *testing.T) []string {
			u := servicetest.RedisURL(t)
			servicetest.RequireRedis(t, u)
			return []string{"--log", u, "--log-name", servicetest.RedisPrefix(t, u)}
		},
		"nats": func(t *testing.T) []string {
			u := servicetest.NATSURL(t)
			servicetest.RequireNATS(t, u)
			return []string{"--log", u, "--log-name", servicetest.NATSStream(t, u)}
		},
	}
	for _, name := range []string{"memory", "bolt", "redis", "nats"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data := t.TempDir()
			args := append(engines[name](t), "--subscriptions", "--history-size", "30", "--subscriptions-history", "20",
				"--subscriptions-rate", "-1", "--subscriptions-max-selectors", "-1")
			p := startHub(t, data, args...)
			first := p.publish(t, url.Values{"topic": {"/app"}, "data": {"first"}})
			p.publish(t, url.Values{"topic": {"/app"}, "data": {"keep"}})
			presenceFlood(t, p)
			waitForReservedGap(t, p, first)
			if name == "bolt" {
				if err := p.stop(t, syscall.SIGKILL); err == nil {
					t.Fatal("kill -9 exited cleanly")
				}
				p = startHub(t, data, args...)
			}
			p.publish(t, url.Values{"topic": {"/app"}, "data": {"after"}})
			s := p.subscribe(t, "topic=/app", first)
			if gap := s.Resp.Header.Get("Ssehub-Gap"); gap != "" {
				t.Fatalf("Ssehub-Gap %q: presence events pushed application events out", gap)
			}
			if got, _ := s.datas(t, 2); !slices.Equal(got, []string{"keep", "after"}) {
				t.Fatalf("resumed with %q, want keep, after", got)
			}
		})
	}
	t.Run("one budget", func(t *testing.T) {
		t.Parallel()
		p := startHub(t, t.TempDir(), "--history", "memory", "--subscriptions", "--history-size", "30", "--subscriptions-history", "0",
			"--subscriptions-rate", "-1", "--subscriptions-max-selectors", "-1")
		first := p.publish(t, url.Values{"topic": {"/app"}, "data": {"first"}})
		p.publish(t, url.Values{"topic": {"/app"}, "data": {"keep"}})
		presenceFlood(t, p)
		servicetest.WaitFor(t, 10*time.Second, "the flood to evict the application events", func() bool {
			s := p.subscribe(t, "topic=/app", first)
			defer s.Resp.Body.Close()
			return s.Resp.Header.Get("Ssehub-Gap") == hub.GapExpired
		})
	})
}

// presenceFlood opens and closes 30 subscriptions of 10 selectors: 600
// presence events, twenty times the history of 30.
func presenceFlood(t *testing.T, p *hubProc) {
	t.Helper()
	q := url.Values{}
	for i := range 10 {
		q.Add("topic", fmt.Sprintf("/room/%d", i))
	}
	for range 30 {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", p.base+"/.well-known/mercure?"+q.Encode(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("subscribe: %s", resp.Status)
		}
		cancel()
		resp.Body.Close()
	}
}

// waitForReservedGap waits until a subscriber that may receive the hub's
// own events, resuming from after, is told by a gap event that some are
// gone: the flood reached the log and its budget.
func waitForReservedGap(t *testing.T, p *hubProc, after string) {
	t.Helper()
	servicetest.WaitFor(t, 15*time.Second, "a gap event for the presence events removed", func() bool {
		req, _ := http.NewRequest("GET", p.base+"/.well-known/mercure?topic=*", nil)
		req.Header.Set("Last-Event-ID", after)
		req.Header.Set("Authorization", "Bearer "+subscriberToken(t, testSubKey))
		s := streamOf(t, http.DefaultClient, req)
		defer s.Resp.Body.Close()
		for {
			select {
			case ev, ok := <-s.Events:
				if !ok {
					return false
				}
				if ev.Type == hub.GapType {
					return true
				}
			case <-time.After(300 * time.Millisecond):
				return false // replayed all without a gap
			}
		}
	})
}
