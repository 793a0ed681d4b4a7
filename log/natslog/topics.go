package natslog

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// The topic index is the subject of each event's message (see the package
// documentation): JetStream keeps per-subject state in its store, so a get
// or a consumer filtered on one subject reads only that subject's messages.

var _ ssehub.TopicIndex = (*Log)(nil)

const (
	allSubjects = ">"     // a get's filter for every subject of the stream
	maxFetch    = 1024    // most messages one no-wait pull asks for
	sparseSpan  = 256     // see cursor.sparse
	scanBytes   = 1 << 20 // about the most one pull of a scanned subject returns
	topicToken  = ".t."   // <Subject>.t.<16 hex digits of the topic's hash>
	multiToken  = ".m"    // <Subject>.m: events with several distinct topics
)

// topicSubject returns the subject of application events whose only
// topic is topic.
func (l *Log) topicSubject(topic string) string { return l.hashSubject(l.subject, topic) }

// hashSubject returns <base>.t.<16 hex digits of topic's hash>.
func (l *Log) hashSubject(base, topic string) string {
	var buf [128]byte
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], eventlog.TopicHash(topic))
	b := append(append(buf[:0], base...), topicToken...)
	return string(hex.AppendEncode(b, h[:]))
}

// eventSubject returns the subject ev is published on and whether it is
// kept on the reserved budget (see reserved.go): its topic's subject when
// it has one distinct topic (or none: the empty topic's), else
// <Subject>.m; for a reserved event the same under <Subject>-r.
func (l *Log) eventSubject(ev *ssehub.Event) (subject string, reserved bool) {
	topics := eventlog.DistinctTopics(ev)
	if l.reservedClass(topics) {
		return l.reservedSubject(topics), true
	}
	switch len(topics) {
	case 0:
		return l.topicSubject(""), false
	case 1:
		return l.topicSubject(topics[0]), false
	default:
		return l.subject + multiToken, false
	}
}

// streamSubjects are the subjects the stream captures: the literal subject
// the previous version published every event on, and the indexed ones.
// With MaxReserved, also the reserved subjects.
func (l *Log) streamSubjects() []string {
	subjects := []string{l.subject, l.subject + topicToken + "*", l.subject + multiToken}
	if l.opts.MaxReserved > 0 {
		subjects = append(subjects, l.reservedBase()+topicToken+"*", l.reservedBase()+multiToken)
	}
	return subjects
}

// learnLegacy finds the last message on the literal subject, written by
// the previous version: reads by topic scan that subject up to it. It asks
// the stream's state first (an API request): a stream with no such message
// — every stream this version created — needs no get, which JetStream 2.9
// may leave unanswered for a moment after the stream was created or
// updated (its direct-get responders start asynchronously).
func (l *Log) learnLegacy(ctx context.Context) error {
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	info, err := l.stream.Info(opCtx, jetstream.WithSubjectFilter(l.subject))
	if err != nil {
		return l.fail(ctx, "open: look for events of the previous version", err)
	}
	if info.State.Subjects[l.subject] == 0 {
		return nil
	}
	msg, err := l.stream.GetLastMsgForSubject(opCtx, l.subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil
	case err != nil:
		return l.fail(ctx, "open: look for events of the previous version", err)
	}
	l.noteLegacy(msg.Sequence, false)
	return nil
}

// noteLegacy records that stream sequence seq is a message on the literal
// subject. The tail calls it (warn set) for each one it sees: only a node
// of the previous version still publishes there.
func (l *Log) noteLegacy(seq uint64, warn bool) {
	for {
		m := l.legacyLast.Load()
		if seq <= m {
			return
		}
		if l.legacyLast.CompareAndSwap(m, seq) {
			break
		}
	}
	if warn && l.legacyWarned.CompareAndSwap(false, true) {
		l.logger.Warn("natslog: a node of the previous version publishes to the stream; upgrade every node (its nodes replay only their own events)", "subject", l.subject, "seq", seq)
	}
}

// ReadTopics implements ssehub.TopicIndex. It reads the stream's state
// (the newest sequence, through which a complete answer is complete), then
// the subjects of q's topics, <Subject>.m and, when the read starts at or
// before the last event of the previous version, the literal subject, each
// with a cursor; it merges them by position into a eventlog.Collector. With
// no topics it reads every subject: a plain read bounded in bytes. Safe for
// concurrent use.
func (l *Log) ReadTopics(ctx context.Context, q ssehub.TopicQuery) ([]*ssehub.Event, uint64, error) {
	if err := eventlog.Usable(ctx, l.closing); err != nil {
		return nil, 0, err
	}
	// Newest first: every message up to it is stored before the reads
	// start, so they find it; later ones may be missed, so they are not
	// claimed.
	info, err := l.info(ctx, "read topics")
	if err != nil {
		return nil, 0, err
	}
	newest := info.State.LastSeq
	var newestPos uint64
	if newest > 0 {
		newestPos = l.pos(newest)
	}
	coll := eventlog.NewCollector(q)
	// Start no earlier than the first retained message, so that a gap left
	// by retention does not make a subject look sparse (see cursor.sparse).
	start, stop := max(l.seqAfter(q.After)+1, info.State.FirstSeq), newest
	if q.Until != 0 {
		stop = min(stop, l.seqAfter(q.Until))
	}
	if start > stop || q.After == ^uint64(0) {
		events, through := coll.Result(newestPos)
		return events, through, nil
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	limit := max(q.Limit, 1)
	var filters []string
	anyReserved := false // a reserved topic: read the reserved subjects too
	if len(q.Topics) == 0 {
		filters = []string{allSubjects}
	} else {
		add := func(s string) {
			if !slices.Contains(filters, s) {
				filters = append(filters, s)
			}
		}
		for _, topic := range q.Topics {
			// A reserved topic's events written before MaxReserved was
			// set are on the application subjects.
			add(l.topicSubject(topic))
			if l.opts.MaxReserved > 0 && reservedTopic(topic) {
				add(l.hashSubject(l.reservedBase(), topic))
				anyReserved = true
			}
		}
	}
	cursors := make([]*cursor, 0, len(filters)+3)
	for _, f := range filters {
		cursors = append(cursors, l.cursor(f, start, stop, limit))
	}
	if len(q.Topics) > 0 {
		// Subjects holding other topics' events too, scanned in chunks.
		cursors = append(cursors, l.scanCursor(l.subject+multiToken, start, stop))
		if anyReserved {
			cursors = append(cursors, l.scanCursor(l.reservedBase()+multiToken, start, stop))
		}
		if start <= l.legacyLast.Load() {
			cursors = append(cursors, l.scanCursor(l.subject, start, stop))
		}
	}
	defer func() {
		for _, c := range cursors {
			c.close()
		}
	}()
	// Merge: always offer the smallest next event of all cursors.
	var selected, selBytes int // of the events offered that q selects
	for {
		var best *cursor
		for _, c := range cursors {
			for c.i >= len(c.buf) && !c.done {
				want := max(limit-selected, 1)
				if c.scan {
					want = scanBytes / c.avgSize()
				}
				if q.MaxBytes > 0 {
					want = min(want, max(q.MaxBytes-selBytes, 0)/c.avgSize()+1)
				}
				if err := c.fill(opCtx, max(want, 1)); err != nil {
					return nil, 0, l.fail(ctx, "read topics", err)
				}
			}
			if c.i < len(c.buf) && (best == nil || c.buf[c.i].Pos < best.buf[best.i].Pos) {
				best = c
			}
		}
		if best == nil {
			break
		}
		e := best.buf[best.i]
		best.i++
		if eventlog.Selects(q.Topics, e) {
			selected++
			selBytes += e.Size()
		}
		if !coll.Offer(e) {
			break
		}
	}
	events, through := coll.Result(newestPos)
	return events, through, nil
}

// A cursor reads the messages on one subject filter in stream order, from
// sequence next up to stop (0: no bound). Its first message, and all of
// them when the reader wants at most smallRead, come by (direct) get with
// next_by_subj: one round trip each, and one to learn there is nothing.
// Larger reads continue with an ephemeral consumer filtered on the subject
// and no-wait pulls: a few round trips for any number of messages. Not safe
// for concurrent use.
type cursor struct {
	l      *Log
	filter string // a subject, or allSubjects
	first  uint64 // stream sequence the cursor started at
	next   uint64 // stream sequence to read from
	stop   uint64 // last stream sequence to read; 0: no bound
	limit  int    // events the reader wants in all
	scan   bool   // its events are mostly of other topics: read in chunks

	read  int // messages read
	bytes int // size of the events read (for the number to pull)
	done  bool

	buf []*ssehub.Event // the events of the last fill
	i   int             // the next event of buf to hand out

	cons jetstream.Consumer // once created; deleted by close
	cseq uint64             // consumer sequence of its last message
}

// cursor returns a cursor on filter from stream sequence start to stop (0:
// no bound) for a reader that wants limit events.
func (l *Log) cursor(filter string, start, stop uint64, limit int) *cursor {
	return &cursor{l: l, filter: filter, first: start, next: start, stop: stop, limit: limit}
}

// scanCursor returns a cursor on a subject holding events of any topic,
// which it reads in chunks of about scanBytes.
func (l *Log) scanCursor(subject string, start, stop uint64) *cursor {
	c := l.cursor(subject, start, stop, maxFetch)
	c.scan = true
	return c
}

// avgSize returns the average size of the events read so far (at least 1;
// 1 before the first).
func (c *cursor) avgSize() int { return max(c.bytes/max(c.read, 1), 1) }

// fill replaces c.buf with the next messages' events: at least one message
// unless none is left (c.done), at most want (fewer events when some do not
// decode).
func (c *cursor) fill(ctx context.Context, want int) error {
	c.buf, c.i = c.buf[:0], 0
	if c.cons == nil && (c.read == 0 || c.limit <= smallRead || c.sparse()) {
		msg, err := c.l.stream.GetMsg(ctx, c.next, jetstream.WithGetMsgSubject(c.filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			c.done = true
			return nil
		}
		if err != nil {
			return err
		}
		c.take(msg.Data, msg.Sequence)
		return nil
	}
	if c.cons == nil {
		cfg := jetstream.ConsumerConfig{
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       c.next,
			AckPolicy:         jetstream.AckNonePolicy,
			MemoryStorage:     true,
			Replicas:          1,
			InactiveThreshold: 10 * time.Second, // cleans up if close fails
		}
		if c.filter != allSubjects {
			cfg.FilterSubject = c.filter
		}
		cons, err := c.l.js.CreateConsumer(ctx, c.l.name, cfg)
		if err != nil {
			return err
		}
		c.cons = cons
	}
	batch, err := c.cons.FetchNoWait(min(want, maxFetch))
	if err != nil {
		return err
	}
	got := 0
	for msg := range batch.Messages() {
		if c.done {
			continue // past stop: drain
		}
		meta, err := msg.Metadata()
		if err != nil {
			return err
		}
		if meta.Sequence.Consumer != c.cseq+1 {
			return errLost
		}
		c.cseq = meta.Sequence.Consumer
		got++
		c.take(msg.Data(), meta.Sequence.Stream)
		if meta.NumPending == 0 {
			c.done = true // the last message on the subject when it was sent
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return err
	}
	if got == 0 {
		c.done = true
	}
	return nil
}

// take adds the message at stream sequence seq to c.buf, unless it lies
// beyond c.stop (then the cursor is done).
func (c *cursor) take(data []byte, seq uint64) {
	c.l.observe(seq)
	if c.stop != 0 && seq > c.stop {
		c.done = true
		return
	}
	c.next = seq + 1
	c.read++
	if ev := c.l.decode(data, seq); ev != nil {
		c.buf = append(c.buf, ev)
		c.bytes += ev.Size()
	}
	if c.stop != 0 && seq >= c.stop {
		c.done = true
	}
}

// sparse reports whether the messages read so far lie more than sparseSpan
// sequences apart on average. JetStream 2.9 finds a subject's next message
// by scanning the block from the start sequence, and a filtered consumer
// costs a further scan (its pending count) and three round trips: for a
// thin subject, gets are cheaper; for a dense one, a consumer's single pull
// saves a round trip per message.
// With every subject, all messages match: a gap is messages removed.
func (c *cursor) sparse() bool {
	return c.filter != allSubjects && c.next-c.first > sparseSpan*uint64(c.read)
}

// close deletes the cursor's consumer, if it made one.
func (c *cursor) close() {
	if c.cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.l.opts.Timeout)
	defer cancel()
	c.l.js.DeleteConsumer(ctx, c.l.name, c.cons.CachedInfo().Name)
	c.cons = nil
}
