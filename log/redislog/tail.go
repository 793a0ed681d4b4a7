package redislog

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

const (
	tailBatch   = 512                   // most entries one XREAD returns
	tailBlock   = 5 * time.Second       // how long one XREAD waits for entries
	unblockWait = 50 * time.Millisecond // between CLIENT UNBLOCK attempts
)

// Tail implements ssehub.Log with a blocking XREAD loop on a connection of
// its own. It survives Redis outages: it logs, retries with backoff
// (eventlog.TailBackoff) and continues after the last position it
// delivered. Any number of Tails may run at once; each calls fn on the
// caller's goroutine, sequentially.
func (l *Log) Tail(ctx context.Context, after uint64, fn func([]*ssehub.Event) error) error {
	if err := eventlog.Usable(ctx, l.closing); err != nil {
		return err
	}
	tctx, release := eventlog.TailContext(ctx, l.closing)
	defer release()

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
		backoff eventlog.TailBackoff
		failing bool // the last attempt failed
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		if tctx.Err() != nil {
			return eventlog.TailEnd(ctx)
		}
		msgs, err := l.tailRead(tctx, &conn, &clientID, after)
		if errors.Is(err, redis.Nil) {
			continue // timed out or unblocked
		}
		if err != nil {
			clientID.Store(0)
			if conn != nil {
				conn.Close()
				conn = nil
			}
			if tctx.Err() != nil {
				return eventlog.TailEnd(ctx)
			}
			wait := backoff.Next()
			l.logger.Warn("redislog: tail: redis unreachable; retrying", "err", err, "after", after, "retry_in", wait)
			failing = true
			eventlog.Sleep(tctx, wait)
			continue
		}
		if failing {
			failing = false
			backoff.Reset()
			l.logger.Info("redislog: tail: redis is reachable again; resuming", "after", after)
		}
		for _, s := range msgs {
			events, last := l.decode(s.Messages)
			if len(events) > 0 {
				if err := fn(events); err != nil {
					return err
				}
			}
			after = max(after, last)
		}
	}
}

// tailRead reads the entries after after with a blocking XREAD on the
// tail's connection *conn. When *conn is nil it first opens one and stores
// its client id in clientID, for the unblocker.
func (l *Log) tailRead(ctx context.Context, conn **redis.Conn, clientID *atomic.Int64, after uint64) ([]redis.XStream, error) {
	if *conn == nil {
		c := l.client.Conn()
		idCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		id, err := c.ClientID(idCtx).Result()
		cancel()
		if err != nil {
			c.Close()
			return nil, err
		}
		*conn = c
		clientID.Store(id)
	}
	return (*conn).XRead(ctx, &redis.XReadArgs{
		Streams: []string{l.stream, entryID(after)},
		Count:   tailBatch,
		Block:   l.block,
	}).Result()
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
