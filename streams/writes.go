package streams

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ssehub/ssehub"
)

// body reads a request body up to MaxBodyBytes; it answers 413 itself.
func (s *Server) body(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			if s.cfg.OnLimit != nil {
				s.cfg.OnLimit("streams_body")
			}
			fail(w, http.StatusRequestEntityTooLarge, "request body exceeds "+strconv.FormatInt(tooBig.Limit, 10)+" bytes; append in smaller pieces")
			return nil, false
		}
		fail(w, http.StatusBadRequest, "cannot read the request body: "+err.Error())
		return nil, false
	}
	return b, true
}

// messages splits a body into the data events it appends: one per JSON
// message (a top-level array is flattened one level), one for any other
// content type.
func messages(ct string, body []byte, create bool) ([][]byte, error) {
	if len(body) == 0 {
		return nil, nil
	}
	if !isJSON(ct) {
		return [][]byte{body}, nil
	}
	trimmed := bytes.TrimSpace(body)
	if !utf8.Valid(trimmed) {
		return nil, errors.New("the body is not valid UTF-8, which JSON must be (RFC 8259)")
	}
	if !json.Valid(trimmed) {
		return nil, errors.New("the body is not valid JSON (this stream's content type is application/json)")
	}
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return [][]byte{trimmed}, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(trimmed, &elems); err != nil {
		return nil, err
	}
	if len(elems) == 0 && !create {
		return nil, errors.New("an empty JSON array appends nothing; send at least one message")
	}
	out := make([][]byte, len(elems))
	for i, e := range elems {
		out[i] = bytes.TrimSpace(e)
	}
	return out, nil
}

// absoluteURL is the URL the request was made to.
func absoluteURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// messages is the function messages with MaxMessages; it answers the
// request itself when the body is refused.
func (s *Server) messages(w http.ResponseWriter, ct string, body []byte, create bool) ([][]byte, bool) {
	msgs, err := messages(ct, body, create)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	if len(msgs) > s.cfg.MaxMessages {
		if s.cfg.OnLimit != nil {
			s.cfg.OnLimit("streams_messages")
		}
		fail(w, http.StatusRequestEntityTooLarge, "the JSON array holds "+strconv.Itoa(len(msgs))+" messages; one append may carry at most "+strconv.Itoa(s.cfg.MaxMessages)+": send them in several appends")
		return nil, false
	}
	return msgs, true
}

// dataEvents makes the data events of messages on topic tp.
func dataEvents(tp, ct string, msgs [][]byte) []*ssehub.Event {
	evs := make([]*ssehub.Event, len(msgs))
	text := isText(ct)
	for i, m := range msgs {
		ev := &ssehub.Event{Topics: []string{tp}, Meta: appendMeta}
		if text && utf8.Valid(m) {
			ev.Data = string(m)
		} else {
			ev.Data, ev.Meta = base64.StdEncoding.EncodeToString(m), appendMetaB64
		}
		evs[i] = ev
	}
	return evs
}

// withWriter puts a writer's numbers on the meta of ev.
func withWriter(ev *ssehub.Event, m meta) {
	base, _ := decodeMeta(ev.Meta)
	m.Op, m.B64 = base.Op, base.B64
	ev.Meta = m.encode()
}

// create handles PUT: create a stream (or a fork), or confirm one that
// exists with the same configuration.
func (s *Server) create(w http.ResponseWriter, r *http.Request, tp string) {
	h := r.Header
	ct := h.Get("Content-Type")
	var ttl int64
	var exp time.Time
	if v := h.Get("Stream-TTL"); v != "" {
		n, ok := parseTTL(v)
		if !ok {
			fail(w, http.StatusBadRequest, "Stream-TTL must be a whole number of seconds in decimal digits without a sign or leading zero (got "+strconv.Quote(v)+")")
			return
		}
		ttl = n
	}
	if v := h.Get("Stream-Expires-At"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			fail(w, http.StatusBadRequest, "Stream-Expires-At must be an RFC 3339 time such as 2030-01-02T15:04:05Z (got "+strconv.Quote(v)+")")
			return
		}
		exp = t
	}
	if h.Get("Stream-TTL") != "" && h.Get("Stream-Expires-At") != "" {
		fail(w, http.StatusBadRequest, "send Stream-TTL or Stream-Expires-At, not both")
		return
	}
	closing := isTrue(h.Get("Stream-Closed"))
	from := h.Get("Stream-Forked-From")
	if from == "" && (h.Get("Stream-Fork-Offset") != "" || h.Get("Stream-Fork-Sub-Offset") != "") {
		fail(w, http.StatusBadRequest, "Stream-Fork-Offset and Stream-Fork-Sub-Offset need Stream-Forked-From")
		return
	}
	body, ok := s.body(w, r)
	if !ok {
		return
	}

	if from == tp {
		fail(w, http.StatusBadRequest, "Stream-Forked-From names the stream itself; fork another stream")
		return
	}
	var src *stream
	if from != "" {
		// Forks change two streams: one fork or delete at a time, and the
		// two streams' write locks in topic order.
		if !s.mayFork(w, r, from) {
			return
		}
		s.forkMu.Lock()
		defer s.forkMu.Unlock()
		src = s.store.acquire(from)
		defer s.store.release(src)
		if from < tp {
			src.writeMu.Lock()
			defer src.writeMu.Unlock()
		}
	}
	st, cur, unlock, ok := s.open(w, r, tp, true)
	if !ok {
		return
	}
	defer unlock()
	if src != nil && from > tp {
		src.writeMu.Lock()
		defer src.writeMu.Unlock()
	}

	m := meta{Op: opCreate, TTL: ttl}
	if !exp.IsZero() {
		m.ExpiresAt = exp.UTC().Format(time.RFC3339Nano)
	}
	var fork *forkPlan
	if src != nil {
		fork, ok = s.planFork(w, r, src, &m, ct)
		if !ok {
			return
		}
		ct = fork.contentType
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	m.ContentType = ct

	if cur.exists {
		if cur.softDeleted {
			fail(w, http.StatusConflict, "a stream was deleted at "+tp+" and forks of it still read its data; its path cannot be used again until they are gone")
			return
		}
		var wantExp time.Time
		if m.ExpiresAt != "" {
			wantExp, _ = time.Parse(time.RFC3339Nano, m.ExpiresAt)
		}
		same := sameType(cur.contentType, ct) && cur.ttl == m.TTL && cur.expiresAt.Equal(wantExp) &&
			cur.closed == closing && cur.from == m.From && (m.From == "" || cur.fromPos == m.FromPos && cur.fromSub == m.FromSub)
		if !same {
			fail(w, http.StatusConflict, "a stream already exists at "+tp+" with another configuration (content type "+cur.contentType+"); use another path or the same settings")
			return
		}
		st.touch()
		wh := w.Header()
		wh.Set("Content-Type", cur.contentType)
		setState(wh, &cur)
		w.WriteHeader(http.StatusOK)
		return
	}

	msgs, ok := s.messages(w, ct, body, true)
	if !ok {
		return
	}
	evs := []*ssehub.Event{{Topics: []string{tp}, Type: typeCreated, Meta: m.encode()}}
	if fork != nil {
		evs = append(evs, &ssehub.Event{Topics: []string{from}, Type: typeForked, Meta: (&meta{Op: opForked, Fork: tp, Of: m.FromCreate}).encode()})
		evs = append(evs, dataEvents(tp, ct, fork.partial)...)
	}
	evs = append(evs, dataEvents(tp, ct, msgs)...)
	if closing {
		evs = append(evs, &ssehub.Event{Topics: []string{tp}, Type: typeClosed, Meta: (&meta{Op: opClose}).encode()})
	}
	if err := s.publish(r.Context(), evs...); err != nil {
		s.storageError(w, err)
		return
	}
	cur, err := s.store.sync(r.Context(), st)
	if err != nil {
		s.storageError(w, err)
		return
	}
	st.touch()
	wh := w.Header()
	wh.Set("Location", absoluteURL(r))
	wh.Set("Content-Type", ct)
	setState(wh, &cur)
	w.WriteHeader(http.StatusCreated)
}

// append handles POST: append data, close, or both.
func (s *Server) append(w http.ResponseWriter, r *http.Request, tp string) {
	h := r.Header
	closing := isTrue(h.Get("Stream-Closed"))
	pid, pe, ps := h.Values("Producer-Id"), h.Get("Producer-Epoch"), h.Get("Producer-Seq")
	hasProducer := len(pid) > 0 || pe != "" || ps != ""
	var wm meta
	if hasProducer {
		if len(pid) == 0 || pe == "" || ps == "" {
			fail(w, http.StatusBadRequest, "Producer-Id, Producer-Epoch and Producer-Seq go together: send all three or none")
			return
		}
		if pid[0] == "" {
			fail(w, http.StatusBadRequest, "Producer-Id must not be empty")
			return
		}
		e, ok1 := parseJSNumber(pe)
		q, ok2 := parseJSNumber(ps)
		if !ok1 || !ok2 {
			fail(w, http.StatusBadRequest, "Producer-Epoch and Producer-Seq must be non-negative integers no larger than 2^53-1 (got "+strconv.Quote(pe)+" and "+strconv.Quote(ps)+")")
			return
		}
		wm.Producer, wm.Epoch, wm.PSeq = pid[0], e, q
	}
	seqs := h.Values("Stream-Seq")
	if len(seqs) > 0 {
		wm.Seq = seqs[0]
	}
	body, ok := s.body(w, r)
	if !ok {
		return
	}
	if len(body) == 0 && !closing {
		fail(w, http.StatusBadRequest, "the body is empty: an append needs data (or Stream-Closed: true to close the stream)")
		return
	}

	st, cur, unlock, ok := s.openFound(w, r, tp, true)
	if !ok {
		return
	}
	defer unlock()
	st.touch()
	wh := w.Header()
	if cur.closed {
		setState(wh, &cur)
		if c := cur.closer; hasProducer && c != nil && c.producer == wm.Producer && c.epoch == wm.Epoch && c.seq == wm.PSeq {
			wh.Set("Producer-Epoch", strconv.FormatInt(wm.Epoch, 10))
			wh.Set("Producer-Seq", strconv.FormatInt(wm.PSeq, 10))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if len(body) == 0 && closing {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fail(w, http.StatusConflict, "the stream is closed: it takes no more data")
		return
	}
	if len(body) > 0 {
		ct := h.Get("Content-Type")
		if ct == "" {
			fail(w, http.StatusBadRequest, "Content-Type is required with data; this stream's is "+cur.contentType)
			return
		}
		if !sameType(ct, cur.contentType) {
			fail(w, http.StatusConflict, "Content-Type "+ct+" does not match the stream's content type "+cur.contentType)
			return
		}
	}
	msgs, ok := s.messages(w, cur.contentType, body, false)
	if !ok {
		return
	}
	if hasProducer && !s.checkProducer(w, &cur, wm) {
		return
	}
	if wm.Seq != "" && cur.lastSeq != "" && wm.Seq <= cur.lastSeq {
		fail(w, http.StatusConflict, "Stream-Seq "+strconv.Quote(wm.Seq)+" is not greater than the last one, "+strconv.Quote(cur.lastSeq)+" (sequence numbers compare as strings, byte by byte)")
		return
	}

	evs := dataEvents(tp, cur.contentType, msgs)
	if closing {
		cm := meta{Op: opClose, Closes: len(evs) > 0}
		evs = append(evs, &ssehub.Event{Topics: []string{tp}, Type: typeClosed, Meta: cm.encode()})
	}
	if hasProducer || wm.Seq != "" {
		withWriter(evs[len(evs)-1], wm)
	}
	if err := s.publish(r.Context(), evs...); err != nil {
		s.storageError(w, err)
		return
	}
	tail := cur.tail
	for _, ev := range evs {
		if ev.Type == "" {
			tail = ev.Pos
		}
	}
	wh.Set("Stream-Next-Offset", formatOffset(tail))
	if closing {
		wh.Set("Stream-Closed", "true")
	}
	if hasProducer {
		wh.Set("Producer-Epoch", strconv.FormatInt(wm.Epoch, 10))
		wh.Set("Producer-Seq", strconv.FormatInt(wm.PSeq, 10))
		if len(msgs) > 0 {
			w.WriteHeader(http.StatusOK) // new data
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkProducer validates an idempotent producer's numbers against the
// stream's state; it answers the request itself unless the append is new.
func (s *Server) checkProducer(w http.ResponseWriter, cur *state, wm meta) bool {
	wh := w.Header()
	p, known := cur.producers[wm.Producer]
	switch {
	case !known:
		if wm.PSeq != 0 {
			wh.Set("Producer-Expected-Seq", "0")
			wh.Set("Producer-Received-Seq", strconv.FormatInt(wm.PSeq, 10))
			fail(w, http.StatusConflict, "producer "+strconv.Quote(wm.Producer)+" is new to this stream: its first Producer-Seq must be 0")
			return false
		}
	case wm.Epoch < p.epoch:
		wh.Set("Producer-Epoch", strconv.FormatInt(p.epoch, 10))
		fail(w, http.StatusForbidden, "Producer-Epoch "+strconv.FormatInt(wm.Epoch, 10)+" is stale: the producer's current epoch is "+strconv.FormatInt(p.epoch, 10))
		return false
	case wm.Epoch > p.epoch:
		if wm.PSeq != 0 {
			fail(w, http.StatusBadRequest, "a new Producer-Epoch must start at Producer-Seq 0")
			return false
		}
	case wm.PSeq <= p.seq:
		setState(wh, cur)
		wh.Set("Producer-Epoch", strconv.FormatInt(p.epoch, 10))
		wh.Set("Producer-Seq", strconv.FormatInt(p.seq, 10))
		w.WriteHeader(http.StatusNoContent)
		return false
	case wm.PSeq > p.seq+1:
		wh.Set("Producer-Expected-Seq", strconv.FormatInt(p.seq+1, 10))
		wh.Set("Producer-Received-Seq", strconv.FormatInt(wm.PSeq, 10))
		fail(w, http.StatusConflict, "Producer-Seq "+strconv.FormatInt(wm.PSeq, 10)+" skips ahead: expected "+strconv.FormatInt(p.seq+1, 10))
		return false
	}
	return true
}

// open returns the stream at tp and its current state; for a write
// (create, append, delete) it first takes the stream's write lock, which
// unlock releases. It answers the request itself when the state cannot be
// read (ok false, nothing held).
func (s *Server) open(w http.ResponseWriter, r *http.Request, tp string, write bool) (st *stream, cur state, unlock func(), ok bool) {
	st = s.store.acquire(tp)
	unlock = func() { s.store.release(st) }
	if write {
		st.writeMu.Lock()
		unlock = func() { st.writeMu.Unlock(); s.store.release(st) }
		if lk, ok := s.store.log.(ssehub.TopicLocker); ok && !s.store.local {
			// Other hubs write to this log: hold the stream's lock from
			// reading its state to appending, so that their writes are
			// checked against this one's and this one against theirs.
			release, err := lk.LockTopic(r.Context(), tp)
			if err != nil {
				unlock()
				s.storageError(w, err)
				return nil, state{}, nil, false
			}
			local := unlock
			unlock = func() { release(); local() }
		}
	}
	cur, err := s.current(r.Context(), st, write)
	if err != nil {
		unlock()
		s.storageError(w, err)
		return nil, state{}, nil, false
	}
	return st, cur, unlock, true
}

// openFound is open for a request that needs the stream to be there: it
// also answers 404 or 410 (see found), and then holds nothing.
func (s *Server) openFound(w http.ResponseWriter, r *http.Request, tp string, write bool) (st *stream, cur state, unlock func(), ok bool) {
	st, cur, unlock, ok = s.open(w, r, tp, write)
	if !ok {
		return nil, state{}, nil, false
	}
	if !s.found(w, &cur, tp) {
		unlock()
		return nil, state{}, nil, false
	}
	return st, cur, unlock, true
}

// found answers 404 or 410 for a stream that is not there to use.
func (s *Server) found(w http.ResponseWriter, cur *state, tp string) bool {
	if !cur.exists {
		fail(w, http.StatusNotFound, "no stream at "+tp+": create it with PUT first")
		return false
	}
	if cur.softDeleted {
		fail(w, http.StatusGone, "the stream at "+tp+" was deleted")
		return false
	}
	return true
}

// delete handles DELETE.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, tp string) {
	s.forkMu.Lock() // a delete may release the stream's source
	defer s.forkMu.Unlock()
	st, cur, unlock, ok := s.openFound(w, r, tp, true)
	if !ok {
		return
	}
	defer unlock()
	if err := s.publish(r.Context(), s.deleteEvents(r.Context(), tp, &cur)...); err != nil {
		s.storageError(w, err)
		return
	}
	if _, err := s.store.sync(r.Context(), st); err != nil {
		s.storageError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteEvents returns the events that delete the stream at tp: its
// delete event (soft while forks of it live), and, when it goes for good
// and is a fork, the release of its source, up the chain of soft-deleted
// sources that this frees.
func (s *Server) deleteEvents(ctx context.Context, tp string, cur *state) []*ssehub.Event {
	evs := []*ssehub.Event{{Topics: []string{tp}, Type: typeDeleted, Meta: (&meta{Op: opDelete, Soft: cur.refs > 0}).encode()}}
	if cur.refs > 0 {
		return evs
	}
	child, from, of := tp, cur.from, cur.fromCreate
	for depth := 0; from != "" && depth < maxForkDepth; depth++ {
		evs = append(evs, &ssehub.Event{Topics: []string{from}, Type: typeRelease, Meta: (&meta{Op: opRelease, Fork: child, Of: of}).encode()})
		view := s.store.acquire(from)
		src, err := s.store.sync(ctx, view)
		s.store.release(view)
		if err != nil || src.createPos != of || !src.softDeleted || src.refs > 1 {
			break
		}
		child, from, of = from, src.from, src.fromCreate
	}
	return evs
}
