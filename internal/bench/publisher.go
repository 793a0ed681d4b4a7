package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// publisher sends events over a pool of keep-alive connections.
type publisher struct {
	r      *runner
	client *http.Client
	tr     *http.Transport

	// acked[t] holds the sequence numbers acknowledged on topic t; written
	// only by the worker that owns t, read once the workers are done.
	acked []seqSet
	// unacked[t] counts the publishes sent to topic t in the publish phase
	// that failed (they may have been applied all the same); written by
	// the worker that owns t, read once the workers are done.
	unacked []int
	// last[t] is the highest sequence number acknowledged on topic t (-1
	// before the first); safe for concurrent use.
	last []atomic.Int64

	main   pubStats // the publish phase
	resume pubStats // the resume scenario
	storm  pubStats // the storm's markers, behind and missed events
}

// pubStats counts the publishes of one phase. Safe for concurrent use.
type pubStats struct {
	scheduled atomic.Int64 // events the schedule called for
	sent      atomic.Int64 // requests sent
	ok        atomic.Int64 // requests answered 2xx
	failed    atomic.Int64 // requests that failed or were answered otherwise
	dropped   atomic.Int64 // scheduled events not sent before the phase ended
	latency   Histogram
	errs      errCounter
}

func (st *pubStats) fail(err error) {
	st.failed.Add(1)
	st.errs.add(err)
}

func newPublisher(r *runner) *publisher {
	c := &r.cfg
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: c.ConnectTimeout}).DialContext,
		MaxIdleConns:        c.Concurrency,
		MaxIdleConnsPerHost: c.Concurrency,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	p := &publisher{
		r:       r,
		tr:      tr,
		client:  &http.Client{Transport: tr, Timeout: c.PublishTimeout},
		acked:   make([]seqSet, c.Topics),
		unacked: make([]int, c.Topics),
		last:    make([]atomic.Int64, c.Topics),
	}
	for t := range p.last {
		p.last[t].Store(-1)
	}
	return p
}

// close releases the idle connections.
func (p *publisher) close() { p.tr.CloseIdleConnections() }

// publish sends one event and reports whether it was acknowledged.
func (p *publisher) publish(ctx context.Context, st *pubStats, pl payload, topic string, buf []byte) ([]byte, bool) {
	c := &p.r.cfg
	pl.sent = time.Since(p.r.start)
	buf = appendPayload(buf[:0], pl, c.Payload)
	var body, ctype string
	if c.PublishFormat == FormatForm {
		body = "topic=" + url.QueryEscape(topic) + "&data=" + url.QueryEscape(string(buf))
		ctype = "application/x-www-form-urlencoded"
	} else {
		body = string(buf)
		ctype = "text/plain; charset=utf-8"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.publishURL(topic), strings.NewReader(body))
	if err != nil {
		st.fail(err)
		return buf, false
	}
	req.Header.Set("Content-Type", ctype)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	st.sent.Add(1)
	resp, err := p.client.Do(req)
	if err != nil {
		st.fail(err)
		return buf, false
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		st.fail(fmt.Errorf("status %d: %s", resp.StatusCode, oneLine(string(msg))))
		return buf, false
	}
	st.latency.Record(time.Since(p.r.start) - pl.sent)
	st.ok.Add(1)
	return buf, true
}

// job is one scheduled publish of the main phase.
type job struct{ topic, seq int }

// runMain publishes at the configured rate, round-robin over the topics,
// the events due in the configured duration. Topic t is owned by worker t
// mod workers, which sends its events one after the other. When the hub
// answers too slowly to keep the rate, the schedule waits for the workers
// and catches up later; the phase ends at the latest after the duration plus
// the publish timeout, and the events not sent by then count as dropped.
// It returns once every worker is done.
func (p *publisher) runMain(ctx context.Context) {
	c := &p.r.cfg
	workers := max(1, min(c.Concurrency, c.Topics))
	phaseCtx, cancel := context.WithTimeout(ctx, c.Duration+c.PublishTimeout)
	defer cancel()
	chans := make([]chan job, workers)
	var wg sync.WaitGroup
	for w := range chans {
		chans[w] = make(chan job, 16)
		wg.Add(1)
		go func(ch chan job) {
			defer wg.Done()
			var buf []byte
			var hc *httpConn // appends in ModeDurableStreams
			if c.Mode == ModeDurableStreams {
				hc = p.r.newHTTPConn(phaseCtx, w)
				defer hc.close()
			}
			for j := range ch {
				if phaseCtx.Err() != nil {
					p.main.dropped.Add(1)
					continue
				}
				pl := payload{phase: phaseMain, topic: j.topic, seq: j.seq}
				var ok bool
				if hc != nil {
					buf, ok = p.dsAppend(hc, pl, buf)
				} else {
					buf, ok = p.publish(phaseCtx, &p.main, pl, c.topicName(j.topic), buf)
				}
				if ok {
					p.acked[j.topic].add(j.seq)
					p.last[j.topic].Store(int64(j.seq))
				} else {
					p.unacked[j.topic]++
				}
			}
		}(chans[w])
	}
	defer wg.Wait()
	defer func() {
		for _, ch := range chans {
			close(ch)
		}
	}()

	start := time.Now()
	tick := time.NewTimer(0)
	defer tick.Stop()
	next := make([]int, c.Topics)
	for k := 0; ; k++ {
		due := time.Duration(float64(k) / c.Rate * float64(time.Second))
		if due >= c.Duration {
			return
		}
		if wait := due - time.Since(start); wait > 0 {
			tick.Reset(wait)
			select {
			case <-tick.C:
			case <-phaseCtx.Done():
				return
			}
		}
		t := k % c.Topics
		j := job{topic: t, seq: next[t]}
		next[t]++
		p.main.scheduled.Add(1)
		select {
		case chans[t%workers] <- j:
		case <-phaseCtx.Done():
			p.main.dropped.Add(1)
			return
		}
	}
}

// burst publishes the sequence numbers from..to (inclusive) with phase
// phaseResume on one topic, up to the configured concurrency at once, in no
// particular order, and returns the acknowledged ones.
func (p *publisher) burst(ctx context.Context, topic string, from, to int) *seqSet {
	c := &p.r.cfg
	var (
		mu    sync.Mutex
		acked seqSet
		wg    sync.WaitGroup
		next  atomic.Int64
	)
	next.Store(int64(from))
	for range max(1, min(c.Concurrency, to-from+1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for ctx.Err() == nil {
				seq := int(next.Add(1) - 1)
				if seq > to {
					return
				}
				var ok bool
				buf, ok = p.publish(ctx, &p.resume, payload{phase: phaseResume, seq: seq}, topic, buf)
				if ok {
					mu.Lock()
					acked.add(seq)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return &acked
}
