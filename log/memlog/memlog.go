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
}

// Log is an in-memory ssehub.Log. Create it with New. All methods are safe
// for concurrent use by any number of goroutines.
type Log struct {
	opts   Options
	notify eventlog.Notifier
	done   chan struct{} // closed by Close

	mu       sync.Mutex // guards the fields below
	events   eventlog.Ring
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
		l.events.Push(e)
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

// trimLocked drops events beyond MaxEvents and older than MaxAge. Events are
// dropped from the oldest end only, so an event whose publisher set an old
// Time goes when it reaches that end.
func (l *Log) trimLocked(now time.Time) {
	if l.opts.MaxEvents > 0 {
		for l.events.Len() > l.opts.MaxEvents {
			l.forget(l.events.PopFront())
		}
	}
	if l.opts.MaxAge > 0 {
		cutoff := now.Add(-l.opts.MaxAge)
		for e := l.events.Front(); e != nil && e.Time.Before(cutoff); e = l.events.Front() {
			l.forget(l.events.PopFront())
		}
	}
}

// forget removes a dropped event from the id and topic indexes.
func (l *Log) forget(e *ssehub.Event) {
	if e == nil {
		return
	}
	if e.ID != "" && l.ids[e.ID] == e.Pos {
		delete(l.ids, e.ID)
	}
	for _, t := range eventlog.DistinctTopics(e) {
		if r := l.topics[t]; r != nil && r.Front() == e {
			r.PopFront()
			if r.Len() == 0 {
				delete(l.topics, t)
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
	return l.events.AppendAfter(nil, after, limit), nil
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
	if len(q.Topics) == 0 {
		for i := l.events.Search(q.After); i < l.events.Len() && c.Offer(l.events.At(i)); i++ {
		}
		events, through := c.Result(l.last)
		return events, through, nil
	}
	// Merge the topics' rings by position: a cursor per ring, always
	// offering the smallest next event.
	type cursor struct {
		r *eventlog.Ring
		i int
	}
	cursors := make([]cursor, 0, len(q.Topics))
	for _, t := range q.Topics {
		if r := l.topics[t]; r != nil {
			cursors = append(cursors, cursor{r, r.Search(q.After)})
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
		if next == nil || !c.Offer(next) {
			break
		}
		for k := range cursors {
			if cur := &cursors[k]; cur.i < cur.r.Len() && cur.r.At(cur.i) == next {
				cur.i++
			}
		}
	}
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
	if e := l.events.Front(); e != nil {
		first = e.Pos
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
		clear(l.ids)
		close(l.done)
	}
	return nil
}
