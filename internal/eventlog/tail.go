package eventlog

import (
	"context"

	"github.com/ssehub/ssehub"
)

// TailBatch is the most events Tail hands to fn in one call.
const TailBatch = 1024

// ReadFunc reads up to limit events after a position without waiting, like
// ssehub.Log.Read.
type ReadFunc func(ctx context.Context, after uint64, limit int) ([]*ssehub.Event, error)

// Tail implements ssehub.Log.Tail for a log that calls n.Notify after each
// append has become readable through read, and that closes closed when it is
// closed. It reads what is there, hands it to fn, and waits on n when it has
// caught up: no polling. It returns ctx.Err() when ctx is done,
// ssehub.ErrClosed when closed is closed, and fn's or read's error as is.
//
// Tail may be called by any number of goroutines at once; each call runs fn
// sequentially on the calling goroutine.
func Tail(ctx context.Context, after uint64, fn func([]*ssehub.Event) error, read ReadFunc, n *Notifier, closed <-chan struct{}) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-closed:
			return ssehub.ErrClosed
		default:
		}
		wake := n.C() // before reading: an append after the read closes it
		events, err := read(ctx, after, TailBatch)
		if err != nil {
			return err
		}
		if len(events) > 0 {
			if err := fn(events); err != nil {
				return err
			}
			after = events[len(events)-1].Pos
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-closed:
			return ssehub.ErrClosed
		}
	}
}
