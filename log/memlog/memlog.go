package memlog

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// Options configure a Log. The zero value keeps every event forever.
type Options struct {
	// MaxEvents, when positive, is how many of the newest events the log
	// keeps; older ones are dropped as new ones arrive.
	MaxEvents int
	// MaxAge, when positive, is how long the log keeps an event after its
	// Time. Expired events are dropped at the next call to any method.
	MaxAge time.Duration
	// MaxReserved, when positive, keeps the hub's own events
	// (ssehub.Event.Reserved) apart: the newest MaxReserved of them are
	// kept, older ones dropped, and MaxEvents counts application events
	// only, so the hub's bookkeeping never pushes an application event
	// out (see ssehub.ReservedRetention). Zero: one budget for all.
	MaxReserved int
}

// Log is an in-memory ssehub.Log. Create it with New. All methods are safe
// for concurrent use by any number of goroutines.
type Log struct {
	opts   Options
	notify eventlog.Notifier
	done   chan struct{} // closed by Close

	mu       sync.Mutex                // guards the fields below
	events   eventlog.Ring             // application events (all events without MaxReserved)
	reserved eventlog.Ring             // reserved events, with MaxReserved
	resGone  uint64                    // newest reserved event dropped (with MaxReserved)
	appGone  uint64                    // newest application event dropped
	next     uint64                    // position of the next event
	last     uint64                    // newest position ever appended (0: none)
	lastTime time.Time                 // newest Time assigned by Append
	ids      map[string]uint64         // publisher-supplied id -> position, for retained events
	topics   map[string]*eventlog.Ring // topic -> its retained events, oldest first
	closed   bool
}

var (
	_ ssehub.Log        = (*Log)(nil)
	_ ssehub.IDIndex    = (*Log)(nil)
	_ ssehub.TopicIndex = (*Log)(nil)

	_ ssehub.ReservedRetention = (*Log)(nil)
)

// New returns an empty log whose first event will get the current Unix time
// in microseconds as its position (see the package documentation). Negative
// options mean no limit.
func New(opts Options) *Log {
	return &Log{
		opts:   opts,
		done:   make(chan struct{}),
		next:   uint64(max(time.Now().UnixMicro(), 1)),
		ids:    make(map[string]uint64),
		topics: make(map[string]*eventlog.Ring),
	}
}

// Append implements ssehub.Log. It sets Pos on each event, and Time to the
// current time when zero, with assigned times strictly increasing. It
// refuses events whose publisher-supplied ID is already taken (see
// ssehub.IDIndex) with an error wrapping ssehub.ErrDuplicateID. Safe for
// concurrent use; it never blocks on anything but a short mutex.
func (l *Log) Append(ctx context.Context, events ...*ssehub.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ssehub.ErrClosed
	}
	if len(events) == 0 {
		l.mu.Unlock()
		return nil
	}
	now := time.Now().Round(0) // wall clock only, as a durable log stores it
	l.trimLocked(now)          // expired events free their ids
	if err := l.checkIDsLocked(events); err != nil {
		l.mu.Unlock()
		return err
	}
	for _, e := range events {
		e.Pos = l.next
		if e.ID != "" {
			l.ids[e.ID] = e.Pos
		}
		l.next++
		if e.Time.IsZero() {
			e.Time = eventlog.NextTime(l.lastTime, now)
			l.lastTime = e.Time
		}
		l.ring(e).Push(e)
		for _, t := range eventlog.DistinctTopics(e) {
			r := l.topics[t]
			if r == nil {
				r = new(eventlog.Ring)
				l.topics[t] = r
			}
			r.Push(e)
		}
	}
	l.last = l.next - 1
	l.trimLocked(now)
	l.mu.Unlock()
	l.notify.Notify()
	return nil
}

// checkIDsLocked refuses a batch with a publisher-supplied id that a
// retained event or another event of the batch already has.
func (l *Log) checkIDsLocked(events []*ssehub.Event) error {
	for _, e := range events {
		if _, taken := l.ids[e.ID]; taken && e.ID != "" {
			return fmt.Errorf("%w: id %q is already the id of a retained event", ssehub.ErrDuplicateID, e.ID)
		}
	}
	if id, dup := eventlog.DuplicateID(events); dup {
		return fmt.Errorf("%w: id %q is given to two events of the batch", ssehub.ErrDuplicateID, id)
	}
	return nil
}

// ring returns the ring e is kept in.
func (l *Log) ring(e *ssehub.Event) *eventlog.Ring {
	if l.opts.MaxReserved > 0 && e.Reserved() {
		return &l.reserved
	}
	return &l.events
}

// trimLocked drops events beyond MaxEvents (and MaxReserved) and older than
// MaxAge. Events are dropped from the oldest end of their ring only, so an
// event whose publisher set an old Time goes when it reaches that end.
func (l *Log) trimLocked(now time.Time) {
	trim := func(r *eventlog.Ring, n int) {
		for n > 0 && r.Len() > n {
			l.forget(r.PopFront())
		}
		if l.opts.MaxAge > 0 {
			cutoff := now.Add(-l.opts.MaxAge)
			for e := r.Front(); e != nil && e.Time.Before(cutoff); e = r.Front() {
				l.forget(r.PopFront())
			}
		}
	}
	trim(&l.events, l.opts.MaxEvents)
	trim(&l.reserved, l.opts.MaxReserved)
}

// forget removes a dropped event from the id and topic indexes.
func (l *Log) forget(e *ssehub.Event) {
	if e == nil {
		return
	}
	if e.ID != "" && l.ids[e.ID] == e.Pos {
		delete(l.ids, e.ID)
	}
	if l.opts.MaxReserved > 0 && e.Reserved() {
		l.resGone = e.Pos
	} else {
		l.appGone = e.Pos
	}
	for _, t := range eventlog.DistinctTopics(e) {
		// Rings of the two classes are trimmed apart: a topic that has
		// events of both (only a Go program can publish to a reserved
		// topic) may lose one from its middle.
		if r := l.topics[t]; r != nil && r.Remove(e) && r.Len() == 0 {
			delete(l.topics, t)
		}
	}
}

// ReservedRemoved implements ssehub.ReservedRetention. Safe for concurrent
// use.
func (l *Log) ReservedRemoved(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ssehub.ErrClosed
	}
	l.trimLocked(time.Now())
	return l.resGone, nil
}

// mergeLocked offers offer the events of rings after position after, in
// log order, each once (an event in several rings is offered once), until
// offer returns false or none is left.
func mergeLocked(rings []*eventlog.Ring, after uint64, offer func(*ssehub.Event) bool) {
	type cursor struct {
		r *eventlog.Ring
		i int
	}
	cursors := make([]cursor, 0, len(rings))
	for _, r := range rings {
		if r != nil && r.Len() > 0 {
			cursors = append(cursors, cursor{r, r.Search(after)})
		}
	}
	for {
		var next *ssehub.Event
		for _, cur := range cursors {
			if cur.i < cur.r.Len() {
				if e := cur.r.At(cur.i); next == nil || e.Pos < next.Pos {
					next = e
				}
			}
		}
		if next == nil || !offer(next) {
			return
		}
		for k := range cursors {
			if cur := &cursors[k]; cur.i < cur.r.Len() && cur.r.At(cur.i) == next {
				cur.i++
			}
		}
	}
}

// LookupID implements ssehub.IDIndex: the position of the retained event
// whose publisher-supplied ID is id. Safe for concurrent use.
func (l *Log) LookupID(ctx context.Context, id string) (pos uint64, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, false, ssehub.ErrClosed
	}
	l.trimLocked(time.Now())
	pos, found = l.ids[id]
	return pos, found, nil
}

// Read implements ssehub.Log: up to limit events after position after, in
// order, never waiting. A limit of zero or less returns no events. Safe for
// concurrent use.
func (l *Log) Read(ctx context.Context, after uint64, limit int) ([]*ssehub.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ssehub.ErrClosed
	}
	if limit <= 0 || after >= l.last {
		return nil, nil
	}
	l.trimLocked(time.Now())
	if l.reserved.Len() == 0 {
		return l.events.AppendAfter(nil, after, limit), nil
	}
	var out []*ssehub.Event
	mergeLocked([]*eventlog.Ring{&l.events, &l.reserved}, after, func(e *ssehub.Event) bool {
		out = append(out, e)
		return len(out) < limit
	})
	return out, nil
}

// ReadTopics implements ssehub.TopicIndex: each topic's events are kept in
// a ring of their own, so a read costs the events it returns (times the
// number of topics asked for). Safe for concurrent use.
func (l *Log) ReadTopics(ctx context.Context, q ssehub.TopicQuery) ([]*ssehub.Event, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, 0, ssehub.ErrClosed
	}
	l.trimLocked(time.Now())
	c := eventlog.NewCollector(q)
	// Merge the rings by position: a cursor per ring, always offering the
	// smallest next event.
	rings := []*eventlog.Ring{&l.events, &l.reserved}
	if len(q.Topics) > 0 {
		rings = rings[:0]
		for _, t := range q.Topics {
			rings = append(rings, l.topics[t])
		}
	}
	mergeLocked(rings, q.After, c.Offer)
	events, through := c.Result(l.last)
	return events, through, nil
}

// Tail implements ssehub.Log. Any number of Tails may run at once; each
// calls fn on its own goroutine, sequentially.
func (l *Log) Tail(ctx context.Context, after uint64, fn func([]*ssehub.Event) error) error {
	return eventlog.Tail(ctx, after, fn, l.Read, &l.notify, l.done)
}

// Bounds implements ssehub.Log. Safe for concurrent use.
func (l *Log) Bounds(ctx context.Context) (first, last uint64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, 0, ssehub.ErrClosed
	}
	l.trimLocked(time.Now())
	// The oldest event after every dropped application event (reserved
	// events before it may be retained, and are not counted in).
	first = l.appGone
	if e := l.events.Front(); e != nil {
		first = e.Pos
	}
	if i := l.reserved.Search(l.appGone); i < l.reserved.Len() {
		if e := l.reserved.At(i); first == l.appGone || e.Pos < first {
			first = e.Pos
		}
	}
	if first == l.appGone {
		first = 0 // nothing retained after it
	}
	return first, l.last, nil
}

// Close implements ssehub.Log: it drops the events, makes later calls fail
// with ssehub.ErrClosed and ends running Tails. Closing twice is a no-op.
// Safe for concurrent use.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.events.Clear()
		l.reserved.Clear()
		clear(l.ids)
		close(l.done)
	}
	return nil
}
