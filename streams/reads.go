package streams

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/topic"
)

// segment is a range of one topic's data events that a stream's reads
// return: a fork reads its source's up to the fork, then its own.
type segment struct {
	topic string
	after uint64 // exclusive
	until uint64 // inclusive; 0: no end
}

// segments returns the ranges a read of the stream at tp goes through, in
// order (their positions increase: a fork is made after its fork point).
func (s *Server) segments(ctx context.Context, tp string, cur *state) ([]segment, error) {
	return s.chain(ctx, tp, cur, 0)
}

func (s *Server) chain(ctx context.Context, tp string, cur *state, depth int) ([]segment, error) {
	own := segment{tp, cur.createPos, cur.end()}
	if cur.from == "" {
		return []segment{own}, nil
	}
	if depth >= maxForkDepth {
		return nil, fmt.Errorf("streams: the chain of forks above %s is more than %d deep or loops", tp, maxForkDepth)
	}
	view := s.store.acquire(cur.from)
	src, err := s.store.sync(ctx, view)
	s.store.release(view)
	if err != nil {
		return nil, err
	}
	up, err := s.chain(ctx, cur.from, &src, depth+1)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, g := range up {
		if g.until == 0 || g.until > cur.fromPos {
			g.until = cur.fromPos
		}
		if g.after < g.until {
			segs = append(segs, g)
		}
	}
	return append(segs, own), nil
}

// chunk is what one read returns.
type chunk struct {
	msgs     [][]byte // the data events' bytes, in order
	next     uint64   // the offset after them
	upToDate bool     // they reach the stream's tail as of the read
}

// readChunk reads the stream's data after position after, up to ReadBytes.
func (s *Server) readChunk(ctx context.Context, tp string, cur *state, after uint64) (chunk, error) {
	segs, err := s.segments(ctx, tp, cur)
	if err != nil {
		return chunk{}, err
	}
	c := chunk{next: max(after, cur.tail)}
	budget := s.cfg.ReadBytes
	complete := true
	var last uint64
	for _, g := range segs {
		from := max(g.after, after)
		if g.until != 0 && from >= g.until {
			continue
		}
		evs, through, err := s.store.log.ReadTopics(ctx, ssehub.TopicQuery{
			Topics: []string{g.topic}, After: from, Until: g.until, Limit: 4096, MaxBytes: budget,
		})
		if err != nil {
			return chunk{}, err
		}
		for _, ev := range evs {
			m, ok := decodeMeta(ev.Meta)
			if !ok || m.Op != opAppend {
				continue
			}
			b := []byte(ev.Data)
			if m.B64 {
				if b, err = base64.StdEncoding.DecodeString(ev.Data); err != nil {
					continue
				}
			}
			c.msgs = append(c.msgs, b)
			last = ev.Pos
			budget -= len(b)
		}
		if len(evs) > 0 && through <= evs[len(evs)-1].Pos && (g.until == 0 || through < g.until) {
			// cut short by the bounds: there may be more
			complete = false
			if last == 0 {
				last = through
			}
			break
		}
		if budget <= 0 {
			complete = false
			break
		}
	}
	if last != 0 {
		c.next = last
	}
	c.upToDate = complete || c.next >= cur.tail
	return c, nil
}

// body is the response body of a chunk in the stream's content type.
func body(ct string, msgs [][]byte) []byte {
	if isJSON(ct) {
		return jsonArray(msgs)
	}
	return bytes.Join(msgs, nil)
}

func jsonArray(msgs [][]byte) []byte {
	n := 2
	for _, m := range msgs {
		n += len(m) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m...)
	}
	return append(b, ']')
}

// head handles HEAD: the stream's metadata.
func (s *Server) head(w http.ResponseWriter, r *http.Request, tp string) {
	_, cur, release, ok := s.open(w, r, tp, false)
	if !ok {
		return
	}
	defer release()
	if !cur.exists {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if cur.softDeleted {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusGone)
		return
	}
	h := w.Header()
	h.Set("Content-Type", cur.contentType)
	h.Set("Cache-Control", "no-store")
	setState(h, &cur)
	if cur.ttl > 0 {
		h.Set("Stream-TTL", strconv.FormatInt(cur.ttl, 10))
	}
	if !cur.expiresAt.IsZero() {
		h.Set("Stream-Expires-At", cur.expiresAt.UTC().Format(time.RFC3339Nano))
	}
	w.WriteHeader(http.StatusOK)
}

// read handles GET: catch-up, long-poll and SSE reads.
func (s *Server) read(w http.ResponseWriter, r *http.Request, tp string) {
	q := r.URL.Query()
	live := q.Get("live")
	if live != "" && live != "long-poll" && live != "sse" {
		fail(w, http.StatusBadRequest, "live must be long-poll or sse (got "+strconv.Quote(live)+"); leave it out for a catch-up read")
		return
	}
	offs, hasOffset := q["offset"]
	if len(offs) > 1 {
		fail(w, http.StatusBadRequest, "give one offset")
		return
	}
	if live != "" && !hasOffset {
		fail(w, http.StatusBadRequest, "a live read needs an offset: -1 for the start, now for the tail, or the Stream-Next-Offset of a previous read")
		return
	}
	st, cur, release, ok := s.openFound(w, r, tp, false)
	if !ok {
		return
	}
	defer release()
	st.touch()
	var after uint64
	now := false
	switch off := q.Get("offset"); {
	case !hasOffset || off == "-1":
	case off == "now":
		now, after = true, cur.tail
	default:
		pos, ok := parseOffset(off)
		if !ok {
			fail(w, http.StatusBadRequest, "offset "+strconv.Quote(off)+" is not an offset of this server: use -1, now, or a Stream-Next-Offset it returned")
			return
		}
		after = pos
	}
	switch live {
	case "sse":
		s.sse(w, r, st, cur, after)
	case "long-poll":
		s.longPoll(w, r, st, cur, after)
	default:
		s.catchUp(w, r, tp, cur, after, now)
	}
}

// cacheControl is the Cache-Control of catch-up and long-poll data.
func (s *Server) cacheControl() string {
	if s.cfg.Anonymous || s.cfg.AnonymousWrites {
		return "public, max-age=60, stale-while-revalidate=300"
	}
	return "private, max-age=60, stale-while-revalidate=300"
}

func (s *Server) catchUp(w http.ResponseWriter, r *http.Request, tp string, cur state, after uint64, now bool) {
	h := w.Header()
	h.Set("Content-Type", cur.contentType)
	if now {
		h.Set("Cache-Control", "no-store")
		h.Set("Stream-Next-Offset", formatOffset(cur.tail))
		h.Set("Stream-Up-To-Date", "true")
		if cur.closed {
			h.Set("Stream-Closed", "true")
		}
		w.WriteHeader(http.StatusOK)
		w.Write(body(cur.contentType, nil))
		return
	}
	c, err := s.readChunk(r.Context(), tp, &cur, after)
	if err != nil {
		s.storageError(w, err)
		return
	}
	closed := cur.closed && c.upToDate
	etag := `"` + strconv.FormatUint(cur.createPos, 36) + ":" + formatOffset(after) + ":" + formatOffset(c.next)
	if closed {
		etag += ":c"
	}
	etag += `"`
	h.Set("ETag", etag)
	h.Set("Cache-Control", s.cacheControl())
	h.Set("Stream-Next-Offset", formatOffset(c.next))
	if c.upToDate {
		h.Set("Stream-Up-To-Date", "true")
	}
	if closed {
		h.Set("Stream-Closed", "true")
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body(cur.contentType, c.msgs))
}

func etagMatch(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimSpace(v)
		if v == etag || v == "*" || strings.TrimPrefix(v, "W/") == etag {
			return true
		}
	}
	return false
}

// cursor is the Stream-Cursor of a live answer: the number of 20-second
// intervals since 2024-10-09T00:00:00Z, always above the client's.
func cursor(client string) string {
	const interval = 20 * time.Second
	epoch := time.Date(2024, 10, 9, 0, 0, 0, 0, time.UTC)
	n := int64(time.Since(epoch) / interval)
	if c, err := strconv.ParseInt(client, 10, 64); err == nil && c >= n {
		n = c + 1 + rand.Int64N(int64(time.Hour/interval))
	}
	return strconv.FormatInt(n, 10)
}

// follow subscribes to the stream's own topic after position after: the
// hub replays what the topic holds after it (through the topic index) and
// then hands over live events, as to any subscriber. A fork's live data is
// its own: appends to its source after the fork are not part of it.
func (s *Server) follow(ctx context.Context, tp string, cur *state, after uint64) (*hub.Subscriber, error) {
	return s.hub.Subscribe(ctx, hub.Request{
		Selectors:   []topic.Selector{topic.CompileExact(tp)},
		LastEventID: ssehub.FormatID(max(after, cur.createPos)), // a fork's own events come after its create
		Events:      true,
	})
}

// live is what one Next of a followed stream brought.
type live struct {
	msgs   [][]byte
	last   uint64 // position of the last data event, or 0
	closed bool   // the stream was closed (after msgs)
	gone   bool   // the stream was deleted, or created anew
}

// collect sorts the events of one Next into data and lifecycle.
func collect(evs []*ssehub.Event) live {
	var l live
	for _, ev := range evs {
		m, ok := decodeMeta(ev.Meta)
		if !ok || l.closed || l.gone {
			continue
		}
		switch m.Op {
		case opAppend:
			b := []byte(ev.Data)
			if m.B64 {
				var err error
				if b, err = base64.StdEncoding.DecodeString(ev.Data); err != nil {
					continue
				}
			}
			l.msgs = append(l.msgs, b)
			l.last = ev.Pos
		case opClose:
			l.closed = true
		case opDelete, opCreate:
			l.gone = true
		}
	}
	return l
}

func (s *Server) longPoll(w http.ResponseWriter, r *http.Request, st *stream, cur state, after uint64) {
	tp := st.topic
	ctx := r.Context()
	h := w.Header()
	eof := func() {
		h.Set("Stream-Next-Offset", formatOffset(max(after, cur.tail)))
		h.Set("Stream-Up-To-Date", "true")
		h.Set("Stream-Closed", "true")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	}
	data := func(msgs [][]byte, next uint64, upToDate, closed bool) {
		h.Set("Content-Type", cur.contentType)
		h.Set("Cache-Control", s.cacheControl())
		h.Set("Stream-Next-Offset", formatOffset(next))
		h.Set("ETag", `"`+strconv.FormatUint(cur.createPos, 36)+":"+formatOffset(after)+":"+formatOffset(next)+`"`)
		if upToDate {
			h.Set("Stream-Up-To-Date", "true")
		}
		if closed {
			h.Set("Stream-Closed", "true")
		} else {
			h.Set("Stream-Cursor", cursor(r.URL.Query().Get("cursor")))
		}
		w.WriteHeader(http.StatusOK)
		w.Write(body(cur.contentType, msgs))
	}
	if cur.closed && after >= cur.tail {
		eof()
		return
	}
	c, err := s.readChunk(ctx, tp, &cur, after)
	if err != nil {
		s.storageError(w, err)
		return
	}
	if len(c.msgs) > 0 {
		data(c.msgs, c.next, c.upToDate, cur.closed && c.upToDate)
		return
	}
	after = max(after, c.next)
	sub, err := s.follow(ctx, tp, &cur, after)
	if err != nil {
		s.storageError(w, err)
		return
	}
	defer sub.Close()
	wait, cancel := context.WithTimeout(ctx, s.cfg.PollTimeout)
	defer cancel()
	for {
		_, err := sub.Next(wait)
		if err != nil {
			if ctx.Err() != nil {
				return // the client went away
			}
			if wait.Err() == nil { // the hub ended the subscription
				h.Set("Retry-After", "1")
				fail(w, http.StatusServiceUnavailable, "the server is shutting down or the reader fell behind; retry from offset "+formatOffset(after))
				return
			}
			h.Set("Stream-Next-Offset", formatOffset(after))
			h.Set("Stream-Up-To-Date", "true")
			h.Set("Stream-Cursor", cursor(r.URL.Query().Get("cursor")))
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		l := collect(sub.Events())
		switch {
		case len(l.msgs) > 0:
			data(l.msgs, l.last, s.reached(ctx, st, l.last), l.closed)
			return
		case l.closed:
			eof()
			return
		case l.gone:
			fail(w, http.StatusNotFound, "the stream at "+tp+" was deleted")
			return
		}
	}
}

// reached reports whether a live reader that got the stream's data up to
// position pos has all of it (the hub may hand a large append over in
// several steps).
func (s *Server) reached(ctx context.Context, st *stream, pos uint64) bool {
	tail, err := s.store.tail(ctx, st)
	return err == nil && pos >= tail
}

// control is the data of an SSE control event.
type control struct {
	StreamNextOffset string `json:"streamNextOffset"`
	StreamCursor     string `json:"streamCursor,omitempty"`
	UpToDate         bool   `json:"upToDate,omitempty"`
	StreamClosed     bool   `json:"streamClosed,omitempty"`
}

// sseReader writes one SSE read.
type sseReader struct {
	s      *Server
	w      http.ResponseWriter
	rc     *http.ResponseController
	ct     string
	cursor string // the last cursor sent (or the client's)
	buf    []byte
	renew  time.Time // when to move the write deadline again
}

// write sends msgs (if any) as a data event and a control event; it
// reports false when the reader is gone.
func (o *sseReader) write(msgs [][]byte, next uint64, upToDate, closed bool) bool {
	o.frame(msgs, next, upToDate, closed)
	return o.send(o.buf) == nil
}

// frame puts msgs (if any) as a data event and a control event in o.buf.
func (o *sseReader) frame(msgs [][]byte, next uint64, upToDate, closed bool) {
	o.buf = o.buf[:0]
	if len(msgs) > 0 {
		var data string
		switch {
		case isJSON(o.ct):
			data = string(jsonLines(msgs))
		case isText(o.ct):
			data = string(bytes.Join(msgs, nil))
		default:
			data = base64.StdEncoding.EncodeToString(bytes.Join(msgs, nil))
		}
		o.buf = appendSSE(o.buf, "data", data)
	}
	ctl := control{StreamNextOffset: formatOffset(next), UpToDate: upToDate}
	if closed {
		ctl.StreamClosed, ctl.UpToDate = true, true
	} else {
		o.cursor = cursor(o.cursor)
		ctl.StreamCursor = o.cursor
	}
	js, _ := json.Marshal(ctl)
	o.buf = appendSSE(o.buf, "control", string(js))
}

func (s *Server) sse(w http.ResponseWriter, r *http.Request, st *stream, cur state, after uint64) {
	tp := st.topic
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if !isText(cur.contentType) {
		h.Set("Stream-Sse-Data-Encoding", "base64")
	}
	s.parker.MayPark(h, r)
	w.WriteHeader(http.StatusOK)
	o := &sseReader{s: s, w: w, rc: http.NewResponseController(w), ct: cur.contentType, cursor: r.URL.Query().Get("cursor")}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.SSELifetime)
	defer cancel()

	// Catch up through the stream's segments (a fork's source first),
	// then follow its own topic.
	for {
		c, err := s.readChunk(ctx, tp, &cur, after)
		if err != nil {
			return
		}
		after = max(after, c.next)
		closed := cur.closed && c.upToDate
		if !o.write(c.msgs, c.next, c.upToDate, closed) || closed {
			return
		}
		if c.upToDate {
			break
		}
	}
	sub, err := s.follow(ctx, tp, &cur, after)
	if err != nil {
		return
	}
	parked := false // once parked, the poller closes sub
	defer func() {
		if !parked {
			sub.Close()
		}
	}()
	mayPark := s.parker != nil // until the poller declines (HTTP/2, closing)
	for {
		if mayPark && sub.Live() {
			// Caught up (the subscription may first have had other
			// streams' events to pass): hand the connection to the poller,
			// which holds it without this goroutine and its buffers until
			// the next token.
			src := &parkedSSE{s: s, view: s.store.acquire(tp), sub: sub, o: o, after: after}
			src.release = takeSlot(r)
			if s.parker.Park(w, r, src, deadline(ctx)) {
				parked = true
				return
			}
			src.release = nil
			s.store.release(src.view)
			untake(r)
			mayPark = false
		}
		next := sub.Next
		if mayPark && !sub.Live() {
			next = sub.Replay // nil, nil once Live: park without waiting for a token
		}
		chunks, err := next(ctx)
		if err != nil {
			return // lifetime over, client gone, or the hub ended it (the client resumes)
		}
		if chunks == nil {
			continue
		}
		if len(sub.Events()) == 0 && len(chunks) > 0 { // the hub's heartbeat
			if o.send([]byte(":\n\n")) != nil {
				return
			}
			continue
		}
		l := collect(sub.Events())
		if l.gone {
			return
		}
		if len(l.msgs) == 0 && !l.closed {
			continue
		}
		if l.last != 0 {
			after = l.last
		}
		if !o.write(l.msgs, after, s.reached(ctx, st, after), l.closed) || l.closed {
			return
		}
	}
}

// send writes b to the reader within WriteTimeout. The deadline is moved
// at most every tenth of WriteTimeout (setting it costs more than the
// write), so a write may get up to 10% less than WriteTimeout.
func (o *sseReader) send(b []byte) error {
	if now := time.Now(); now.After(o.renew) {
		o.rc.SetWriteDeadline(now.Add(o.s.cfg.WriteTimeout))
		o.renew = now.Add(o.s.cfg.WriteTimeout / 10)
	}
	if _, err := o.w.Write(b); err != nil {
		return err
	}
	return o.rc.Flush()
}

// jsonLines is a JSON array of msgs, one message per line, so an SSE data
// event carries it as one data: line each.
func jsonLines(msgs [][]byte) []byte {
	var b []byte
	b = append(b, "[\n"...)
	for i, m := range msgs {
		b = append(b, m...)
		if i < len(msgs)-1 {
			b = append(b, ',')
		}
		b = append(b, '\n')
	}
	return append(b, ']')
}

// appendSSE appends an SSE event as the protocol's examples write it:
// "data:" with no space, so a line that starts with a space keeps it.
// data is split into lines at CR, LF and CRLF.
func appendSSE(b []byte, typ, data string) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, '\n')
	for {
		i := strings.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = appendData(b, data[:i])
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b = appendData(b, data)
	return append(b, '\n')
}

// appendData appends one data line. A line that starts with a space gets
// the separating space, which readers remove, so that it keeps its own.
func appendData(b []byte, line string) []byte {
	b = append(b, "data:"...)
	if strings.HasPrefix(line, " ") {
		b = append(b, ' ')
	}
	b = append(b, line...)
	return append(b, '\n')
}

// deadline is ctx's deadline (an SSE read's lifetime).
func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// parkedSSE is an SSE reader held by the poller: it turns its hub
// subscriber's events into the protocol's data and control events. The
// poller calls TryNext from its writers, one call at a time.
type parkedSSE struct {
	s       *Server
	view    *stream // held until Close
	sub     *hub.Subscriber
	o       *sseReader // its frames and cursor (its writer is not used)
	after   uint64
	ended   bool
	release func() // the connection slot
}

// errStreamEnded ends a parked reader after the stream's closing control
// event, or when the stream was deleted.
var errStreamEnded = errors.New("streams: the stream ended")

var heartbeat = [][]byte{[]byte(":\n\n")}

func (p *parkedSSE) TryNext() ([][]byte, error) {
	if p.ended {
		return nil, errStreamEnded
	}
	chunks, err := p.sub.TryNext()
	if err != nil || chunks == nil {
		return nil, err
	}
	evs := p.sub.Events()
	if len(evs) == 0 {
		return heartbeat, nil
	}
	l := collect(evs)
	if l.gone {
		return nil, errStreamEnded
	}
	if len(l.msgs) == 0 && !l.closed {
		return nil, nil
	}
	if l.last != 0 {
		p.after = l.last
	}
	p.ended = l.closed
	p.o.frame(l.msgs, p.after, p.s.reached(context.Background(), p.view, p.after), l.closed)
	return [][]byte{p.o.buf}, nil
}

func (p *parkedSSE) OnWake(f func()) { p.sub.OnWake(f) }

func (p *parkedSSE) Close() {
	p.sub.Close()
	p.s.store.release(p.view)
	if p.release != nil {
		p.release()
	}
}
