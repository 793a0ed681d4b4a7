package memlog

import (
	"context"
	"sync"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/logutil"
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
	notify logutil.Notifier
	done   chan struct{} // closed by Close

	mu       sync.Mutex // guards the fields below
	events   logutil.Ring
	next     uint64    // position of the next event
	last     uint64    // newest position ever appended (0: none)
	lastTime time.Time // newest Time assigned by Append
	closed   bool
}

var _ ssehub.Log = (*Log)(nil)

// New returns an empty log whose first event will get the current Unix time
// in microseconds as its position (see the package documentation). Negative
// options mean no limit.
func New(opts Options) *Log {
	return &Log{
		opts: opts,
		done: make(chan struct{}),
		next: uint64(max(time.Now().UnixMicro(), 1)),
	}
}

// Append implements ssehub.Log. It sets Pos on each event, and Time to the
// current time when zero, with assigned times strictly increasing. Safe for
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
	for _, e := range events {
		e.Pos = l.next
		l.next++
		if e.Time.IsZero() {
			t := now
			if !t.After(l.lastTime) {
				t = l.lastTime.Add(time.Nanosecond)
			}
			e.Time, l.lastTime = t, t
		}
		l.events.Push(e)
	}
	l.last = l.next - 1
	l.trimLocked(now)
	l.mu.Unlock()
	l.notify.Notify()
	return nil
}

// trimLocked drops events beyond MaxEvents and older than MaxAge. Events are
// dropped from the oldest end only, so an event whose publisher set an old
// Time goes when it reaches that end.
func (l *Log) trimLocked(now time.Time) {
	if l.opts.MaxEvents > 0 {
		for l.events.Len() > l.opts.MaxEvents {
			l.events.PopFront()
		}
	}
	if l.opts.MaxAge > 0 {
		cutoff := now.Add(-l.opts.MaxAge)
		for e := l.events.Front(); e != nil && e.Time.Before(cutoff); e = l.events.Front() {
			l.events.PopFront()
		}
	}
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

// Tail implements ssehub.Log. Any number of Tails may run at once; each
// calls fn on its own goroutine, sequentially.
func (l *Log) Tail(ctx context.Context, after uint64, fn func([]*ssehub.Event) error) error {
	return logutil.Tail(ctx, after, fn, l.Read, &l.notify, l.done)
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
		close(l.done)
	}
	return nil
}
