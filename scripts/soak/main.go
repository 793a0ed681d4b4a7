// Command soak runs a hub for a long time under churn and checks that it
// stays flat and loses nothing:
//
//	go run ./scripts/soak                       # 30 minutes, 2,000 subscribers
//	go run ./scripts/soak --duration 2m --subscribers 500 --burst 2000
//
// It starts `ssehub serve` (built from this module, or --bin), or uses a
// running hub (--url, --pid, --key). Thousands of subscribers, one topic
// each, connect, read, drop after a random time and resume with
// Last-Event-ID; publishers publish a numbered sequence per topic at a
// steady rate; once (at a third of the run) --burst connections are opened
// and dropped at once. Every --sample it writes the hub's RSS, goroutines
// (go_goroutines from /metrics), open file descriptors (/proc/<pid>/fd) and
// counters to a CSV file. At the end publishing stops, every subscriber
// catches up, and the program reports whether any resuming client missed
// or duplicated an event (exit status 1 if so) and how RSS, goroutines and
// file descriptors moved.
//
// Load goes to loopback only, and everything stops by itself after
// --duration plus a bounded drain.
package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/sse"
)

type config struct {
	bin         string
	hubURL      string
	pid         int
	key         string
	history     string
	hubArgs     string
	duration    time.Duration
	subscribers int
	topics      int
	rate        float64
	publishers  int
	churn       time.Duration
	sample      time.Duration
	burst       int
	localAddrs  int
	csvPath     string
	drain       time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "", "ssehub binary to start (default: go build ./cmd/ssehub)")
	flag.StringVar(&c.hubURL, "url", "", "use the hub running at this base URL instead of starting one (needs --pid and --key)")
	flag.IntVar(&c.pid, "pid", 0, "with --url: the hub's process id, for RSS and file descriptors")
	flag.StringVar(&c.key, "key", "", "publisher JWT key (HS256); generated for a hub this program starts")
	flag.StringVar(&c.history, "history", "bolt", "history of the started hub: bolt or memory")
	flag.StringVar(&c.hubArgs, "hub-args", "", "extra flags for the started hub, space-separated")
	flag.DurationVar(&c.duration, "duration", 30*time.Minute, "how long to publish and churn")
	flag.IntVar(&c.subscribers, "subscribers", 2000, "subscribers (one connection each)")
	flag.IntVar(&c.topics, "topics", 50, "topics; each subscriber reads one")
	flag.Float64Var(&c.rate, "rate", 100, "publishes per second, all topics together")
	flag.IntVar(&c.publishers, "publishers", 4, "publishing connections (each owns a share of the topics)")
	flag.DurationVar(&c.churn, "churn", 30*time.Second, "mean lifetime of a subscriber connection before it drops and resumes")
	flag.DurationVar(&c.sample, "sample", 5*time.Second, "sampling interval")
	flag.IntVar(&c.burst, "burst", 10000, "connections opened and dropped at once, a third into the run (0: none)")
	flag.IntVar(&c.localAddrs, "local-addrs", 8, "spread client connections over 127.0.0.1..127.0.0.N (more ephemeral ports)")
	flag.StringVar(&c.csvPath, "csv", "soak.csv", "where to write the samples")
	flag.DurationVar(&c.drain, "drain", 60*time.Second, "at the end, how long subscribers may take to catch up")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, c config) (int, error) {
	raiseFileLimit()
	if c.hubURL == "" {
		h, err := startHub(ctx, &c)
		if err != nil {
			return 2, err
		}
		defer h.stop()
	} else if c.key == "" || c.pid == 0 {
		return 2, errors.New("--url needs --pid and --key")
	}
	s := newSoak(c)
	return s.run(ctx)
}

// raiseFileLimit lifts the soft open-file limit to the hard one (the hub
// started here inherits it).
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// hubProc is the hub this program started.
type hubProc struct {
	cmd   *exec.Cmd
	dir   string
	built string // the binary built here, removed at the end
	done  chan error
}

var runningRe = regexp.MustCompile(`is running on (https?://\S+)`)

func startHub(ctx context.Context, c *config) (*hubProc, error) {
	dir, err := os.MkdirTemp("", "ssehub-soak")
	if err != nil {
		return nil, err
	}
	built := ""
	if c.bin == "" {
		c.bin = filepath.Join(dir, "ssehub")
		built = c.bin
		fmt.Fprintln(os.Stderr, "soak: building ssehub")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", c.bin, "github.com/ssehub/ssehub/cmd/ssehub").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building ssehub: %v\n%s", err, out)
		}
	}
	if c.key == "" {
		c.key = fmt.Sprintf("soak-publisher-key-%016x", rand.Uint64())
	}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--history", c.history,
		"--publisher-jwt-key", c.key, "--subscriber-jwt-key", c.key + "-sub", "--anonymous", "--no-dashboard", "--log-level", "warn"}
	args = append(args, strings.Fields(c.hubArgs)...)
	cmd := exec.Command(c.bin, args...)
	logf, err := os.Create(filepath.Join(dir, "hub.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &hubProc{cmd: cmd, dir: dir, built: built, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := runningRe.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() { h.done <- cmd.Wait() }()
	select {
	case a := <-addr:
		c.hubURL, c.pid = a, cmd.Process.Pid
		fmt.Fprintf(os.Stderr, "soak: hub pid %d at %s (log %s)\n", c.pid, a, logf.Name())
		return h, nil
	case err := <-h.done:
		return nil, fmt.Errorf("the hub exited at start: %v (see %s)", err, logf.Name())
	case <-time.After(60 * time.Second):
		h.stop()
		return nil, errors.New("the hub did not start within 60s")
	}
}

// stop ends the hub with SIGTERM (then SIGKILL) and removes its data.
func (h *hubProc) stop() {
	if h.cmd.ProcessState == nil {
		h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			h.cmd.Process.Kill()
			<-h.done
		}
	}
	os.RemoveAll(filepath.Join(h.dir, "data"))
	if h.built != "" {
		os.Remove(h.built)
	}
}

// soak is one run.
type soak struct {
	c        config
	streams  *http.Client // one connection per stream, closed when dropped
	pubs     *http.Client
	dialer   atomic.Uint64 // round robin over local addresses
	draining atomic.Bool
	final    []atomic.Int64 // per topic: last sequence number published, once draining

	connected, received, reconnects, refused atomic.Int64
	published, publishErrors                 atomic.Int64
	burstOK, burstFailed                     atomic.Int64
}

func newSoak(c config) *soak {
	s := &soak{c: c, final: make([]atomic.Int64, c.topics)}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		if n := c.localAddrs; n > 1 {
			i := s.dialer.Add(1) % uint64(n)
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}
		}
		return d.DialContext(ctx, network, addr)
	}
	s.streams = &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, ResponseHeaderTimeout: 30 * time.Second}}
	s.pubs = &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: c.publishers}, Timeout: 30 * time.Second}
	return s
}

// subResult is what one subscriber saw.
type subResult struct {
	missing, dups, gaps int64
	caughtUp, verified  bool
}

func (s *soak) run(ctx context.Context) (int, error) {
	c := s.c
	f, err := os.Create(c.csvPath)
	if err != nil {
		return 2, err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"elapsed_s", "phase", "rss_kb", "goroutines", "fds", "hub_subscribers", "events_published", "events_delivered", "clients_connected", "events_received", "reconnects"})

	runCtx, cancelRun := context.WithTimeout(ctx, c.duration)
	defer cancelRun()
	subCtx, cancelSubs := context.WithCancel(ctx)
	defer cancelSubs()
	churnCtx, endChurn := context.WithCancel(subCtx) // ends every connection when the drain starts
	defer endChurn()

	// Subscribers, connected at a steady pace over the first seconds.
	results := make([]subResult, c.subscribers)
	var subs sync.WaitGroup
	for i := range c.subscribers {
		subs.Add(1)
		go func() {
			defer subs.Done()
			time.Sleep(time.Duration(i) * (5 * time.Second) / time.Duration(c.subscribers))
			results[i] = s.subscriber(subCtx, churnCtx, i%c.topics)
		}()
	}
	// Publishers: each owns the topics t with t % publishers == p, so one
	// topic's sequence is published in order.
	seqs := make([]int64, c.topics)
	var pubs sync.WaitGroup
	for p := range c.publishers {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			s.publisher(runCtx, p, seqs)
		}()
	}
	// Sampling, and the burst a third into the run.
	var phase atomic.Value
	phase.Store("run")
	start := time.Now()
	sampled := make(chan struct{})
	var samples []sample
	go func() {
		defer close(sampled)
		t := time.NewTicker(c.sample)
		defer t.Stop()
		for {
			sm := s.sampleHub(time.Since(start), phase.Load().(string))
			samples = append(samples, sm)
			w.Write(sm.row())
			w.Flush()
			fmt.Fprintf(os.Stderr, "soak: %6.0fs %-6s rss %7d KiB  goroutines %6d  fds %6d  subscribers %6d  published %8d  received %9d  reconnects %7d\n",
				sm.elapsed.Seconds(), sm.phase, sm.rssKB, sm.goroutines, sm.fds, sm.hubSubs, s.published.Load(), s.received.Load(), s.reconnects.Load())
			select {
			case <-subCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var burst sync.WaitGroup
	if c.burst > 0 {
		burst.Add(1)
		go func() {
			defer burst.Done()
			select {
			case <-runCtx.Done():
				return
			case <-time.After(c.duration / 3):
			}
			phase.Store("burst")
			t0 := time.Now()
			s.burstConnections(runCtx, c.burst)
			phase.Store("run")
			fmt.Fprintf(os.Stderr, "soak: burst of %d connections: %d answered 200, %d failed, in %v\n", c.burst, s.burstOK.Load(), s.burstFailed.Load(), time.Since(t0).Round(time.Millisecond))
		}()
	}

	<-runCtx.Done()
	pubs.Wait()
	burst.Wait()
	if ctx.Err() != nil {
		cancelSubs()
		subs.Wait()
		<-sampled
		return 2, errors.New("interrupted")
	}
	// Drain: publishing has stopped; every subscriber reads up to the last
	// event of its topic.
	for t := range c.topics {
		s.final[t].Store(seqs[t])
	}
	phase.Store("drain")
	s.draining.Store(true)
	endChurn() // every subscriber resumes once more, then reads to the end
	drained := make(chan struct{})
	go func() { subs.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(c.drain):
		cancelSubs()
		<-drained
	}
	cancelSubs()
	phase.Store("end")
	<-sampled
	// One last sample after everything is closed.
	time.Sleep(2 * c.sample)
	last := s.sampleHub(time.Since(start), "closed")
	samples = append(samples, last)
	w.Write(last.row())
	w.Flush()

	return s.report(results, samples), nil
}

// publisher publishes, at its share of the rate, "seq unixnano" to its
// topics in turn; a failed publish is retried with the same number.
func (s *soak) publisher(ctx context.Context, p int, seqs []int64) {
	c := s.c
	var mine []int
	for t := p; t < c.topics; t += c.publishers {
		mine = append(mine, t)
	}
	if len(mine) == 0 {
		return
	}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}}).SignedString([]byte(c.key))
	interval := time.Duration(float64(time.Second) * float64(c.publishers) / c.rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t := mine[i%len(mine)]
		seq := seqs[t] + 1
		form := url.Values{"topic": {topicName(t)}, "data": {fmt.Sprintf("%d %d", seq, time.Now().UnixNano())}}
		for {
			req, _ := http.NewRequest("POST", s.c.hubURL+"/.well-known/mercure", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := s.pubs.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			s.publishErrors.Add(1)
			if ctx.Err() != nil {
				return // not acknowledged: not part of the sequence
			}
			time.Sleep(100 * time.Millisecond)
		}
		seqs[t] = seq
		s.published.Add(1)
	}
}

func topicName(t int) string { return "soak/" + strconv.Itoa(t) }

// subscriber reads one topic until ctx ends or, once draining, until it
// has the last event of its topic. It drops its connection after a random
// time (or when churnCtx ends) and resumes with Last-Event-ID, and checks
// that the numbers it receives follow each other.
func (s *soak) subscriber(ctx, churnCtx context.Context, t int) subResult {
	var (
		res     subResult
		lastID  string
		lastSeq int64 = -1
		backoff       = 100 * time.Millisecond
	)
	done := func() bool {
		if !s.draining.Load() {
			return false
		}
		return lastSeq >= s.final[t].Load()
	}
	for ctx.Err() == nil && !done() {
		life := time.Duration(rand.ExpFloat64() * float64(s.c.churn))
		parent := churnCtx
		if s.draining.Load() {
			life, parent = s.c.drain, ctx
		}
		cctx, cancel := context.WithTimeout(parent, life)
		req, _ := http.NewRequestWithContext(cctx, "GET", s.c.hubURL+"/.well-known/mercure?topic="+url.QueryEscape(topicName(t)), nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := s.streams.Do(req)
		if err != nil || resp.StatusCode != 200 {
			if err == nil {
				resp.Body.Close()
			}
			cancel()
			s.refused.Add(1)
			time.Sleep(backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		s.connected.Add(1)
		dec := sse.NewDecoder(resp.Body)
		for !done() {
			ev, err := dec.Next()
			if err != nil {
				break
			}
			switch ev.Type {
			case "ssehub.gap":
				res.gaps++
				lastID = ev.ID
				continue
			case "ssehub.reconnect":
				continue
			}
			seqStr, _, _ := strings.Cut(ev.Data, " ")
			seq, err := strconv.ParseInt(seqStr, 10, 64)
			if err != nil {
				continue
			}
			switch {
			case lastSeq < 0:
			case seq == lastSeq+1:
			case seq <= lastSeq:
				res.dups++
			default:
				res.missing += seq - lastSeq - 1
			}
			if seq > lastSeq {
				lastSeq = seq
			}
			lastID = ev.ID
			res.verified = true
			s.received.Add(1)
		}
		resp.Body.Close()
		cancel()
		s.connected.Add(-1)
		if ctx.Err() == nil && !done() {
			s.reconnects.Add(1)
			time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
		}
	}
	res.caughtUp = done()
	return res
}

// burstConnections opens n streams at once (200 at a time), reads their
// status line and drops them.
func (s *soak) burstConnections(ctx context.Context, n int) {
	u, _ := url.Parse(s.c.hubURL)
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				d := net.Dialer{Timeout: 10 * time.Second}
				if k := s.c.localAddrs; k > 1 {
					d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+s.dialer.Add(1)%uint64(k)))}
				}
				conn, err := d.DialContext(ctx, "tcp", u.Host)
				if err != nil {
					s.burstFailed.Add(1)
					continue
				}
				conn.SetDeadline(time.Now().Add(30 * time.Second))
				fmt.Fprintf(conn, "GET /.well-known/mercure?topic=burst HTTP/1.1\r\nHost: %s\r\n\r\n", u.Host)
				line, err := bufio.NewReader(conn).ReadString('\n')
				conn.Close()
				if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
					s.burstFailed.Add(1)
					continue
				}
				s.burstOK.Add(1)
			}
		}()
	}
	for range n {
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
}

// sample is one row of the CSV.
type sample struct {
	elapsed                          time.Duration
	phase                            string
	rssKB, goroutines, fds, hubSubs  int64
	hubPublished, hubDelivered       int64
	connected, received, reconnected int64
}

func (sm sample) row() []string {
	f := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []string{strconv.FormatFloat(sm.elapsed.Seconds(), 'f', 1, 64), sm.phase, f(sm.rssKB), f(sm.goroutines), f(sm.fds),
		f(sm.hubSubs), f(sm.hubPublished), f(sm.hubDelivered), f(sm.connected), f(sm.received), f(sm.reconnected)}
}

func (s *soak) sampleHub(elapsed time.Duration, phase string) sample {
	sm := sample{elapsed: elapsed, phase: phase, rssKB: -1, goroutines: -1, fds: -1, hubSubs: -1, hubPublished: -1, hubDelivered: -1,
		connected: s.connected.Load(), received: s.received.Load(), reconnected: s.reconnects.Load()}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.c.pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				sm.rssKB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.c.pid)); err == nil {
		sm.fds = int64(len(ents))
	}
	m := scrapeMetrics(s.pubs, s.c.hubURL+"/metrics")
	for name, dst := range map[string]*int64{"go_goroutines": &sm.goroutines, "ssehub_subscribers": &sm.hubSubs,
		"ssehub_events_published_total": &sm.hubPublished, "ssehub_events_delivered_total": &sm.hubDelivered} {
		if v, ok := m[name]; ok {
			*dst = int64(v)
		}
	}
	return sm
}

// scrapeMetrics reads the unlabelled samples of a Prometheus text page.
func scrapeMetrics(c *http.Client, u string) map[string]float64 {
	out := make(map[string]float64)
	resp, err := c.Get(u)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// report prints the verdict and returns the exit status.
func (s *soak) report(results []subResult, samples []sample) int {
	var missing, dups, gaps, behind, unverified int64
	for _, r := range results {
		missing += r.missing
		dups += r.dups
		gaps += r.gaps
		if !r.verified {
			unverified++
		} else if !r.caughtUp {
			behind++
		}
	}
	fmt.Printf("\nsoak: %v, %d subscribers over %d topics, %.0f publishes/s, churn %v, burst %d\n",
		s.c.duration, s.c.subscribers, s.c.topics, s.c.rate, s.c.churn, s.c.burst)
	fmt.Printf("published %d (errors %d), received %d, reconnects with Last-Event-ID %d, refused connects %d, burst %d ok / %d failed\n",
		s.published.Load(), s.publishErrors.Load(), s.received.Load(), s.reconnects.Load(), s.refused.Load(), s.burstOK.Load(), s.burstFailed.Load())
	fmt.Printf("loss: missing %d, duplicated %d, gap events %d, not caught up %d, never received anything %d\n", missing, dups, gaps, behind, unverified)

	// Flatness: the median of the second fifth of the run against the
	// median of the last fifth (before the drain), and the value once all
	// clients left against the first sample with every client connected.
	var run []sample
	for _, sm := range samples {
		if sm.phase == "run" || sm.phase == "burst" {
			run = append(run, sm)
		}
	}
	if n := len(run); n >= 5 {
		early, late := run[n/5:2*n/5+1], run[4*n/5:]
		for _, m := range []struct {
			name string
			get  func(sample) int64
		}{
			{"rss_kb", func(x sample) int64 { return x.rssKB }},
			{"goroutines", func(x sample) int64 { return x.goroutines }},
			{"fds", func(x sample) int64 { return x.fds }},
		} {
			a, b := median(early, m.get), median(late, m.get)
			growth := 0.0
			if a > 0 {
				growth = 100 * float64(b-a) / float64(a)
			}
			fmt.Printf("%-10s early median %8d  late median %8d  (%+.1f%%)  max %8d  after clients left %8d\n",
				m.name, a, b, growth, maxOf(samples, m.get), m.get(samples[len(samples)-1]))
		}
	}
	fmt.Printf("samples: %s\n", s.c.csvPath)
	if missing+dups+gaps+behind > 0 {
		fmt.Println("RESULT: LOSS")
		return 1
	}
	fmt.Println("RESULT: no loss")
	return 0
}

func median(ss []sample, get func(sample) int64) int64 {
	v := make([]int64, len(ss))
	for i, s := range ss {
		v[i] = get(s)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func maxOf(ss []sample, get func(sample) int64) int64 {
	var m int64
	for _, s := range ss {
		m = max(m, get(s))
	}
	return m
}
