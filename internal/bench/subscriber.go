package bench

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// deliveries counts what a group of subscribers received; shared by their
// goroutines.
type deliveries struct {
	unique     atomic.Int64 // first deliveries of our events
	dup        atomic.Int64 // deliveries of an event already received
	outOfOrder atomic.Int64 // first deliveries after a later event of their topic
	foreign    atomic.Int64 // our events of a topic the subscriber is not on
	other      atomic.Int64 // events that are not ours (other types or data)
	last       atomic.Int64 // run clock at the latest unique delivery
	latency    Histogram    // end-to-end latency of first deliveries
}

// subscriber is one subscriber connection and what it received. Its
// fields are owned by its goroutine while it runs and read by the runner
// after it ended.
type subscriber struct {
	r     *runner
	idx   int
	topic int // index of its topic; -1 when subscribed to all
	phase byte
	cnt   *deliveries
	trk   []topicTrack // one per topic it is on (all: indexed by topic)

	control     bool // a main subscriber while a storm runs: its latencies count
	established bool
	estAt       time.Duration // run clock when established
	ended       bool          // the stream ended before the run closed it
	endErr      error         // why

	keepID bool          // keep the last event id (resume, storm, reconnect)
	lastID []byte        // the last event id received
	n      int64         // unique deliveries
	retry  time.Duration // the stream's "retry:" field, 0 when none

	reconnects    int           // accepted reconnections (Config.Reconnect)
	reconnectedAt time.Duration // run clock at the latest one's response header

	// Catch-up (storm, reconnect): when catching, the delivery of an event
	// with sequence number catchSeq or later (of its topic, in order) ends
	// the catch-up at caughtAt and tells group.
	catching bool
	catchSeq int
	caughtAt time.Duration // run clock; 0 before the first catch-up
	group    *catchGroup

	// Resume scenario only.
	want    int64         // close done after this many unique deliveries
	done    chan struct{} // closed at the want-th unique delivery
	doneAt  time.Duration // run clock when done was closed
	firstAt time.Duration // run clock at the first unique delivery (when done is set)
	gap     string        // Ssehub-Gap header or gap event seen

	// ds is the reader's state in ModeDurableStreams, nil otherwise.
	ds *dsReader

	// Parser state of the event being read.
	sr       streamReader
	p        payload
	pOK      bool
	nData    int
	otherTyp bool
	gapTyp   bool
	id       []byte
	idSet    bool
}

// dial connects, sends the request and reads the response header. The
// deadline covers all three. In ModeDurableStreams lastEventID is the
// offset to read from ("" for the stream's start), sent in the query.
func (s *subscriber) dial(ctx context.Context, target, lastEventID string) (net.Conn, error) {
	r := s.r
	cctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	if s.ds != nil {
		target, lastEventID = dsReadTarget(target, lastEventID), ""
	}
	d := r.dialers[s.idx%len(r.dialers)]
	conn, err := d.DialContext(cctx, "tcp", r.addr)
	if err != nil {
		return nil, err
	}
	deadline, _ := cctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(cctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var req []byte
	req = append(req, "GET "...)
	req = append(req, target...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, r.host...)
	req = append(req, "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: ssehub-bench\r\n"...)
	if r.cfg.SubscriberToken != "" {
		req = append(req, "Authorization: Bearer "...)
		req = append(req, r.cfg.SubscriberToken...)
		req = append(req, "\r\n"...)
	}
	if lastEventID != "" {
		req = append(req, "Last-Event-ID: "...)
		req = append(req, lastEventID...)
		req = append(req, "\r\n"...)
	}
	req = append(req, "\r\n"...)
	if _, err := conn.Write(req); err != nil {
		conn.Close()
		return nil, err
	}
	s.sr.reset(conn, r.cfg.ReadBuffer, r.cfg.MaxLine)
	resp, err := s.sr.readResponse()
	if err != nil {
		conn.Close()
		if cctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("no response header within %v", r.cfg.ConnectTimeout)
		}
		return nil, err
	}
	if resp.status != 200 {
		conn.Close()
		return nil, fmt.Errorf("status %d: %s", resp.status, oneLine(resp.body))
	}
	if mt, _, err := mime.ParseMediaType(resp.contentType); err != nil || mt != "text/event-stream" {
		conn.Close()
		return nil, fmt.Errorf("content type %q, want text/event-stream", resp.contentType)
	}
	if resp.gap != "" {
		s.gap = resp.gap
	}
	if !stop() {
		// The connect timeout expired just now.
		conn.Close()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("no response header within %v", r.cfg.ConnectTimeout)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// oneLine shortens a response body for an error message.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// stream reads the connection's events until it ends or ctx is done; conn
// is closed on return.
func (s *subscriber) stream(ctx context.Context, conn net.Conn) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	s.nData, s.pOK, s.otherTyp, s.gapTyp, s.idSet = 0, false, false, false, false
	if s.ds != nil {
		s.ds.begin()
	}
	for {
		line, err := s.sr.line()
		if err != nil {
			if ctx.Err() == nil {
				s.ended = true
				s.endErr = err
			}
			return
		}
		if s.ds != nil {
			s.dsLine(line)
		} else {
			s.line(line)
		}
	}
}

// line interprets one line of the event stream.
func (s *subscriber) line(line []byte) {
	if len(line) == 0 {
		s.dispatch()
		return
	}
	if line[0] == ':' {
		return
	}
	field, value := sse.Field(line)
	switch string(field) {
	case "data":
		if s.nData == 0 {
			s.p, s.pOK = parsePayload(value)
		}
		s.nData++
	case "event":
		s.otherTyp = len(value) > 0 && string(value) != "message"
		s.gapTyp = string(value) == "ssehub.gap"
	case "retry":
		if retry, ok := sse.ParseRetry(value); ok {
			s.retry = retry
		}
	case "id":
		if s.keepID && bytes.IndexByte(value, 0) < 0 {
			s.id = append(s.id[:0], value...)
			s.idSet = true
		}
	}
}

// dispatch ends the event being read.
func (s *subscriber) dispatch() {
	if s.idSet {
		s.lastID = append(s.lastID[:0], s.id...)
		s.idSet = false
	}
	nData, pOK, otherTyp, gapTyp := s.nData, s.pOK, s.otherTyp, s.gapTyp
	s.nData, s.pOK, s.otherTyp, s.gapTyp = 0, false, false, false
	if nData == 0 {
		return
	}
	if gapTyp {
		s.gap = "event"
	}
	if otherTyp || !pOK || nData > 1 {
		s.cnt.other.Add(1)
		return
	}
	s.deliver(s.p, time.Since(s.r.start))
}

// deliver accounts for one of our events (or chunks) received at now.
func (s *subscriber) deliver(p payload, now time.Duration) {
	if p.phase != s.phase {
		s.cnt.other.Add(1)
		return
	}
	var t *topicTrack
	switch {
	case s.topic < 0 && p.topic < len(s.trk):
		t = &s.trk[p.topic]
	case s.topic >= 0 && p.topic == s.topic:
		t = &s.trk[0]
	}
	if t == nil {
		s.cnt.foreign.Add(1)
		return
	}
	dup, ooo := t.receive(p.seq)
	if dup {
		s.cnt.dup.Add(1)
		return
	}
	if ooo {
		s.cnt.outOfOrder.Add(1)
	}
	s.cnt.latency.Record(now - p.sent)
	if s.control {
		s.r.storm.control(p.sent, now)
	}
	s.cnt.last.Store(int64(now))
	s.cnt.unique.Add(1)
	s.n++
	if s.catching && p.seq >= s.catchSeq {
		s.caughtUp(now)
	}
	if s.done != nil {
		if s.firstAt == 0 {
			s.firstAt = now
		}
		if s.n == s.want {
			s.doneAt = now
			close(s.done)
		}
	}
}

// catchUp starts a catch-up to sequence number seq of the subscriber's
// topic (none when seq < 0: it has caught up at once).
func (s *subscriber) catchUp(seq int) {
	s.catching, s.catchSeq = true, seq
	if seq < 0 || s.trk[0].got.has(seq) {
		s.caughtUp(s.r.clock())
	}
}

func (s *subscriber) caughtUp(now time.Duration) {
	s.catching = false
	s.caughtAt = now
	if s.group != nil {
		s.group.one()
	}
}

// catchGroup is closed when its last member caught up. Safe for concurrent
// use.
type catchGroup struct {
	left atomic.Int64
	done chan struct{}
}

func newCatchGroup(n int) *catchGroup {
	g := &catchGroup{done: make(chan struct{})}
	g.left.Store(int64(n))
	if n == 0 {
		close(g.done)
	}
	return g
}

func (g *catchGroup) one() {
	if g.left.Add(-1) == 0 {
		close(g.done)
	}
}
