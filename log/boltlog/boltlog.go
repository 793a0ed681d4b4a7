package boltlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// FileName is the name of the bbolt file inside the data directory.
const FileName = "events.db"

// DefaultCacheEvents is the number of recent events kept in memory when
// Options.CacheEvents is zero.
const DefaultCacheEvents = 16384

// DefaultIndexEvery is Options.IndexEvery when zero.
const DefaultIndexEvery = 8192

// DefaultLockTimeout is how long Open waits for another process to release
// the data file when Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// Errors returned by Open, wrapped with the path and what to do.
var (
	// ErrLocked: another process (another ssehub) has the data file open.
	ErrLocked = errors.New("boltlog: locked")
	// ErrCorrupt: the data file is not a valid bbolt file or not an ssehub
	// history.
	ErrCorrupt = errors.New("boltlog: corrupt data file")
)

// Options configure a Log. The zero value keeps every event forever, syncs
// every commit and caches DefaultCacheEvents events.
type Options struct {
	// MaxEvents, when positive, is how many of the newest events the log
	// keeps; older ones are deleted as new ones are committed.
	MaxEvents int
	// MaxAge, when positive, is how long the log keeps an event after its
	// Time. Deletion may lag by up to MaxAge/16 (at most a second) so that
	// expired events are deleted in batches.
	MaxAge time.Duration
	// MaxReserved, when positive, keeps the hub's own events
	// (ssehub.Event.Reserved: subscription events, heartbeats) apart, in a
	// bucket of their own: the newest MaxReserved of them are kept, older
	// ones deleted, and MaxEvents counts application events only, so the
	// hub's bookkeeping never pushes an application event out (see
	// ssehub.ReservedRetention). MaxAge applies to both. Zero: one budget
	// for all events, as before.
	MaxReserved int
	// NoSync skips fsync on commit: faster, but a crash of the machine can
	// lose acknowledged events. For tests and benchmarks.
	NoSync bool
	// CommitDelay, when positive, makes each group commit wait up to this
	// long after its first append for more appends to share its fsync:
	// fewer, larger commits (less CPU and disk work per event when appends
	// come paced rather than in bursts), at the price of up to CommitDelay
	// more latency per append. Zero (the default) commits as soon as the
	// previous commit is done.
	CommitDelay time.Duration
	// CacheEvents is how many of the newest events are kept in memory to
	// serve Tail and short reads without touching the disk. Zero means
	// DefaultCacheEvents; negative means none (every read goes to disk).
	CacheEvents int
	// IndexEvery is how many committed events the topic index gathers in
	// memory before their keys are written to the file, in one of the
	// committer's transactions (no fsync of their own): sorted, many keys
	// share a page, where writing each event's keys in its own commit
	// dirtied a page of the index per topic per commit. Zero means
	// DefaultIndexEvery; 1 writes them in every commit. Events not yet
	// written are indexed again at Open after a crash.
	IndexEvery int
	// LockTimeout is how long Open waits for the data file's lock before it
	// reports ErrLocked. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// Logger receives commit and retention errors and an open summary at
	// debug level. Nil discards.
	Logger *slog.Logger
}

// maxBatchEvents caps how many events one commit writes, so one transaction
// stays small even when the queue is long.
const maxBatchEvents = 8192

// maxTrimPerTx caps how many expired events one transaction deletes; more
// are deleted in the following transactions.
var maxTrimPerTx = 8192 // a variable for tests

var bucketName = []byte("ssehub.events")

// reservedBucketName is the bucket of the reserved events kept on a budget
// of their own (Options.MaxReserved): same keys and records as bucketName,
// in the same position space. Its sequence is the newest reserved position
// retention deleted (ReservedRemoved).
var reservedBucketName = []byte("ssehub.reserved")

// jumpsBucketName is the bucket of the jumps of the position counter: one
// per restart that went on from the clock (see commit), keyed by the first
// position after the jump, the value being the last position before it.
// Histories of versions before it have none of their earlier jumps.
var jumpsBucketName = []byte("ssehub.jumps")

// jump is one range of positions that never held events: (from, to).
type jump struct{ from, to uint64 }

// Log is a durable ssehub.Log in a bbolt file. Create it with Open. All
// methods are safe for concurrent use by any number of goroutines.
type Log struct {
	dir    string
	file   string
	db     *bolt.DB
	opts   Options
	logger *slog.Logger
	cacheN int // capacity of cache; 0 disables it

	indexEvery int  // Options.IndexEvery, defaulted
	reservedOn bool // Options.MaxReserved > 0: reserved events go to their own bucket

	reqs    chan *request
	closing chan struct{} // closed first by Close: appends and tails stop
	stop    chan struct{} // closed once no Append can send: the committer drains and exits
	done    chan struct{} // closed when the committer has exited

	sendMu     sync.RWMutex // held for reading while an Append sends on reqs
	sendClosed bool         // guarded by sendMu

	closeOnce sync.Once
	closeErr  error

	notify eventlog.Notifier

	// reqPool recycles requests. It belongs to the Log, not the package:
	// a log made in a testing/synctest bubble has channels of that bubble.
	reqPool sync.Pool

	// mu guards the cache and the bounds as readers see them; only the
	// committer changes them, after a commit. Lock order: sendMu, then mu
	// (never both held by one goroutine in practice).
	mu      sync.RWMutex
	cache   eventlog.Ring // a suffix of the log: the newest events (see deletedLocked)
	first   uint64        // oldest retained application event's position, 0 when none
	last    uint64        // newest position ever, 0 when none
	trimmed uint64        // newest application position retention deleted, 0 when none (see Bounds)
	indexed uint64        // the topic index in the file is complete through here
	pending pendingIndex  // the topic index of the events after indexed

	// The reserved class (reservedOn; see trimmedOf): its bucket's oldest
	// and newest retained positions (0 when none), and the newest position
	// retention deleted from it (ReservedRemoved).
	rfirst, rlast, rtrimmed uint64

	jumps []jump // of the position counter, oldest first (LastN)

	c committer // owned by the committer goroutine
}

var (
	_ ssehub.Log               = (*Log)(nil)
	_ ssehub.ReservedRetention = (*Log)(nil)
	_ ssehub.PositionJumps     = (*Log)(nil)
)

// request is one Append waiting for its commit.
type request struct {
	events []*ssehub.Event
	done   chan error // buffered: the committer never blocks on it
	err    error      // set by the committer when it refuses this request alone
}

// Open opens or creates the history in directory dir (created if missing)
// and starts its committer. It fails with an error wrapping ErrLocked when
// another process holds the directory, and ErrCorrupt when the file there is
// not an ssehub bbolt history; it never panics on a bad file. Open may be
// called concurrently; one directory is held by at most one open Log.
func Open(dir string, opts Options) (*Log, error) {
	if dir == "" {
		return nil, errors.New("boltlog: data directory is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("boltlog: create data directory %s: %w", dir, err)
	}
	l := &Log{
		dir:     dir,
		file:    filepath.Join(dir, FileName),
		opts:    opts,
		logger:  opts.Logger,
		reqs:    make(chan *request, 4096),
		closing: make(chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.CacheEvents == 0:
		l.cacheN = DefaultCacheEvents
	case opts.CacheEvents > 0:
		l.cacheN = opts.CacheEvents
	}
	l.indexEvery = opts.IndexEvery
	if l.indexEvery <= 0 {
		l.indexEvery = DefaultIndexEvery
	}
	l.reservedOn = opts.MaxReserved > 0
	if n := opts.MaxEvents + max(opts.MaxReserved, 0); opts.MaxEvents > 0 {
		l.cacheN = min(l.cacheN, n)
		l.indexEvery = min(l.indexEvery, n) // retention would drop them before
	}
	db, err := openDB(l.dir, l.file, opts)
	if err != nil {
		return nil, err
	}
	l.db = db
	if err := l.load(); err != nil {
		db.Close()
		return nil, err
	}
	if err := l.indexTopics(); err != nil {
		db.Close()
		return nil, err
	}
	l.indexed = l.last
	l.c.fromClock = true
	l.logger.Debug("boltlog: history opened", "path", l.file, "first", l.first, "last", l.last)
	go l.run()
	return l, nil
}

// openDB opens the bbolt file and turns bbolt's errors (and panics, should a
// damaged file cause one) into errors that say what to do.
//
// The free-page list is not written at every commit (NoFreelistSync): one
// page write less per commit (S3 in docs/benchmarks.md: 57 -> 50 µs of CPU
// per delivered event), for a walk of the file at open that rebuilds it
// (BenchmarkOpen: ~0.1 s for a million events). bbolt does that walk on a
// goroutine of its own, where a panic on a damaged page would end the
// process; so an existing file is first walked here, read-only, where such
// a panic is recovered and reported as ErrCorrupt.
func openDB(dir, file string, opts Options) (*bolt.DB, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	if st, err := os.Stat(file); err == nil && st.Size() > 0 {
		db, err := boltOpen(dir, file, timeout, &bolt.Options{Timeout: timeout, ReadOnly: true}, walkPages)
		if err != nil {
			return nil, err
		}
		db.Close()
	}
	return boltOpen(dir, file, timeout, &bolt.Options{
		Timeout:        timeout,
		NoSync:         opts.NoSync,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	}, nil)
}

// boltOpen opens file with bolt and runs check on it, if not nil.
func boltOpen(dir, file string, timeout time.Duration, bopts *bolt.Options, check func(*bolt.DB) error) (db *bolt.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, corruptError(file, fmt.Errorf("damaged: bbolt panicked: %v", p))
		}
	}()
	db, err = bolt.Open(file, 0o600, bopts)
	if err == nil && check != nil {
		if err = check(db); err != nil {
			db.Close()
			return nil, corruptError(file, fmt.Errorf("damaged: %w", err))
		}
	}
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("%w: data directory %s is in use by another ssehub process (its lock on %s was not released within %v); stop that process or use another directory",
			ErrLocked, dir, FileName, timeout)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum),
		errors.Is(err, bolt.ErrVersionMismatch), errors.Is(err, bolt.ErrInvalidMapping):
		return nil, corruptError(file, fmt.Errorf("not a bbolt file, or damaged: %w", err))
	default:
		return nil, fmt.Errorf("boltlog: open %s: %w", file, err)
	}
}

// walkPages visits every branch and leaf page of every bucket and checks
// that keys are in order; bbolt panics on a page that is not what its
// parent says it is. A file shorter than its pages (truncated by a partial
// copy) is refused first, and faults on the memory map become panics: both
// would otherwise end the process (SIGBUS), here and in bbolt's own walk.
// Damage this walk does not see (a page referenced twice) makes the
// read-write open panic, which is recovered too, but bbolt then leaves its
// file handle and a goroutine behind: ErrCorrupt is meant to stop the
// process.
func walkPages(db *bolt.DB) error {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	st, err := os.Stat(db.Path())
	if err != nil {
		return err
	}
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > st.Size() {
			return fmt.Errorf("truncated: %d bytes, its pages need %d", st.Size(), tx.Size())
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return walkBucket(name, b)
		})
	})
}

func walkBucket(name []byte, b *bolt.Bucket) error {
	c := b.Cursor()
	var prev []byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("keys out of order in bucket %q", name)
		}
		prev = k
		if v == nil {
			if child := b.Bucket(k); child != nil {
				if err := walkBucket(k, child); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// corruptError says what is wrong with file and what to do.
func corruptError(file string, cause error) error {
	return fmt.Errorf("%w %s: %v; move it away to start with an empty history", ErrCorrupt, file, cause)
}

// load creates the buckets if needed (indexing the ids of a history made
// before the id index existed; its topics are indexed afterwards, by
// indexTopics), folds the reserved bucket into the events when
// Options.MaxReserved is zero (see foldReserved), and reads the bounds and
// the times the committer needs.
func (l *Log) load() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = corruptError(l.file, fmt.Errorf("damaged: bbolt panicked: %v", p))
		}
	}()
	err = l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		if b == nil {
			foreign := false
			tx.ForEach(func([]byte, *bolt.Bucket) error { foreign = true; return nil })
			if foreign {
				return corruptError(l.file, errors.New("a bbolt file, but not an ssehub history (it holds other buckets)"))
			}
			b, err := tx.CreateBucket(bucketName)
			if err != nil {
				return err
			}
			b.FillPercent = 1
			if _, err := tx.CreateBucket(idsBucketName); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(reservedBucketName); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(jumpsBucketName); err != nil {
				return err
			}
			_, err = tx.CreateBucket(topicsBucketName)
			return err
		}
		jb := tx.Bucket(jumpsBucketName)
		if jb == nil { // a history of a version before the jumps were kept
			var err error
			if jb, err = tx.CreateBucket(jumpsBucketName); err != nil {
				return err
			}
		}
		if err := jb.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) != 8 {
				return corruptError(l.file, fmt.Errorf("damaged: a position jump of %d and %d bytes, want 8 and 8", len(k), len(v)))
			}
			l.jumps = append(l.jumps, jump{from: binary.BigEndian.Uint64(v), to: binary.BigEndian.Uint64(k)})
			return nil
		}); err != nil {
			return err
		}
		if tx.Bucket(topicsBucketName) == nil {
			// Indexed after this transaction, by indexTopics.
			if _, err := tx.CreateBucket(topicsBucketName); err != nil {
				return err
			}
		}
		if tx.Bucket(idsBucketName) == nil {
			ids, err := tx.CreateBucket(idsBucketName)
			if err != nil {
				return err
			}
			if err := l.indexIDs(b, ids); err != nil {
				return err
			}
		}
		rb := tx.Bucket(reservedBucketName)
		if rb == nil { // a history of a version before the reserved class
			var err error
			if rb, err = tx.CreateBucket(reservedBucketName); err != nil {
				return err
			}
		} else if !l.reservedOn {
			if err := l.foldReserved(tx, b, rb); err != nil {
				return err
			}
			rb = tx.Bucket(reservedBucketName)
		}
		l.last = b.Sequence()
		l.trimmed = tx.Bucket(idsBucketName).Sequence()
		l.rtrimmed = rb.Sequence()
		l.c.count = b.Stats().KeyN // a walk of the bucket's pages, not its events
		l.c.rcount = rb.Stats().KeyN
		// A damaged event at either end is no reason to refuse the
		// history: its time is unknown (zero), so retention by age
		// deletes a damaged oldest event, and new times start from now.
		for _, bk := range []*bolt.Bucket{b, rb} {
			c := bk.Cursor()
			k, v := c.Last()
			if k == nil {
				continue
			}
			e, err := l.decodeEnd(k, v)
			if err != nil {
				return err
			}
			if e.Pos > l.last {
				return corruptError(l.file, fmt.Errorf("damaged: event %d is beyond the position counter %d", e.Pos, l.last))
			}
			if e.Time.After(l.c.lastTime) {
				l.c.lastTime = e.Time
			}
			last := e.Pos
			if e, err = l.decodeEnd(c.First()); err != nil {
				return err
			}
			if bk == b {
				l.first, l.c.firstTime = e.Pos, e.Time
			} else {
				l.rfirst, l.rlast, l.c.rfirstTime = e.Pos, last, e.Time
			}
		}
		return l.dropOldJumps(jb)
	})
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("boltlog: read %s: %w", l.file, err)
	}
	return err
}

// foldReserved moves the reserved events of a history kept with
// Options.MaxReserved into the events bucket, for a log opened without it:
// one budget for all events again, as the positions are shared and the
// index entries name positions, nothing else changes. The reserved
// bucket's sequence (ReservedRemoved) is kept.
func (l *Log) foldReserved(tx *bolt.Tx, b, rb *bolt.Bucket) error {
	type kv struct{ k, v []byte }
	var moved []kv
	c := rb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		moved = append(moved, kv{bytes.Clone(k), bytes.Clone(v)})
	}
	if len(moved) == 0 {
		return nil
	}
	for _, m := range moved {
		if err := b.Put(m.k, m.v); err != nil {
			return err
		}
	}
	seq := rb.Sequence()
	if err := tx.DeleteBucket(reservedBucketName); err != nil {
		return err
	}
	rb, err := tx.CreateBucket(reservedBucketName)
	if err != nil {
		return err
	}
	if err := rb.SetSequence(seq); err != nil {
		return err
	}
	l.logger.Info("boltlog: opened without MaxReserved: the reserved events kept apart now count with the others", "path", l.file, "events", len(moved))
	return nil
}

// decodeEnd decodes the oldest or newest stored event for load: a damaged
// one is logged and stands for an event at its key's position with no
// time.
func (l *Log) decodeEnd(k, v []byte) (*ssehub.Event, error) {
	e := new(ssehub.Event)
	err := l.decodeInto(e, k, v)
	var d *ssehub.DamagedError
	if errors.As(err, &d) {
		l.logger.Warn("boltlog: an event at the end of the history is damaged; it will not be served", "path", l.file, "pos", d.Pos, "err", err)
		return &ssehub.Event{Pos: d.Pos}, nil
	}
	return e, err
}

// A record that cannot be read back is reported as a *ssehub.DamagedError
// (wrapping ErrCorrupt); a key that is not a position as ErrCorrupt alone.
func (l *Log) decodeInto(e *ssehub.Event, k, v []byte) error {
	if len(k) != 8 {
		return corruptError(l.file, fmt.Errorf("damaged: key %x is not a position", k))
	}
	pos := binary.BigEndian.Uint64(k)
	enc, err := recordEncoding(v)
	if err == nil {
		err = e.UnmarshalBinary(enc)
	}
	if err == nil && e.Pos != pos {
		err = fmt.Errorf("it says it is event %d", e.Pos)
	}
	if err != nil {
		return l.damaged(pos, err)
	}
	return nil
}

func (l *Log) getRequest() *request {
	if r, ok := l.reqPool.Get().(*request); ok {
		return r
	}
	return &request{done: make(chan error, 1)}
}

func (l *Log) putRequest(r *request) {
	if cap(r.events) > 64 {
		r.events = nil // do not keep large batches around
	}
	clear(r.events)
	r.events = r.events[:0]
	l.reqPool.Put(r)
}

// Path returns the bbolt file's path. Safe for concurrent use.
func (l *Log) Path() string { return l.file }

// Dir returns the data directory. Safe for concurrent use.
func (l *Log) Dir() string { return l.dir }

// Append implements ssehub.Log. It queues the events for the committer and
// returns once the transaction holding them is committed (and synced, unless
// Options.NoSync). Concurrent Appends share transactions. The context is
// honoured while queueing; once queued, Append waits for the commit, which is
// bounded by the disk. On error the events are not acknowledged and their
// Pos is zero. Safe for concurrent use.
func (l *Log) Append(ctx context.Context, events ...*ssehub.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		select {
		case <-l.closing:
			return ssehub.ErrClosed
		default:
			return nil
		}
	}
	r := l.getRequest()
	r.events = append(r.events[:0], events...) // so the variadic slice stays on the caller's stack
	l.sendMu.RLock()
	if l.sendClosed {
		l.sendMu.RUnlock()
		l.putRequest(r)
		return ssehub.ErrClosed
	}
	select {
	case l.reqs <- r:
		l.sendMu.RUnlock()
	case <-l.closing:
		l.sendMu.RUnlock()
		l.putRequest(r)
		return ssehub.ErrClosed
	case <-ctx.Done():
		l.sendMu.RUnlock()
		l.putRequest(r)
		return ctx.Err()
	}
	err := <-r.done
	l.putRequest(r)
	return err
}

// Read implements ssehub.Log: up to limit events after position after, in
// order, never waiting; from memory when the cache covers after, else from
// disk. A limit of zero or less returns no events. Safe for concurrent use.
func (l *Log) Read(ctx context.Context, after uint64, limit int) ([]*ssehub.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-l.closing:
		return nil, ssehub.ErrClosed
	default:
	}
	if limit <= 0 {
		return nil, nil
	}
	l.mu.RLock()
	if after >= l.last || l.emptyLocked() {
		l.mu.RUnlock()
		return nil, nil
	}
	if f := l.cache.Front(); f != nil && after >= f.Pos-1 {
		// The cache holds every event after f.Pos-1, and events
		// retention deleted after the oldest it holds (reserved ones,
		// and application ones behind an older reserved event).
		out := make([]*ssehub.Event, 0, min(limit, l.cache.Len()))
		if after >= l.trimmed && after >= l.rtrimmed {
			out = l.cache.AppendAfter(out, after, limit)
		} else {
			for i := l.cache.Search(after); i < l.cache.Len() && len(out) < limit; i++ {
				if e := l.cache.At(i); !l.deletedLocked(e) {
					out = append(out, e)
				}
			}
		}
		l.mu.RUnlock()
		return out, nil
	}
	l.mu.RUnlock()
	return l.readDisk(after, limit)
}

// emptyLocked reports whether no event is retained. Called with mu held.
func (l *Log) emptyLocked() bool { return l.first == 0 && l.rfirst == 0 }

// deletedLocked reports whether retention deleted the event e, committed
// by this Log (the cache and the pending index hold only those): each
// class is deleted from its oldest end, so e is deleted if its class's
// newest deleted position is at or after it. Called with mu held.
func (l *Log) deletedLocked(e *ssehub.Event) bool {
	if l.reservedOn && e.Reserved() {
		return e.Pos <= l.rtrimmed
	}
	return e.Pos <= l.trimmed
}

// cursor walks the events of the events bucket and, with the reserved
// class (Options.MaxReserved), of the reserved bucket, merged in position
// order.
type cursor struct {
	a, b           *bolt.Cursor // b is nil without the reserved class
	ka, va, kb, vb []byte
	fromB          bool // the last key returned is b's
}

// newCursor returns a cursor over the events of tx. Without the reserved
// class the reserved bucket is empty (foldReserved) and left alone.
func (l *Log) newCursor(tx *bolt.Tx) *cursor {
	c := &cursor{a: tx.Bucket(bucketName).Cursor()}
	if l.reservedOn {
		c.b = tx.Bucket(reservedBucketName).Cursor()
	}
	return c
}

// seek moves to the first event at or after key and returns it.
func (c *cursor) seek(key []byte) (k, v []byte) {
	c.ka, c.va = c.a.Seek(key)
	if c.b != nil {
		c.kb, c.vb = c.b.Seek(key)
	}
	return c.pick()
}

// next moves to the next event and returns it.
func (c *cursor) next() (k, v []byte) {
	if c.fromB {
		c.kb, c.vb = c.b.Next()
	} else {
		c.ka, c.va = c.a.Next()
	}
	return c.pick()
}

func (c *cursor) pick() (k, v []byte) {
	c.fromB = c.kb != nil && (c.ka == nil || bytes.Compare(c.kb, c.ka) < 0)
	if c.fromB {
		return c.kb, c.vb
	}
	return c.ka, c.va
}

// getter looks events up by key in the events bucket and, with the
// reserved class, in the reserved bucket.
type getter struct{ b, rb *bolt.Bucket }

func (l *Log) newGetter(tx *bolt.Tx) getter {
	g := getter{b: tx.Bucket(bucketName)}
	if l.reservedOn {
		g.rb = tx.Bucket(reservedBucketName)
	}
	return g
}

// get returns the record at key, nil when there is none.
func (g getter) get(key []byte) []byte {
	if v := g.b.Get(key); v != nil || g.rb == nil {
		return v
	}
	return g.rb.Get(key)
}

func (l *Log) readDisk(after uint64, limit int) (out []*ssehub.Event, err error) {
	defer func() {
		if p := recover(); p != nil { // a damaged page; bbolt rolled back
			out, err = nil, corruptError(l.file, fmt.Errorf("damaged: bbolt panicked while reading after %d: %v", after, p))
		}
	}()
	err = l.db.View(func(tx *bolt.Tx) error {
		c := l.newCursor(tx)
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], after+1)
		var slab []ssehub.Event // events allocated together
		for k, v := c.seek(key[:]); k != nil && len(out) < limit; k, v = c.next() {
			if len(slab) == 0 {
				slab = make([]ssehub.Event, min(limit-len(out), 256))
			}
			e := &slab[0]
			slab = slab[1:]
			if err := l.decodeInto(e, k, v); err != nil {
				if len(out) > 0 && errors.As(err, new(*ssehub.DamagedError)) {
					return nil // the events before it; the next read reports it
				}
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	switch {
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return nil, ssehub.ErrClosed
	case errors.Is(err, ErrCorrupt): // also a *ssehub.DamagedError
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("boltlog: read after %d: %w", after, err)
	}
	return out, nil
}

// Tail implements ssehub.Log. It serves from the cache when it can and
// sleeps until the next commit when it has caught up. Any number of Tails
// may run at once; each calls fn on its own goroutine, sequentially.
func (l *Log) Tail(ctx context.Context, after uint64, fn func([]*ssehub.Event) error) error {
	return eventlog.Tail(ctx, after, fn, l.Read, &l.notify, l.closing)
}

// Bounds implements ssehub.Log, from memory. first is the position after
// the newest one retention deleted, when it deleted any: every event from
// there on is retained. It is the oldest event's position unless positions
// were skipped at a restart (see commit): those were never given to
// events, and a client that has the event before them misses nothing.
// With Options.MaxReserved it speaks of application events
// (ssehub.ReservedRetention): reserved events before it may be retained,
// and reserved events after it may be deleted (ReservedRemoved says which).
// Safe for concurrent use.
func (l *Log) Bounds(ctx context.Context) (first, last uint64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	select {
	case <-l.closing:
		return 0, 0, ssehub.ErrClosed
	default:
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	first = l.first
	if l.trimmed != 0 {
		// At most l.first: retention deletes from the oldest end. With
		// no application event left, first still stands when reserved
		// events are retained after it.
		if first != 0 || (l.rfirst != 0 && l.rlast > l.trimmed) {
			first = l.trimmed + 1
		}
	} else if l.rfirst != 0 && (first == 0 || l.rfirst < first) {
		first = l.rfirst
	}
	return first, l.last, nil
}

// ReservedRemoved implements ssehub.ReservedRetention, from memory: the
// newest reserved event retention deleted with Options.MaxReserved (or
// MaxAge), kept as the reserved bucket's sequence, written in the
// transaction that deletes it, so it survives restarts and crashes. Safe
// for concurrent use.
func (l *Log) ReservedRemoved(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	select {
	case <-l.closing:
		return 0, ssehub.ErrClosed
	default:
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.rtrimmed, nil
}

// Close implements ssehub.Log. It ends running Tails with ssehub.ErrClosed,
// fails queued Appends with ssehub.ErrClosed (a commit already under way
// completes and is acknowledged), waits for the committer and closes the
// file, releasing the directory for another process. Closing again returns
// the first Close's result. Safe for concurrent use.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		l.sendMu.Lock() // wait for Appends that are sending
		l.sendClosed = true
		l.sendMu.Unlock()
		close(l.stop)
		<-l.done
		l.mu.Lock()
		l.cache.Clear()
		l.mu.Unlock()
		if err := l.db.Close(); err != nil {
			l.closeErr = fmt.Errorf("boltlog: close %s: %w", l.file, err)
		}
	})
	return l.closeErr
}

// dropOldJumps forgets the jumps to positions at or before the oldest
// retained event (all of them when none is): counting back from any
// position stops there (what lies before is gone), so one jump a restart
// is kept only while history reaches back to it. Called by load.
func (l *Log) dropOldJumps(jb *bolt.Bucket) error {
	oldest := l.first
	if l.rfirst != 0 && (oldest == 0 || l.rfirst < oldest) {
		oldest = l.rfirst
	}
	kept := l.jumps[:0]
	for _, j := range l.jumps {
		if j.to > oldest && oldest != 0 {
			kept = append(kept, j)
			continue
		}
		if err := jb.Delete(binary.BigEndian.AppendUint64(nil, j.to)); err != nil {
			return err
		}
	}
	l.jumps = kept
	return nil
}

// LastN implements ssehub.PositionJumps: positions are dense but for one
// jump per restart that went on from the clock (see commit), kept in the
// file since this version (jumps of earlier versions' restarts count as
// positions).
func (l *Log) LastN(_ context.Context, through, n uint64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return lastN(l.jumps, through, n), nil
}

// lastN is LastN over jumps, oldest first.
func lastN(jumps []jump, through, n uint64) uint64 {
	p := through // the newest position not counted yet
	for i := len(jumps) - 1; i >= 0 && n > 0; i-- {
		j := jumps[i]
		if j.to > p {
			continue // a jump after through
		}
		if span := p - j.to + 1; span >= n { // positions j.to..p
			return p - n
		} else {
			n -= span
		}
		p = j.from
	}
	if n >= p {
		return 0
	}
	return p - n
}
