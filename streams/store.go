package streams

import (
	"context"
	"sync"
	"time"

	"github.com/ssehub/ssehub"
)

// stream is this hub's view of one stream's topic: its state, folded
// from the topic's events up to applied.
//
// Lock order: writeMu before mu. mu is held while the state is brought up
// to date (one read of the topic's index); writeMu while a write is
// validated and appended, so that the writes of one hub to one stream
// are checked against the state they produce, one after the other.
type stream struct {
	topic   string
	writeMu sync.Mutex

	mu         sync.Mutex
	st         state
	applied    uint64    // the topic's events up to here are in st
	loaded     bool      // with a local log: st was read from the log once, through applied
	lastAccess time.Time // for a sliding TTL: the last read or write on this hub, or the newest event's time
	createdPos uint64    // the incarnation lastAccess belongs to
	users      int       // guarded by store.mu: requests holding the view (acquire..release)
}

// store holds the streams this hub has seen.
type store struct {
	log ssehub.TopicIndex
	// local: this process is the log's only writer (bbolt, memory), so
	// a stream's state, once read, is kept up to date by this hub's own
	// writes (applyOwn) without reading the log again. With a shared log
	// (Redis, NATS) every request reads what other hubs appended.
	local bool

	max     int // most streams kept in streams
	mu      sync.Mutex
	streams map[string]*stream
}

func newStore(l ssehub.TopicIndex, max int) *store {
	_, shared := l.(ssehub.Pinger) // the logs on a server are shared
	return &store{log: l, local: !shared, max: max, streams: map[string]*stream{}}
}

// applyOwn folds events this hub has just appended into the states of the
// streams they belong to, with a local log. A stream whose state was not
// read yet reads them from the log when it is; one read before they were
// committed gets them here. Writes to one stream are serialized (writeMu),
// and the only events one stream's writer appends to another stream (a
// fork's reference on its source) commute with that stream's own.
func (s *store) applyOwn(evs []*ssehub.Event) {
	if !s.local {
		return
	}
	for _, ev := range evs {
		s.mu.Lock()
		st := s.streams[ev.Topics[0]]
		s.mu.Unlock() // a view evicted meanwhile is read from the log again
		if st == nil {
			continue
		}
		st.mu.Lock()
		if st.loaded && ev.Pos > st.applied {
			st.st.apply(ev)
		}
		st.mu.Unlock()
	}
}

// acquire returns the view of a topic's stream, creating it when needed;
// the caller releases it when done. When the store holds max streams, it
// first forgets some that no request holds: their state is read from the
// log again when they are next used.
func (s *store) acquire(topic string) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[topic]
	if st == nil {
		if len(s.streams) >= s.max {
			s.evict(max(1, s.max/100))
		}
		st = &stream{topic: topic}
		s.streams[topic] = st
	}
	st.users++
	return st
}

// release gives back a view acquire returned.
func (s *store) release(st *stream) {
	s.mu.Lock()
	st.users--
	s.mu.Unlock()
}

// evict forgets up to n streams that no request holds (map order is
// random enough to spread evictions), so that one stream never has two
// views (and two write locks). Called with s.mu held.
func (s *store) evict(n int) {
	for t, st := range s.streams {
		if n == 0 {
			return
		}
		if st.users == 0 {
			delete(s.streams, t)
			n--
		}
	}
}

// sync brings st's state up to date with the log and returns a copy.
// Reads of the topic's index are complete through a position (see
// ssehub.TopicIndex), so applied never skips an event.
func (s *store) sync(ctx context.Context, st *stream) (state, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for !st.loaded {
		evs, through, err := s.log.ReadTopics(ctx, ssehub.TopicQuery{
			Topics: []string{st.topic}, After: st.applied, Limit: 4096, MaxBytes: 1 << 20,
		})
		if err != nil {
			return state{}, err
		}
		for _, ev := range evs {
			st.st.apply(ev)
			if st.createdPos == st.st.createPos && ev.Time.After(st.lastAccess) {
				st.lastAccess = ev.Time // a write, also another hub's, counts for the TTL
			}
		}
		st.applied = max(st.applied, through)
		if len(evs) == 0 || through > lastPos(evs) {
			st.loaded = s.local // complete: the read was not cut short by its bounds
			break
		}
	}
	if st.createdPos != st.st.createPos {
		// A new incarnation (or the first read after a start): its TTL
		// counts from its newest write, which sync has seen.
		st.createdPos, st.lastAccess = st.st.createPos, st.st.lastWrite
	}
	return st.st, nil // a copy; its producers map is never modified in place
}

// tail returns the position of the stream's last data event: with a
// local log and the state read, without reading the log again; otherwise
// as sync does. Live readers ask it for every delivery.
func (s *store) tail(ctx context.Context, st *stream) (uint64, error) {
	if s.local {
		st.mu.Lock()
		loaded, tail := st.loaded, st.st.tail
		st.mu.Unlock()
		if loaded {
			return tail, nil
		}
	}
	cur, err := s.sync(ctx, st)
	return cur.tail, err
}

// touch records a read or write for the sliding TTL.
func (st *stream) touch() {
	st.mu.Lock()
	st.lastAccess = time.Now()
	st.mu.Unlock()
}

// expired reports whether the stream's TTL or expiry time has passed.
func (st *stream) expired(s *state, now time.Time) bool {
	if !s.exists || s.softDeleted {
		return false // a soft-deleted stream is gone already
	}
	if !s.expiresAt.IsZero() && !now.Before(s.expiresAt) {
		return true
	}
	if s.ttl > 0 {
		st.mu.Lock()
		last := st.lastAccess
		st.mu.Unlock()
		return now.Sub(last) >= time.Duration(s.ttl)*time.Second
	}
	return false
}

func lastPos(evs []*ssehub.Event) uint64 { return evs[len(evs)-1].Pos }
