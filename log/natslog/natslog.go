package natslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// ErrOptions is returned by Open for options it cannot use.
var ErrOptions = errors.New("natslog: invalid options")

// Options configure a Log. The zero value is usable: stream "SSEHUB" on
// subject "ssehub.SSEHUB.events", every event kept forever, one replica, a
// 3 s timeout and no logging.
type Options struct {
	// Stream is the JetStream stream's name. Every node of one deployment
	// must use the same stream. Default "SSEHUB".
	Stream string
	// Subject names the stream's subjects: events are published on
	// <Subject>.t.<topic hash> and <Subject>.m (with MaxReserved, the
	// hub's own on <Subject>-r.t.<topic hash> and <Subject>-r.m), and the
	// previous version published them on Subject itself (see the package
	// documentation).
	// Default "ssehub.<Stream>.events".
	Subject string
	// MaxEvents, when positive, is how many of the newest events the
	// stream keeps (its MaxMsgs).
	MaxEvents int
	// MaxAge, when positive, is how long the stream keeps an event (its
	// MaxAge, counted from when JetStream stored it).
	MaxAge time.Duration
	// MaxReserved, when positive, keeps the hub's own events
	// (ssehub.Event.Reserved: subscription events, heartbeats) apart, on
	// subjects of their own: the newest MaxReserved of them are kept, and
	// MaxEvents counts application events only, so that the hub's
	// bookkeeping never pushes an application event out of history (see
	// ssehub.ReservedRetention and the package documentation). Both
	// budgets are kept by trimming in the background after appends, so
	// each class may hold a few events more than its budget for a moment. Zero: one budget for
	// all events, as before. Every node sharing the stream must use the
	// same MaxEvents and MaxReserved.
	MaxReserved int
	// Replicas is the stream's number of replicas in a NATS cluster.
	// Default 1.
	Replicas int
	// Timeout bounds every request to NATS other than Tail's wait for new
	// events. Default 3 s.
	Timeout time.Duration
	// Logger receives warnings (NATS unreachable, undecodable messages).
	// Default: discard.
	Logger *slog.Logger

	// trimEveryAppend makes each Append with MaxReserved purge before it
	// returns, so that tests see the budgets exactly.
	trimEveryAppend bool
}

// Log is an ssehub.Log in a JetStream stream. Create it with Open. All
// methods are safe for concurrent use by any number of goroutines.
type Log struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream // handle with the config, for direct gets
	idStream jetstream.Stream // the id index (see ids.go)
	name     string           // the stream's name
	subject  string
	server   string // for messages: the URL without credentials
	opts     Options
	logger   *slog.Logger

	locks   locks           // the topic locks' bucket (lock.go)
	closing context.Context // done once Close was called
	close   context.CancelFunc
	once    sync.Once

	clock eventlog.Clock // the Times Append assigns never go back

	// offset is added to stream sequences to make positions: the stream's
	// creation time in µs. maxSeq is the highest stream sequence seen, to
	// notice a stream that was deleted and created again.
	offset atomic.Uint64
	maxSeq atomic.Uint64

	// legacyLast is the highest stream sequence known to hold an event on
	// the literal subject (written by the previous version): reads by
	// topic scan that subject when they start at or before it.
	legacyLast   atomic.Uint64
	legacyWarned atomic.Bool // a previous-version node was seen publishing

	// With MaxReserved (reserved.go): the events of each class this Log
	// appended since it last purged that class, and the trimmer that
	// purges. trimMu is held by a trim (no other lock is taken under it).
	resPending atomic.Int64
	appPending atomic.Int64
	trimKick   chan struct{} // buffered; Append wakes the trimmer
	trimDone   chan struct{} // closed when the trimmer returned
	trimMu     sync.Mutex

	mu        sync.Mutex          // guards consumers
	consumers map[string]struct{} // tail consumers to delete on Close; nil once closed
}

var (
	_ ssehub.Log    = (*Log)(nil)
	_ ssehub.Pinger = (*Log)(nil)
)

const (
	defaultStream = "SSEHUB"
	maxPending    = 16384 // most unacknowledged async publishes per Log
	smallRead     = 8     // reads up to this many events use direct gets

	// errCodeStreamStoreFailed is JetStream's "error creating store for
	// stream" (JSStreamStoreFailedF), which nats.go does not name.
	errCodeStreamStoreFailed jetstream.ErrorCode = 10049
)

// Open connects to the NATS server(s) at url (nats://[user:pass@]host:port,
// several separated by commas), creates or updates the stream from opts and
// returns a Log. It fails with an error wrapping ssehub.ErrUnavailable when
// NATS or JetStream cannot be reached within opts.Timeout or ctx.
func Open(ctx context.Context, url string, opts Options) (*Log, error) {
	if opts.Stream == "" {
		opts.Stream = defaultStream
	}
	if opts.Subject == "" {
		opts.Subject = "ssehub." + opts.Stream + ".events"
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if opts.Timeout == 0 {
		opts.Timeout = eventlog.DefaultTimeout
	}
	if err := eventlog.CheckOptions(opts.MaxEvents, opts.MaxAge, opts.Timeout); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOptions, err)
	}
	switch {
	case opts.MaxReserved < 0:
		return nil, fmt.Errorf("%w: MaxReserved must not be negative (0 keeps reserved events with the others)", ErrOptions)
	case opts.Replicas < 0 || opts.Replicas > 5:
		return nil, fmt.Errorf("%w: Replicas must be between 1 and 5", ErrOptions)
	case strings.ContainsAny(opts.Stream, ". *>/\\\t\r\n"):
		return nil, fmt.Errorf("%w: Stream %q must not contain '.', '*', '>', '/', '\\' or spaces", ErrOptions, opts.Stream)
	case strings.ContainsAny(opts.Subject, "*> \t\r\n") || strings.HasPrefix(opts.Subject, ".") || strings.HasSuffix(opts.Subject, ".") || strings.Contains(opts.Subject, ".."):
		return nil, fmt.Errorf("%w: Subject %q must be a literal subject like ssehub.events (no wildcards, no empty tokens)", ErrOptions, opts.Subject)
	}
	for _, u := range strings.Split(url, ",") {
		if scheme, _, ok := strings.Cut(strings.TrimSpace(u), "://"); ok && scheme != "nats" && scheme != "tls" && scheme != "ws" && scheme != "wss" {
			return nil, fmt.Errorf("%w: url %q: want nats://host:port (or tls://, ws://, wss://)", ErrOptions, redact(u))
		}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	server := redact(url)
	logger = logger.With("log", "nats", "server", server, "stream", opts.Stream)
	l := &Log{
		name:      opts.Stream,
		subject:   opts.Subject,
		server:    server,
		opts:      opts,
		logger:    logger,
		consumers: map[string]struct{}{},
	}
	l.closing, l.close = context.WithCancel(context.Background())

	nc, err := nats.Connect(url,
		nats.Name("ssehub"),
		nats.Timeout(min(opts.Timeout, 2*time.Second)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(-1), // a publish while disconnected fails instead of waiting in a buffer
		nats.PingInterval(5*time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if l.closing.Err() == nil {
				logger.Warn("natslog: disconnected from nats; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("natslog: reconnected to nats", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Warn("natslog: nats client error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: natslog: open: nats at %s: %w", ssehub.ErrUnavailable, server, err)
	}
	l.nc = nc
	l.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(opts.Timeout),
		jetstream.WithDefaultTimeout(opts.Timeout))
	if err == nil {
		err = l.ensureStream(ctx)
	}
	if err == nil {
		err = l.learnLegacy(ctx)
	}
	if err == nil {
		err = l.ensureIDStream(ctx)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	if opts.MaxReserved > 0 {
		l.trimKick = make(chan struct{}, 1)
		l.trimDone = make(chan struct{})
		go l.trimmer()
	}
	return l, nil
}

// ensureStream creates or updates the stream and learns its creation time.
// Updating a stream of the previous version adds the indexed subjects and
// keeps its messages.
func (l *Log) ensureStream(ctx context.Context) error {
	cfg := jetstream.StreamConfig{
		Name:        l.name,
		Description: "ssehub event log",
		Subjects:    l.streamSubjects(),
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     -1,
		MaxAge:      max(l.opts.MaxAge, 0),
		Replicas:    l.opts.Replicas,
		// Direct gets may be answered by a replica that lags: only with one.
		AllowDirect: l.opts.Replicas == 1,
	}
	switch {
	case l.opts.MaxEvents > 0 && l.opts.MaxReserved > 0:
		// The budgets are kept by trimming (reserved.go); the stream's
		// limit is a backstop for when trimming falls behind or fails.
		cfg.MaxMsgs = backstop(l.opts.MaxEvents, l.opts.MaxReserved)
	case l.opts.MaxEvents > 0:
		cfg.MaxMsgs = int64(l.opts.MaxEvents)
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	s, err := l.js.CreateOrUpdateStream(opCtx, cfg)
	for try := 1; try < 5 && isAPIError(err, errCodeStreamStoreFailed); try++ {
		// nats-server 2.9 sometimes fails to create a stream's store while
		// another stream is created or deleted; trying again works.
		l.logger.Debug("natslog: creating the stream's store failed; trying again", "err", err)
		select {
		case <-opCtx.Done():
		case <-time.After(time.Duration(try) * 20 * time.Millisecond):
		}
		s, err = l.js.CreateOrUpdateStream(opCtx, cfg)
	}
	if err != nil {
		return l.fail(ctx, "create stream", err)
	}
	info := s.CachedInfo()
	if info == nil || info.Created.IsZero() {
		// nats-server 2.9 answers some concurrent creates without the
		// creation time: ask for it.
		if info, err = s.Info(opCtx); err != nil {
			return l.fail(ctx, "create stream", err)
		}
	}
	if info.Created.IsZero() {
		return fmt.Errorf("natslog: stream %s reports no creation time", l.name)
	}
	l.stream = s
	l.setInfo(info)
	return nil
}

// setInfo learns the stream's creation time, which sets the offset from
// sequences to positions, and its last sequence.
func (l *Log) setInfo(info *jetstream.StreamInfo) {
	if info.Created.IsZero() {
		return // not reported: keep what we know
	}
	offset := uint64(info.Created.UnixMicro())
	if old := l.offset.Swap(offset); old != offset {
		if old != 0 {
			l.logger.Warn("natslog: the stream was created again; positions continue from its creation time", "old_offset", old, "offset", offset)
		}
		l.maxSeq.Store(info.State.LastSeq)
	}
	l.observe(info.State.LastSeq)
}

// refresh reads the stream's info to learn whether it was created again.
func (l *Log) refresh(ctx context.Context) error {
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	info, err := l.stream.Info(opCtx)
	if err != nil {
		return err
	}
	l.setInfo(info)
	return nil
}

// observe records that stream sequence seq exists.
func (l *Log) observe(seq uint64) {
	for {
		m := l.maxSeq.Load()
		if seq <= m || l.maxSeq.CompareAndSwap(m, seq) {
			return
		}
	}
}

// pos returns the position of stream sequence seq.
func (l *Log) pos(seq uint64) uint64 { return seq + l.offset.Load() }

// seqAfter returns the stream sequence of position after: 0 when it is
// before the stream's first possible position.
func (l *Log) seqAfter(after uint64) uint64 {
	if offset := l.offset.Load(); after > offset {
		return after - offset
	}
	return 0
}

// Append implements ssehub.Log. It publishes the events in order without
// waiting in between and then waits for all acknowledgements; Time is set to
// the current time where zero. Safe for concurrent use; concurrent appends
// are pipelined on one connection and ordered by the stream.
func (l *Log) Append(ctx context.Context, events ...*ssehub.Event) (err error) {
	if err := eventlog.Usable(ctx, l.closing); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	for i, ev := range events {
		if ev == nil {
			return fmt.Errorf("%w: natslog: event %d is nil", ssehub.ErrInvalid, i)
		}
	}
	if id, dup := eventlog.DuplicateID(events); dup {
		return fmt.Errorf("%w: id %q is given to two events of the batch", ssehub.ErrDuplicateID, id)
	}
	if err := l.connected(); err != nil {
		return l.fail(ctx, "append", err)
	}
	held, err := l.reserve(ctx, events)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			l.release(ctx, held)
		} else if len(held) > 0 {
			l.confirm(ctx, held, events)
		}
	}()
	now := l.clock.Now()
	// Every sequence seen so far was stored before these events, so their
	// sequences must be higher: if not, the stream was created again.
	seen := l.maxSeq.Load()
	var one [1]jetstream.PubAckFuture
	futures := one[:0]
	if len(events) > 1 {
		futures = make([]jetstream.PubAckFuture, 0, len(events))
	}
	reserved := 0 // events on the reserved budget
	for _, ev := range events {
		c := *ev
		c.Pos = 0
		if c.Time.IsZero() {
			c.Time = now
		}
		data, _ := c.MarshalBinary()
		subject, res := l.eventSubject(ev)
		if res {
			reserved++
		}
		f, err := l.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: data})
		if err != nil {
			return l.fail(ctx, "append", err)
		}
		futures = append(futures, f)
	}
	timer := time.NewTimer(l.opts.Timeout)
	defer timer.Stop()
	var seqs [1]uint64
	pos := seqs[:0] // stream sequences
	if len(events) > 1 {
		pos = make([]uint64, 0, len(events))
	}
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			pos = append(pos, ack.Sequence)
		case err := <-f.Err():
			return l.fail(ctx, "append", err)
		case <-ctx.Done():
			return l.fail(ctx, "append", ctx.Err())
		case <-timer.C:
			return l.fail(ctx, "append", context.DeadlineExceeded)
		case <-l.closing.Done():
			return l.fail(ctx, "append", ssehub.ErrClosed)
		}
	}
	if pos[0] <= seen {
		if err := l.refresh(ctx); err != nil {
			return l.fail(ctx, "append", err)
		}
	}
	l.observe(pos[len(pos)-1])
	offset := l.offset.Load()
	for i, ev := range events {
		ev.Pos = pos[i] + offset
		if ev.Time.IsZero() {
			ev.Time = now
		}
	}
	if l.opts.MaxReserved > 0 {
		l.counted(ctx, reserved, len(events)-reserved)
	}
	return nil
}

// Read implements ssehub.Log (see the package documentation for how). A
// limit of zero or less returns no events. Safe for concurrent use.
func (l *Log) Read(ctx context.Context, after uint64, limit int) ([]*ssehub.Event, error) {
	if err := eventlog.Usable(ctx, l.closing); err != nil {
		return nil, err
	}
	if limit <= 0 || after == ^uint64(0) {
		return nil, nil
	}
	if err := l.connected(); err != nil {
		return nil, l.fail(ctx, "read", err)
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	c := l.cursor(allSubjects, l.seqAfter(after)+1, 0, limit)
	defer c.close()
	var events []*ssehub.Event
	for len(events) < limit && !c.done {
		if err := c.fill(opCtx, limit-len(events)); err != nil {
			return nil, l.fail(ctx, "read", err)
		}
		events = append(events, c.buf...)
	}
	return events, nil
}

// errLost reports messages lost between JetStream and this client.
var errLost = errors.New("natslog: messages lost in transit")

// Bounds implements ssehub.Log from the stream's state: the positions of
// its first sequence (0 when it holds no message) and of its last (0 when
// nothing was ever appended). With MaxReserved, first is that of the
// oldest application event instead (see ssehub.ReservedRetention), one
// (direct) get more. Safe for concurrent use.
func (l *Log) Bounds(ctx context.Context) (first, last uint64, err error) {
	if err := eventlog.Usable(ctx, l.closing); err != nil {
		return 0, 0, err
	}
	info, err := l.info(ctx, "bounds")
	if err != nil {
		return 0, 0, err
	}
	st := info.State
	offset := l.offset.Load()
	if st.Msgs > 0 {
		firstSeq := st.FirstSeq
		if l.opts.MaxReserved > 0 {
			if firstSeq, err = l.firstApp(ctx, firstSeq); err != nil {
				return 0, 0, l.fail(ctx, "bounds", err)
			}
		}
		first = firstSeq + offset
	}
	if st.LastSeq > 0 {
		last = st.LastSeq + offset
	}
	return first, last, nil
}

// Ping implements ssehub.Pinger: it reports whether the stream answers
// within the timeout. Safe for concurrent use.
func (l *Log) Ping(ctx context.Context) error {
	if l.closing.Err() != nil {
		return ssehub.ErrClosed
	}
	_, err := l.info(ctx, "ping")
	return err
}

// info asks the stream for its state.
func (l *Log) info(ctx context.Context, op string) (*jetstream.StreamInfo, error) {
	if err := l.connected(); err != nil {
		return nil, l.fail(ctx, op, err)
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	info, err := l.stream.Info(opCtx)
	if err != nil {
		return nil, l.fail(ctx, op, err)
	}
	l.setInfo(info)
	return info, nil
}

// Close implements ssehub.Log: pending appends fail with ssehub.ErrClosed,
// running Tails return it, their consumers are deleted and the connection
// is closed. It leaves the stream in place. Closing twice is a no-op. Safe
// for concurrent use.
func (l *Log) Close() error {
	l.once.Do(func() {
		// Take the tails' consumers first: from now on a tail deletes no
		// consumer and keeps none (see track).
		l.mu.Lock()
		names := make([]string, 0, len(l.consumers))
		for name := range l.consumers {
			names = append(names, name)
		}
		l.consumers = nil
		l.mu.Unlock()
		l.close()
		if l.trimDone != nil {
			<-l.trimDone // its purge ends with l.closing
		}
		for _, name := range names {
			l.deleteConsumer(name)
		}
		l.nc.Close()
	})
	return nil
}

// connected returns an error unless the client is connected: while it
// reconnects, requests would only wait for their timeout.
func (l *Log) connected() error {
	if st := l.nc.Status(); st != nats.CONNECTED {
		if st == nats.CLOSED && l.closing.Err() != nil {
			return ssehub.ErrClosed
		}
		return fmt.Errorf("not connected (%s)", strings.ToLower(st.String()))
	}
	return nil
}

// fail turns an error from NATS into the error a caller sees: ErrClosed
// after Close, the context's error when the caller's context ended,
// ErrTooLarge for an event over the server's limits, and otherwise
// ErrUnavailable naming the server.
func (l *Log) fail(ctx context.Context, op string, err error) error {
	switch {
	case l.closing.Err() != nil || errors.Is(err, ssehub.ErrClosed):
		return fmt.Errorf("natslog: %s: %w", op, ssehub.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("natslog: %s: %w", op, ctx.Err())
	case errors.Is(err, nats.ErrMaxPayload), isAPIError(err, jetstream.JSErrCodeStreamMessageExceedsMaximum):
		return fmt.Errorf("%w: natslog: %s: %w", ssehub.ErrTooLarge, op, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fmt.Errorf("%w: natslog: %s: nats at %s did not answer within %v", ssehub.ErrUnavailable, op, l.server, l.opts.Timeout)
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%w: natslog: %s: nats at %s: stream %s does not answer (JetStream down, or the stream was deleted): %w", ssehub.ErrUnavailable, op, l.server, l.name, err)
	default:
		return fmt.Errorf("%w: natslog: %s: nats at %s: %w", ssehub.ErrUnavailable, op, l.server, err)
	}
}

func isAPIError(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// decode returns the event stored in a message at stream sequence seq, or
// nil (logged) when it does not decode.
func (l *Log) decode(data []byte, seq uint64) *ssehub.Event {
	ev := new(ssehub.Event)
	if err := ev.UnmarshalBinary(data); err != nil {
		l.logger.Error("natslog: skipped an undecodable message", "seq", seq, "pos", l.pos(seq), "err", err)
		return nil
	}
	ev.Pos = l.pos(seq)
	return ev
}

// redact returns the server URL(s) without credentials.
func redact(servers string) string {
	parts := strings.Split(servers, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = nil
			p = u.String()
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
