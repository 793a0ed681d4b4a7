package natslog

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

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
)

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

// trim purges each class whose step of appends has passed down to its
// budget: the reserved subjects (<Subject>-r.>) keeping MaxReserved, the
// application subjects (<Subject>.>) keeping MaxEvents. A purge removes
// the oldest messages of its filter only, wherever they lie in the stream.
// One trim runs at a time; failures are logged and the counts kept, so
// that the next Append tries again.
func (l *Log) trim(ctx context.Context) {
	l.trimMu.Lock()
	defer l.trimMu.Unlock()
	resStep, appStep := l.trimSteps()
	if n := l.resPending.Load(); n >= resStep {
		l.resPending.Add(-n)
		if _, err := l.purge(ctx, l.reservedBase()+".>", l.opts.MaxReserved); err != nil {
			l.resPending.Add(n)
			l.trimFailed(err)
		}
	}
	if n := l.appPending.Load(); n >= appStep && l.opts.MaxEvents > 0 {
		l.appPending.Add(-n)
		purged, err := l.purge(ctx, l.subject+".>", l.opts.MaxEvents)
		if err == nil && purged > 0 && l.legacyLast.Load() > l.legacyPurged.Load() {
			// <Subject>.> held more than MaxEvents: the previous version's
			// events on Subject itself, all older, are beyond the budget.
			last := l.legacyLast.Load()
			if _, err = l.purge(ctx, l.subject, 0); err == nil {
				l.legacyPurged.Store(last)
			}
		}
		if err != nil {
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

// purge removes the messages on filter but the newest keep (all of them
// when keep is 0) and returns how many it removed. It speaks the purge API
// itself because nats.go's Stream.Purge does not return the count.
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
// oldest message of the previous version on Subject, else the oldest on
// <Subject>.>, else from itself (there is no application event, and
// retention removed none after from: only age removes the last ones, and
// it removes the older messages of both classes first).
func (l *Log) firstApp(ctx context.Context, from uint64) (uint64, error) {
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	filters := []string{l.subject + ".>"}
	if l.legacyLast.Load() >= from && l.legacyLast.Load() > l.legacyPurged.Load() {
		filters = []string{l.subject, l.subject + ".>"}
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
