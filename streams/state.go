package streams

import (
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/ssehub/ssehub"
)

// The events of a stream's topic that this package writes carry a meta
// (ssehub.Event.Meta, JSON): what the event does to the stream. Events
// without one (a Mercure publish to the topic) are not part of the stream.
const (
	opCreate  = "create"   // a stream (or a fork) starts; Type typeCreated
	opAppend  = "a"        // data: Data is the appended bytes (base64 with B64)
	opClose   = "close"    // the stream is closed after its last data event; Type typeClosed
	opDelete  = "delete"   // the stream is deleted (soft with forks alive); Type typeDeleted
	opForked  = "forked"   // on a source's topic: a fork of it was made (its reference count +1)
	opRelease = "released" // on a source's topic: a fork of it is gone (-1)
)

// Event types of the lifecycle events, as a Mercure subscriber of the
// stream's topic sees them (an EventSource's onmessage sees only data).
const (
	typeCreated = ssehub.ReservedTypePrefix + "stream.created"
	typeClosed  = ssehub.ReservedTypePrefix + "stream.closed"
	typeDeleted = ssehub.ReservedTypePrefix + "stream.deleted"
	typeForked  = ssehub.ReservedTypePrefix + "stream.forked"
	typeRelease = ssehub.ReservedTypePrefix + "stream.fork-deleted"
)

// meta is an event's Meta, decoded.
type meta struct {
	Op string `json:"op"`

	// create
	ContentType string `json:"ct,omitempty"`
	TTL         int64  `json:"ttl,omitempty"` // seconds; 0: none
	ExpiresAt   string `json:"exp,omitempty"` // RFC 3339; "": none
	From        string `json:"from,omitempty"`
	FromPos     uint64 `json:"fpos,omitempty"`
	FromSub     int64  `json:"fsub,omitempty"` // Stream-Fork-Sub-Offset

	// append (the last data event of a request carries the writer's
	// numbers) and close
	B64      bool   `json:"b64,omitempty"`
	Producer string `json:"pid,omitempty"`
	Epoch    int64  `json:"pe,omitempty"`
	PSeq     int64  `json:"ps,omitempty"`
	Seq      string `json:"seq,omitempty"`
	Closes   bool   `json:"closes,omitempty"` // close only: closed by an append with data

	// delete
	Soft bool `json:"soft,omitempty"`

	// forked, released: the fork, and the incarnation of the source (its
	// create event's position) the fork was made from
	Fork string `json:"fork,omitempty"`
	Of   uint64 `json:"of,omitempty"`
	// create of a fork: the source's incarnation
	FromCreate uint64 `json:"fcp,omitempty"`
}

func (m *meta) encode() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// appendMeta is the Meta of most data events, precomputed.
var appendMeta = (&meta{Op: opAppend}).encode()
var appendMetaB64 = (&meta{Op: opAppend, B64: true}).encode()

func decodeMeta(s string) (meta, bool) {
	var m meta
	switch s {
	case "":
		return m, false
	case appendMeta:
		return meta{Op: opAppend}, true
	case appendMetaB64:
		return meta{Op: opAppend, B64: true}, true
	}
	if json.Unmarshal([]byte(s), &m) != nil || m.Op == "" {
		return m, false
	}
	return m, true
}

// producer is an idempotent producer's state on one stream.
type producer struct {
	epoch, seq int64
}

// state is a stream's state: the fold of its topic's events.
type state struct {
	exists      bool   // created and not fully deleted
	createPos   uint64 // the create event: offsets of this incarnation are after it
	contentType string
	ttl         int64 // seconds; 0: none
	expiresAt   time.Time
	tail        uint64 // position of the last data event (createPos when none)
	closed      bool
	closePos    uint64 // the close event
	closer      *closer
	softDeleted bool
	refs        int // live forks made from this stream
	from        string
	fromPos     uint64
	fromSub     int64
	fromCreate  uint64 // the source's incarnation
	producers   map[string]producer
	lastSeq     string
	lastWrite   time.Time // the newest event of this incarnation (for a sliding TTL)
}

// closer is who closed the stream with an append, so its retry is
// recognised as a duplicate.
type closer struct {
	producer   string
	epoch, seq int64
}

// apply folds one event of the stream's topic into the state.
func (s *state) apply(ev *ssehub.Event) {
	m, ok := decodeMeta(ev.Meta)
	if !ok {
		return
	}
	defer func() {
		if s.exists && ev.Time.After(s.lastWrite) {
			s.lastWrite = ev.Time
		}
	}()
	switch m.Op {
	case opCreate:
		if s.exists && s.softDeleted {
			return // a soft-deleted path cannot be created again
		}
		*s = state{
			exists:      true,
			createPos:   ev.Pos,
			tail:        ev.Pos,
			contentType: m.ContentType,
			ttl:         m.TTL,
			from:        m.From,
			fromPos:     m.FromPos,
			fromSub:     m.FromSub,
			fromCreate:  m.FromCreate,
		}
		if m.From != "" {
			s.tail = m.FromPos // a fork's offsets are its source's up to the fork
		}
		if m.ExpiresAt != "" {
			s.expiresAt, _ = time.Parse(time.RFC3339Nano, m.ExpiresAt)
		}
	case opAppend:
		if !s.exists || s.closed || s.softDeleted {
			return
		}
		s.tail = ev.Pos
		s.writer(m)
	case opClose:
		if !s.exists || s.closed || s.softDeleted {
			return
		}
		s.closed, s.closePos = true, ev.Pos
		if m.Producer != "" {
			s.writer(m)
			s.closer = &closer{m.Producer, m.Epoch, m.PSeq}
		}
	case opDelete:
		if !s.exists || s.softDeleted {
			return
		}
		if s.refs > 0 {
			s.softDeleted = true
			return
		}
		*s = state{}
	case opForked:
		if s.exists && m.Of == s.createPos {
			s.refs++
		}
	case opRelease:
		if !s.exists || m.Of != s.createPos || s.refs == 0 {
			return // another incarnation's fork
		}
		s.refs--
		if s.refs == 0 && s.softDeleted {
			*s = state{}
		}
	}
}

// writer records a writer's numbers carried by an append or close.
func (s *state) writer(m meta) {
	if m.Producer != "" {
		// Copied, not changed in place: copies of the state (handed out
		// by store.sync) share the map.
		p := make(map[string]producer, len(s.producers)+1)
		maps.Copy(p, s.producers)
		p[m.Producer] = producer{m.Epoch, m.PSeq}
		s.producers = p
	}
	if m.Seq != "" {
		s.lastSeq = m.Seq
	}
}

// end is the position reads of this incarnation stop at: the close event,
// or 0 (no end).
func (s *state) end() uint64 {
	if s.closed {
		return s.closePos
	}
	return 0
}

// Offsets are log positions, zero-padded to 20 decimal digits so that they
// sort as strings: the offset after the data event with id 1764690000000123
// is 00001764690000000123. -1 and now are the protocol's sentinels.
const offsetWidth = 20

func formatOffset(pos uint64) string {
	s := strconv.FormatUint(pos, 10)
	if len(s) >= offsetWidth {
		return s
	}
	var b [offsetWidth]byte
	n := offsetWidth - len(s)
	for i := range n {
		b[i] = '0'
	}
	copy(b[n:], s)
	return string(b[:])
}

// parseOffset parses an offset made by formatOffset. Any offset made of
// zeros (and underscores, as other servers write theirs) is the start.
func parseOffset(s string) (uint64, bool) {
	if s != "" && strings.Trim(s, "0_") == "" {
		return 0, true
	}
	if len(s) != offsetWidth || !digits(s) {
		return 0, false
	}
	pos, err := strconv.ParseUint(s, 10, 64)
	return pos, err == nil
}
