package natslog

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub"
)

// The reserved class (Options.MaxReserved; see the package documentation):
// the hub's own events live on subjects of their own, beside the
// application subjects rather than under them, so that one purge with a
// subject filter and keep trims each class to its budget without touching
// the other.

var _ ssehub.ReservedRetention = (*Log)(nil)

const (
	reservedToken = "-r" // <Subject>-r.t.<hash>, <Subject>-r.m: reserved events
	maxTrimStep   = 1024 // most appends of a class between two purges
	purgeAPI      = "STREAM.PURGE."
	deleteAPI     = "STREAM.MSG.DELETE."
)

// backstopSlack is how many events beyond twice both budgets the stream
// holds before its limit removes the oldest, of either class: room for
// the trimmer to fall behind during a flood of reserved events.
const backstopSlack = 65536

// backstop returns the stream's MaxMsgs with both budgets.
func backstop(maxEvents, maxReserved int) int64 {
	return 2*int64(maxEvents+maxReserved) + backstopSlack
}

// reservedTopic reports whether topic is in the hub's reserved namespace
// (ssehub.ReservedPrefixes).
func reservedTopic(topic string) bool {
	for _, p := range ssehub.ReservedPrefixes {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// reservedClass reports whether ev is kept on the reserved budget: with
// MaxReserved, an event whose distinct topics are all reserved (which
// Event.Reserved events are but for one a Go program publishes with an
// application topic beside its reserved one: that one stays with the
// application events, where the readers of its application topic look).
func (l *Log) reservedClass(topics []string) bool {
	if l.opts.MaxReserved <= 0 || len(topics) == 0 {
		return false
	}
	for _, t := range topics {
		if !reservedTopic(t) {
			return false
		}
	}
	return true
}

// reservedBase is the base of the reserved subjects: <Subject>-r, a
// sibling of Subject so that <Subject>.> matches application events only.
func (l *Log) reservedBase() string { return l.subject + reservedToken }

// reservedSubject returns the subject of a reserved event with the given
// distinct topics: <Subject>-r.t.<hash> for one, <Subject>-r.m for several.
func (l *Log) reservedSubject(topics []string) string {
	if len(topics) == 1 {
		return l.hashSubject(l.reservedBase(), topics[0])
	}
	return l.reservedBase() + multiToken
}

// trimSteps returns how many appends of each class this Log makes before
// it purges that class: an eighth of its budget, at least one, at most
// maxTrimStep. Retention keeps up to about that many events of a class
// more than its budget (per node appending).
func (l *Log) trimSteps() (res, app int64) {
	step := func(budget int) int64 { return int64(min(max(budget/8, 1), maxTrimStep)) }
	if l.opts.trimEveryAppend {
		return 1, 1
	}
	return step(l.opts.MaxReserved), step(l.opts.MaxEvents)
}

// counted records the events of a successful Append for trimming and wakes
// the trimmer (or, for tests, trims at once) once a class has had its step
// of appends since its last purge.
func (l *Log) counted(ctx context.Context, res, app int) {
	if res > 0 {
		l.resPending.Add(int64(res))
	}
	if app > 0 && l.opts.MaxEvents > 0 {
		l.appPending.Add(int64(app))
	}
	resStep, appStep := l.trimSteps()
	if l.resPending.Load() < resStep && l.appPending.Load() < appStep {
		return
	}
	if l.opts.trimEveryAppend {
		l.trim(ctx)
		return
	}
	select {
	case l.trimKick <- struct{}{}:
	default: // a trim is due already
	}
}

// trimmer trims whenever Append asks, until Close. Started by Open with
// MaxReserved; Close waits for it.
func (l *Log) trimmer() {
	defer close(l.trimDone)
	for {
		select {
		case <-l.closing.Done():
			return
		case <-l.trimKick:
			l.trim(l.closing)
		}
	}
}

// trim brings each class whose step of appends has passed down to its
// budget. Reserved events are deleted one by one (trimReserved): a purge
// with a subject filter makes nats-server 2.9 move every consumer that
// reads both classes — a Tail, a Read — to the first message left on the
// filter, past the application events in between. Application events are purged
// (<Subject>.> keeping MaxEvents): that moves a consumer no further than
// the oldest application event retained, past only reserved events older
// than Bounds' first. One trim runs at a time; failures are logged and the
// counts kept, so that the next Append tries again.
func (l *Log) trim(ctx context.Context) {
	l.trimMu.Lock()
	defer l.trimMu.Unlock()
	resStep, appStep := l.trimSteps()
	if n := l.resPending.Load(); n >= resStep {
		l.resPending.Add(-n)
		if err := l.trimReserved(ctx); err != nil {
			l.resPending.Add(n)
			l.trimFailed(err)
		}
	}
	if n := l.appPending.Load(); n >= appStep && l.opts.MaxEvents > 0 {
		l.appPending.Add(-n)
		if _, err := l.purge(ctx, l.subject+".>", l.opts.MaxEvents); err != nil {
			l.appPending.Add(n)
			l.trimFailed(err)
		}
	}
}

func (l *Log) trimFailed(err error) {
	if l.closing.Err() == nil {
		l.logger.Warn("natslog: trimming the history to its budgets failed; retrying after the next appends", "err", err)
	}
}

// trimReserved deletes the reserved events beyond the newest MaxReserved.
// It reads the reserved subjects from the oldest with an ephemeral
// consumer and deletes each message that had at least MaxReserved reserved
// messages after it when it was delivered (its NumPending): nodes trimming
// at once may delete the same message, never one of the newest
// MaxReserved. The deletes are pipelined (a few round trips for any
// number) and erase the message: nats-server 2.9 records a fast delete
// (no_erase) only in its index, which a crash may lose, bringing deleted
// messages back — and the stream's limit then removes the oldest, maybe
// application events.
func (l *Log) trimReserved(ctx context.Context) error {
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	cons, err := l.js.CreateConsumer(opCtx, l.name, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		FilterSubject:     l.reservedBase() + ".>",
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: 10 * time.Second, // cleans up if the delete fails
	})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
		defer cancel()
		l.js.DeleteConsumer(ctx, l.name, cons.CachedInfo().Name)
	}()
	keep := uint64(l.opts.MaxReserved)
	var seqs []uint64
	for want := 1; want > 0 && len(seqs) < maxTrimBatch; {
		batch, err := cons.FetchNoWait(min(want, maxFetch))
		if err != nil {
			return err
		}
		want = 0
		for msg := range batch.Messages() {
			meta, err := msg.Metadata()
			if err != nil {
				return err
			}
			if meta.NumPending < keep {
				want = 0
				break
			}
			seqs = append(seqs, meta.Sequence.Stream)
			want = int(meta.NumPending - keep) // the older ones after it
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
	}
	return l.deleteMsgs(opCtx, seqs)
}

// maxTrimBatch is the most reserved events one trim deletes; the next
// Append's trim goes on.
const maxTrimBatch = 4 * maxTrimStep

// deleteMsgs deletes (erases) the messages at the given stream sequences
// with pipelined requests. A message already gone (another node deleted
// it) is no error.
func (l *Log) deleteMsgs(ctx context.Context, seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	inbox := l.nc.NewRespInbox()
	sub, err := l.nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	subject := jetstream.DefaultAPIPrefix + deleteAPI + l.name
	for _, seq := range seqs {
		req := []byte(`{"seq":` + strconv.FormatUint(seq, 10) + `}`)
		if err := l.nc.PublishRequest(subject, inbox, req); err != nil {
			return err
		}
	}
	for range seqs {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return err
		}
		var resp struct {
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return err
		}
		if resp.Error != nil && resp.Error.ErrorCode != jetstream.JSErrCodeMessageNotFound {
			return resp.Error
		}
	}
	return nil
}

// purge removes the messages on filter but the newest keep and returns
// how many it removed. It speaks the purge API itself because nats.go's
// Stream.Purge does not return the count.
func (l *Log) purge(ctx context.Context, filter string, keep int) (uint64, error) {
	req, _ := json.Marshal(jetstream.StreamPurgeRequest{Subject: filter, Keep: uint64(max(keep, 0))})
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	msg, err := l.nc.RequestWithContext(opCtx, jetstream.DefaultAPIPrefix+purgeAPI+l.name, req)
	if err != nil {
		return 0, err
	}
	var resp struct {
		Error  *jetstream.APIError `json:"error"`
		Purged uint64              `json:"purged"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, err
	}
	if resp.Error != nil {
		return 0, resp.Error
	}
	return resp.Purged, nil
}

// firstApp returns the stream sequence of the oldest application event
// retained at or after stream sequence from (the stream's first): the
// oldest message on <Subject>.>, else the oldest of the previous version
// on Subject, else from itself (there is no application event, and
// retention removed none after from: only age removes the last ones, and
// it removes the older messages of both classes first). Events of the
// previous version older than a message on <Subject>.> stay before first
// (trimming counts <Subject>.> only; the stream's limit removes them).
func (l *Log) firstApp(ctx context.Context, from uint64) (uint64, error) {
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	filters := []string{l.subject + ".>"}
	if l.legacyLast.Load() >= from {
		filters = append(filters, l.subject)
	}
	for _, f := range filters {
		msg, err := l.stream.GetMsg(opCtx, from, jetstream.WithGetMsgSubject(f))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			continue
		case err != nil:
			return 0, err
		}
		l.observe(msg.Sequence)
		return msg.Sequence, nil
	}
	return from, nil
}

// ReservedRemoved implements ssehub.ReservedRetention: with MaxReserved,
// the position just before the oldest reserved event retained (or before
// the stream's first message when none is), which every node sharing the
// stream agrees on; at most one round trip more. It may be later than the
// newest reserved event actually removed (by the application events in
// between), never earlier. Without MaxReserved, 0: reserved events are
// removed in order with the others, as Bounds tells. Safe for concurrent
// use.
func (l *Log) ReservedRemoved(ctx context.Context) (uint64, error) {
	if l.closing.Err() != nil {
		return 0, ssehub.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if l.opts.MaxReserved <= 0 {
		return 0, nil
	}
	if err := l.connected(); err != nil {
		return 0, l.fail(ctx, "reserved removed", err)
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	var seq uint64 // the oldest retained reserved message, or the stream's first
	msg, err := l.stream.GetMsg(opCtx, 1, jetstream.WithGetMsgSubject(l.reservedBase()+".>"))
	switch {
	case err == nil:
		seq = msg.Sequence
		l.observe(seq)
	case errors.Is(err, jetstream.ErrMsgNotFound):
		info, err := l.info(ctx, "reserved removed")
		if err != nil {
			return 0, err
		}
		if seq = info.State.FirstSeq; info.State.Msgs == 0 {
			seq = info.State.LastSeq + 1
		}
	default:
		return 0, l.fail(ctx, "reserved removed", err)
	}
	if seq <= 1 {
		return 0, nil
	}
	return l.pos(seq - 1), nil
}
