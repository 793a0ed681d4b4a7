package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ssehub/ssehub/internal/reconnect"
)

// These tests run inside a synctest bubble, where time is fake and advances
// only when every goroutine is blocked: the gap between two requests is
// exactly the client's wait, with no sleeping and no flakiness. The server
// is a real http.Server over in-memory pipes (see pipe_test.go).

// timedServer serves responses chosen by respond(n) for the n-th request
// (1-based) and records when each request arrived.
type timedServer struct {
	mu    sync.Mutex
	times []time.Time
}

func (s *timedServer) handler(respond func(w http.ResponseWriter, r *http.Request, n int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.times = append(s.times, time.Now())
		n := len(s.times)
		s.mu.Unlock()
		respond(w, r, n)
	})
}

// gaps returns the time between consecutive requests.
func (s *timedServer) gaps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(s.times); i++ {
		out = append(out, s.times[i].Sub(s.times[i-1]))
	}
	return out
}

// runUntil ranges over the client's events until the server has seen
// requests requests, then cancels and returns the number of events.
func runUntil(t *testing.T, hc *http.Client, srv *timedServer, requests int, opts ...Option) int {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	opts = append([]Option{WithHTTPClient(hc), WithOnState(func(sc StateChange) {
		srv.mu.Lock()
		n := len(srv.times)
		srv.mu.Unlock()
		if sc.State == Reconnecting && n >= requests {
			cancel()
		}
	})}, opts...)
	c, err := New("http://hub.test/events", opts...)
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for _, err := range c.Events(ctx) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("iteration ended with %v", err)
			}
			break
		}
		events++
	}
	return events
}

func TestRetryTiming(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		// body returns the n-th response's stream; each has an event,
		// so every connection is healthy.
		body func(n int) string
		want []time.Duration
	}{
		{"default is 3s", nil, func(n int) string { return "data: x\n\n" },
			[]time.Duration{3 * time.Second, 3 * time.Second}},
		{"server retry honoured", nil, func(n int) string {
			if n == 1 {
				return "retry: 1500\ndata: x\n\n"
			}
			return "data: x\n\n"
		}, []time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond}},
		{"server retry changes", nil, func(n int) string { return fmt.Sprintf("retry: %d\ndata: x\n\n", n*100) },
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}},
		{"retry without event still counts", nil, func(n int) string { return "retry: 700\n\ndata: x\n\n" },
			[]time.Duration{700 * time.Millisecond, 700 * time.Millisecond}},
		{"invalid retry ignored", nil, func(n int) string { return "retry: 1s\ndata: x\n\n" },
			[]time.Duration{3 * time.Second, 3 * time.Second}},
		{"WithRetry", []Option{WithRetry(500 * time.Millisecond)}, func(n int) string { return "data: x\n\n" },
			[]time.Duration{500 * time.Millisecond, 500 * time.Millisecond}},
		{"server overrides WithRetry", []Option{WithRetry(500 * time.Millisecond)}, func(n int) string { return "retry: 2000\ndata: x\n\n" },
			[]time.Duration{2 * time.Second, 2 * time.Second}},
		{"retry 0 reconnects at once", nil, func(n int) string { return "retry: 0\ndata: x\n\n" },
			[]time.Duration{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &timedServer{}
				hc, _, stop := startPipeServer(srv.handler(func(w http.ResponseWriter, r *http.Request, n int) {
					stream(w, tc.body(n))
				}))
				defer stop()
				events := runUntil(t, hc, srv, len(tc.want)+1, tc.opts...)
				if events != len(tc.want)+1 {
					t.Errorf("%d events", events)
				}
				if got := srv.gaps(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("gaps %v, want %v", got, tc.want)
				}
			})
		})
	}
}

// checkBackoff checks gaps after consecutive failures: the first is the
// reconnection time, each next one is drawn from [max(base, d/2), d] where
// d doubles from base up to maxWait.
func checkBackoff(t *testing.T, gaps []time.Duration, base, maxWait time.Duration) {
	t.Helper()
	d := max(base, reconnect.MinBackoff)
	for i, g := range gaps {
		if i == 0 {
			if g != base {
				t.Errorf("gap 1 = %v, want exactly %v", g, base)
			}
			continue
		}
		d = min(2*d, maxWait)
		lo := max(base, d/2)
		if g < lo || g > d {
			t.Errorf("gap %d = %v, want within [%v, %v]", i+1, g, lo, d)
		}
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		base    time.Duration
		maxWait time.Duration
		refuse  int // dials refused before the server answers
		respond func(w http.ResponseWriter, n int)
	}{
		{"stream ends without events", nil, 3 * time.Second, DefaultMaxBackoff, 0,
			func(w http.ResponseWriter, n int) { stream(w, ": nothing\n\n") }},
		{"connection refused", nil, 3 * time.Second, DefaultMaxBackoff, 100, nil},
		{"small retry", nil, 10 * time.Millisecond, DefaultMaxBackoff, 0,
			func(w http.ResponseWriter, n int) { stream(w, "retry: 10\n\n") }},
		{"retry 0", nil, 0, DefaultMaxBackoff, 0,
			func(w http.ResponseWriter, n int) { stream(w, "retry: 0\n\n") }},
		{"WithMaxBackoff", []Option{WithMaxBackoff(10 * time.Second)}, 3 * time.Second, 10 * time.Second, 0,
			func(w http.ResponseWriter, n int) { stream(w, "") }},
		{"max below retry", []Option{WithMaxBackoff(time.Second)}, 3 * time.Second, 3 * time.Second, 0,
			func(w http.ResponseWriter, n int) { stream(w, "") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &timedServer{}
				var attempts []time.Time
				var mu sync.Mutex
				hc, pn, stop := startPipeServer(srv.handler(func(w http.ResponseWriter, r *http.Request, n int) {
					tc.respond(w, n)
				}))
				defer stop()
				pn.Refuse(tc.refuse)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				opts := append([]Option{WithHTTPClient(hc), WithOnState(func(sc StateChange) {
					if sc.State != Connecting {
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if attempts = append(attempts, time.Now()); len(attempts) == 10 {
						cancel()
					}
				})}, tc.opts...)
				c, _ := New("http://hub.test/", opts...)
				for _, err := range c.Events(ctx) {
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("unexpected %v", err)
					}
				}
				var gaps []time.Duration
				for i := 1; i < len(attempts); i++ {
					gaps = append(gaps, attempts[i].Sub(attempts[i-1]))
				}
				checkBackoff(t, gaps, tc.base, tc.maxWait)
				// Jitter: the waits at the cap are not all the same.
				if last := gaps[len(gaps)-3:]; tc.maxWait > tc.base && last[0] == last[1] && last[1] == last[2] {
					t.Errorf("no jitter: %v", last)
				}
			})
		})
	}
}

// TestBackoffResets checks that a healthy connection resets the backoff: by
// delivering an event, or by staying open long enough.
func TestBackoffResets(t *testing.T) {
	tests := []struct {
		name string
		// third decides what the third connection does; the first two
		// fail (end without an event).
		third     func(w http.ResponseWriter)
		wantReset bool
	}{
		{"an event", func(w http.ResponseWriter) { stream(w, "data: x\n\n") }, true},
		{"open 10s", func(w http.ResponseWriter) { stream(w, ""); time.Sleep(healthyAfter) }, true},
		{"open 9s", func(w http.ResponseWriter) { stream(w, ""); time.Sleep(healthyAfter - time.Second) }, false},
		{"comment only", func(w http.ResponseWriter) { stream(w, ": hi\n\n") }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &timedServer{}
				var ended time.Time
				hc, _, stop := startPipeServer(srv.handler(func(w http.ResponseWriter, r *http.Request, n int) {
					if n == 3 {
						tc.third(w)
						srv.mu.Lock()
						ended = time.Now()
						srv.mu.Unlock()
						return
					}
					stream(w, "")
				}))
				defer stop()
				runUntil(t, hc, srv, 4)
				synctest.Wait()
				srv.mu.Lock()
				gap := srv.times[3].Sub(ended)
				srv.mu.Unlock()
				if tc.wantReset && gap != DefaultRetry {
					t.Errorf("wait after the healthy connection = %v, want %v", gap, DefaultRetry)
				}
				if !tc.wantReset && gap < 2*DefaultRetry {
					t.Errorf("wait = %v, want the backoff of a third failure (>= %v)", gap, 2*DefaultRetry)
				}
			})
		})
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &timedServer{}
		hc, _, stop := startPipeServer(srv.handler(func(w http.ResponseWriter, r *http.Request, n int) {
			stream(w, "retry: 3600000\ndata: x\n\n")
		}))
		defer stop()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		c, _ := New("http://hub.test/", WithHTTPClient(hc), WithOnState(func(sc StateChange) {
			if sc.State == Reconnecting {
				if sc.Delay != time.Hour || sc.Err != io.EOF {
					t.Errorf("reconnecting %+v", sc)
				}
				go func() {
					time.Sleep(time.Minute)
					cancel()
				}()
			}
		}))
		start := time.Now()
		var last error
		for _, err := range c.Events(ctx) {
			last = err
		}
		if !errors.Is(last, context.Canceled) {
			t.Fatalf("ended with %v", last)
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("iteration ended after %v, want 1m (at the cancellation)", d)
		}
	})
}

func TestCancelWhileConnecting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		hc, _, stop := startPipeServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select { // never answers
			case <-block:
			case <-r.Context().Done():
			}
		}))
		defer stop()
		defer close(block)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		c, _ := New("http://hub.test/", WithHTTPClient(hc))
		var last error
		for _, err := range c.Events(ctx) {
			last = err
		}
		if !errors.Is(last, context.DeadlineExceeded) {
			t.Fatalf("ended with %v", last)
		}
	})
}
