package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/sse"
)

// requireService skips (or, with CI=true, fails) when nothing listens at
// addr: the machine's shared Redis or NATS.
func requireService(t *testing.T, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	servicetest.Unavailable(t, fmt.Sprintf("%s at %s is not reachable (%v)", name, addr, err))
}

func uniqueName(t *testing.T) string {
	return fmt.Sprintf("ssehubtest%x", rand.Uint64())
}

// engines are the shared logs a cluster test runs on, with cleanup.
func engines(t *testing.T) map[string]func(t *testing.T) []string {
	return map[string]func(t *testing.T) []string{
		"redis": func(t *testing.T) []string {
			requireService(t, "Redis", "127.0.0.1:6379")
			name := uniqueName(t)
			t.Cleanup(func() {
				c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
				defer c.Close()
				c.Del(context.Background(), "{"+name+"}:events", "{"+name+"}:seq")
			})
			return []string{"--log", "redis://127.0.0.1:6379/0", "--log-name", name}
		},
		"nats": func(t *testing.T) []string {
			requireService(t, "NATS", "127.0.0.1:4222")
			name := uniqueName(t)
			t.Cleanup(func() {
				nc, err := nats.Connect("nats://127.0.0.1:4222")
				if err != nil {
					return
				}
				defer nc.Close()
				if js, err := nc.JetStream(); err == nil {
					js.DeleteStream(strings.ToUpper(name))
				}
			})
			return []string{"--log", "nats://127.0.0.1:4222", "--log-name", name}
		},
	}
}

// failoverSubscriber reads a stream from one node; when the stream breaks it
// reconnects to the next live node with Last-Event-ID, as a client behind a
// load balancer does. It stops at the event whose data is "end".
type failoverSubscriber struct {
	ids        []string
	datas      []string
	err        error
	reconnects int // streams opened after the first
}

func (f *failoverSubscriber) run(nodes func() []string, start int, deadline time.Time) {
	last := ""
	opened := 0
	for n := start; time.Now().Before(deadline); n++ {
		live := nodes()
		if len(live) == 0 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		req, _ := http.NewRequest("GET", live[n%len(live)]+"/.well-known/mercure?topic=t", nil)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			cancel()
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if resp.StatusCode != 200 {
			resp.Body.Close()
			cancel()
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if opened++; opened > 1 {
			f.reconnects++
		}
		d := sse.NewDecoder(resp.Body)
		for {
			ev, err := d.Next()
			if err != nil {
				break
			}
			if ev.Type != "message" {
				continue // a reconnect instruction
			}
			last = ev.ID
			if ev.Data == "end" {
				resp.Body.Close()
				cancel()
				return
			}
			f.ids = append(f.ids, ev.ID)
			f.datas = append(f.datas, ev.Data)
		}
		resp.Body.Close()
		cancel()
	}
	f.err = fmt.Errorf("no end event before the deadline (got %d events)", len(f.ids))
}

// cluster is a set of hub processes on one shared log.
type cluster struct {
	mu    sync.Mutex
	procs []*hubProc
	dead  map[int]bool
}

func (c *cluster) live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for i, p := range c.procs {
		if !c.dead[i] {
			out = append(out, p.base)
		}
	}
	return out
}

func (c *cluster) kill(t *testing.T, i int) {
	c.mu.Lock()
	c.dead[i] = true
	p := c.procs[i]
	c.mu.Unlock()
	p.stop(t, syscall.SIGKILL)
}

// publishSomewhere publishes to a random live node, retrying on other
// nodes until one acknowledges; it returns the acknowledged id.
func (c *cluster) publishSomewhere(t *testing.T, data string, deadline time.Time) (string, error) {
	tok := publisherToken(t)
	for time.Now().Before(deadline) {
		live := c.live()
		if len(live) == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		req, _ := http.NewRequest("POST", live[rand.N(len(live))]+"/.well-known/mercure", strings.NewReader(url.Values{"topic": {"t"}, "data": {data}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		b := make([]byte, 64)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return string(b[:n]), nil
		}
		time.Sleep(20 * time.Millisecond) // 503 while the engine is away
	}
	return "", fmt.Errorf("publish %q: no node acknowledged before the deadline", data)
}

// checkAllReceived asserts that every subscriber got the same events in the
// same (log) order, with no duplicate, and every acknowledged one among them.
func checkAllReceived(t *testing.T, subs []*failoverSubscriber, acked []string) {
	t.Helper()
	for i, s := range subs {
		if s.err != nil {
			t.Fatalf("subscriber %d: %v", i, s.err)
		}
		seen := map[string]bool{}
		var prev uint64
		for _, id := range s.ids {
			if seen[id] {
				t.Fatalf("subscriber %d got id %s twice", i, id)
			}
			seen[id] = true
			pos, err := strconv.ParseUint(id, 10, 64)
			if err != nil || pos <= prev {
				t.Fatalf("subscriber %d: id %s after %d is not in log order", i, id, prev)
			}
			prev = pos
		}
		for _, id := range acked {
			if !seen[id] {
				t.Fatalf("subscriber %d is missing acknowledged event %s (got %d events)", i, id, len(s.ids))
			}
		}
		if !slices.Equal(s.ids, subs[0].ids) {
			t.Fatalf("subscriber %d saw another order than subscriber 0", i)
		}
	}
}

func TestClusterFailover(t *testing.T) {
	for name, engine := range engines(t) {
		t.Run(name, func(t *testing.T) {
			logFlags := engine(t)
			c := &cluster{dead: map[int]bool{}}
			for range 3 {
				c.procs = append(c.procs, startHub(t, t.TempDir(), append(logFlags, "--history", "memory")...))
			}
			// kill -9 a node mid-stream
			subs := c.flow(t, 9, 200, 80, 2*time.Millisecond, func() { c.kill(t, 0) })
			for i, s := range subs {
				if started0 := i%3 == 0; started0 != (s.reconnects > 0) {
					t.Errorf("subscriber %d (on node %d) reconnected %d times: only those of the killed node should", i, i%3, s.reconnects)
				}
			}
		})
	}
}

// flow is the scenario of the failover tests: subscribers spread over the
// nodes by number, events published through whichever node is up (pace
// apart), disrupt called before event number at, then "end". Every
// subscriber must receive every acknowledged event (checkAllReceived);
// flow returns them, for their reconnections.
func (c *cluster) flow(t *testing.T, subscribers, events, at int, pace time.Duration, disrupt func()) []*failoverSubscriber {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	subs := make([]*failoverSubscriber, subscribers)
	var wg sync.WaitGroup
	for i := range subs {
		subs[i] = &failoverSubscriber{}
		wg.Go(func() { subs[i].run(c.live, i, deadline) })
	}
	waitSubscribed(t, c, subscribers)
	var acked []string
	for i := range events {
		if i == at {
			disrupt()
		}
		id, err := c.publishSomewhere(t, fmt.Sprint(i), deadline)
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
		if pace > 0 {
			time.Sleep(pace)
		}
	}
	if _, err := c.publishSomewhere(t, "end", deadline); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	checkAllReceived(t, subs, acked)
	return subs
}

// waitSubscribed waits until the nodes together report n subscribers.
func waitSubscribed(t *testing.T, c *cluster, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		total := 0
		for _, base := range c.live() {
			resp, err := http.Get(base + "/.well-known/ssehub/stats")
			if err != nil {
				continue
			}
			ev, err := sse.NewDecoder(resp.Body).Next()
			resp.Body.Close()
			if err != nil {
				continue
			}
			var subs int
			if i := strings.Index(ev.Data, `"subscribers":`); i >= 0 {
				fmt.Sscanf(ev.Data[i+len(`"subscribers":`):], "%d", &subs)
			}
			total += subs
		}
		if total >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cluster never reached %d subscribers", n)
}

// TestClusterSurvivesRedisRestart restarts the engine (a redis-server of
// the test's own, persisting to an append-only file) while events flow:
// publishes fail with 503 meanwhile, subscribers stay connected, and once
// Redis is back the nodes catch up with no gap.
func TestClusterSurvivesRedisRestart(t *testing.T) {
	redis := servicetest.StartServer(t, "redis-server", func(port int, dir string) []string {
		return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""}
	}, func(port int) error {
		c, err := net.Dial("tcp", fmt.Sprint("127.0.0.1:", port))
		if err == nil {
			c.Close()
		}
		return err
	})

	logFlags := []string{"--log", fmt.Sprintf("redis://127.0.0.1:%d/0", redis.Port), "--history", "memory"}
	c := &cluster{dead: map[int]bool{}}
	for range 2 {
		c.procs = append(c.procs, startHub(t, t.TempDir(), logFlags...))
	}
	subs := c.flow(t, 4, 120, 40, 0, func() {
		redis.Kill()
		// While the engine is away, a publish is refused, never acknowledged.
		req, _ := http.NewRequest("POST", c.live()[0]+"/.well-known/mercure", strings.NewReader("topic=t&data=lost"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+publisherToken(t))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("publish with the engine down: %d, want 503", resp.StatusCode)
		}
		time.Sleep(300 * time.Millisecond)
		redis.Start()
	})
	for i, s := range subs {
		if s.reconnects != 0 {
			t.Errorf("subscriber %d reconnected %d times; an engine restart should not drop subscribers", i, s.reconnects)
		}
	}
}
