package streams

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// forkPlan is what creating a fork takes from its source.
type forkPlan struct {
	contentType string
	partial     [][]byte // with a sub-offset: the bytes of the source's next data event that the fork inherits, as its own first data
}

// planFork checks a fork's headers against its source and fills in the
// create meta m (source, fork point, inherited TTL or expiry). It answers
// the request itself when the fork cannot be made.
func (s *Server) planFork(w http.ResponseWriter, r *http.Request, view *stream, m *meta, ct string) (*forkPlan, bool) {
	from := view.topic
	src, err := s.current(r.Context(), view, true)
	if err != nil {
		s.storageError(w, err)
		return nil, false
	}
	if !src.exists {
		fail(w, http.StatusNotFound, "Stream-Forked-From: no stream at "+from)
		return nil, false
	}
	if src.softDeleted {
		fail(w, http.StatusConflict, "Stream-Forked-From: the stream at "+from+" was deleted; it cannot be forked")
		return nil, false
	}
	if ct != "" && !sameType(ct, src.contentType) {
		fail(w, http.StatusConflict, "a fork has its source's content type, "+src.contentType+" (got "+ct+"); leave Content-Type out")
		return nil, false
	}
	pos := src.tail
	if v := r.Header.Get("Stream-Fork-Offset"); v != "" && v != "now" {
		p, ok := parseOffset(v)
		if !ok && v != "-1" {
			fail(w, http.StatusBadRequest, "Stream-Fork-Offset "+strconv.Quote(v)+" is not an offset of this server: use a Stream-Next-Offset it returned")
			return nil, false
		}
		if v == "-1" {
			p = src.createPos
			if src.from != "" {
				p = 0
			}
		}
		if p > src.tail {
			fail(w, http.StatusBadRequest, "Stream-Fork-Offset "+v+" is beyond the source's tail, "+formatOffset(src.tail))
			return nil, false
		}
		pos = p
	}
	plan := &forkPlan{contentType: src.contentType}
	if v := r.Header.Get("Stream-Fork-Sub-Offset"); v != "" && v != "0" {
		n, ok := parseTTL(v)
		if !ok {
			fail(w, http.StatusBadRequest, "Stream-Fork-Sub-Offset must be a non-negative integer (got "+strconv.Quote(v)+")")
			return nil, false
		}
		c, err := s.readChunk(r.Context(), from, &src, pos)
		if err != nil {
			s.storageError(w, err)
			return nil, false
		}
		m.FromSub = n
		if isJSON(src.contentType) {
			if n > int64(len(c.msgs)) {
				fail(w, http.StatusBadRequest, "Stream-Fork-Sub-Offset "+v+" is past the source's data")
				return nil, false
			}
			plan.partial = c.msgs[:n]
		} else {
			if len(c.msgs) == 0 || n > int64(len(c.msgs[0])) {
				fail(w, http.StatusBadRequest, "Stream-Fork-Sub-Offset "+v+" is past the next data boundary of the source")
				return nil, false
			}
			plan.partial = [][]byte{c.msgs[0][:n]}
		}
	}
	if depth, err := s.forkDepth(r.Context(), &src); err != nil || depth >= maxForkDepth {
		fail(w, http.StatusBadRequest, "Stream-Forked-From: "+from+" is itself a fork "+strconv.Itoa(maxForkDepth)+" levels deep (or its chain is broken); fork a stream nearer the root")
		return nil, false
	}
	m.From, m.FromPos, m.FromCreate = from, pos, src.createPos
	// TTL and expiry: the fork's own when it asks; else its source's.
	if m.TTL == 0 && m.ExpiresAt == "" {
		m.TTL = src.ttl
		if !src.expiresAt.IsZero() {
			m.ExpiresAt = src.expiresAt.UTC().Format(time.RFC3339Nano)
		}
	}
	return plan, true
}

// maxForkDepth bounds chains of forks of forks: a read of a fork reads
// every stream up its chain.
const maxForkDepth = 32

// forkDepth counts the forks up from a stream to its root.
func (s *Server) forkDepth(ctx context.Context, cur *state) (int, error) {
	depth := 0
	for c := *cur; c.from != ""; depth++ {
		if depth >= maxForkDepth {
			return depth, nil
		}
		view := s.store.acquire(c.from)
		next, err := s.store.sync(ctx, view)
		s.store.release(view)
		if err != nil {
			return depth, err
		}
		c = next
	}
	return depth, nil
}

// mayFork checks that the writer may read the stream it forks: its token's
// publish or subscribe selectors must match the source's path too
// (a fork reads its source's data).
func (s *Server) mayFork(w http.ResponseWriter, r *http.Request, from string) bool {
	if s.cfg.AnonymousWrites {
		return true
	}
	c := claimsOf(r)
	if c != nil && (c.CanPublish([]string{from}, s.sels) == nil || c.CanReceive([]string{from})) {
		return true
	}
	fail(w, http.StatusForbidden, "auth: forking "+from+" reads it: the token's mercure.publish or mercure.subscribe claim must match "+from+" too")
	return false
}
