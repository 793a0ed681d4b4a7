package eventlog

import (
	"context"
	"errors"
	"time"
)

// ErrLockBusy is WaitLock's answer when the lock stayed taken for its
// whole limit.
var ErrLockBusy = errors.New("the lock stayed held by another holder")

// ErrLockClosed is WaitLock's answer when closing ended the wait.
var ErrLockClosed = errors.New("closed while waiting for a lock")

// WaitLock calls try until it takes the lock (true), fails (its error), or
// the wait ends: ctx (its error), closing (ErrLockClosed), or limit
// (ErrLockBusy). Between tries it sleeps from 1 ms, doubling up to 20 ms.
// try's context ends with the wait. The engines' topic locks
// (ssehub.TopicLocker) share it.
func WaitLock(ctx context.Context, closing <-chan struct{}, limit time.Duration, try func(context.Context) (bool, error)) error {
	wait, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	backoff := time.Millisecond
	for {
		ok, err := try(wait)
		switch {
		case ok:
			return nil
		case err != nil && ctx.Err() == nil && wait.Err() != nil:
			return ErrLockBusy // try was cut by the limit
		case err != nil:
			return err
		}
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return ErrLockBusy
		case <-closing:
			return ErrLockClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 20*time.Millisecond)
	}
}
