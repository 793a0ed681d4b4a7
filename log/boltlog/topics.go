package boltlog

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// The topic index: a third bucket holds one key per distinct topic of each
// event, eventlog.TopicHash(topic) as 8 big-endian bytes followed by the
// event's position as 8 big-endian bytes, with an empty value. A topic's
// keys are therefore adjacent and in log order: a reader seeks to
// hash‖(after+1) and walks forward. The committer writes the keys in the
// transaction of their event and retention deletes them with it, so the
// index describes exactly the retained events. Two topics may share a hash:
// the reader checks the topics of the event a key names.
//
// The bucket's sequence is the position through which the index is
// complete. The committer sets it to the events' sequence at every commit;
// Open indexes the events after it, so a history written by a version
// without the index — or an indexing interrupted by a crash — is (further)
// indexed at Open, in transactions of indexChunk events.

var topicsBucketName = []byte("ssehub.topics")

var _ ssehub.TopicIndex = (*Log)(nil)

// indexChunk is how many events one transaction of the indexing at Open
// covers, so that its memory stays bounded for any history.
var indexChunk = 50_000 // a variable for tests

// afterIndexChunk, when not nil, is called after each committed chunk of
// the indexing at Open; an error stops Open as a crash would. For tests.
var afterIndexChunk func(through uint64) error

// maxCacheFilter is the most cached events ReadTopics filters for topics
// rather than reading the index (BenchmarkReadTopics/recent).
var maxCacheFilter = 1000

// topicKeyLen is the length of a key of the topic index.
const topicKeyLen = 16

// appendTopicKeys appends the index keys of the event e at position pos to
// dst, one per distinct topic hash.
func appendTopicKeys(dst []byte, e *ssehub.Event, pos uint64) []byte {
	start := len(dst)
	for _, t := range e.Topics {
		dst = appendTopicKey(dst, start, t, pos)
	}
	return dst
}

// appendEncodedTopicKeys is appendTopicKeys for the record v of an event,
// without decoding it: retention and the indexing at Open need only the
// topics.
func appendEncodedTopicKeys(dst, v []byte, pos uint64) ([]byte, error) {
	b, err := skipHeader(v)
	for range 2 { // id, type
		if err == nil {
			_, b, err = peekString(b)
		}
	}
	if err != nil {
		return dst, err
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return dst, errShort
	}
	b = b[k:]
	start := len(dst)
	for range n {
		var t []byte
		if t, b, err = peekString(b); err != nil {
			return dst[:start], err
		}
		// TopicHash keeps nothing of its argument.
		dst = appendTopicKey(dst, start, unsafe.String(unsafe.SliceData(t), len(t)), pos)
	}
	return dst, nil
}

// appendTopicKey appends the key of topic at pos to dst unless dst[start:]
// holds it already (an event that names a topic twice).
func appendTopicKey(dst []byte, start int, topic string, pos uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, eventlog.TopicHash(topic))
	dst = binary.BigEndian.AppendUint64(dst, pos)
	key := dst[len(dst)-topicKeyLen:]
	for k := start; k < len(dst)-topicKeyLen; k += topicKeyLen {
		if bytes.Equal(dst[k:k+topicKeyLen], key) {
			return dst[:len(dst)-topicKeyLen]
		}
	}
	return dst
}

// maxPendingBytes bounds the size of the events whose index keys wait in
// memory: past it they are written at the next commit.
const maxPendingBytes = 16 << 20

// writeTopicKeys stores the keys made by appendTopicKeys, sorted so that
// the keys of a topic fill its pages in one pass, except those of events
// gone reports (retention deleted them while their keys waited; it is
// given the key's position). bbolt keeps the slices until the commit: keys
// must not be overwritten before then.
func writeTopicKeys(topics *bolt.Bucket, keys []byte, gone func(pos []byte) bool) error {
	sorted := make([][]byte, 0, len(keys)/topicKeyLen)
	for k := 0; k < len(keys); k += topicKeyLen {
		if key := keys[k : k+topicKeyLen : k+topicKeyLen]; !gone(key[8:]) {
			sorted = append(sorted, key)
		}
	}
	slices.SortFunc(sorted, bytes.Compare)
	for _, k := range sorted {
		if err := topics.Put(k, []byte{}); err != nil {
			return err
		}
	}
	return nil
}

// pendingIndex is the topic index of the committed events whose keys are
// not in the file yet (Options.IndexEvery): their events by topic, in log
// order. Guarded by Log.mu; the committer adds and clears.
type pendingIndex struct {
	topics map[string][]*ssehub.Event
}

func (p *pendingIndex) add(events []*ssehub.Event) {
	if p.topics == nil {
		p.topics = make(map[string][]*ssehub.Event)
	}
	for _, e := range events {
		for _, t := range eventlog.DistinctTopics(e) {
			p.topics[t] = append(p.topics[t], e)
		}
	}
}

func (p *pendingIndex) clear() { p.topics = nil }

// collect returns the events with one of topics in (after, until] that
// deleted does not report (retention deleted them), in log order, each
// once.
func (p *pendingIndex) collect(topics []string, after, until uint64, deleted func(*ssehub.Event) bool) []*ssehub.Event {
	var out []*ssehub.Event
	for i, t := range topics {
		if slices.Contains(topics[:i], t) {
			continue
		}
		evs := p.topics[t]
		j, _ := slices.BinarySearchFunc(evs, after+1, func(e *ssehub.Event, pos uint64) int { return cmp.Compare(e.Pos, pos) })
		for ; j < len(evs) && evs[j].Pos <= until; j++ {
			if !deleted(evs[j]) {
				out = append(out, evs[j])
			}
		}
	}
	slices.SortFunc(out, func(a, b *ssehub.Event) int { return cmp.Compare(a.Pos, b.Pos) })
	return slices.CompactFunc(out, func(a, b *ssehub.Event) bool { return a == b })
}

// forgetTopics deletes the topic index keys of the event stored under key
// with the record v (see forget). The keys of a damaged record name its
// position, so whatever topics it yields, no other event's key goes.
// Called by the committer.
func (l *Log) forgetTopics(topics *bolt.Bucket, key, v []byte) error {
	var err error
	l.c.tbuf, err = appendEncodedTopicKeys(l.c.tbuf[:0], v, binary.BigEndian.Uint64(key))
	if err != nil {
		l.logger.Warn("boltlog: a damaged event is deleted without its topic index keys", "path", l.file, "pos", binary.BigEndian.Uint64(key), "err", err)
		return nil
	}
	for k := 0; k < len(l.c.tbuf); k += topicKeyLen {
		if err := topics.Delete(l.c.tbuf[k : k+topicKeyLen]); err != nil {
			return err
		}
	}
	return nil
}

// indexTopics completes the topic index at Open: it indexes the events
// after the position the index is complete through, indexChunk events per
// transaction, and logs what it did. The committer is not running yet.
func (l *Log) indexTopics() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = corruptError(l.file, fmt.Errorf("damaged: bbolt panicked while indexing topics: %v", p))
		}
	}()
	start := time.Now()
	events, keys := 0, 0
	var from uint64
	for done := false; !done; {
		err := l.db.Update(func(tx *bolt.Tx) error {
			b, topics := tx.Bucket(bucketName), tx.Bucket(topicsBucketName)
			// Each chunk's keys of a topic come after the ones before:
			// full pages (for a million events, 47 MB of leaves instead
			// of 80 MB at bbolt's default of half full).
			topics.FillPercent = 1
			from = topics.Sequence()
			if from >= b.Sequence() {
				done = true
				return nil
			}
			var buf []byte       // the keys of this chunk: bbolt holds them until the commit
			c := l.newCursor(tx) // both classes (Options.MaxReserved)
			var seek [8]byte
			binary.BigEndian.PutUint64(seek[:], from+1)
			through, n := b.Sequence(), 0
			var prev uint64
			for k, v := c.seek(seek[:]); k != nil; k, v = c.next() {
				if n == indexChunk {
					through = prev
					break
				}
				if len(k) != 8 {
					return corruptError(l.file, fmt.Errorf("damaged: key %x is not a position", k))
				}
				prev = binary.BigEndian.Uint64(k)
				var err error
				if buf, err = appendEncodedTopicKeys(buf, v, prev); err != nil {
					return corruptError(l.file, fmt.Errorf("damaged: event %d: %w", prev, err))
				}
				n++
			}
			// Sorted keys fill bbolt's pages in one pass.
			sorted := make([][]byte, 0, len(buf)/topicKeyLen)
			for k := 0; k < len(buf); k += topicKeyLen {
				sorted = append(sorted, buf[k:k+topicKeyLen:k+topicKeyLen])
			}
			slices.SortFunc(sorted, bytes.Compare)
			for _, k := range sorted {
				if err := topics.Put(k, []byte{}); err != nil {
					return err
				}
			}
			events, keys = events+n, keys+len(sorted)
			from = through
			return topics.SetSequence(through)
		})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				err = fmt.Errorf("boltlog: indexing the topics of %s: %w", l.file, err)
			}
			return err
		}
		if !done && afterIndexChunk != nil {
			if err := afterIndexChunk(from); err != nil {
				return err
			}
		}
	}
	if events > 0 {
		l.logger.Info("boltlog: indexed the topics of an existing history", "path", l.file,
			"events", events, "keys", keys, "duration", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// ReadTopics implements ssehub.TopicIndex. With topics, it walks each
// topic's keys in the index from q.After, merged in position order, and
// reads only the events they name, from disk, in one read transaction —
// unless the cache holds q.After and at most maxCacheFilter events after
// it, which are then filtered in memory. With no topics it reads like Read
// (from memory when the cache covers q.After), bounded by q.MaxBytes. Safe
// for concurrent use.
func (l *Log) ReadTopics(ctx context.Context, q ssehub.TopicQuery) (events []*ssehub.Event, through uint64, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	select {
	case <-l.closing:
		return nil, 0, ssehub.ErrClosed
	default:
	}
	// The newest position is read before the transaction starts: every
	// event up to it is committed, so the transaction sees all of them and
	// through never claims more than was read.
	l.mu.RLock()
	newest, indexed := l.last, l.indexed
	if l.emptyLocked() || q.After >= newest {
		l.mu.RUnlock()
		events, through := eventlog.NewCollector(q).Result(newest)
		return events, through, nil
	}
	// Events committed after newest may be visible to the transaction:
	// they are left for the next read (the Collector stops at Until).
	if q.Until == 0 || q.Until > newest {
		q.Until = newest
	}
	c := eventlog.NewCollector(q)
	if f := l.cache.Front(); f != nil && q.After >= f.Pos-1 {
		// The cache holds every event after f.Pos-1. With topics, it
		// serves only a short range: filtering many events costs more
		// than reading the few the index names.
		i := l.cache.Search(q.After)
		if len(q.Topics) == 0 || l.cache.Len()-i <= maxCacheFilter {
			filter := q.After < l.trimmed || q.After < l.rtrimmed // see Read
			for ; i < l.cache.Len(); i++ {
				if e := l.cache.At(i); (!filter || !l.deletedLocked(e)) && !c.Offer(e) {
					break
				}
			}
			l.mu.RUnlock()
			events, through := c.Result(newest)
			return events, through, nil
		}
	}
	// With topics, the file's index serves up to indexed and the pending
	// index the rest (taken now, under the lock that keeps them apart).
	diskUntil := q.Until
	var recent []*ssehub.Event
	if len(q.Topics) > 0 && q.Until > indexed {
		diskUntil = indexed
		recent = l.pending.collect(q.Topics, q.After, q.Until, l.deletedLocked)
	}
	l.mu.RUnlock()
	if q.After < diskUntil {
		if err := l.readTopicsDisk(q, diskUntil, c); err != nil {
			return nil, 0, err
		}
	}
	for _, e := range recent {
		if !c.Offer(e) {
			break
		}
	}
	events, through = c.Result(newest)
	return events, through, nil
}

// readTopicsDisk offers c the events q selects up to until, from disk, in
// one read transaction.
func (l *Log) readTopicsDisk(q ssehub.TopicQuery, until uint64, c *eventlog.Collector) (err error) {
	defer func() {
		if p := recover(); p != nil { // a damaged page; bbolt rolled back
			err = corruptError(l.file, fmt.Errorf("damaged: bbolt panicked while reading topics after %d: %v", q.After, p))
		}
	}()
	err = l.db.View(func(tx *bolt.Tx) error {
		var slab []ssehub.Event // events allocated together
		offer := func(k, v []byte) (bool, error) {
			if len(slab) == 0 {
				slab = make([]ssehub.Event, 16) // a resume often wants a few
			}
			e := &slab[0]
			if err := l.decodeInto(e, k, v); err != nil {
				var d *ssehub.DamagedError
				if errors.As(err, &d) && c.StopBefore(d.Pos) {
					return false, nil // what comes before it; the next read reports it
				}
				return false, err
			}
			slab = slab[1:]
			return c.Offer(e), nil
		}
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], q.After+1)
		if len(q.Topics) == 0 {
			cur := l.newCursor(tx)
			for k, v := cur.seek(key[:]); k != nil; k, v = cur.next() {
				if more, err := offer(k, v); !more || err != nil {
					return err
				}
			}
			return nil
		}
		g := l.newGetter(tx)
		m, err := newMerge(tx.Bucket(topicsBucketName), q.Topics, q.After)
		if err != nil {
			return corruptError(l.file, err)
		}
		for pos := m.next(); pos != 0 && pos <= until; pos = m.next() {
			binary.BigEndian.PutUint64(key[:], pos)
			v := g.get(key[:])
			if v == nil {
				continue // a stale key: its event is gone
			}
			if more, err := offer(key[:], v); !more || err != nil {
				return err
			}
		}
		if m.err != nil {
			return corruptError(l.file, m.err)
		}
		return nil
	})
	switch {
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return ssehub.ErrClosed
	case errors.Is(err, ErrCorrupt): // also a *ssehub.DamagedError
		return err
	case err != nil:
		return fmt.Errorf("boltlog: read topics after %d: %w", q.After, err)
	}
	return nil
}

// merge walks the index keys of several topics in position order, each
// position once.
type merge struct {
	cursors []topicCursor
	err     error
}

// topicCursor is a cursor over the keys of one topic hash; pos is the
// position of its current key, 0 when it has no more.
type topicCursor struct {
	c    *bolt.Cursor
	hash [8]byte
	pos  uint64
}

func newMerge(topics *bolt.Bucket, names []string, after uint64) (*merge, error) {
	m := &merge{cursors: make([]topicCursor, 0, len(names))}
	for _, name := range names {
		var tc topicCursor
		binary.BigEndian.PutUint64(tc.hash[:], eventlog.TopicHash(name))
		if slices.ContainsFunc(m.cursors, func(o topicCursor) bool { return o.hash == tc.hash }) {
			continue // a topic asked for twice, or a collision: one walk serves both
		}
		tc.c = topics.Cursor()
		var seek [topicKeyLen]byte
		copy(seek[:], tc.hash[:])
		binary.BigEndian.PutUint64(seek[8:], after+1)
		k, _ := tc.c.Seek(seek[:])
		if err := tc.set(k); err != nil {
			return nil, err
		}
		m.cursors = append(m.cursors, tc)
	}
	return m, nil
}

// set makes k, the key the cursor is at, current.
func (tc *topicCursor) set(k []byte) error {
	tc.pos = 0
	if k == nil || !bytes.HasPrefix(k, tc.hash[:]) {
		return nil
	}
	if len(k) != topicKeyLen {
		return fmt.Errorf("damaged: the topic index holds key %x", k)
	}
	tc.pos = binary.BigEndian.Uint64(k[8:])
	return nil
}

// next returns the smallest position of any topic not returned yet, or 0
// when there is none (or on error, in m.err).
func (m *merge) next() uint64 {
	var pos uint64
	for i := range m.cursors {
		if p := m.cursors[i].pos; p != 0 && (pos == 0 || p < pos) {
			pos = p
		}
	}
	if pos == 0 {
		return 0
	}
	for i := range m.cursors {
		if tc := &m.cursors[i]; tc.pos == pos {
			k, _ := tc.c.Next()
			if err := tc.set(k); err != nil {
				m.err = err
				return 0
			}
		}
	}
	return pos
}
