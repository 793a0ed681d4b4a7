package eventlog

import (
	"slices"

	"github.com/ssehub/ssehub"
)

// TopicHash is the stable 64-bit hash (FNV-1a) under which the engine logs
// index a topic. It never changes between versions: it is part of what the
// logs store. Two topics may share a hash; readers check the topics of
// what the index names (Collector does), so a collision costs a read, not
// a wrong delivery.
func TopicHash(topic string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(topic); i++ {
		h ^= uint64(topic[i])
		h *= 1099511628211
	}
	return h
}

// Collector builds the answer to an ssehub.TopicQuery from candidate events
// offered in increasing position order (duplicates allowed: an event found
// through two of the query's topics is kept once). It checks each
// candidate's topics and bounds, and stops at the query's Limit and
// MaxBytes. Not safe for concurrent use.
type Collector struct {
	q      ssehub.TopicQuery
	events []*ssehub.Event
	bytes  int
	last   uint64
	full   bool
}

// NewCollector returns a Collector for q. A Limit below one is treated as
// one.
func NewCollector(q ssehub.TopicQuery) *Collector {
	q.Limit = max(q.Limit, 1)
	return &Collector{q: q, last: q.After}
}

// Full reports whether the result reached the query's Limit or MaxBytes.
func (c *Collector) Full() bool { return c.full }

// Beyond reports whether pos is past what the query selects (after Until),
// so a reader walking in position order can stop.
func (c *Collector) Beyond(pos uint64) bool { return c.q.Until != 0 && pos > c.q.Until }

// StopBefore ends the answer before pos, an event the reader cannot read
// (a damaged one, see ssehub.DamagedError): the result is then complete
// through pos-1 at most, and later offers are beyond it. It reports
// whether that result still advances past the query's After; when it does
// not, the reader has nothing to answer but the error.
func (c *Collector) StopBefore(pos uint64) bool {
	if c.q.Until == 0 || c.q.Until >= pos {
		c.q.Until = pos - 1
	}
	return pos-1 > c.q.After
}

// Offer considers e, the next candidate in position order, and reports
// whether the reader should go on offering (false once the result is full
// or e lies beyond Until).
func (c *Collector) Offer(e *ssehub.Event) bool {
	if c.full || c.Beyond(e.Pos) {
		return false
	}
	if e.Pos <= c.last || !Selects(c.q.Topics, e) {
		return true
	}
	c.events = append(c.events, e)
	c.last = e.Pos
	c.bytes += e.Size()
	if len(c.events) >= c.q.Limit || (c.q.MaxBytes > 0 && c.bytes >= c.q.MaxBytes) {
		c.full = true
	}
	return !c.full
}

// Result returns the events collected and the position through which they
// are complete (see ssehub.TopicIndex), given newest: the log's newest
// position when the read ran.
func (c *Collector) Result(newest uint64) ([]*ssehub.Event, uint64) {
	if c.full {
		return c.events, c.last
	}
	through := newest
	if c.q.Until != 0 && c.q.Until < through {
		through = c.q.Until
	}
	return c.events, max(through, c.q.After)
}

// Selects reports whether an event with e's topics is selected by a query
// for topics (every event when topics is empty).
func Selects(topics []string, e *ssehub.Event) bool {
	if len(topics) == 0 {
		return true
	}
	for _, t := range e.Topics {
		if slices.Contains(topics, t) {
			return true
		}
	}
	return false
}

// DistinctTopics returns e's topics without repeats (an event may name a
// topic twice; its index entry is written once).
func DistinctTopics(e *ssehub.Event) []string {
	if len(e.Topics) < 2 {
		return e.Topics
	}
	out := make([]string, 0, len(e.Topics))
	for _, t := range e.Topics {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
