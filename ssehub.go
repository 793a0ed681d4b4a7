package ssehub

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Event is one update: what a publisher sent plus what the log assigned.
//
// An Event is immutable once appended: the hub shares one *Event between all
// subscribers and goroutines, so nobody may modify it after Log.Append returns.
type Event struct {
	// Pos is the event's position in the log, assigned by Log.Append. It
	// increases strictly in log order and is never reused, also across
	// restarts of a durable log.
	Pos uint64
	// ID is the id sent to clients. Empty on Append means "use FormatID(Pos)".
	ID string
	// Topics are the topics the event belongs to; the first is canonical.
	Topics []string
	// Type is the SSE event type ("" means the default, "message").
	Type string
	// Data is the payload; it may contain any newlines.
	Data string
	// Retry, when positive, is the reconnection time sent with the event.
	Retry time.Duration
	// Private events go only to subscribers authorized for one of their topics.
	Private bool
	// Time is when the log accepted the event (set by Append when zero).
	Time time.Time
	// Meta is what a protocol layer of the hub stores with the event for
	// itself (package streams keeps a Durable Stream's configuration and
	// its writers' sequence numbers there): every log keeps it, no
	// subscriber receives it, and publishers over HTTP cannot set it.
	Meta string
}

// FormatID returns the id the hub generates for the event at position pos:
// its decimal form. Ids made only of ASCII digits are reserved for this; "0"
// names the position before the first event.
func FormatID(pos uint64) string { return strconv.FormatUint(pos, 10) }

// ParseID parses an id made by FormatID. It reports false for any other
// string (a publisher-supplied id, garbage, an empty string, leading zeros).
func ParseID(id string) (uint64, bool) {
	if id == "" || len(id) > 20 || (len(id) > 1 && id[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return 0, false
		}
	}
	pos, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return 0, false
	}
	return pos, true
}

// WireID returns the id to send to clients: ID, or FormatID(Pos) when empty.
func (e *Event) WireID() string {
	if e.ID != "" {
		return e.ID
	}
	return FormatID(e.Pos)
}

// Log stores events in one total order and hands them to readers.
//
// All methods are safe for concurrent use. Implementations live under log/
// and all pass the conformance suite in log/logtest.
type Log interface {
	// Append stores events durably, in the given order, after every event
	// appended before. It sets Pos (and Time when zero) on each event and
	// returns only once all of them are durable (as durable as the engine
	// is); on error none of them is acknowledged. Concurrent appends may be
	// committed together (group commit).
	Append(ctx context.Context, events ...*Event) error

	// Read returns up to limit events with a position greater than after, in
	// log order. It does not wait: it returns an empty slice when there are
	// none yet. Events removed by retention are silently absent; callers
	// compare with Bounds to detect gaps. A stored event that cannot be
	// read back is never returned: Read returns the events before it, or,
	// when it is the first it would return, a *DamagedError naming it.
	Read(ctx context.Context, after uint64, limit int) ([]*Event, error)

	// Tail calls fn with every event after position after, in log order and
	// in batches, as they are appended, until ctx is done (returns ctx.Err()),
	// the log is closed (ErrClosed) or fn returns an error (returned as is).
	// Calls to fn are sequential. A hub runs one Tail for all its subscribers.
	Tail(ctx context.Context, after uint64, fn func([]*Event) error) error

	// Bounds returns the position of the oldest retained event (0 when the
	// log holds none) and the position of the newest event ever appended (0
	// when none). Events between first and last may still be missing from a
	// sparse log; events before first are gone.
	Bounds(ctx context.Context) (first, last uint64, err error)

	// Close releases the log. Pending appends fail with ErrClosed; running
	// Tails return ErrClosed.
	Close() error
}

// Pinger is implemented by logs that talk to an engine over the network:
// Ping reports whether the engine is reachable (used by /readyz).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Errors shared across packages. Wrap them with %w; httpapi maps them to
// HTTP status codes in one table.
var (
	// ErrClosed: the log or hub was closed.
	ErrClosed = errors.New("ssehub: closed")
	// ErrUnavailable: the storage engine cannot be reached right now.
	ErrUnavailable = errors.New("ssehub: storage engine unavailable")
	// ErrTooLarge: an event or request exceeds a configured limit.
	ErrTooLarge = errors.New("ssehub: too large")
	// ErrInvalid: an event is malformed (missing topic, bad id or type, …).
	ErrInvalid = errors.New("ssehub: invalid event")
	// ErrDuplicateID: a publisher-supplied id is already the id of a
	// retained event (see IDIndex).
	ErrDuplicateID = errors.New("ssehub: duplicate event id")
	// ErrDamaged: a stored event cannot be read back (its bytes fail their
	// checksum or do not decode). A *DamagedError wraps it.
	ErrDamaged = errors.New("ssehub: damaged event")
)

// DamagedError reports a stored event that cannot be read back. Log.Read
// and TopicIndex.ReadTopics stop before such an event and return it when
// it is the first thing they meet, so that a reader can skip it (read on
// after Pos) and tell whoever expected it that it is missing. It wraps
// ErrDamaged and the log's own error.
type DamagedError struct {
	Pos uint64 // the position of the damaged event
	Err error  // what the log found wrong
}

// Error names the position and what the log found wrong.
func (e *DamagedError) Error() string {
	return "ssehub: damaged event at position " + FormatID(e.Pos) + ": " + e.Err.Error()
}

// Unwrap returns ErrDamaged and Err.
func (e *DamagedError) Unwrap() []error { return []error{ErrDamaged, e.Err} }

// IDIndex is implemented by logs that can find an event by its wire id when
// that id was supplied by the publisher (not made by FormatID), so clients
// can resume from such ids.
//
// A log that implements IDIndex also keeps publisher-supplied ids unique
// among retained events: Append refuses, atomically with the commit, a
// batch in which an event's ID (when not empty) is the ID of a retained
// event or of another event of the batch, with an error wrapping
// ErrDuplicateID, and stores none of the batch. An id becomes free again
// once retention has removed its event. (An id naming two events would
// make resuming from it ambiguous: a client could silently miss what lies
// between them. Refusing also makes publishing with an id idempotent: a
// publisher retrying after a lost answer learns that its event is in.)
type IDIndex interface {
	// LookupID returns the position of the retained event whose ID is id;
	// found is false when there is none.
	LookupID(ctx context.Context, id string) (pos uint64, found bool, err error)
}

// TopicQuery says which events TopicIndex.ReadTopics returns.
type TopicQuery struct {
	// Topics selects the events that have at least one of these topics
	// (exact strings). Empty selects every event: a plain read of the log,
	// bounded in bytes.
	Topics []string
	// After: only events with a greater position.
	After uint64
	// Until, when not zero: only events at or before this position.
	Until uint64
	// Limit is the most events returned; it must be positive.
	Limit int
	// MaxBytes, when positive, bounds the result in bytes: the read stops
	// after the event that brings the Size of the returned events to
	// MaxBytes or beyond (so one event larger than MaxBytes is still
	// returned alone).
	MaxBytes int
}

// TopicIndex is implemented by logs that keep an index by topic, so that a
// reader of a few topics reads only their events: its cost follows what it
// receives, not the size of the log. The index is maintained in the same
// commit as the events, so it always describes exactly the retained events.
// The hub replays exact-topic subscriptions through it, and uses it with
// empty Topics for reads bounded in bytes.
type TopicIndex interface {
	// ReadTopics returns the retained events q selects, in log order,
	// each once (also an event with several of q.Topics), and through:
	// the position up to which the result is complete — every retained
	// event q selects in (q.After, through] is in events. When the read
	// stopped at q.Limit or q.MaxBytes, through is the last returned
	// event's position; otherwise it is q.Until, or the newest position
	// when the read ran if that is smaller (or q.Until is 0). through is
	// never below q.After. It does not wait. Events removed by retention
	// are silently absent: callers compare with Bounds after the read to
	// detect gaps, as with Read. A stored event that cannot be read back
	// ends the read before it, as with Read: events (possibly none) and a
	// through just below it, or, when through could not advance past
	// q.After, a *DamagedError naming it. Safe for concurrent use.
	ReadTopics(ctx context.Context, q TopicQuery) (events []*Event, through uint64, err error)
}

// Size is the event's size as TopicQuery.MaxBytes counts it: the bytes of
// its id, type, data, meta and topics.
func (e *Event) Size() int {
	n := len(e.ID) + len(e.Type) + len(e.Data) + len(e.Meta)
	for _, t := range e.Topics {
		n += len(t)
	}
	return n
}

// ReservedPrefixes are the topic prefixes of the hub's reserved namespace:
// only the hub publishes there (the Mercure subscription events and the
// hubs' heartbeats); publishers are refused.
var ReservedPrefixes = []string{"/.well-known/mercure/", "/.well-known/ssehub/"}

// Reserved reports whether e is one of the hub's own events: its first
// topic (its canonical topic) is in the reserved namespace. Logs that
// implement ReservedRetention keep such events under a budget of their own,
// so that the hub's bookkeeping never pushes an application event out of
// history.
func (e *Event) Reserved() bool {
	if len(e.Topics) == 0 {
		return false
	}
	for _, p := range ReservedPrefixes {
		if strings.HasPrefix(e.Topics[0], p) {
			return true
		}
	}
	return false
}

// ReservedRetention is implemented by logs that retain reserved events
// (Event.Reserved) apart from application events: their count-based
// retention (each engine's Options.MaxEvents) counts application events
// only, and the newest Options.MaxReserved reserved events are kept on a
// budget of their own, older ones removed even from the middle of the log.
// Bounds' first then speaks of application events: every application event
// at or after it is retained (a reserved event older than first may be
// retained too). Reserved events are retained after the position
// ReservedRemoved returns, and after first.
type ReservedRetention interface {
	// ReservedRemoved returns the position of the newest reserved event
	// retention removed out of order (0: none). Readers that may receive
	// reserved events treat history before it as incomplete. Safe for
	// concurrent use.
	ReservedRemoved(ctx context.Context) (uint64, error)
}

// TopicLocker is implemented by logs that several hubs share (Redis): a
// hub holds a topic's lock while it reads the topic's state, checks a
// write against it and appends the write, so that no other hub's write
// to that topic comes in between (the Durable Streams writes: a closed
// stream, Stream-Seq, producer numbers). A lock whose holder died ends by
// itself after a few seconds.
type TopicLocker interface {
	// LockTopic waits for topic's lock, up to ctx's end or a bound of the
	// log's own, and returns the function that releases it.
	LockTopic(ctx context.Context, topic string) (unlock func(), err error)
}

// PositionJumps is implemented by logs whose positions jump over ranges
// that never held events (boltlog gives positions from the clock after
// each restart), so that the distance between two positions overstates
// how many events lie between them. The hub's replay limit (a cap on the
// events one reconnect replays) counts with it.
type PositionJumps interface {
	// LastN returns the position after which at most n positions that
	// held events lie, up to through inclusive: through-n on a log
	// without jumps. Safe for concurrent use.
	LastN(ctx context.Context, through, n uint64) (uint64, error)
}
