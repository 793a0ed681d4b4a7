package natslog

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// The id index is a second stream, "SSEHUB_IDS_<Stream>", that keeps one
// message per publisher-supplied id (MaxMsgsPerSubject 1) on the subject
// "ssehub.ids.<Stream>.<key>", where key is the id in unpadded base64url
// (or "=" and its SHA-256 in hex when that would be long). The message is
// the event's position in decimal, or "pending" while the append that
// reserved the id publishes the event.
//
// Append reserves each id before publishing: it publishes "pending" with
// Nats-Expected-Last-Subject-Sequence 0 (what a KV Create does), so
// JetStream lets exactly one node have a new id. When the subject holds a
// message, the id is still free if its position is no longer in the event
// stream (retention removed the event) or if it is a reservation older
// than pendingTTL (its node died); the append then takes it over with the
// message's sequence as the expected one. Once the events are
// acknowledged, each reservation is replaced by the position; when the
// publish fails, the reservations are deleted.
//
// The index stream has the event stream's MaxAge (its messages are written
// after their events, so they expire later) and, with MaxEvents, keeps at
// most twice as many ids (MaxEvents+MaxReserved) plus idSlack, dropping the oldest: JetStream
// cleans it without a trimmer of ours. A plain stream rather than a KV
// bucket because a bucket cannot limit its number of keys.

var _ ssehub.IDIndex = (*Log)(nil)

const (
	idStreamPrefix = "SSEHUB_IDS_"
	pending        = "pending"
	idSlack        = 1024 // ids kept beyond 2*MaxEvents
	maxKeyLen      = 128  // longer base64url keys are hashed
)

// pendingTTL is how old a reservation must be before another append may
// take its id over: its append has failed or its node died.
func (l *Log) pendingTTL() time.Duration { return max(10*l.opts.Timeout, 30*time.Second) }

// idKey returns the subject token for id.
func idKey(id string) string {
	k := base64.RawURLEncoding.EncodeToString([]byte(id))
	if len(k) > maxKeyLen {
		sum := sha256.Sum256([]byte(id))
		k = "=" + hex.EncodeToString(sum[:])
	}
	return k
}

func (l *Log) idSubject(id string) string { return "ssehub.ids." + l.name + "." + idKey(id) }

// ensureIDStream creates or updates the id index stream.
func (l *Log) ensureIDStream(ctx context.Context) error {
	cfg := jetstream.StreamConfig{
		Name:              idStreamPrefix + l.name,
		Description:       "ssehub id index of stream " + l.name,
		Subjects:          []string{"ssehub.ids." + l.name + ".*"},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: 1,
		MaxAge:            max(l.opts.MaxAge, 0),
		Replicas:          l.opts.Replicas,
		AllowDirect:       l.opts.Replicas == 1,
	}
	if l.opts.MaxEvents > 0 {
		cfg.MaxMsgs = 2*int64(l.opts.MaxEvents+l.opts.MaxReserved) + idSlack
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	s, err := l.js.CreateOrUpdateStream(opCtx, cfg)
	for try := 1; try < 5 && isAPIError(err, errCodeStreamStoreFailed); try++ {
		select { // see ensureStream
		case <-opCtx.Done():
		case <-time.After(time.Duration(try) * 20 * time.Millisecond):
		}
		s, err = l.js.CreateOrUpdateStream(opCtx, cfg)
	}
	if err != nil {
		return l.fail(ctx, "create id index stream", err)
	}
	l.idStream = s
	return nil
}

// reservation is an id an Append holds in the index.
type reservation struct {
	subject string
	seq     uint64 // of the "pending" message
}

// reserve reserves the ids of events, or returns an error (wrapping
// ssehub.ErrDuplicateID when one is taken) after releasing what it
// reserved.
func (l *Log) reserve(ctx context.Context, events []*ssehub.Event) ([]reservation, error) {
	var held []reservation
	for _, ev := range events {
		if ev.ID == "" {
			continue
		}
		r, err := l.reserveID(ctx, ev.ID)
		if err != nil {
			l.release(ctx, held)
			return nil, err
		}
		held = append(held, r)
	}
	return held, nil
}

func (l *Log) reserveID(ctx context.Context, id string) (reservation, error) {
	subj := l.idSubject(id)
	taken := fmt.Errorf("%w: id %q is already the id of a retained event", ssehub.ErrDuplicateID, id)
	var expect uint64
	for range 3 {
		opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		ack, err := l.js.PublishMsg(opCtx, &nats.Msg{Subject: subj, Data: []byte(pending)}, jetstream.WithExpectLastSequencePerSubject(expect))
		cancel()
		if err == nil {
			return reservation{subj, ack.Sequence}, nil
		}
		if !isAPIError(err, jetstream.JSErrCodeStreamWrongLastSequence) && !isAPIError(err, jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return reservation{}, l.fail(ctx, "append: reserve id", err)
		}
		msg, err := l.lastIDMsg(ctx, subj)
		switch {
		case err != nil:
			return reservation{}, l.fail(ctx, "append: reserve id", err)
		case msg == nil:
			expect = 0 // deleted meanwhile
			continue
		}
		_, found, err := l.resolve(ctx, msg)
		if err != nil {
			return reservation{}, l.fail(ctx, "append: reserve id", err)
		}
		if found || string(msg.Data) == pending && time.Since(msg.Time) < l.pendingTTL() {
			return reservation{}, taken
		}
		expect = msg.Sequence // free: take it over unless someone is faster
	}
	return reservation{}, taken
}

// release deletes reservations (of a refused or failed append).
func (l *Log) release(ctx context.Context, held []reservation) {
	if len(held) == 0 {
		return
	}
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
	defer cancel()
	for _, r := range held {
		if err := l.idStream.DeleteMsg(opCtx, r.seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && l.closing.Err() == nil {
			l.logger.Warn("natslog: cannot release a reserved id; it is free again after a while", "subject", r.subject, "err", err)
		}
	}
}

// confirm replaces the reservations of the events with their positions.
// The events are stored: a failure only leaves the id unindexed (free
// again after pendingTTL), so it is logged, not returned.
func (l *Log) confirm(ctx context.Context, held []reservation, events []*ssehub.Event) {
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
	defer cancel()
	i := 0
	for _, ev := range events {
		if ev.ID == "" {
			continue
		}
		r := held[i]
		i++
		_, err := l.js.PublishMsg(opCtx, &nats.Msg{Subject: r.subject, Data: strconv.AppendUint(nil, ev.Pos, 10)}, jetstream.WithExpectLastSequencePerSubject(r.seq))
		if err != nil {
			l.logger.Warn("natslog: cannot index a publisher-supplied id; clients cannot resume from it", "id", ev.ID, "pos", ev.Pos, "err", err)
		}
	}
}

// lastIDMsg returns the index message on subj, or nil when there is none.
func (l *Log) lastIDMsg(ctx context.Context, subj string) (*jetstream.RawStreamMsg, error) {
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	msg, err := l.idStream.GetLastMsgForSubject(opCtx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return msg, err
}

// resolve returns the position an index message names when the event
// stream still holds it.
func (l *Log) resolve(ctx context.Context, msg *jetstream.RawStreamMsg) (uint64, bool, error) {
	if string(msg.Data) == pending {
		return 0, false, nil
	}
	pos, err := strconv.ParseUint(string(msg.Data), 10, 64)
	if err != nil {
		l.logger.Error("natslog: the id index holds something else than a position", "subject", msg.Subject, "data", string(msg.Data))
		return 0, false, nil
	}
	offset := l.offset.Load()
	if pos <= offset {
		return 0, false, nil // from before the stream was created again
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	_, err = l.stream.GetMsg(opCtx, pos-offset)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return pos, true, nil
}

// LookupID implements ssehub.IDIndex: the position of the retained event
// whose publisher-supplied ID is id, from the id index, checked against
// the event stream. An id whose append is still in flight is not found.
// Safe for concurrent use.
func (l *Log) LookupID(ctx context.Context, id string) (pos uint64, found bool, err error) {
	if err := eventlog.Usable(ctx, l.closing); err != nil {
		return 0, false, err
	}
	if id == "" {
		return 0, false, nil
	}
	if err := l.connected(); err != nil {
		return 0, false, l.fail(ctx, "lookup id", err)
	}
	msg, err := l.lastIDMsg(ctx, l.idSubject(id))
	if err != nil {
		return 0, false, l.fail(ctx, "lookup id", err)
	}
	if msg == nil {
		return 0, false, nil
	}
	pos, found, err = l.resolve(ctx, msg)
	if err != nil {
		return 0, false, l.fail(ctx, "lookup id", err)
	}
	return pos, found, nil
}
