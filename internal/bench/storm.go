package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// storm runs the reconnect storm (Config.Storm): its subscribers receive a
// marker and disconnect, the history is filled behind their backs, and at
// the storm's moment they all reconnect at once with their Last-Event-ID.
type storm struct {
	r       *runner
	subs    []subscriber
	cnt     deliveries
	targets []string // request target per storm topic

	// acked[t] holds the sequence numbers acknowledged on storm topic t
	// (the marker is 0, the missed events 1 … StormMissed) and last[t]
	// the highest; written by the topic's fill worker, read after the fill.
	acked []seqSet
	last  []int

	primeEst, primeFailed atomic.Int64
	primeErrs             errCounter
	reEst, reFailed       atomic.Int64
	reErrs                errCounter
	group                 atomic.Pointer[catchGroup] // the storm's catch-up; nil before it

	// The storm's window on the run clock: the control group's deliveries
	// of events published within it are recorded in ctl. from is 0 before
	// the storm; to is math.MaxInt64 while it runs.
	from, to atomic.Int64
	ctl      Histogram

	// Results, written by prime, fill and run.
	primeS, behindS, missedS time.Duration
	startAt, endAt           time.Duration // run clock
	hubCPU                   time.Duration
	hubErr                   error
	err                      error
}

func newStorm(r *runner) (*storm, error) {
	c := &r.cfg
	st := &storm{r: r, subs: make([]subscriber, c.Storm), targets: make([]string, c.StormTopics),
		acked: make([]seqSet, c.StormTopics), last: make([]int, c.StormTopics)}
	for t := range st.targets {
		u, err := c.subscribeURL(c.stormTopic(t))
		if err != nil {
			return nil, err
		}
		st.targets[t] = u.RequestURI()
		st.last[t] = -1
	}
	for i := range st.subs {
		st.subs[i] = subscriber{r: r, idx: c.Subscribers + i, topic: i % c.StormTopics, phase: phaseStorm,
			cnt: &st.cnt, trk: make([]topicTrack, 1), keepID: true}
	}
	st.to.Store(math.MaxInt64)
	return st, nil
}

// prime connects the storm's subscribers at the connect rate, publishes a
// marker on each storm topic, waits until every subscriber received it (or
// the storm timeout) and disconnects them all. It returns when their
// goroutines have ended.
func (st *storm) prime(ctx context.Context) {
	c := &st.r.cfg
	t0 := time.Now()
	defer func() { st.primeS = time.Since(t0) }()
	pctx, cancel := context.WithCancel(ctx)
	group := newCatchGroup(len(st.subs))
	var wg sync.WaitGroup
	defer func() {
		cancel() // the streams end
		wg.Wait()
	}()
	launched := 0
	for i := range st.subs {
		due := time.Duration(float64(i) / c.ConnectRate * float64(time.Second))
		if wait := due - time.Since(t0); wait > 0 && !sleep(pctx, wait) {
			break
		}
		s := &st.subs[i]
		s.group = group
		launched++
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := s.dial(pctx, st.targets[s.topic], "")
			if err != nil {
				st.primeFailed.Add(1)
				st.primeErrs.add(err)
				group.one()
				return
			}
			s.established, s.estAt = true, st.r.clock()
			st.primeEst.Add(1)
			s.catching, s.catchSeq = true, 0 // the marker
			s.stream(pctx, conn)
		}()
	}
	for range len(st.subs) - launched {
		group.one()
	}
	limit := time.Now().Add(c.ConnectTimeout + time.Second)
	for st.primeEst.Load()+st.primeFailed.Load() < int64(launched) && time.Now().Before(limit) {
		if !sleep(ctx, 5*time.Millisecond) {
			return
		}
	}
	if st.primeEst.Load() == 0 {
		st.err = fmt.Errorf("no storm subscriber could connect")
		return
	}
	st.fill(ctx, len(st.targets), func(int) int { return 1 }, 0, phaseStorm, c.stormTopic, st.ack)
	if !waitDone(ctx, group.done, c.StormTimeout) {
		st.err = fmt.Errorf("%d storm subscribers did not receive their marker event within %v", group.left.Load(), c.StormTimeout)
	}
}

func (st *storm) ack(t, seq int) {
	st.acked[t].add(seq)
	st.last[t] = max(st.last[t], seq)
}

// fillHistory publishes the events the storm's subscribers miss: the
// behind events on topics nobody subscribes to, then the missed events on
// each storm topic.
func (st *storm) fillHistory(ctx context.Context) {
	c := &st.r.cfg
	t0 := time.Now()
	if k := c.StormBehindTopics; c.StormBehind > 0 {
		per, extra := c.StormBehind/k, c.StormBehind%k
		st.fill(ctx, k, func(t int) int { return per + b2i(t < extra) }, 0, phaseBehind, c.behindTopic, nil)
	}
	t1 := time.Now()
	st.fill(ctx, len(st.targets), func(int) int { return c.StormMissed }, 1, phaseStorm, c.stormTopic, st.ack)
	st.behindS, st.missedS = t1.Sub(t0), time.Since(t1)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fill publishes count(t) events on each of topics topics, with sequence
// numbers from seq0, up to the configured concurrency at once; a topic's
// events are sent one after the other (worker w owns the topics t with t
// mod workers = w), and ack, when not nil, is called by the topic's worker
// with each acknowledged one. It returns when every worker is done.
func (st *storm) fill(ctx context.Context, topics int, count func(t int) int, seq0 int, phase byte, name func(int) string, ack func(t, seq int)) {
	p := st.r.pub
	workers := max(1, min(st.r.cfg.Concurrency, topics))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var buf []byte
			for k, more := 0, true; more && ctx.Err() == nil; k++ {
				more = false
				for t := w; t < topics && ctx.Err() == nil; t += workers {
					if k >= count(t) {
						continue
					}
					more = true
					seq := seq0 + k
					p.storm.scheduled.Add(1)
					var ok bool
					buf, ok = p.publish(ctx, &p.storm, payload{phase: phase, topic: t, seq: seq}, name(t), buf)
					if ok && ack != nil {
						ack(t, seq)
					}
				}
			}
		})
	}
	wg.Wait()
}

// run waits for the storm's moment, reconnects every primed subscriber at
// once with its Last-Event-ID and waits until each has caught up to the
// last acknowledged event of its topic, or the storm timeout. The
// subscribers' streams go on (in the runner's wait group) until subsCtx is
// done.
func (st *storm) run(ctx, subsCtx context.Context, delay time.Duration) {
	c := &st.r.cfg
	if st.err != nil || !sleep(ctx, delay) {
		return
	}
	var primed []*subscriber
	for i := range st.subs {
		if s := &st.subs[i]; s.caughtAt > 0 && len(s.lastID) > 0 {
			primed = append(primed, s)
		}
	}
	group := newCatchGroup(len(primed))
	st.group.Store(group)
	var cpu0 ProcSample
	if c.HubPID != 0 {
		cpu0, st.hubErr = ReadProc(c.HubPID)
	}
	st.startAt = st.r.clock()
	st.from.Store(int64(st.startAt))
	for _, s := range primed {
		s.group, s.caughtAt = group, 0
		st.r.wg.Add(1)
		go func() {
			defer st.r.wg.Done()
			conn, err := s.dial(subsCtx, st.targets[s.topic], string(s.lastID))
			if err != nil {
				st.reFailed.Add(1)
				st.reErrs.add(err)
				group.one()
				return
			}
			st.reEst.Add(1)
			s.catchUp(st.last[s.topic])
			s.stream(subsCtx, conn)
			if s.ended {
				st.reErrs.add(s.endErr)
			}
		}()
	}
	if !waitDone(ctx, group.done, c.StormTimeout) && ctx.Err() == nil {
		st.err = fmt.Errorf("%d of %d storm subscribers had not caught up within %v of reconnecting", group.left.Load(), len(primed), c.StormTimeout)
	}
	st.endAt = st.r.clock()
	st.to.Store(int64(st.endAt))
	if c.HubPID != 0 && st.hubErr == nil {
		var cpu1 ProcSample
		if cpu1, st.hubErr = ReadProc(c.HubPID); st.hubErr == nil {
			st.hubCPU = cpu1.CPU - cpu0.CPU
		}
	}
}

// control records the delivery to a control-group subscriber of an event
// sent at sent, when the storm was running then. Safe for concurrent use.
func (st *storm) control(sent, now time.Duration) {
	if from := st.from.Load(); from > 0 && int64(sent) >= from && int64(sent) <= st.to.Load() {
		st.ctl.Record(now - sent)
	}
}

// waitDone waits for done, d or ctx; it reports whether done was closed.
func waitDone(ctx context.Context, done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// report returns the storm's result; its goroutines have ended.
func (st *storm) report() *StormReport {
	c := &st.r.cfg
	p := &st.r.pub.storm
	rep := &StormReport{
		Subscribers: c.Storm, Topics: c.StormTopics, Missed: c.StormMissed,
		Behind: c.StormBehind, BehindTopics: c.StormBehindTopics,
		PrimeS: st.primeS.Seconds(), BehindS: st.behindS.Seconds(), MissedS: st.missedS.Seconds(),
		PublishAcked: p.ok.Load(), PublishErrors: p.failed.Load(), PublishErrorKinds: p.errs.list(),
		Connected: st.primeEst.Load(), ConnectErrors: st.primeErrs.list(),
		Reconnected: st.reEst.Load(), ReconnectFailed: st.reFailed.Load(), ReconnectErrors: st.reErrs.list(),
		Duplicated: st.cnt.dup.Load(), OutOfOrder: st.cnt.outOfOrder.Load(),
		Foreign: st.cnt.foreign.Load(), Other: st.cnt.other.Load(),
		Control: st.ctl.Stats(),
	}
	if st.behindS > 0 {
		rep.BehindPerSecond = float64(c.StormBehind) / st.behindS.Seconds()
	}
	if st.err != nil {
		rep.Error = st.err.Error()
	}
	var catch Histogram
	group := st.group.Load()
	for i := range st.subs {
		s := &st.subs[i]
		if len(s.lastID) > 0 && s.trk[0].got.has(0) {
			rep.Primed++
		}
		if s.gap != "" {
			rep.Gaps++
		}
		if group == nil || s.group != group {
			continue // not in the storm
		}
		want := &st.acked[s.topic]
		missing, _ := s.trk[0].got.missingFrom(want)
		rep.Expected += int64(want.len() - 1) // without the marker
		rep.Received += int64(s.trk[0].got.len() - 1)
		rep.Missing += int64(missing)
		if s.caughtAt > 0 {
			rep.CaughtUp++
			catch.Record(s.caughtAt - st.startAt)
		}
	}
	rep.CatchUp = catch.Stats()
	if group != nil {
		rep.StartS = st.startAt.Seconds()
		rep.StormS = (st.endAt - st.startAt).Seconds()
	}
	if c.HubPID != 0 {
		rep.HubCPUS = st.hubCPU.Seconds()
		if st.hubErr != nil {
			rep.HubError = st.hubErr.Error()
		}
	}
	return rep
}
