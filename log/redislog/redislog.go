package redislog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// ErrOptions is returned by Open for options it cannot use.
var ErrOptions = errors.New("redislog: invalid options")

// Options configure a Log. The zero value is usable: prefix "ssehub", every
// event kept forever, a 3 s timeout and no logging.
type Options struct {
	// Prefix names the keys: "{Prefix}:events", "{Prefix}:seq",
	// "{Prefix}:ids" and the topic index's (see the package
	// documentation). Every node of one deployment must use the same
	// prefix; different prefixes make independent logs in one Redis.
	// Default "ssehub".
	Prefix string
	// MaxEvents, when positive, is how many of the newest events to keep
	// (at least; see the package documentation).
	MaxEvents int
	// MaxAge, when positive, is how long to keep an event after its Time.
	MaxAge time.Duration
	// MaxReserved, when positive, keeps the hub's own events
	// (ssehub.Event.Reserved: subscription events, heartbeats) apart, in
	// a stream of their own trimmed to the newest MaxReserved (at least;
	// see the package documentation), and MaxEvents counts application
	// events only, so the hub's bookkeeping never pushes an application
	// event out (ssehub.ReservedRetention). Zero: one stream and one
	// budget for all events, as before.
	MaxReserved int
	// Timeout bounds every request to Redis other than Tail's blocking
	// read. Default 3 s.
	Timeout time.Duration
	// Logger receives warnings (Redis unreachable, undecodable entries).
	// Default: discard.
	Logger *slog.Logger
}

// Log is an ssehub.Log in a Redis stream. Create it with Open. All methods
// are safe for concurrent use by any number of goroutines.
type Log struct {
	client   *redis.Client
	addr     string // for messages: host:port
	stream   string // {prefix}:events: application events (all, without MaxReserved)
	reserved string // {prefix}:reserved: reserved events, with MaxReserved
	counter  string // {prefix}:seq
	ids      string // {prefix}:ids: publisher-supplied id -> position
	// The topic index (see topics.go).
	tprefix   string // {prefix}:t: followed by a topic's hash names its set
	lprefix   string // {prefix}:lock: followed by a topic's hash names its lock (lock.go)
	topics    string // {prefix}:topics: hash -> oldest position in its set
	rprefix   string // {prefix}:r: the same for the reserved stream's events
	rtopics   string // {prefix}:rtopics: the same for the reserved stream's events
	marker    string // {prefix}:indexed: the index is complete up to it
	unindexed string // {prefix}:unindexed: ranges appended while it lags
	opts      Options
	logger    *slog.Logger

	closing context.Context // done once Close was called
	close   context.CancelFunc
	once    sync.Once
	wg      sync.WaitGroup // committers, trimmer and Tail unblockers

	queue chan *appendReq // to the committers

	clock eventlog.Clock // the Times Append assigns never go back
	block time.Duration  // how long one tail XREAD waits (tests change it)
	chunk int64          // events per chunk of the index build (tests change it)
	// beforeBuildScript, when set by a test, runs between a build chunk's
	// XRANGE and its script call.
	beforeBuildScript func()
}

var (
	_ ssehub.Log               = (*Log)(nil)
	_ ssehub.Pinger            = (*Log)(nil)
	_ ssehub.ReservedRetention = (*Log)(nil)
)

const (
	defaultPrefix  = "ssehub"
	defaultTimeout = 3 * time.Second
	field          = "e" // the stream entry's one field
)

// Open connects to the Redis server at url (redis://[user:pass@]host:port/db,
// or rediss:// for TLS) and returns a Log using the keys named by
// opts.Prefix. It fails with an error wrapping ssehub.ErrUnavailable when
// Redis cannot be reached within opts.Timeout or ctx. A stream written by a
// version without the topic index is indexed in the background (see the
// package documentation); reads are right meanwhile.
func Open(ctx context.Context, url string, opts Options) (*Log, error) {
	l, err := openLog(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	l.wg.Add(1)
	go l.maintain()
	return l, nil
}

// openLog is Open without the background maintenance (trimming, building
// and sweeping the topic index), which tests run step by step.
func openLog(ctx context.Context, url string, opts Options) (*Log, error) {
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if opts.Timeout == 0 {
		opts.Timeout = defaultTimeout
	}
	switch {
	case opts.MaxEvents < 0:
		return nil, fmt.Errorf("%w: MaxEvents must not be negative (0 keeps every event)", ErrOptions)
	case opts.MaxReserved < 0:
		return nil, fmt.Errorf("%w: MaxReserved must not be negative (0 keeps reserved events with the others)", ErrOptions)
	case opts.MaxAge < 0:
		return nil, fmt.Errorf("%w: MaxAge must not be negative (0 keeps events forever)", ErrOptions)
	case opts.Timeout < 0:
		return nil, fmt.Errorf("%w: Timeout must not be negative", ErrOptions)
	case strings.ContainsAny(opts.Prefix, "{}"):
		return nil, fmt.Errorf("%w: Prefix %q must not contain braces (they are added as a hash tag)", ErrOptions, opts.Prefix)
	}
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("%w: url %q: %v", ErrOptions, url, err)
	}
	ro.MaxRetries = -1 // never resend a script whose reply was lost: it could append twice
	ro.DialTimeout = min(opts.Timeout, 2*time.Second)
	ro.DialerRetries = 1
	ro.ContextTimeoutEnabled = true
	ro.ReadTimeout = opts.Timeout
	ro.WriteTimeout = opts.Timeout
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if ro.ClientName == "" {
		ro.ClientName = "ssehub"
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		client:   redis.NewClient(ro),
		addr:     ro.Addr,
		stream:   "{" + opts.Prefix + "}:events",
		reserved: "{" + opts.Prefix + "}:reserved",
		counter:  "{" + opts.Prefix + "}:seq",
		ids:      "{" + opts.Prefix + "}:ids",
		opts:     opts,
		logger:   logger.With("log", "redis", "addr", ro.Addr, "stream", "{"+opts.Prefix+"}:events"),
		block:    tailBlock,
		chunk:    buildChunkN,

		tprefix:   "{" + opts.Prefix + "}" + topicKeyPart,
		lprefix:   "{" + opts.Prefix + "}" + lockKeyPart,
		topics:    "{" + opts.Prefix + "}:topics",
		rprefix:   "{" + opts.Prefix + "}" + reservedKeyPart,
		rtopics:   "{" + opts.Prefix + "}:rtopics",
		marker:    "{" + opts.Prefix + "}:indexed",
		unindexed: "{" + opts.Prefix + "}:unindexed",
	}
	l.closing, l.close = context.WithCancel(context.Background())
	if err := l.Ping(ctx); err != nil {
		l.client.Close()
		return nil, err
	}
	l.queue = make(chan *appendReq, queueLen)
	for range committers {
		l.wg.Add(1)
		go l.commitLoop()
	}
	return l, nil
}

// appendScript stores the appends of one group commit and returns, for
// each, its first position and 0, or 0 and the (1-based) index of an event
// whose id is taken. KEYS: the stream, the counter, the id index, the
// topics set, the index marker M, the appended ranges (see topics.go), the
// reserved stream, the reserved topics set. ARGV[1] is MaxEvents (0: no
// limit), ARGV[2] the prefix of the topics' sets, ARGV[3] MaxReserved,
// ARGV[4] the prefix of the reserved topics' sets; then, for each append,
// its number of events k followed by k triples: the event's
// publisher-supplied id ("" for none), the event encoded with position 0,
// and the hashes of its distinct topics (hex, space separated), preceded by
// "R" for an event that goes to the reserved stream. The encoding starts
// with a version byte, a flags byte and the position as a uvarint, so
// position 0 is the single byte 3, which the script replaces.
//
// An append is refused whole, before anything of it is written or a
// position is counted, when one of its ids is in the id index (KEYS[3])
// with a position that is still in a stream; an entry naming a position
// retention removed is free. Appends after a refused one in the same call
// are not affected, and see the ids of the appends before them.
//
// Every event stored is added to its topics' sets: an event of the stream
// to the sets under ARGV[2] (listed in KEYS[4]), a reserved event to those
// under ARGV[4] (listed in KEYS[8]), so that each set names positions of
// one stream. When M was the counter before the call (the index held every
// event), M moves to the new counter; otherwise the index is being built
// (see buildIndex) and the call records the range of positions it stored,
// so that the builder can step over them instead of reading them again.
//
// A new counter starts at Redis's clock in microseconds (see "Positions
// after data loss" in the package documentation), or after the streams'
// newest id when only the counter was lost.
//
// Positions are Lua numbers (doubles, exact below 2^53): they are turned
// into strings with %d, never tostring (which would give "1.7e+15").
var appendScript = redis.NewScript(`
local maxlen, tprefix, maxres, rprefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local complete = redis.call('GET', KEYS[5]) == redis.call('GET', KEYS[2])
local lo, hi = nil, nil
-- set key -> its positions (score, member); in order: {set key, topics set, hash}
local touched, order = {}, {}
local function uvarint(n)
	local t = {}
	while n >= 128 do
		t[#t+1] = string.char(n % 128 + 128)
		n = math.floor(n / 128)
	end
	t[#t+1] = string.char(n)
	return table.concat(t)
end
local function retained(p)
	return #redis.call('XRANGE', KEYS[1], p .. '-0', p .. '-0') > 0 or
		#redis.call('XRANGE', KEYS[7], p .. '-0', p .. '-0') > 0
end
local function lastgen(stream)
	if redis.call('EXISTS', stream) == 0 then return 0 end
	local info = redis.call('XINFO', 'STREAM', stream)
	for i = 1, #info, 2 do
		if info[i] == 'last-generated-id' then
			return tonumber(string.match(info[i+1], '^(%d+)')) or 0
		end
	end
	return 0
end
local function alloc(k)
	local last = redis.call('INCRBY', KEYS[2], k)
	if last == k then
		local base = math.max(lastgen(KEYS[1]), lastgen(KEYS[7]))
		if base == 0 then
			local t = redis.call('TIME')
			base = tonumber(t[1]) * 1000000 + tonumber(t[2])
		end
		last = redis.call('INCRBY', KEYS[2], base)
	end
	return last - k + 1
end
local out = {}
local a = 5
while a <= #ARGV do
	local k = tonumber(ARGV[a])
	local dup = 0
	for i = 1, k do
		local id = ARGV[a + 3*i - 2]
		if id ~= '' then
			local p = redis.call('HGET', KEYS[3], id)
			if p and retained(p) then
				dup = i
				break
			end
		end
	end
	if dup > 0 then
		out[#out+1] = 0
		out[#out+1] = dup
	else
		local first = alloc(k)
		for i = 1, k do
			local pos = string.format('%d', first + i - 1)
			local id = ARGV[a + 3*i - 2]
			local e = ARGV[a + 3*i - 1]
			local hs = ARGV[a + 3*i]
			local v = string.sub(e, 1, 2) .. uvarint(first + i - 1) .. string.sub(e, 4)
			local stream, n, prefix, zset = KEYS[1], maxlen, tprefix, KEYS[4]
			if string.byte(hs, 1) == 82 and maxres ~= '0' then -- "R"
				stream, n, prefix, zset = KEYS[7], maxres, rprefix, KEYS[8]
			end
			if n ~= '0' then
				redis.call('XADD', stream, 'MAXLEN', '~', n, pos .. '-0', 'e', v)
			else
				redis.call('XADD', stream, pos .. '-0', 'e', v)
			end
			if id ~= '' then
				redis.call('HSET', KEYS[3], id, pos)
			end
			for t in string.gmatch(hs, '%x+') do
				local key = prefix .. t
				local ps = touched[key]
				if ps == nil then
					ps = {}
					touched[key] = ps
					order[#order+1] = {key, zset, t}
				end
				ps[#ps+1] = pos
				ps[#ps+1] = pos
			end
		end
		lo = lo or first
		hi = first + k - 1
		out[#out+1] = first
		out[#out+1] = 0
	end
	a = a + 1 + 3*k
end
-- The index: one ZADD per topic touched (in slices, as unpack is bounded).
for _, o in ipairs(order) do
	local ps = touched[o[1]]
	for i = 1, #ps, 4000 do
		redis.call('ZADD', o[1], unpack(ps, i, math.min(i + 3999, #ps)))
	end
	redis.call('ZADD', o[2], 'LT', ps[1], o[3])
end
if hi ~= nil then
	if complete then
		redis.call('SET', KEYS[5], string.format('%d', hi))
	else
		redis.call('ZADD', KEYS[6], string.format('%d', lo), string.format('%d', hi))
	end
end
return out
`)

// boundsScript returns the first position Bounds reports (or 0), the
// counter (or 0) and the newest entry's position of either stream (or 0),
// read atomically. KEYS: the stream, the counter, the reserved stream.
//
// The first position is the stream's oldest entry: every application event
// from it on is retained (the stream is trimmed from its oldest end). When
// the stream holds nothing, it is the reserved stream's oldest entry after
// every application event ever stored (the stream's last generated id), so
// that a log holding only reserved events does not look empty.
var boundsScript = redis.NewScript(`
local function num(id) return tonumber(string.match(id, '^(%d+)')) end
local function edge(stream, cmd, from, to)
	local e = redis.call(cmd, stream, from, to, 'COUNT', 1)
	if #e > 0 then return num(e[1][1]) end
	return 0
end
local first = edge(KEYS[1], 'XRANGE', '-', '+')
local top = math.max(edge(KEYS[1], 'XREVRANGE', '+', '-'), edge(KEYS[3], 'XREVRANGE', '+', '-'))
if first == 0 and top > 0 then
	local gone = 0
	if redis.call('EXISTS', KEYS[1]) == 1 then
		local info = redis.call('XINFO', 'STREAM', KEYS[1])
		for i = 1, #info, 2 do
			if info[i] == 'last-generated-id' then gone = num(info[i+1]) end
		end
	end
	first = edge(KEYS[3], 'XRANGE', string.format('%d', gone + 1), '+')
end
return {string.format('%d', first), redis.call('GET', KEYS[2]) or '0', string.format('%d', top)}
`)

// reservedRemovedScript returns the position ReservedRemoved reports.
// KEYS: the reserved stream. Retention trims it from its oldest end only,
// so every reserved event removed is older than its oldest entry: when
// the stream holds fewer entries than were ever added to it (Redis 7's
// entries-added; older servers do not count, and are assumed to have
// trimmed), the answer is the position before its oldest entry, or its
// last generated id when it holds none.
var reservedRemovedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return '0' end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local length, added, lastgen = 0, nil, '0'
for i = 1, #info, 2 do
	if info[i] == 'length' then length = tonumber(info[i+1])
	elseif info[i] == 'entries-added' then added = tonumber(info[i+1])
	elseif info[i] == 'last-generated-id' then lastgen = info[i+1] end
end
if added ~= nil and added <= length then return '0' end
local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #e == 0 then return string.match(lastgen, '^(%d+)') end
return string.format('%d', tonumber(string.match(e[1][1], '^(%d+)')) - 1)
`)

// Append implements ssehub.Log. The events are stored atomically in one
// script call with consecutive positions; Time is set to the current time
// where zero. It refuses the events, storing none, when one of their
// publisher-supplied IDs is the ID of a retained event or of another of
// them (see ssehub.IDIndex), with an error wrapping ssehub.ErrDuplicateID. Safe for concurrent use; concurrent appends from any number
// of goroutines and nodes are totally ordered by Redis, and concurrent
// appends on one Log share script calls (group commit).
func (l *Log) Append(ctx context.Context, events ...*ssehub.Event) error {
	if l.closing.Err() != nil {
		return ssehub.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	now := l.clock.Now()
	size := 0
	for i, ev := range events {
		if ev == nil {
			return fmt.Errorf("%w: redislog: event %d is nil", ssehub.ErrInvalid, i)
		}
		size += 48 + len(ev.ID) + len(ev.Type) + len(ev.Data)
		for _, t := range ev.Topics {
			size += 25 + len(t) // the topic and its hash

		}
	}
	if id, dup := eventlog.DuplicateID(events); dup {
		return fmt.Errorf("%w: id %q is given to two events of the batch", ssehub.ErrDuplicateID, id)
	}
	r := &appendReq{
		enc:    make([][]byte, 0, len(events)),
		ids:    make([]string, 0, len(events)),
		hashes: make([]string, 0, len(events)),
		size:   size,
		done:   make(chan struct{}),
	}
	buf := make([]byte, 0, size)
	for _, ev := range events {
		c := *ev
		c.Pos = 0 // one byte, replaced by the script
		if c.Time.IsZero() {
			c.Time = now
		}
		start := len(buf)
		buf, _ = c.AppendBinary(buf)
		r.enc = append(r.enc, buf[start:len(buf):len(buf)])
		r.ids = append(r.ids, ev.ID)
		r.hashes = append(r.hashes, topicHashes(ev, l.opts.MaxReserved > 0 && ev.Reserved()))
	}
	select {
	case l.queue <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closing.Done():
		return ssehub.ErrClosed
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return l.fail(ctx, "append", ctx.Err())
	case <-l.closing.Done():
		return ssehub.ErrClosed
	}
	if r.dup > 0 {
		return fmt.Errorf("%w: id %q is already the id of a retained event", ssehub.ErrDuplicateID, events[r.dup-1].ID)
	}
	if r.err != nil {
		return l.fail(ctx, "append", r.err)
	}
	for i, ev := range events {
		ev.Pos = r.first + uint64(i)
		if ev.Time.IsZero() {
			ev.Time = now
		}
	}
	return nil
}

// Read implements ssehub.Log with one XRANGE of each stream in one
// MULTI/EXEC (one round trip, read atomically), merged by position. A
// limit of zero or less returns no events. Safe for concurrent use.
func (l *Log) Read(ctx context.Context, after uint64, limit int) ([]*ssehub.Event, error) {
	if l.closing.Err() != nil {
		return nil, ssehub.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	var app, res *redis.XMessageSliceCmd
	_, err := l.client.TxPipelined(opCtx, func(p redis.Pipeliner) error {
		app = p.XRangeN(opCtx, l.stream, "("+entryID(after), "+", int64(limit))
		res = p.XRangeN(opCtx, l.reserved, "("+entryID(after), "+", int64(limit))
		return nil
	})
	if err != nil {
		return nil, l.fail(ctx, "read", err)
	}
	// Each list holds its stream's first limit entries after after, so
	// the first limit of the two merged are the log's.
	msgs := mergeEntries(app.Val(), res.Val())
	events, _ := l.decode(msgs[:min(len(msgs), limit)])
	return events, nil
}

// mergeEntries returns the entries of a and b (each in id order) in
// position order. It returns a or b itself when the other is empty.
func mergeEntries(a, b []redis.XMessage) []redis.XMessage {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]redis.XMessage, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		pa, _ := parseID(a[0].ID)
		pb, _ := parseID(b[0].ID)
		if pa <= pb {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// Bounds implements ssehub.Log: the oldest retained position and the newest
// position ever assigned, read atomically. With MaxReserved, first is the
// oldest retained application event (every application event from it on
// is retained; reserved events older than it may be too), or, when none is
// retained, the oldest reserved event after the newest application event
// removed. Safe for concurrent use.
func (l *Log) Bounds(ctx context.Context) (first, last uint64, err error) {
	if l.closing.Err() != nil {
		return 0, 0, ssehub.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	res, err := boundsScript.Run(opCtx, l.client, []string{l.stream, l.counter, l.reserved}).StringSlice()
	if err != nil {
		return 0, 0, l.fail(ctx, "bounds", err)
	}
	if len(res) != 3 {
		return 0, 0, fmt.Errorf("redislog: bounds: unexpected reply %q", res)
	}
	first, _ = parseID(res[0])
	last, _ = strconv.ParseUint(res[1], 10, 64)
	if top, _ := parseID(res[2]); top > last {
		last = top // the counter was lost; the next append repairs it
	}
	return first, last, nil
}

// ReservedRemoved implements ssehub.ReservedRetention: the position before
// the oldest retained reserved event once retention removed any (so at
// least the newest one it removed), else 0. It is read from the reserved
// stream in one script call (see the package documentation). Safe for
// concurrent use.
func (l *Log) ReservedRemoved(ctx context.Context) (uint64, error) {
	if l.closing.Err() != nil {
		return 0, ssehub.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if l.opts.MaxReserved <= 0 {
		// One budget for all (every node of a cluster must agree): the
		// hub asks this for every replay batch, so no round trip.
		return 0, nil
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	s, err := reservedRemovedScript.Run(opCtx, l.client, []string{l.reserved}).Text()
	if err != nil {
		return 0, l.fail(ctx, "reserved removed", err)
	}
	pos, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redislog: reserved removed: unexpected reply %q", s)
	}
	return pos, nil
}

// Ping implements ssehub.Pinger: it reports whether Redis answers within
// the timeout. Safe for concurrent use.
func (l *Log) Ping(ctx context.Context) error {
	if l.closing.Err() != nil {
		return ssehub.ErrClosed
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	if err := l.client.Ping(opCtx).Err(); err != nil {
		return l.fail(ctx, "ping", err)
	}
	return nil
}

// Close implements ssehub.Log: it closes the connections to Redis, so
// pending calls fail with ssehub.ErrClosed and running Tails return it. It
// leaves the data in Redis. Closing twice is a no-op. Safe for concurrent
// use.
func (l *Log) Close() error {
	var err error
	l.once.Do(func() {
		l.close()
		err = l.client.Close()
		l.wg.Wait()
	})
	return err
}

// fail turns an error from Redis into the error a caller sees: ErrClosed
// after Close, the context's error when the caller's context ended, a plain
// error for a request Redis refused, and otherwise ErrUnavailable naming
// the server.
func (l *Log) fail(ctx context.Context, op string, err error) error {
	switch {
	case l.closing.Err() != nil:
		return fmt.Errorf("redislog: %s: %w", op, ssehub.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("redislog: %s: %w", op, ctx.Err())
	case refused(err):
		return fmt.Errorf("redislog: %s on redis at %s: %w", op, l.addr, err)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Errorf("%w: redislog: %s: redis at %s did not answer within %v", ssehub.ErrUnavailable, op, l.addr, l.opts.Timeout)
	default:
		return fmt.Errorf("%w: redislog: %s: redis at %s: %w", ssehub.ErrUnavailable, op, l.addr, err)
	}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout()
}

// refused reports whether err is Redis refusing a request for a reason that
// retrying will not fix (a wrong key type, a script error), as opposed to
// Redis being unreachable, loading, read-only, out of memory or down.
func refused(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	return strings.HasPrefix(msg, "WRONGTYPE") || strings.HasPrefix(msg, "ERR") && !strings.Contains(msg, "max number of clients")
}

// decode turns stream entries into events, skipping (and logging) entries
// that do not decode. It also returns the position of the last entry,
// decoded or not.
func (l *Log) decode(msgs []redis.XMessage) ([]*ssehub.Event, uint64) {
	var last uint64
	events := make([]*ssehub.Event, 0, len(msgs))
	for _, m := range msgs {
		pos, ok := parseID(m.ID)
		if !ok {
			l.logger.Error("redislog: skipped an entry with a foreign id", "id", m.ID)
			continue
		}
		last = pos
		s, _ := m.Values[field].(string)
		if ev := l.decodeEntry(pos, s); ev != nil {
			events = append(events, ev)
		}
	}
	return events, last
}

// decodeEntry decodes the entry s at position pos, or logs why it cannot
// and returns nil.
func (l *Log) decodeEntry(pos uint64, s string) *ssehub.Event {
	ev := new(ssehub.Event)
	if err := ev.UnmarshalBinary([]byte(s)); err != nil {
		l.logger.Error("redislog: skipped an undecodable entry", "pos", pos, "err", err)
		return nil
	}
	ev.Pos = pos // the id is authoritative
	return ev
}

// entryID returns the stream entry id of position pos.
func entryID(pos uint64) string { return strconv.FormatUint(pos, 10) + "-0" }

// parseID returns the position of the stream entry id "<pos>-0".
func parseID(id string) (uint64, bool) {
	ms, _, _ := strings.Cut(id, "-")
	pos, err := strconv.ParseUint(ms, 10, 64)
	return pos, err == nil
}
