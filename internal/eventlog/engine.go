package eventlog

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/ssehub/ssehub"
)

// What the engine logs (redislog, natslog) share: the options they both
// have; their Close cancels a context, "closing", that every call and
// every Tail watches; and their Tails retry a lost server with the same
// backoff.

// DefaultTimeout is the engine logs' default bound on a request to their
// server.
const DefaultTimeout = 3 * time.Second

// CheckOptions checks the options every engine log has, after
// DefaultTimeout replaced a zero timeout: none may be negative. The error
// says which and what to give instead; the caller wraps its ErrOptions
// around it.
func CheckOptions(maxEvents int, maxAge, timeout time.Duration) error {
	switch {
	case maxEvents < 0:
		return errors.New("MaxEvents must not be negative (0 keeps every event)")
	case maxAge < 0:
		return errors.New("MaxAge must not be negative (0 keeps events forever)")
	case timeout < 0:
		return errors.New("Timeout must not be negative")
	}
	return nil
}

// Usable is the check an engine log's call makes before it starts:
// ssehub.ErrClosed once closing is done (the log was closed), else ctx's
// error, else nil. Safe for concurrent use.
func Usable(ctx, closing context.Context) error {
	if closing.Err() != nil {
		return ssehub.ErrClosed
	}
	return ctx.Err()
}

// TailContext returns the context of a Tail's requests, which ends with
// ctx (the caller's) or with closing (Close), and the function that
// releases it: call it when the Tail returns.
func TailContext(ctx, closing context.Context) (context.Context, context.CancelFunc) {
	tctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(closing, cancel)
	return tctx, func() {
		stop()
		cancel()
	}
}

// TailEnd is what a Tail returns once its context from TailContext ended:
// the caller's context error, or ssehub.ErrClosed when Close ended it.
func TailEnd(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ssehub.ErrClosed
}

// The bounds of TailBackoff.
const (
	MinTailBackoff = 100 * time.Millisecond
	MaxTailBackoff = 5 * time.Second
)

// TailBackoff is the wait of an engine's Tail between failed attempts: it
// doubles from MinTailBackoff up to MaxTailBackoff, with jitter. The zero
// value is a healthy tail. It belongs to one Tail call.
type TailBackoff struct{ d time.Duration }

// Next doubles the backoff and returns the wait before the next attempt,
// drawn from [backoff/2, backoff].
func (b *TailBackoff) Next() time.Duration {
	b.d = min(max(2*b.d, MinTailBackoff), MaxTailBackoff)
	return b.d/2 + rand.N(b.d/2+1)
}

// Reset starts the backoff again after an attempt that worked.
func (b *TailBackoff) Reset() { b.d = 0 }

// Sleep waits for d or until ctx ends, whichever comes first.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
