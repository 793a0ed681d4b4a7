package redislog

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub"
)

const (
	tailBatch   = 512             // most entries one XREAD returns
	tailBlock   = 5 * time.Second // how long one XREAD waits for entries
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 5 * time.Second
	unblockWait = 50 * time.Millisecond // between CLIENT UNBLOCK attempts
)

// Tail implements ssehub.Log with a blocking XREAD loop on a connection of
// its own, reading both streams (see tailRead). It survives Redis outages:
// it logs, retries with backoff and continues after the last position it
// delivered. Any number of Tails may run at once; each calls fn on the
// caller's goroutine, sequentially.
func (l *Log) Tail(ctx context.Context, after uint64, fn func([]*ssehub.Event) error) error {
	if l.closing.Err() != nil {
		return ssehub.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// tctx ends with the caller's context or with Close.
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopClosing := context.AfterFunc(l.closing, cancel)
	defer stopClosing()

	// Cancelling tctx must interrupt a blocked XREAD: go-redis does not, so
	// an unblocker sends CLIENT UNBLOCK for the tail's connection until the
	// tail has returned.
	var clientID atomic.Int64
	exited := make(chan struct{})
	defer close(exited)
	l.wg.Add(1)
	stopUnblock := context.AfterFunc(tctx, func() {
		defer l.wg.Done()
		l.unblock(&clientID, exited)
	})
	defer func() {
		if stopUnblock() {
			l.wg.Done()
		}
	}()

	var (
		conn    *redis.Conn
		backoff time.Duration // 0: healthy
		failing bool          // the last attempt failed
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		if tctx.Err() != nil {
			return l.tailEnd(ctx)
		}
		if conn == nil {
			conn = l.client.Conn()
			idCtx, idCancel := context.WithTimeout(tctx, l.opts.Timeout)
			id, err := conn.ClientID(idCtx).Result()
			idCancel()
			if err != nil {
				conn.Close()
				conn = nil
				if tctx.Err() != nil {
					return l.tailEnd(ctx)
				}
				backoff = l.tailFailed(tctx, err, after, backoff, &failing)
				continue
			}
			clientID.Store(id)
		}
		msgs, err := l.tailRead(tctx, conn, after)
		if errors.Is(err, redis.Nil) {
			continue // timed out or unblocked
		}
		if err != nil {
			clientID.Store(0)
			conn.Close()
			conn = nil
			if tctx.Err() != nil {
				return l.tailEnd(ctx)
			}
			backoff = l.tailFailed(tctx, err, after, backoff, &failing)
			continue
		}
		if failing {
			failing, backoff = false, 0
			l.logger.Info("redislog: tail: redis is reachable again; resuming", "after", after)
		}
		events, last := l.decode(msgs)
		if len(events) > 0 {
			if err := fn(events); err != nil {
				return err
			}
		}
		after = max(after, last)
	}
}

// tailRead returns the entries after position after that the tail
// delivers next, in position order: one blocking XREAD of both streams.
//
// Positions are dense (every position names one event of one of the two
// streams), so an answer whose positions run after+1, after+2, … without a
// hole misses nothing and is delivered as it is: the common case, one
// round trip. An answer with a hole may miss an event of the other stream:
// a blocked XREAD is answered, on Redis before 7.2, with the entries of the
// one stream whose append woke it, and those may be newer than the other
// stream's (one script call appends to both). So then the streams are read
// again without blocking, which Redis answers at once and atomically from
// both; the hole is then real (an event retention removed, or positions
// lost with Redis's data). Either way, when a stream's part is cut at
// tailBatch the answer is cut at its last entry, because the other
// stream's part may run further and the next read starts after the answer.
func (l *Log) tailRead(ctx context.Context, conn *redis.Conn, after uint64) ([]redis.XMessage, error) {
	args := &redis.XReadArgs{
		Streams: []string{l.stream, l.reserved, entryID(after), entryID(after)},
		Count:   tailBatch,
		Block:   l.block,
	}
	streams, err := conn.XRead(ctx, args).Result()
	if err != nil {
		return nil, err
	}
	if msgs, dense := tailMerge(streams, after); dense {
		return msgs, nil
	}
	args.Block = -1 // no BLOCK: answered at once, from both streams
	streams, err = conn.XRead(ctx, args).Result()
	if err != nil {
		return nil, err
	}
	msgs, _ := tailMerge(streams, after)
	return msgs, nil
}

// tailMerge merges the streams of one XREAD answer by position, cut at the
// last entry of a stream whose part holds tailBatch entries, and reports
// whether their positions follow after without a hole.
func tailMerge(streams []redis.XStream, after uint64) (msgs []redis.XMessage, dense bool) {
	cut := uint64(math.MaxUint64)
	for _, s := range streams {
		if len(s.Messages) >= tailBatch {
			if p, ok := parseID(s.Messages[len(s.Messages)-1].ID); ok {
				cut = min(cut, p)
			}
		}
		msgs = mergeEntries(msgs, s.Messages)
	}
	dense = true
	for i, m := range msgs {
		p, ok := parseID(m.ID)
		if p > cut {
			msgs = msgs[:i]
			break
		}
		if !ok || p != after+1 {
			dense = false
		}
		after = p
	}
	return msgs, dense
}

// tailEnd is what Tail returns once its context ended: ErrClosed after
// Close, else the caller's context error.
func (l *Log) tailEnd(ctx context.Context) error {
	if ctx.Err() == nil && l.closing.Err() != nil {
		return ssehub.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return ssehub.ErrClosed
}

// tailFailed logs a failed tail request and waits before the next one. It
// returns the next backoff.
func (l *Log) tailFailed(ctx context.Context, err error, after uint64, backoff time.Duration, failing *bool) time.Duration {
	backoff = min(max(2*backoff, minBackoff), maxBackoff)
	wait := backoff/2 + rand.N(backoff/2+1) // jitter: [backoff/2, backoff]
	l.logger.Warn("redislog: tail: redis unreachable; retrying", "err", err, "after", after, "retry_in", wait)
	*failing = true
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return backoff
}

// unblock sends CLIENT UNBLOCK for the connection id in clientID until
// exited is closed. Repeating covers a cancel that lands between two
// XREADs, when nothing is blocked yet. After Close it stops at once: Close
// closes the tail's connection, which ends any XREAD.
func (l *Log) unblock(clientID *atomic.Int64, exited <-chan struct{}) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-exited:
			return
		case <-l.closing.Done():
			return
		case <-t.C:
		}
		if id := clientID.Load(); id != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
			l.client.ClientUnblock(ctx, id)
			cancel()
		}
		t.Reset(unblockWait)
	}
}
