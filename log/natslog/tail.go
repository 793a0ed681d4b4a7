package natslog

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

const (
	tailBatch     = 512              // most events per call to fn, and messages buffered
	tailExpiry    = 10 * time.Second // lifetime of one pull request
	tailHeartbeat = 2 * time.Second  // idle heartbeat; two missed ones recreate the consumer
)

// errConnChanged ends a consumer when the connection dropped or was
// re-established: the tail recreates it from its last position.
var errConnChanged = errors.New("natslog: connection to nats changed")

// fnError carries an error returned by the caller's fn, which Tail returns
// as is.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// Tail implements ssehub.Log with an ephemeral pull consumer starting after
// the last position delivered; see the package documentation. It survives
// NATS outages: it logs, waits for the connection, and recreates its
// consumer with backoff. Any number of Tails may run at once; each calls fn
// on the caller's goroutine, sequentially.
func (l *Log) Tail(ctx context.Context, after uint64, fn func([]*ssehub.Event) error) error {
	if err := eventlog.Usable(ctx, l.closing); err != nil {
		return err
	}
	tctx, release := eventlog.TailContext(ctx, l.closing)
	defer release()

	status := l.nc.StatusChanged()
	defer l.nc.RemoveStatusListener(status)
	t := &tailer{l: l, fn: fn, after: after, status: status}
	var backoff eventlog.TailBackoff
	for {
		if tctx.Err() != nil {
			return eventlog.TailEnd(ctx)
		}
		if !l.nc.IsConnected() {
			if !t.failing {
				t.failing = true
				l.logger.Warn("natslog: tail: nats unreachable; waiting for the connection", "after", t.after)
			}
			if !t.waitConnected(tctx) {
				return eventlog.TailEnd(ctx)
			}
			continue
		}
		err := t.consume(tctx)
		if t.consumed {
			t.consumed = false
			backoff.Reset()
		}
		var fe fnError
		switch {
		case errors.As(err, &fe):
			return fe.err
		case tctx.Err() != nil, errors.Is(err, ssehub.ErrClosed):
			return eventlog.TailEnd(ctx)
		case errors.Is(err, errConnChanged):
			continue
		}
		wait := backoff.Next()
		if errors.Is(err, errLost) {
			l.logger.Debug("natslog: tail: messages lost in transit; recreating the consumer", "after", t.after, "retry_in", wait)
		} else {
			t.failing = true
			l.logger.Warn("natslog: tail: cannot consume the stream; retrying", "err", err, "after", t.after, "retry_in", wait)
		}
		eventlog.Sleep(tctx, wait)
	}
}

// tailer is the state of one Tail call.
type tailer struct {
	l        *Log
	fn       func([]*ssehub.Event) error
	after    uint64 // last position delivered (or skipped as undecodable)
	status   chan nats.Status
	failing  bool // the last attempt failed: log when it works again
	consumed bool // consume created its consumer: the backoff starts again
}

// waitConnected waits until the client is connected again. It reports false
// if ctx ended first.
func (t *tailer) waitConnected(ctx context.Context) bool {
	timer := time.NewTimer(time.Second) // status events may be dropped: look again now and then
	defer timer.Stop()
	for !t.l.nc.IsConnected() {
		select {
		case <-ctx.Done():
			return false
		case <-t.status:
		case <-timer.C:
			timer.Reset(time.Second)
		}
	}
	return true
}

type next struct {
	msg jetstream.Msg
	err error
}

// consume runs one consumer from t.after+1 until an error: fn's (as
// fnError), the context's, a lost message, a connection change or a failure
// of the consumer.
func (t *tailer) consume(ctx context.Context) error {
	l := t.l
	for drained := false; !drained; { // older connection events are handled
		select {
		case <-t.status:
		default:
			drained = true
		}
	}
	if err := l.refresh(ctx); err != nil { // was the stream created again?
		return err
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	cons, err := l.js.CreateConsumer(opCtx, l.name, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       l.seqAfter(t.after) + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute, // cleans up after a crash or a partition
	})
	cancel()
	if err != nil {
		return err
	}
	name := cons.CachedInfo().Name
	if !l.track(name) {
		l.deleteConsumer(name)
		return ssehub.ErrClosed
	}
	defer func() {
		if l.untrack(name) {
			l.deleteConsumer(name)
		}
	}()
	t.consumed = true
	if t.failing {
		t.failing = false
		l.logger.Info("natslog: tail: nats is reachable again; resuming", "after", t.after)
	}
	it, err := cons.Messages(
		jetstream.PullMaxMessages(tailBatch),
		jetstream.PullExpiry(tailExpiry),
		jetstream.PullHeartbeat(tailHeartbeat),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return err
	}
	msgs := make(chan next, tailBatch)
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	go func() { // owned by consume: ends once quit is closed and it is stopped
		defer close(readerDone)
		for {
			msg, err := it.Next()
			select {
			case msgs <- next{msg, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(quit)
		it.Stop()
		<-readerDone
	}()

	var cseq uint64 // consumer sequence of the last message
	for {
		var n next
		select {
		case n = <-msgs:
		case <-t.status:
			return errConnChanged
		case <-ctx.Done():
			return ctx.Err()
		}
		var batch []*ssehub.Event
		last := t.after
		var err error
		for {
			if n.err != nil {
				err = n.err
				break
			}
			meta, merr := n.msg.Metadata()
			if merr != nil {
				err = merr
				break
			}
			if meta.Sequence.Consumer != cseq+1 {
				err = errLost
				break
			}
			cseq = meta.Sequence.Consumer
			seq := meta.Sequence.Stream
			l.observe(seq)
			if n.msg.Subject() == l.subject {
				l.noteLegacy(seq, true)
			}
			if pos := l.pos(seq); pos > last {
				if ev := l.decode(n.msg.Data(), seq); ev != nil {
					batch = append(batch, ev)
				}
				last = pos
			}
			if len(batch) >= tailBatch {
				break
			}
			select {
			case n = <-msgs:
				continue
			default:
			}
			break
		}
		if len(batch) > 0 {
			if ferr := t.fn(batch); ferr != nil {
				return fnError{ferr}
			}
		}
		t.after = last
		if err != nil {
			return err
		}
	}
}

// track records a tail's consumer, for Close to delete. It reports false
// once Close has started: the tail must delete it itself.
func (l *Log) track(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.consumers == nil {
		return false
	}
	l.consumers[name] = struct{}{}
	return true
}

// untrack forgets a tail's consumer. It reports whether the tail still owns
// it (false when Close took it to delete).
func (l *Log) untrack(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.consumers[name]
	delete(l.consumers, name)
	return ok
}

// deleteConsumer deletes a consumer, if NATS is reachable; a consumer that
// cannot be deleted goes away after its InactiveThreshold.
func (l *Log) deleteConsumer(name string) {
	if !l.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.js.DeleteConsumer(ctx, l.name, name)
}
