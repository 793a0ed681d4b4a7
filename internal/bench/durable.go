package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// chunkEnd ends every chunk appended in ModeDurableStreams. A stream is
// bytes: a server may deliver several appends in one SSE data event, or
// one append over two, so a reader finds the chunks by their end. It is
// not a line end, so that the chunks do not depend on how a server splits
// data into "data:" lines (the conformance suite checks that).
const chunkEnd = ';'

// dsRetry is the wait before a Durable Streams reader reconnects after its
// stream ended: none to speak of, as the protocol's clients do when a
// server ends an SSE response (which it should every minute or so).
const dsRetry = time.Millisecond

// appendChunk appends p as a chunk of size bytes (or its header's size,
// when larger), its end included, to b.
func appendChunk(b []byte, p payload, size int) []byte {
	return append(appendPayload(b, p, size-1), chunkEnd)
}

// SSE event types of a Durable Streams read.
const (
	evDefault = iota // no event field (a "message")
	evData
	evControl
	evOther
)

// dsReader is a subscriber's state in ModeDurableStreams. Owned by the
// subscriber's goroutine; its counts are read after it ended.
type dsReader struct {
	evType int
	ev     []byte // data of the event being read, its lines joined by LF
	nData  int

	// pend holds the stream's bytes not accounted for yet: its first kept
	// bytes are the start of a chunk whose end has not arrived, confirmed
	// by a control event; after them, data received since the last control
	// event, which a reconnection from that event's offset receives again,
	// so it counts only once a control event follows it.
	pend []byte
	kept int

	dataEvents, controlEvents, badControl int64
	closed                                bool // a control event said streamClosed
	badControlMsg                         string
}

// begin starts a new response: data after the last control event is
// dropped, as the read resumes from that event's offset.
func (d *dsReader) begin() {
	d.pend = d.pend[:d.kept]
	d.ev, d.nData, d.evType = d.ev[:0], 0, evDefault
}

// dsLine interprets one line of a Durable Streams SSE response.
func (s *subscriber) dsLine(line []byte) {
	d := s.ds
	if len(line) == 0 {
		s.dsDispatch()
		return
	}
	if line[0] == ':' {
		return
	}
	field, value := sse.Field(line)
	switch string(field) {
	case "event":
		switch string(value) {
		case "data":
			d.evType = evData
		case "control":
			d.evType = evControl
		default:
			d.evType = evOther
		}
	case "data":
		if d.nData > 0 {
			d.ev = append(d.ev, '\n')
		}
		d.ev = append(d.ev, value...)
		d.nData++
	}
}

// dsDispatch ends the event being read: data is kept until the control
// event that follows it; a control event moves the reader's offset
// (kept in lastID) and accounts for the chunks received up to it.
func (s *subscriber) dsDispatch() {
	d := s.ds
	typ, n, ev := d.evType, d.nData, d.ev
	d.evType, d.nData, d.ev = evDefault, 0, d.ev[:0]
	if n == 0 {
		return
	}
	switch typ {
	case evData:
		d.dataEvents++
		d.pend = append(d.pend, ev...)
	case evControl:
		d.controlEvents++
		off, closed, err := parseControl(ev)
		if err != nil {
			d.badControl++
			d.badControlMsg = err.Error()
			return
		}
		s.lastID = append(s.lastID[:0], off...)
		d.closed = d.closed || closed
		s.commit(time.Since(s.r.start))
	default:
		s.cnt.other.Add(1)
	}
}

// commit accounts for the complete chunks received, at now.
func (s *subscriber) commit(now time.Duration) {
	d := s.ds
	end := bytes.LastIndexByte(d.pend, chunkEnd)
	for rest := d.pend[:end+1]; len(rest) > 0; {
		i := bytes.IndexByte(rest, chunkEnd)
		if p, ok := parsePayload(rest[:i]); ok {
			s.deliver(p, now)
		} else {
			s.cnt.other.Add(1)
		}
		rest = rest[i+1:]
	}
	d.kept = copy(d.pend, d.pend[end+1:])
	d.pend = d.pend[:d.kept]
}

// parseControl parses the data of a control event, a JSON object, and
// returns its streamNextOffset (a string, not empty) and streamClosed. The
// offset is valid until b changes. The usual shape is read by scanControl;
// anything else by encoding/json, which also says what is wrong.
func parseControl(b []byte) (offset []byte, closed bool, err error) {
	if off, closed, ok := scanControl(b); ok {
		return off, closed, nil
	}
	var c struct {
		Offset *string `json:"streamNextOffset"`
		Closed bool    `json:"streamClosed"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, false, fmt.Errorf("control event %q: %w", truncate(b, 100), err)
	}
	if c.Offset == nil || *c.Offset == "" {
		return nil, false, fmt.Errorf("control event %q has no streamNextOffset", truncate(b, 100))
	}
	return []byte(*c.Offset), c.Closed, nil
}

// scanControl reads a control event without allocating when it is a flat
// JSON object of ASCII strings without escapes and true, false or null,
// with a streamNextOffset string that is not empty and a streamClosed
// that is not a string (what servers send; encoding/json costs a tenth of
// the generator's CPU). ok is false for anything else.
func scanControl(b []byte) (offset []byte, closed, ok bool) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return nil, false, false
	}
	hasOffset := false
	for i = skipSpace(b, i+1); ; i = skipSpace(b, i+1) {
		key, j, sok := scanString(b, i)
		if !sok {
			return nil, false, false
		}
		if i = skipSpace(b, j); i == len(b) || b[i] != ':' {
			return nil, false, false
		}
		i = skipSpace(b, i+1)
		isOffset, isClosed := string(key) == "streamNextOffset", string(key) == "streamClosed"
		if !isOffset && !isClosed && (bytes.EqualFold(key, []byte("streamNextOffset")) || bytes.EqualFold(key, []byte("streamClosed"))) {
			return nil, false, false // encoding/json matches keys without case
		}
		if v, j, sok := scanString(b, i); sok {
			if isClosed {
				return nil, false, false // encoding/json: a string is no bool
			}
			if isOffset {
				offset, hasOffset = v, true
			}
			i = j
		} else {
			j := i
			for j < len(b) && b[j] >= 'a' && b[j] <= 'z' {
				j++
			}
			lit := string(b[i:j])
			if (lit != "true" && lit != "false" && lit != "null") || (isOffset && lit != "null") {
				return nil, false, false
			}
			if isOffset {
				offset, hasOffset = nil, false
			}
			if isClosed && lit != "null" { // null leaves a bool as it was
				closed = lit == "true"
			}
			i = j
		}
		if i = skipSpace(b, i); i == len(b) {
			return nil, false, false
		}
		if b[i] == '}' {
			return offset, closed, hasOffset && len(offset) > 0 && skipSpace(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return nil, false, false
		}
	}
}

// scanString reads the JSON string at b[i:] when it is ASCII without
// escapes, and returns its contents and the index after it.
func scanString(b []byte, i int) (s []byte, next int, ok bool) {
	if i == len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, i, false
		}
	}
	return nil, i, false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func truncate(b []byte, n int) string { return string(b[:min(len(b), n)]) }

// dsReadTarget returns the request target of an SSE read of the stream at
// path from offset ("" for its start, -1).
func dsReadTarget(path, offset string) string {
	if offset == "" {
		offset = "-1"
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "offset=" + url.QueryEscape(offset) + "&live=sse"
}

// httpConn is one keep-alive HTTP/1.1 client connection whose requests are
// written by hand and whose responses are read by a streamReader: an append
// costs a write and a read, where net/http's client adds hand-offs between
// goroutines and a dozen allocations. A connection idle for longer than
// httpIdleRedial is redialed before it is used, so that a request never
// races the server's keep-alive timeout (Node's is 5 s): an append that
// may have been applied is never sent twice. Not safe for concurrent use:
// one worker owns it; ctx (given to newHTTPConn) bounds its requests.
type httpConn struct {
	r    *runner
	ctx  context.Context
	d    *net.Dialer
	conn net.Conn
	stop func() bool
	sr   streamReader
	req  []byte
	last time.Time
}

const httpIdleRedial = time.Second

func (r *runner) newHTTPConn(ctx context.Context, i int) *httpConn {
	return &httpConn{r: r, ctx: ctx, d: r.dialers[i%len(r.dialers)]}
}

// close closes the connection; the next request dials a new one.
func (h *httpConn) close() {
	if h.conn != nil {
		h.stop()
		h.conn.Close()
		h.conn = nil
	}
}

// do sends a request with a body of type ctype and returns the response's
// status and, when it is not 2xx, the start of its body. An error means
// no complete response was read.
func (h *httpConn) do(method, target, ctype string, body []byte) (int, string, error) {
	c := &h.r.cfg
	if h.conn != nil && time.Since(h.last) > httpIdleRedial {
		h.close()
	}
	if h.conn == nil {
		if err := h.ctx.Err(); err != nil {
			return 0, "", err
		}
		dctx, cancel := context.WithTimeout(h.ctx, c.ConnectTimeout)
		conn, err := h.d.DialContext(dctx, "tcp", h.r.addr)
		cancel()
		if err != nil {
			return 0, "", err
		}
		h.conn = conn
		h.stop = context.AfterFunc(h.ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	}
	b := append(h.req[:0], method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, h.r.host...)
	b = append(b, "\r\nUser-Agent: ssehub-bench\r\nContent-Type: "...)
	b = append(b, ctype...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if c.Token != "" {
		b = append(b, "\r\nAuthorization: Bearer "...)
		b = append(b, c.Token...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	h.req = b
	if err := h.conn.SetDeadline(time.Now().Add(c.PublishTimeout)); err != nil {
		h.close()
		return 0, "", err
	}
	if _, err := h.conn.Write(b); err != nil {
		h.close()
		return 0, "", err
	}
	h.sr.reset(h.conn, 512, 64<<10)
	resp, err := h.sr.readResponse()
	if err != nil {
		h.close()
		return 0, "", err
	}
	// The body: read to its end when chunked or of known length; without
	// a length the connection ends with it, and its start is what was
	// read already.
	msg := resp.body
	keep := !resp.close && (resp.chunked || resp.length >= 0 || resp.status == http.StatusNoContent)
	switch {
	case keep && resp.chunked:
		for {
			_, err := h.sr.line()
			if err == io.EOF {
				break
			}
			if err != nil {
				h.close()
				return 0, "", err
			}
		}
	case keep && resp.length > 0:
		body, err := h.sr.fixedBody(int(resp.length))
		if err != nil {
			h.close()
			return 0, "", err
		}
		msg = truncate(body, 200)
	}
	if !keep || h.sr.w > h.sr.r { // more than the response: out of step
		h.close()
	}
	h.last = time.Now()
	if resp.status/100 == 2 {
		msg = ""
	}
	return resp.status, msg, nil
}

// fixedBody returns the next n bytes of a body that is not chunked, reading
// what is missing (n at most the reader's maximum line).
func (s *streamReader) fixedBody(n int) ([]byte, error) {
	for s.w-s.r < n {
		if s.rerr != nil {
			if s.rerr == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, s.rerr
		}
		if s.w == len(s.buf) && !s.grow() {
			return nil, errTooLarge
		}
		k, err := s.rd.Read(s.buf[s.w:])
		s.w += k
		if err != nil {
			s.rerr = err
		}
	}
	b := s.buf[s.r : s.r+n]
	s.r += n
	return b, nil
}

// dsRun is what the run keeps of ModeDurableStreams beyond the readers.
type dsRun struct {
	created, createFailed atomic.Int64
	createErrs            errCounter
	createS               time.Duration
}

// errStreamExists is answered to a PUT when the stream is there already.
var errStreamExists = errors.New("stream exists already (from an earlier run?): use another topic prefix, or new streams")

// createStreams creates every stream (PUT, StreamContentType), up to the
// configured concurrency at once. A stream that exists already is an
// error: its earlier chunks would count as duplicates.
func (r *runner) createStreams(ctx context.Context) error {
	c := &r.cfg
	ds := &r.ds
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range max(1, min(c.Concurrency, c.Topics)) {
		wg.Go(func() {
			h := r.newHTTPConn(ctx, w)
			defer h.close()
			for {
				t := int(next.Add(1) - 1)
				if t >= c.Topics || ctx.Err() != nil {
					return
				}
				status, msg, err := h.do(http.MethodPut, r.targets[t], StreamContentType, nil)
				switch {
				case err != nil:
				case status == http.StatusCreated:
					ds.created.Add(1)
					continue
				case status == http.StatusOK:
					err = errStreamExists
				default:
					err = fmt.Errorf("status %d: %s", status, oneLine(msg))
				}
				ds.createFailed.Add(1)
				ds.createErrs.add(err)
			}
		})
	}
	wg.Wait()
	ds.createS = time.Since(t0)
	if n := ds.createFailed.Load(); n > 0 {
		return fmt.Errorf("%d of %d streams could not be created: %s", n, c.Topics, ds.createErrs.list()[0].Error)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

// dsAppend appends one chunk to its stream and reports whether the server
// acknowledged it.
func (p *publisher) dsAppend(h *httpConn, pl payload, buf []byte) ([]byte, bool) {
	st := &p.main
	pl.sent = time.Since(p.r.start)
	buf = appendChunk(buf[:0], pl, p.r.cfg.Payload)
	st.sent.Add(1)
	status, msg, err := h.do(http.MethodPost, p.r.targets[pl.topic], StreamContentType, buf)
	if err == nil && status/100 != 2 {
		err = fmt.Errorf("status %d: %s", status, oneLine(msg))
	}
	if err != nil {
		st.fail(err)
		return buf, false
	}
	st.latency.Record(time.Since(p.r.start) - pl.sent)
	st.ok.Add(1)
	return buf, true
}

// streamsReport sums up the streams and their readers; the subscriber
// goroutines have ended.
func (r *runner) streamsReport() *StreamsReport {
	ds := &r.ds
	rep := &StreamsReport{
		Streams: r.cfg.Topics, ContentType: StreamContentType,
		Created: ds.created.Load(), CreateFailed: ds.createFailed.Load(), CreateErrors: ds.createErrs.list(),
		CreateS: ds.createS.Seconds(),
	}
	for i := range r.subs {
		d := r.subs[i].ds
		rep.DataEvents += d.dataEvents
		rep.ControlEvents += d.controlEvents
		rep.BadControl += d.badControl
		rep.Uncommitted += int64(len(d.pend) - d.kept)
		rep.Closed += int64(b2i(d.closed))
		if d.badControlMsg != "" {
			rep.BadControlExample = d.badControlMsg
		}
	}
	return rep
}
