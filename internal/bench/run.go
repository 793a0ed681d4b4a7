package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub/internal/reconnect"
)

// runner holds one run's state.
type runner struct {
	cfg   Config
	start time.Time // the run clock's origin, for payload timestamps

	addr    string // the hub's resolved ip:port
	host    string // the Host header
	sources []netip.Addr
	dialers []*net.Dialer
	targets []string // request target per topic
	all     string   // request target for every topic

	subs       []subscriber
	wg         sync.WaitGroup // subscriber goroutines
	launched   atomic.Int64
	est        atomic.Int64
	failed     atomic.Int64
	ended      atomic.Int64
	estOnTopic []atomic.Int64
	connErrs   errCounter
	endErrs    errCounter
	cnt        deliveries
	pub        *publisher
	storm      *storm // nil without a storm
	ds         dsRun  // ModeDurableStreams

	// Reconnections of main subscribers (Config.Reconnect).
	reAttempts, reAccepted atomic.Int64
	reErrs                 errCounter
	backAt                 atomic.Int64 // run clock at the first accepted reconnection

	phase atomic.Pointer[string] // for the progress line
}

// Run runs one benchmark against a hub: it connects cfg.Subscribers
// subscribers at cfg.ConnectRate, waits cfg.Settle, publishes at cfg.Rate
// for cfg.Duration, waits up to cfg.Drain for the last deliveries, closes
// everything and returns the report. It stops by itself within cfg.MaxTime,
// or when ctx is done; the report then covers what was done and Run
// returns an error too. Every goroutine it starts has ended when it
// returns. Run may be called from several goroutines at once.
//
// Delivery counts are exact: every event is published after every
// subscriber is connected and the settle time has passed, and carries its
// topic's sequence number, so a subscriber's expected events are exactly
// the acknowledged events of its topics.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, start: time.Now()}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxTime)
	defer cancel()
	rep := r.run(ctx)
	if rep.Error != "" {
		return rep, errors.New("bench: " + rep.Error)
	}
	return rep, nil
}

// prepare resolves addresses and builds the subscribers.
func (r *runner) prepare(ctx context.Context) error {
	c := &r.cfg
	u, err := c.subscribeURL(c.topicName(0))
	if err != nil {
		return err
	}
	r.host = u.Host
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	ip, err := resolve(ctx, host)
	if err != nil {
		return err
	}
	r.addr = net.JoinHostPort(ip.String(), port)
	conns := c.Subscribers + c.Storm + 1
	if c.Mode == ModeDurableStreams {
		conns += c.Concurrency // the appenders' connections share the source addresses
	}
	if r.sources, err = c.sourceAddrs(ip, conns); err != nil {
		return err
	}
	if len(r.sources) == 0 {
		r.dialers = []*net.Dialer{{KeepAlive: -1}}
	}
	for _, a := range r.sources {
		r.dialers = append(r.dialers, &net.Dialer{
			LocalAddr: &net.TCPAddr{IP: a.AsSlice()},
			KeepAlive: -1,
			Control:   bindNoPort,
		})
	}
	if lim := fileLimit(); lim > 0 && uint64(c.Subscribers+c.Storm+c.Concurrency+64) > lim {
		return fmt.Errorf("bench: %d subscribers need more open files than the limit of %d (raise it with ulimit -n)", c.Subscribers+c.Storm, lim)
	}
	r.targets = make([]string, c.Topics)
	for t := range r.targets {
		u, err := c.subscribeURL(c.topicName(t))
		if err != nil {
			return err
		}
		r.targets[t] = u.RequestURI()
	}
	u, err = c.subscribeURL("*")
	if err != nil {
		return err
	}
	r.all = u.RequestURI()
	r.estOnTopic = make([]atomic.Int64, c.Topics)
	r.subs = make([]subscriber, c.Subscribers)
	for i := range r.subs {
		s := &r.subs[i]
		s.r, s.idx, s.phase, s.cnt = r, i, phaseMain, &r.cnt
		s.control = c.Storm > 0
		s.keepID = c.Reconnect
		if c.Mode == ModeDurableStreams {
			s.ds, s.retry = &dsReader{}, dsRetry
		}
		if c.SubscribeAll {
			s.topic = -1
			s.trk = make([]topicTrack, c.Topics)
		} else {
			s.topic = i % c.Topics
			s.trk = make([]topicTrack, 1)
		}
	}
	r.pub = newPublisher(r)
	if c.Storm > 0 {
		if r.storm, err = newStorm(r); err != nil {
			return err
		}
	}
	return nil
}

// resolve returns an address of host, IPv4 preferred.
func resolve(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bench: resolving %s: %w", host, err)
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("bench: %s has no address", host)
	}
	return addrs[0], nil
}

func (r *runner) setPhase(p string) { r.phase.Store(&p) }

func (r *runner) clock() time.Duration { return time.Since(r.start) }

// run runs the phases and builds the report.
func (r *runner) run(ctx context.Context) *Report {
	c := &r.cfg
	rep := r.newReport()
	ctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	subsCtx, closeSubs := context.WithCancel(ctx)
	defer closeSubs()
	stopProgress := r.progress()
	defer stopProgress()

	var hub0, hub1, hub2 ProcSample
	var hubErr error
	sampleHub := func(s *ProcSample) {
		if c.HubPID == 0 || hubErr != nil {
			return
		}
		*s, hubErr = ReadProc(c.HubPID)
	}
	// Durable Streams: the streams exist before their readers connect.
	if c.Mode == ModeDurableStreams {
		r.setPhase("create")
		if err := r.createStreams(ctx); err != nil {
			stopRun(fmt.Errorf("creating the streams: %w", err))
		}
	}
	sampleHub(&hub0)

	// Connect, paced.
	r.setPhase("connect")
	t0 := r.clock()
	r.connect(subsCtx)
	r.waitConnected(ctx)
	t1 := r.clock()
	rep.Phases.ConnectS = (t1 - t0).Seconds()

	var rs *resumer
	if c.ResumeMissed > 0 && ctx.Err() == nil {
		rs = newResumer(r)
		rs.connect(subsCtx)
	}

	// Settle, then sample the idle RSS.
	r.setPhase("settle")
	sleep(ctx, c.Settle)
	t2 := r.clock()
	rep.Phases.SettleS = (t2 - t1).Seconds()
	sampleHub(&hub1) // the idle RSS, and the CPU time before publishing

	// The storm's subscribers get their Last-Event-ID, then miss the fill;
	// the hub's CPU time for publishing counts from its end.
	if st := r.storm; st != nil && ctx.Err() == nil {
		r.setPhase("prime")
		st.prime(ctx)
		if st.err == nil {
			r.setPhase("fill")
			st.fillHistory(ctx)
		}
		var h ProcSample
		sampleHub(&h)
		hub1.CPU = h.CPU
	}

	// Publish, with the resume scenario alongside.
	r.setPhase("publish")
	pubStart := r.clock()
	rsDone := make(chan struct{})
	if rs != nil && ctx.Err() == nil {
		go func() {
			defer close(rsDone)
			rs.run(ctx, subsCtx)
		}()
	} else {
		close(rsDone)
	}
	stormDone := make(chan struct{})
	if st := r.storm; st != nil && ctx.Err() == nil {
		go func() {
			defer close(stormDone)
			st.run(ctx, subsCtx, min(time.Second, c.Duration/2))
		}()
	} else {
		close(stormDone)
	}
	if ctx.Err() == nil {
		r.pub.runMain(ctx)
	}
	t3 := r.clock()
	rep.Phases.PublishS = (t3 - pubStart).Seconds()

	// Drain: wait for every expected event (or the drain time), and for
	// those whose publish failed: a server may have applied them (a
	// timeout), and the first deliveries count them too, so without them
	// the count could reach the expected one with expected events still
	// on their way.
	r.setPhase("drain")
	expected := int64(0)
	for t := range c.Topics {
		n := int64(r.pub.acked[t].len() + r.pub.unacked[t])
		if c.SubscribeAll {
			expected += n * r.est.Load()
		} else {
			expected += n * r.estOnTopic[t].Load()
		}
	}
	drainEnd := time.Now().Add(c.Drain)
	for r.cnt.unique.Load() < expected && time.Now().Before(drainEnd) && ctx.Err() == nil {
		sleep(ctx, 5*time.Millisecond)
	}
	<-rsDone
	<-stormDone
	t4 := r.clock()
	rep.Phases.DrainS = (t4 - t3).Seconds()
	sampleHub(&hub2)

	// Close everything, then count.
	r.setPhase("close")
	closeSubs()
	r.wg.Wait()
	r.pub.close()
	stopProgress()
	if err := ctx.Err(); err != nil {
		rep.Error = "stopped before the end: " + context.Cause(ctx).Error()
		if errors.Is(err, context.DeadlineExceeded) {
			rep.Error = fmt.Sprintf("the run took longer than its maximum time (%v)", c.MaxTime)
		}
	}
	r.fillReport(rep, pubStart, t3)
	if c.HubPID != 0 {
		h := &HubReport{PID: c.HubPID}
		rep.Hub = h
		if hubErr != nil {
			h.Error = hubErr.Error()
		} else {
			h.RSSBefore, h.RSSConnected, h.RSSEnd, h.RSSPeak = hub0.RSS, hub1.RSS, hub2.RSS, hub2.PeakRSS
			if est := rep.Connections.Established; est > 0 {
				h.RSSPerIdleConn = float64(hub1.RSS-hub0.RSS) / float64(est)
			}
			cpu := hub2.CPU - hub1.CPU
			h.CPUPublishS = cpu.Seconds()
			if n := rep.Delivery.Received; n > 0 {
				h.CPUPerEventUS = float64(cpu.Microseconds()) / float64(n)
			}
		}
	}
	if rs != nil {
		rep.Resume = rs.report()
	}
	if r.storm != nil {
		rep.Storm = r.storm.report()
	}
	if c.Reconnect {
		rep.Reconnect = r.reconnectReport()
	}
	if c.Mode == ModeDurableStreams {
		rep.Streams = r.streamsReport()
	}
	if g, err := ReadProc(0); err == nil {
		rep.Generator = ProcReport{RSS: g.RSS, PeakRSS: g.PeakRSS, CPUS: g.CPU.Seconds()}
	}
	rep.Phases.TotalS = r.clock().Seconds()
	return rep
}

// connect starts the subscribers' goroutines at the connect rate.
func (r *runner) connect(ctx context.Context) {
	start := time.Now()
	for i := range r.subs {
		due := time.Duration(float64(i) / r.cfg.ConnectRate * float64(time.Second))
		if wait := due - time.Since(start); wait > 0 && !sleep(ctx, wait) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		r.launched.Add(1)
		r.wg.Add(1)
		go r.runSubscriber(ctx, &r.subs[i])
	}
}

// waitConnected waits until every launched subscriber is established or
// failed. Each one's dial is bounded by the connect timeout.
func (r *runner) waitConnected(ctx context.Context) {
	limit := time.Now().Add(r.cfg.ConnectTimeout + time.Second)
	for r.est.Load()+r.failed.Load() < r.launched.Load() && time.Now().Before(limit) {
		if !sleep(ctx, 5*time.Millisecond) {
			return
		}
	}
}

// runSubscriber is a subscriber's goroutine.
func (r *runner) runSubscriber(ctx context.Context, s *subscriber) {
	defer r.wg.Done()
	target := r.all
	if s.topic >= 0 {
		target = r.targets[s.topic]
	}
	conn, err := s.dial(ctx, target, "")
	if err != nil {
		r.failed.Add(1)
		r.connErrs.add(err)
		return
	}
	s.established = true
	s.estAt = r.clock()
	if s.topic >= 0 {
		r.estOnTopic[s.topic].Add(1)
	}
	r.est.Add(1)
	for {
		s.stream(ctx, conn)
		if !s.ended {
			return
		}
		r.ended.Add(1)
		r.endErrs.add(s.endErr)
		if !r.cfg.Reconnect || (s.ds != nil && s.ds.closed) {
			return // a closed Durable Stream has nothing more
		}
		if conn = r.reconnect(ctx, s, target); conn == nil {
			return
		}
		r.ended.Add(-1) // back
		s.ended, s.endErr = false, nil
	}
}

// reconnect reconnects s with its Last-Event-ID as a browser does, until
// it is accepted or ctx is done (then it returns nil): after the
// reconnection time, then after waits that double (see backoff).
func (r *runner) reconnect(ctx context.Context, s *subscriber, target string) net.Conn {
	for failures := 1; ; failures++ {
		if !sleep(ctx, backoff(s.retry, r.cfg.ReconnectMaxBackoff, failures)) {
			return nil
		}
		r.reAttempts.Add(1)
		conn, err := s.dial(ctx, target, string(s.lastID))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.reErrs.add(err)
			continue
		}
		now := r.clock()
		r.reAccepted.Add(1)
		s.reconnects++
		s.reconnectedAt = now
		r.backAt.CompareAndSwap(0, int64(now))
		if s.topic >= 0 {
			s.catchUp(int(r.pub.last[s.topic].Load()))
		}
		return conn
	}
}

// backoff returns the wait before a reconnection attempt after failures
// consecutive failures (1: the stream just ended), as package client
// waits (reconnect.Backoff), with 3s as the reconnection time retry when 0.
func backoff(retry, ceiling time.Duration, failures int) time.Duration {
	if retry <= 0 {
		retry = 3 * time.Second
	}
	return reconnect.Backoff(retry, ceiling, failures)
}

// reconnectReport returns what the main subscribers' reconnections did;
// their goroutines have ended.
func (r *runner) reconnectReport() *ReconnectReport {
	rep := &ReconnectReport{Attempts: r.reAttempts.Load(), Reconnected: r.reAccepted.Load(), Errors: r.reErrs.list()}
	back := time.Duration(r.backAt.Load())
	rep.BackS = back.Seconds()
	var catch, own Histogram
	for i := range r.subs {
		s := &r.subs[i]
		if s.gap != "" {
			rep.Gaps++
		}
		if s.reconnects == 0 {
			continue
		}
		rep.Ended += int64(s.reconnects)
		if s.catching || s.topic < 0 {
			rep.NotCaughtUp += int64(b2i(s.catching))
			continue
		}
		rep.CaughtUp++
		catch.Record(s.caughtAt - back)
		own.Record(s.caughtAt - s.reconnectedAt)
	}
	rep.Ended += r.ended.Load() // ended and not back
	rep.CatchUp, rep.OwnCatchUp = catch.Stats(), own.Stats()
	return rep
}

// sleep waits for d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// progress prints a progress line every interval until the returned
// function is called (which may be called more than once).
func (r *runner) progress() func() {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				r.progressLine(w)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
		})
	}
}

func (r *runner) progressLine(w io.Writer) {
	phase := "start"
	if p := r.phase.Load(); p != nil {
		phase = *p
	}
	line := fmt.Sprintf("[%6.1fs] %-8s conns %d/%d (failed %d, ended %d)  published %d (errors %d)  received %d (dup %d)",
		r.clock().Seconds(), phase, r.est.Load(), r.cfg.Subscribers, r.failed.Load(), r.ended.Load(),
		r.pub.main.ok.Load()+r.pub.resume.ok.Load(), r.pub.main.failed.Load()+r.pub.resume.failed.Load(),
		r.cnt.unique.Load(), r.cnt.dup.Load())
	if st := r.storm; st != nil {
		line += fmt.Sprintf("  storm published %d (errors %d)", r.pub.storm.ok.Load(), r.pub.storm.failed.Load())
		if g := st.group.Load(); g != nil {
			line += fmt.Sprintf(", %d not caught up", g.left.Load())
		}
	}
	if r.cfg.Reconnect {
		line += fmt.Sprintf("  reconnected %d", r.reAccepted.Load())
	}
	if pid := r.cfg.HubPID; pid != 0 {
		if s, err := ReadProc(pid); err == nil {
			line += fmt.Sprintf("  hub RSS %s CPU %.1fs", size(s.RSS), s.CPU.Seconds())
		}
	}
	fmt.Fprintln(w, line)
}

// newReport returns a report holding the configuration.
func (r *runner) newReport() *Report {
	c := &r.cfg
	rep := &Report{
		Mode:       c.Mode,
		URL:        c.URL,
		PublishURL: c.PublishURL,
		Config: ReportConfig{
			Subscribers:    c.Subscribers,
			Topics:         c.Topics,
			TopicPrefix:    c.TopicPrefix,
			SubscribeAll:   c.SubscribeAll,
			Rate:           c.Rate,
			PayloadBytes:   c.Payload,
			DurationS:      c.Duration.Seconds(),
			ConnectRate:    c.ConnectRate,
			Concurrency:    c.Concurrency,
			PublishFormat:  c.PublishFormat,
			SourceAddrs:    []string{},
			SettleS:        c.Settle.Seconds(),
			DrainS:         c.Drain.Seconds(),
			PublishWorkers: max(1, min(c.Concurrency, c.Topics)),
		},
	}
	for _, a := range r.sources {
		rep.Config.SourceAddrs = append(rep.Config.SourceAddrs, a.String())
	}
	return rep
}

// fillReport counts connections, publishes and deliveries; the subscriber
// goroutines have ended.
func (r *runner) fillReport(rep *Report, pubStart, pubEnd time.Duration) {
	cn := &rep.Connections
	cn.Attempted, cn.Established, cn.Failed, cn.EndedEarly = r.launched.Load(), r.est.Load(), r.failed.Load(), r.ended.Load()
	cn.ConnectS = rep.Phases.ConnectS
	if cn.ConnectS > 0 {
		cn.PerSecond = float64(cn.Established) / cn.ConnectS
	}
	cn.Errors, cn.EndReasons = r.connErrs.list(), r.endErrs.list()

	st := &r.pub.main
	p := &rep.Publish
	p.Scheduled, p.Sent, p.Acked, p.Errors, p.Dropped = st.scheduled.Load(), st.sent.Load(), st.ok.Load(), st.failed.Load(), st.dropped.Load()
	if s := (pubEnd - pubStart).Seconds(); s > 0 {
		p.PerSecond = float64(p.Acked) / s
	}
	p.Latency, p.ErrorKinds = st.latency.Stats(), st.errs.list()

	d := &rep.Delivery
	var late int64
	for i := range r.subs {
		s := &r.subs[i]
		if !s.established {
			continue
		}
		if s.estAt > pubStart {
			late++
			continue
		}
		lost := false
		for k := range s.trk {
			t := k
			if s.topic >= 0 {
				t = s.topic
			}
			want := &r.pub.acked[t]
			missing, extra := s.trk[k].got.missingFrom(want)
			d.Expected += int64(want.len())
			d.Missing += int64(missing)
			d.UnackedReceived += int64(extra)
			d.Received += int64(s.trk[k].got.len())
			lost = lost || missing > 0
		}
		if lost {
			d.SubscribersWithLoss++
		}
	}
	cn.Late = late
	d.Duplicated, d.OutOfOrder = r.cnt.dup.Load(), r.cnt.outOfOrder.Load()
	d.Foreign, d.Other = r.cnt.foreign.Load(), r.cnt.other.Load()
	if last := time.Duration(r.cnt.last.Load()); last > pubStart {
		d.PerSecond = float64(d.Received) / (last - pubStart).Seconds()
	}
	d.Latency = r.cnt.latency.Stats()
}

// resumeTopicIdx is the topic index of the resume scenario's events.
const resumeTopicIdx = 0

// resumer runs the resume scenario with one extra subscriber.
type resumer struct {
	r     *runner
	s     *subscriber
	cnt   deliveries
	topic string
	conn  net.Conn

	// Results, written by run.
	acked     *seqSet
	publishS  time.Duration
	header    time.Duration // reconnection to response header
	all       time.Duration
	err       error
	exited    chan struct{}
	reconnect time.Duration // run clock at the start of the reconnection
}

func newResumer(r *runner) *resumer {
	rs := &resumer{r: r, topic: r.cfg.topicName(-1)}
	rs.s = &subscriber{r: r, idx: 0, topic: resumeTopicIdx, phase: phaseResume, cnt: &rs.cnt,
		trk: make([]topicTrack, 1), keepID: true}
	return rs
}

// target returns the resume subscriber's request target.
func (rs *resumer) target() string {
	u, _ := rs.r.cfg.subscribeURL(rs.topic) // the URL was checked in prepare
	return u.RequestURI()
}

// connect opens the resume subscriber's first connection; its stream is
// read by a goroutine that ends when ctx is done or stop is called.
func (rs *resumer) connect(ctx context.Context) {
	conn, err := rs.s.dial(ctx, rs.target(), "")
	if err != nil {
		rs.err = fmt.Errorf("connecting the resume subscriber: %w", err)
		return
	}
	rs.s.want, rs.s.done = 1, make(chan struct{})
	rs.stream(ctx, conn)
}

// stream reads conn in a goroutine.
func (rs *resumer) stream(ctx context.Context, conn net.Conn) {
	rs.conn = conn
	rs.exited = make(chan struct{})
	rs.r.wg.Add(1)
	go func() {
		defer rs.r.wg.Done()
		defer close(rs.exited)
		rs.s.stream(ctx, conn)
	}()
}

// run disconnects the subscriber after it received a marker event,
// publishes the missed events, reconnects with Last-Event-ID and waits for
// them. Every wait is bounded by the resume timeout.
func (rs *resumer) run(ctx, subsCtx context.Context) {
	if rs.err != nil {
		return
	}
	c := &rs.r.cfg
	s := rs.s
	pub := rs.r.pub
	// 1. A marker (sequence number 0) gives the subscriber a last event id.
	pub.resume.scheduled.Add(1)
	if _, ok := pub.publish(ctx, &pub.resume, payload{phase: phaseResume, seq: 0}, rs.topic, nil); !ok {
		rs.err = errors.New("publishing the marker event failed")
		return
	}
	if !rs.wait(ctx, s.done) {
		rs.err = fmt.Errorf("the marker event did not arrive within %v", c.ResumeTimeout)
		return
	}
	// 2. Disconnect; the goroutine has ended when exited is closed.
	rs.conn.Close()
	<-rs.exited
	lastID := string(s.lastID)
	if lastID == "" {
		rs.err = errors.New("the marker event had no id: cannot resume")
		return
	}
	// 3. Publish what it misses.
	pub.resume.scheduled.Add(int64(c.ResumeMissed))
	pctx, cancel := context.WithTimeout(ctx, c.ResumeTimeout)
	t := time.Now()
	rs.acked = pub.burst(pctx, rs.topic, 1, c.ResumeMissed)
	rs.publishS = time.Since(t)
	cancel()
	if ctx.Err() != nil {
		return
	}
	// 4. Reconnect and wait for all of them.
	want := int64(1 + rs.acked.len())
	s.ended, s.endErr, s.firstAt = false, nil, 0
	s.want, s.done = want, make(chan struct{})
	if s.n >= want {
		s.doneAt = rs.r.clock()
		close(s.done)
	}
	rs.reconnect = rs.r.clock()
	start := time.Now()
	conn, err := s.dial(subsCtx, rs.target(), lastID)
	if err != nil {
		rs.err = fmt.Errorf("reconnecting: %w", err)
		return
	}
	rs.header = time.Since(start)
	rs.stream(subsCtx, conn)
	if !rs.wait(ctx, s.done) {
		rs.err = fmt.Errorf("not every missed event arrived within %v of reconnecting", c.ResumeTimeout)
		return
	}
	rs.all = s.doneAt - rs.reconnect
}

// wait waits for done, the resume timeout or ctx.
func (rs *resumer) wait(ctx context.Context, done <-chan struct{}) bool {
	return waitDone(ctx, done, rs.r.cfg.ResumeTimeout)
}

// report returns the scenario's result; the goroutines have ended.
func (rs *resumer) report() *ResumeReport {
	rep := &ResumeReport{Missed: rs.r.cfg.ResumeMissed, AllMS: -1, FirstMS: -1, Gap: rs.s.gap}
	if rs.err != nil {
		rep.Error = rs.err.Error()
	}
	if rs.acked == nil {
		return rep
	}
	rep.Acked = int64(rs.acked.len())
	rep.PublishS = rs.publishS.Seconds()
	got := &rs.s.trk[0].got
	missing, _ := got.missingFrom(rs.acked)
	rep.Missing = int64(missing)
	rep.Received = int64(got.len())
	if got.has(0) {
		rep.Received-- // the marker
	}
	rep.Duplicated = rs.cnt.dup.Load()
	rep.ConnectMS = ms(rs.header)
	if rs.all > 0 {
		rep.AllMS = ms(rs.all)
	}
	if rs.s.firstAt > rs.reconnect && rs.reconnect > 0 {
		rep.FirstMS = ms(rs.s.firstAt - rs.reconnect)
	}
	return rep
}
