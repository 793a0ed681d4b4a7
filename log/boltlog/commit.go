package boltlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// committer is the state owned by the committer goroutine (run).
type committer struct {
	firstTime time.Time // Time of the oldest retained event, when there is one
	lastTime  time.Time // newest Time assigned or found at Open
	trimMore  bool      // retention left expired events for the next transaction
	fromClock bool      // no commit since Open: positions start at the clock (see commit)
	count     int       // application events retained (MaxEvents counts events: positions jump at Open)

	rfirstTime time.Time // Time of the oldest retained reserved event (reservedOn)
	rcount     int       // reserved events retained (reservedOn)

	batch   []*request
	keys    []byte // arena for the keys of one transaction
	tkeys   []byte // topic index keys of the events not yet in the index (pending)
	tevents int    // how many events tkeys holds the keys of
	tbytes  int    // and their size
	tbuf    []byte // the topic index keys of an event retention deletes
	vals    []byte // arena for the values of one transaction
	setTime []bool // which events of the batch got their Time from us
}

// afterCommit, when not nil, is called by the committer after a commit
// of events, before readers are told of it. For tests.
var afterCommit func()

// maxArena is the most arena memory kept between transactions.
const maxArena = 4 << 20

// run is the committer goroutine: it owns all writes to the bbolt file. It
// exits when stop is closed, failing what is still queued.
func (l *Log) run() {
	defer close(l.done)
	c := &l.c
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	delay := time.NewTimer(time.Hour) // CommitDelay's
	delay.Stop()
	c.trimMore = l.trimDue(time.Now()) // retention may have shrunk since the last run
	l.armTimer(timer)
	for {
		var r *request
		if c.trimMore {
			select {
			case r = <-l.reqs:
			case <-l.stop:
				l.drain()
				return
			default:
				l.trimOnly() // when idle, finish the trimming
				l.armTimer(timer)
				continue
			}
		} else {
			select {
			case r = <-l.reqs:
			case <-l.stop:
				l.drain()
				return
			case <-timer.C:
				l.trimOnly()
				l.armTimer(timer)
				continue
			}
		}
		// Group commit: take everything that queued up while the previous
		// transaction was syncing.
		batch := append(c.batch[:0], r)
		n := len(r.events)
		var wait <-chan time.Time // with CommitDelay: until the batch's deadline
		if l.opts.CommitDelay > 0 {
			delay.Reset(l.opts.CommitDelay) // (Go 1.23 timers: no stale tick)
			wait = delay.C
		}
	gather:
		for n < maxBatchEvents {
			if wait == nil { // take what queued while the last commit synced
				select {
				case r = <-l.reqs:
				default:
					break gather
				}
			} else { // wait for more, up to the delay
				select {
				case r = <-l.reqs:
				case <-wait:
					break gather
				case <-l.stop:
					break gather // commit what was accepted; the loop then drains
				}
			}
			batch = append(batch, r)
			n += len(r.events)
		}
		delay.Stop()
		err := l.commit(batch, n)
		for _, r := range batch {
			rerr := err
			if rerr == nil {
				rerr = r.err // refused alone (a duplicate id)
			}
			r.err = nil
			r.done <- rerr
		}
		clear(batch)
		c.batch = batch[:0]
		l.armTimer(timer)
	}
}

// drain fails every queued request. Called once no Append can send.
func (l *Log) drain() {
	for {
		select {
		case r := <-l.reqs:
			r.done <- ssehub.ErrClosed
		default:
			return
		}
	}
}

// armTimer sets timer to fire when the oldest event of either class
// expires (plus a slack, so expired events are deleted in batches), or
// stops it.
func (l *Log) armTimer(timer *time.Timer) {
	oldest := l.c.firstTime
	if l.reservedOn && l.rfirst != 0 && (l.first == 0 || l.c.rfirstTime.Before(oldest)) {
		oldest = l.c.rfirstTime
	}
	if l.opts.MaxAge <= 0 || l.emptyLocked() || l.c.trimMore {
		timer.Stop()
		return
	}
	slack := min(l.opts.MaxAge/16, time.Second)
	timer.Reset(time.Until(oldest.Add(l.opts.MaxAge + slack)))
}

// commit writes the n events of batch in one transaction, with retention,
// and publishes them to readers. On error no event is acknowledged: their
// Pos is reset to zero and the Times it set to zero again.
func (l *Log) commit(batch []*request, n int) (err error) {
	c := &l.c
	now := time.Unix(0, time.Now().UnixNano()) // as it will be read back
	if cap(c.keys) < 8*n {
		c.keys = make([]byte, 0, 8*n)
	}
	c.keys, c.vals = c.keys[:0], c.vals[:0]
	tkeys0, tevents0, tbytes0 := len(c.tkeys), c.tevents, c.tbytes // to undo on error
	c.setTime = c.setTime[:0]
	lastTime := c.lastTime
	var seq, first, rfirst, rlast uint64
	var firstTime, rfirstTime time.Time
	var jumped jump // the counter's jump to the clock, in the first commit since Open
	written, rwritten := 0, 0
	// l.trimmed and the reserved fields: only the committer writes them.
	kept := retained{count: c.count, trimmed: l.trimmed}
	rkept := retained{first: l.rfirst, firstTime: c.rfirstTime, count: c.rcount, trimmed: l.rtrimmed}
	flush := false
	var raised restoreFirst
	defer func() {
		if p := recover(); p != nil {
			err = corruptError(l.file, fmt.Errorf("damaged: bbolt panicked while writing: %v", p))
		}
		if err != nil {
			raised.undo(l)
			c.tkeys, c.tevents, c.tbytes = c.tkeys[:tkeys0], tevents0, tbytes0
			i := 0
			for _, r := range batch {
				for _, e := range r.events {
					e.Pos = 0
					if i < len(c.setTime) && c.setTime[i] {
						e.Time = time.Time{}
					}
					i++
				}
			}
			l.logger.Error("boltlog: commit failed", "path", l.file, "events", n, "err", err)
			if !errors.Is(err, ErrCorrupt) {
				err = fmt.Errorf("%w: boltlog: commit to %s: %w", ssehub.ErrUnavailable, l.file, err)
			}
		}
	}()
	err = l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		b.FillPercent = 1 // keys only ever grow: pack pages full
		ids, topics := tx.Bucket(idsBucketName), tx.Bucket(topicsBucketName)
		var rb *bolt.Bucket // with Options.MaxReserved: the reserved events' bucket
		if l.reservedOn {
			rb = tx.Bucket(reservedBucketName)
			rb.FillPercent = 1
		}
		seq0 := b.Sequence()
		seq = seq0
		if c.fromClock {
			// The first commit since Open gives positions from the Unix
			// time in µs on, if the counter is below it (see package doc):
			// a new history, and one whose newest commits were lost (bbolt
			// fell back to its older meta page after a torn write, or an
			// old copy was restored). Their events were acknowledged, and
			// clients may hold their ids; the clock is past them.
			seq = max(seq, uint64(max(now.UnixMicro(), 1))-1)
			if seq > seq0 {
				jumped = jump{from: seq0, to: seq + 1}
			}
		}
		first, firstTime = l.first, c.firstTime
		rfirst, rfirstTime, rlast = l.rfirst, c.rfirstTime, l.rlast
		for _, r := range batch {
			if r.err = checkIDs(ids, r.events); r.err != nil {
				for range r.events { // keep setTime aligned with the events
					c.setTime = append(c.setTime, false)
				}
				continue
			}
			written += len(r.events)
			for _, e := range r.events {
				seq++
				e.Pos = seq
				set := e.Time.IsZero()
				if set {
					lastTime = eventlog.NextTime(lastTime, now)
					e.Time = lastTime
				}
				c.setTime = append(c.setTime, set)
				dst := b
				if rb != nil && e.Reserved() {
					dst = rb
					rwritten++
					if rfirst == 0 {
						rfirst, rfirstTime = seq, e.Time
					}
					rlast = seq
				} else if first == 0 {
					first, firstTime = seq, e.Time
				}
				c.keys = binary.BigEndian.AppendUint64(c.keys, seq)
				key := c.keys[len(c.keys)-8:]
				start := len(c.vals)
				c.vals = appendRecord(c.vals, e)
				// bbolt keeps the slices until the commit: the arenas are
				// not overwritten before then (growing copies, never reuses).
				if err := dst.Put(key, c.vals[start:len(c.vals):len(c.vals)]); err != nil {
					return err
				}
				if e.ID != "" {
					if err := ids.Put([]byte(e.ID), key); err != nil {
						return err
					}
				}
				c.tkeys = appendTopicKeys(c.tkeys, e, seq)
				c.tevents++
				c.tbytes += e.Size()
			}
		}
		if written == 0 { // every request was refused: nothing to write
			seq = seq0
			return nil
		}
		if err := b.SetSequence(seq); err != nil {
			return err
		}
		if jumped.to != 0 {
			k := binary.BigEndian.AppendUint64(nil, jumped.to)
			if err := tx.Bucket(jumpsBucketName).Put(k, binary.BigEndian.AppendUint64(nil, jumped.from)); err != nil {
				return err
			}
		}
		if flush = c.tevents >= l.indexEvery || c.tbytes >= maxPendingBytes; flush {
			if err := writeTopicKeys(topics, c.tkeys, func(key []byte) bool { return l.gone(tx, key) }); err != nil {
				return err
			}
			if err := topics.SetSequence(seq); err != nil { // indexed through seq
				return err
			}
		}
		var err error
		kept.first, kept.firstTime, kept.count = first, firstTime, c.count+written-rwritten
		if kept, err = l.trim(b, ids, kept, l.opts.MaxEvents, now); err != nil {
			return err
		}
		if rb != nil {
			rkept.first, rkept.firstTime, rkept.count = rfirst, rfirstTime, c.rcount+rwritten
			if rkept, err = l.trim(rb, rb, rkept, l.opts.MaxReserved, now); err != nil {
				return err
			}
		}
		raised = l.raiseFirst(kept, rkept)
		return nil
	})
	if err != nil {
		return err
	}
	if afterCommit != nil {
		afterCommit()
	}
	if cap(c.vals) > maxArena {
		c.vals = nil
	}
	if flush {
		c.tkeys, c.tevents, c.tbytes = c.tkeys[:0], 0, 0
		if cap(c.tkeys) > maxArena {
			c.tkeys = nil
		}
	}
	if written > 0 {
		first, firstTime, c.count, c.trimMore = kept.first, kept.firstTime, kept.count, kept.more || rkept.more
		rfirst, rfirstTime, c.rcount = rkept.first, rkept.firstTime, rkept.count
	}
	c.firstTime, c.lastTime, c.rfirstTime = firstTime, lastTime, rfirstTime
	if written > 0 {
		c.fromClock = false
	}
	l.mu.Lock()
	if written > 0 && jumped.to != 0 {
		l.jumps = append(l.jumps, jumped)
	}
	if flush {
		l.pending.clear()
		l.indexed = seq
	} else {
		for _, r := range batch {
			if r.err == nil {
				l.pending.add(r.events)
			}
		}
	}
	if l.cacheN > 0 {
		for _, r := range batch {
			if r.err != nil {
				continue
			}
			for _, e := range r.events {
				l.cache.Push(e)
			}
		}
		for l.cache.Len() > l.cacheN {
			l.cache.PopFront()
		}
	}
	l.first, l.last, l.trimmed = first, seq, kept.trimmed
	if written > 0 {
		l.rfirst, l.rlast, l.rtrimmed = rfirst, rlast, rkept.trimmed
	}
	l.dropCachedLocked()
	l.mu.Unlock()
	l.notify.Notify()
	return nil
}

// dropCachedLocked removes cached events that retention deleted from the
// cache's oldest end; deleted events after an older retained one (a
// reserved event older than the application events kept, or the other
// way round) stay until they reach it, and readers skip them
// (deletedLocked).
func (l *Log) dropCachedLocked() {
	for f := l.cache.Front(); f != nil && l.deletedLocked(f); f = l.cache.Front() {
		l.cache.PopFront()
	}
}

// gone reports whether retention deleted the event at key while its topic
// index keys waited in memory (see writeTopicKeys). Called by the
// committer, inside tx.
func (l *Log) gone(tx *bolt.Tx, key []byte) bool {
	pos := binary.BigEndian.Uint64(key)
	if pos > l.trimmed && pos > l.rtrimmed {
		return false
	}
	if !l.reservedOn {
		return pos <= l.trimmed // one class, deleted from its oldest end
	}
	return l.newGetter(tx).get(key) == nil
}

// retained is what retention leaves of one class of the history (the
// application events, or the reserved ones with Options.MaxReserved): the
// oldest event's position and time (0 and zero when none), how many
// events, the newest position it ever deleted, and whether more is due.
type retained struct {
	first     uint64
	firstTime time.Time
	count     int
	trimmed   uint64
	more      bool
}

// trim deletes the oldest events of b beyond budget (MaxEvents or
// MaxReserved, when positive) and older than MaxAge, with their id and
// topic index entries, at most maxTrimPerTx of them, and returns what is
// retained then (r is what was). It costs nothing when the oldest event is
// within both limits. Budgets count events, not positions: positions jump
// at the first commit after Open (see commit). The newest position deleted
// is kept in the sequence of bucket seq: the id index's for the
// application events (see Bounds), the reserved bucket's own for the
// reserved ones (ReservedRemoved).
func (l *Log) trim(b, seq *bolt.Bucket, r retained, budget int, now time.Time) (retained, error) {
	r.more = false
	if r.first == 0 {
		return retained{trimmed: r.trimmed}, nil
	}
	var cutoff time.Time
	if l.opts.MaxAge > 0 {
		cutoff = now.Add(-l.opts.MaxAge)
	}
	due := func(r retained) bool {
		return (budget > 0 && r.count > budget) || (l.opts.MaxAge > 0 && r.firstTime.Before(cutoff))
	}
	if !due(r) {
		return r, nil
	}
	before := r.trimmed
	r, err := l.deleteOldest(b, r, due)
	if err == nil && r.trimmed != before {
		err = seq.SetSequence(r.trimmed)
	}
	if err != nil {
		return retained{}, err
	}
	return r, nil
}

// deleteOldest deletes the oldest events of b while due (called with r
// holding the oldest remaining event's position and time), at most
// maxTrimPerTx of them, for trim.
func (l *Log) deleteOldest(b *bolt.Bucket, r retained, due func(retained) bool) (retained, error) {
	ids, topics := b.Tx().Bucket(idsBucketName), b.Tx().Bucket(topicsBucketName)
	cur := b.Cursor()
	for deleted := 0; ; deleted++ {
		k, v := cur.First()
		if k == nil {
			r.first, r.firstTime, r.count = 0, time.Time{}, 0
			return r, nil
		}
		pos := binary.BigEndian.Uint64(k)
		var t time.Time
		damaged := false
		if l.opts.MaxAge > 0 {
			var e ssehub.Event
			err := l.decodeInto(&e, k, v)
			if damaged = errors.As(err, new(*ssehub.DamagedError)); err != nil && !damaged {
				return retained{}, err
			}
			t = e.Time // zero for a damaged event: expired, it goes
		}
		r.first, r.firstTime = pos, t
		if !due(r) {
			return r, nil
		}
		if deleted == maxTrimPerTx {
			r.more = true
			return r, nil
		}
		if damaged {
			l.logger.Warn("boltlog: deleting a damaged event of unknown age with the expired ones", "path", l.file, "pos", pos)
		}
		if err := l.forget(ids, topics, k, v); err != nil {
			return retained{}, err
		}
		if err := cur.Delete(); err != nil {
			return retained{}, err
		}
		r.count--
		r.trimmed = pos
	}
}

// raiseFirst tells readers of what the transaction under way trims, before
// it commits: r is what it retains of the application events, rr of the
// reserved ones. Readers' transactions see the trim as soon as it commits,
// before the committer publishes the new bounds; were first raised only
// then, Bounds read after such a read would claim an event the read did
// not find, and a replay would skip it without a gap. Until the commit,
// Bounds (and ReservedRemoved) may say an event is gone that a read still
// finds: a gap reported early, never an event lost silently. When a first
// is one of the transaction's new events (it trims every older one of its
// class), no event of the class readers can see yet is retained: 0. Called
// by the committer inside the transaction; undo the result if the
// transaction fails.
func (l *Log) raiseFirst(r, rr retained) restoreFirst {
	l.mu.Lock()
	defer l.mu.Unlock()
	first, rfirst := r.first, rr.first
	if first > l.last {
		first = 0
	}
	if rfirst > l.last {
		rfirst = 0
	}
	if first == l.first && r.trimmed == l.trimmed && rfirst == l.rfirst && rr.trimmed == l.rtrimmed {
		return restoreFirst{}
	}
	undo := restoreFirst{set: true, first: l.first, trimmed: l.trimmed, rfirst: l.rfirst, rtrimmed: l.rtrimmed}
	l.first, l.trimmed, l.rfirst, l.rtrimmed = first, r.trimmed, rfirst, rr.trimmed
	return undo
}

// restoreFirst undoes raiseFirst after a failed transaction.
type restoreFirst struct {
	set                              bool
	first, trimmed, rfirst, rtrimmed uint64
}

func (r restoreFirst) undo(l *Log) {
	if r.set {
		l.mu.Lock()
		l.first, l.trimmed, l.rfirst, l.rtrimmed = r.first, r.trimmed, r.rfirst, r.rtrimmed
		l.mu.Unlock()
	}
}

// trimDue reports whether the oldest retained event of a class is beyond a
// limit.
func (l *Log) trimDue(now time.Time) bool {
	cutoff := now.Add(-l.opts.MaxAge)
	if l.first != 0 {
		if n := l.opts.MaxEvents; n > 0 && l.c.count > n {
			return true
		}
		if l.opts.MaxAge > 0 && l.c.firstTime.Before(cutoff) {
			return true
		}
	}
	if l.reservedOn && l.rfirst != 0 {
		return l.c.rcount > l.opts.MaxReserved || (l.opts.MaxAge > 0 && l.c.rfirstTime.Before(cutoff))
	}
	return false
}

// trimOnly runs retention in a transaction of its own, when the oldest
// event expired and nothing was appended, or to finish a large trim.
func (l *Log) trimOnly() {
	c := &l.c
	var kept, rkept retained
	var raised restoreFirst
	err := l.db.Update(func(tx *bolt.Tx) error {
		now := time.Now()
		var err error
		kept = retained{first: l.first, firstTime: c.firstTime, count: c.count, trimmed: l.trimmed}
		if kept, err = l.trim(tx.Bucket(bucketName), tx.Bucket(idsBucketName), kept, l.opts.MaxEvents, now); err != nil {
			return err
		}
		rkept = retained{first: l.rfirst, firstTime: c.rfirstTime, count: c.rcount, trimmed: l.rtrimmed}
		if l.reservedOn {
			rb := tx.Bucket(reservedBucketName)
			if rkept, err = l.trim(rb, rb, rkept, l.opts.MaxReserved, now); err != nil {
				return err
			}
		}
		raised = l.raiseFirst(kept, rkept)
		return nil
	})
	if err != nil {
		raised.undo(l)
		// Retried at the next commit.
		c.trimMore = false
		l.logger.Error("boltlog: deleting expired events failed", "path", l.file, "err", err)
		return
	}
	c.trimMore, c.firstTime, c.count = kept.more || rkept.more, kept.firstTime, kept.count
	c.rfirstTime, c.rcount = rkept.firstTime, rkept.count
	l.mu.Lock()
	l.first, l.trimmed, l.rfirst, l.rtrimmed = kept.first, kept.trimmed, rkept.first, rkept.trimmed
	l.dropCachedLocked()
	l.mu.Unlock()
}
