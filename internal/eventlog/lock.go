package eventlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ssehub/ssehub"
)

// The engines' topic locks (ssehub.TopicLocker) share these: a lock
// outlives a holder that died with it by LockTTL, and a hub waits at most
// LockWait for one.
const (
	LockTTL  = 5 * time.Second
	LockWait = 10 * time.Second
)

// LockToken returns a random token that names one holder of a lock.
func LockToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// WaitLock calls try until it takes topic's lock (true), and returns nil
// then. It gives up when try fails (fail(err)), ctx ends (fail(ctx.Err())),
// closing is closed (ssehub.ErrClosed) or LockWait passed with the lock
// held by another hub (an ssehub.ErrUnavailable error saying so). Between
// tries it sleeps from 1 ms, doubling up to 20 ms; try's context ends with
// the wait.
func WaitLock(ctx context.Context, closing <-chan struct{}, topic string, try func(context.Context) (bool, error), fail func(error) error) error {
	busy := func() error {
		return fmt.Errorf("%w: the lock of topic %q was held by another hub for over %v", ssehub.ErrUnavailable, topic, LockWait)
	}
	wait, cancel := context.WithTimeout(ctx, LockWait)
	defer cancel()
	backoff := time.Millisecond
	for {
		select {
		case <-closing:
			return ssehub.ErrClosed
		default:
		}
		ok, err := try(wait)
		switch {
		case ok:
			return nil
		case err != nil && ctx.Err() == nil && wait.Err() != nil:
			return busy() // try was cut by the limit
		case err != nil:
			return fail(err)
		}
		select {
		case <-wait.Done():
			if err := ctx.Err(); err != nil {
				return fail(err)
			}
			return busy()
		case <-closing:
			return ssehub.ErrClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 20*time.Millisecond)
	}
}
