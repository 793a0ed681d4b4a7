package redislog

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// The topic index: its keys, scripts, sweep and build are described in the
// package documentation ("Keys and positions", "Reading by topic",
// "Upgrading from a version without the index", "Retention").

var _ ssehub.TopicIndex = (*Log)(nil)

const (
	readScanCap  = 4096 // stream entries one read script call scans at most
	readPage     = 256  // entries per XRANGE inside the read script
	buildChunkN  = 1000 // events the builder indexes per script call
	sweepCount   = 256  // topics the sweep looks at per script call
	sweepPages   = 16   // sweep script calls per pass
	walkSteps    = 1000 // appended ranges the build script steps over per call
	topicKeyPart = ":t:"
	// reservedKeyPart names the sets of the reserved stream's events
	reservedKeyPart = ":r:"

	// afterSeq completes "(<pos>" to the start of an XRANGE after every
	// entry id of position pos, also ids not made by this package.
	afterSeq = "-18446744073709551615"
)

// luaCommon are the helpers the index scripts share: num turns an entry id
// "<pos>-0" (or a position) into a number, fmt a number into a position
// string (never tostring, which would give "1.7e+15"), first returns the
// oldest entry's position (nil for an empty stream).
const luaCommon = `
local function num(id) return tonumber(string.match(id, '^(%d+)')) end
local function fmt(n) return string.format('%d', n) end
local function first(stream)
	local e = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
	if #e > 0 then return num(e[1][1]) end
	return nil
end
`

// readScript answers one ReadTopics call, or the first part of it.
// KEYS: the stream, the counter, the marker M, the reserved stream, then
// for each topic its set and its reserved set (see the append script).
// ARGV: after, until (0: none), limit, max bytes (0: none), the most
// stream entries to scan, then the topics (none: every event).
//
// It returns {newest, resume, pos, entry, pos, entry, …}: newest is the
// newest position (the counter, or the stream's newest id if larger), read
// in the same call; the entries are the candidates in position order.
// resume is 0 when the candidates are every event selected in (after,
// min(until, newest)], else the position through which they are (the
// script stopped at limit or max bytes, counted as Event.Size counts, or
// scanned its most, or a topic's set had more than limit positions): the
// caller goes on from there if it needs more.
//
// Candidates up to M come from the topics' sets, each looked up in the
// stream its set is of (a hash may be shared by two topics: the caller
// checks topics); after M the script scans both streams, merged by
// position, and checks topics itself, by parsing the encoding. (Only a
// node of the version before the index leaves M behind, and only while the
// index is being built, see buildIndex.) Without topics it scans both
// streams from after.
var readScript = indexScript(`
local function skip(s, i)
	while true do
		local b = string.byte(s, i)
		i = i + 1
		if b == nil or b < 128 then return i end
	end
end
local function uvar(s, i)
	local n, mul = 0, 1
	while true do
		local b = string.byte(s, i)
		if b == nil then return nil, i end
		i = i + 1
		if b < 128 then return n + b * mul, i end
		n, mul = n + (b - 128) * mul, mul * 128
	end
end
-- parse returns the event's Size and whether one of its topics is in want
-- (always true for a nil want, or bytes it cannot parse: the caller skips
-- those with a message).
local function parse(s, want)
	local i = skip(s, skip(s, skip(s, 3))) -- version, flags; pos, time, retry
	local size, hit, n = 0, want == nil, nil
	for _ = 1, 2 do -- id, type
		n, i = uvar(s, i)
		if n == nil then return #s, true end
		size, i = size + n, i + n
	end
	local k
	k, i = uvar(s, i)
	if k == nil then return #s, true end
	for _ = 1, k do
		n, i = uvar(s, i)
		if n == nil then return #s, true end
		if not hit and want[string.sub(s, i, i + n - 1)] then hit = true end
		size, i = size + n, i + n
	end
	n, i = uvar(s, i)
	if n == nil then return #s, true end
	return size + n, hit
end
local function value(entry)
	local f = entry[2]
	for j = 1, #f, 2 do
		if f[j] == 'e' then return f[j+1] end
	end
	return ''
end

local after, untl, limit, maxb, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
for _, s in ipairs({KEYS[1], KEYS[4]}) do
	local top = redis.call('XREVRANGE', s, '+', '-', 'COUNT', 1)
	if #top > 0 then newest = math.max(newest, num(top[1][1])) end
end
local out = {fmt(newest), '0'}
local f, fr = first(KEYS[1]), first(KEYS[4])
if f == nil or (fr ~= nil and fr < f) then f = fr end
if f == nil then return out end
local lo = math.max(after, f - 1)
local hi = newest
if untl > 0 then hi = math.min(hi, untl) end
if lo >= hi then return out end

local n, bytes = 0, 0
-- add adds a candidate; false once the answer is full.
local function add(p, v, size)
	out[#out+1] = p
	out[#out+1] = v
	n, bytes = n + 1, bytes + size
	if n >= limit or (maxb > 0 and bytes >= maxb) then
		out[2] = p
		return false
	end
	return true
end

local want = nil
local from = lo
if #ARGV > 5 then
	want = {}
	for i = 6, #ARGV do want[ARGV[i]] = true end
	local m = tonumber(redis.call('GET', KEYS[3]) or '0')
	local ihi = math.min(hi, m)
	if ihi > lo then
		local ps, where, cut = {}, {}, nil
		for k = 5, #KEYS do
			local r = redis.call('ZRANGEBYSCORE', KEYS[k], '(' .. fmt(lo), fmt(ihi), 'LIMIT', 0, limit)
			local stream = KEYS[1]
			if (k - 5) % 2 == 1 then stream = KEYS[4] end
			for _, p in ipairs(r) do
				p = tonumber(p)
				ps[#ps+1] = p
				where[p] = stream
			end
			if #r >= limit then
				local last = tonumber(r[#r])
				if cut == nil or last < cut then cut = last end
			end
		end
		table.sort(ps)
		local prev = nil
		for _, p in ipairs(ps) do
			if cut ~= nil and p > cut then break end
			if p ~= prev then
				prev = p
				local id = fmt(p) .. '-0'
				local e = redis.call('XRANGE', where[p], id, id)
				if #e > 0 then
					local v = value(e[1])
					if not add(fmt(p), v, (parse(v, nil))) then return out end
				end
			end
		end
		if cut ~= nil then
			out[2] = fmt(cut)
			return out
		end
	end
	from = math.max(lo, m)
end
if hi <= from then return out end
-- Scan both streams after from, merged by position: a page of each at a
-- time; an entry is taken only once the other stream's next is known.
local streams, pages, at, start, done = {KEYS[1], KEYS[4]}, {{}, {}}, {1, 1}, {}, {false, false}
start[1] = '(' .. fmt(from) .. '-0'
start[2] = start[1]
local scanned = 0
local function head(s)
	if at[s] > #pages[s] and not done[s] then
		local pg = redis.call('XRANGE', streams[s], start[s], fmt(hi) .. '-0', 'COUNT', ${page})
		if #pg < ${page} then done[s] = true end
		if #pg > 0 then start[s] = '(' .. pg[#pg][1] end
		pages[s], at[s] = pg, 1
	end
	return pages[s][at[s]]
end
while true do
	local a, b = head(1), head(2)
	local e = a
	if a == nil or (b ~= nil and num(b[1]) < num(a[1])) then
		e = b
		at[2] = at[2] + 1
	else
		at[1] = at[1] + 1
	end
	if e == nil then return out end
	local v = value(e)
	local size, hit = parse(v, want)
	if hit and not add(fmt(num(e[1])), v, size) then return out end
	scanned = scanned + 1
	if scanned >= cap then
		out[2] = fmt(num(e[1]))
		return out
	end
end
`)

// buildScript indexes one chunk of the events after M, which the caller
// read from the stream and hashed, and moves M past them.
// KEYS: the stream, the counter, M, the appended ranges, the topics set.
// ARGV: M as the caller read it ("" for none), the topic key prefix, the
// position of the last entry read ("" for none), then pairs: a position
// and its topics' hashes (hex, space separated).
//
// When M changed since the caller read it (another node built the chunk)
// it does nothing and returns "-1". Otherwise it indexes the positions still
// in the stream, sets M to the last entry read, then steps M over the
// ranges appended (and indexed) by this version since (see the append
// script), and to the counter once no entry lies beyond M. It returns M.
var buildScript = indexScript(`
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[1] then return '-1' end
local f = first(KEYS[1])
for i = 4, #ARGV, 2 do
	local p = ARGV[i]
	if f ~= nil and tonumber(p) >= f then
		for t in string.gmatch(ARGV[i+1], '%x+') do
			redis.call('ZADD', ARGV[2] .. t, p, p)
			redis.call('ZADD', KEYS[5], 'LT', p, t)
		end
	end
end
local m = tonumber(ARGV[1]) or 0
if ARGV[3] ~= '' then m = math.max(m, tonumber(ARGV[3])) end
for _ = 1, ${walk} do
	local nx = redis.call('XRANGE', KEYS[1], '(' .. fmt(m) .. '${afterseq}', '+', 'COUNT', 1)
	if #nx == 0 then
		m = math.max(m, tonumber(redis.call('GET', KEYS[2]) or '0'))
		break
	end
	local p = num(nx[1][1])
	local r = redis.call('ZREVRANGEBYSCORE', KEYS[4], p, '-inf', 'LIMIT', 0, 1)
	if #r == 0 or tonumber(r[1]) < p then break end
	m = tonumber(r[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', fmt(m))
redis.call('SET', KEYS[3], fmt(m))
return fmt(m)
`)

// sweepScript removes from the topics' sets the positions retention
// removed from the stream (all of them when the stream is empty), and the
// sets (and their entries in the topics set) left empty, for up to ARGV[2]
// topics whose oldest position is before the stream's first.
// KEYS: the stream, the topics set. ARGV: the topic key prefix, the count.
// It returns how many topics it looked at.
var sweepScript = indexScript(`
local f = first(KEYS[1])
local ts
if f == nil then
	ts = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1)
else
	ts = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. fmt(f), 'LIMIT', 0, tonumber(ARGV[2]))
end
for _, t in ipairs(ts) do
	local k = ARGV[1] .. t
	if f == nil then
		redis.call('DEL', k)
	else
		redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. fmt(f))
	end
	local o = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
	if #o == 0 then
		redis.call('ZREM', KEYS[2], t)
	else
		redis.call('ZADD', KEYS[2], o[2], t)
	end
end
return #ts
`)

// indexScript returns the script src after luaCommon, with the
// constants it names filled in.
func indexScript(src string) *redis.Script {
	r := strings.NewReplacer("${page}", strconv.Itoa(readPage), "${walk}", strconv.Itoa(walkSteps), "${afterseq}", afterSeq)
	return redis.NewScript(r.Replace(luaCommon + src))
}

// topicHashes returns the hashes of e's distinct topics as the scripts
// take them: hex, space separated, preceded by "R" when e goes to the
// reserved stream.
func topicHashes(e *ssehub.Event, reserved bool) string {
	b := make([]byte, 0, 1+17*len(e.Topics))
	if reserved {
		b = append(b, 'R')
	}
	for i, t := range eventlog.DistinctTopics(e) {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendHash(b, t)
	}
	return string(b)
}

// topicKey returns the name of the sorted set that indexes topic's events
// in the stream, or with reserved those in the reserved stream.
func (l *Log) topicKey(topic string, reserved bool) string {
	if reserved {
		return string(appendHash([]byte(l.rprefix), topic))
	}
	return string(appendHash([]byte(l.tprefix), topic))
}

// appendHash appends topic's hash in 16 hex digits to b.
func appendHash(b []byte, topic string) []byte {
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], eventlog.TopicHash(topic))
	return hex.AppendEncode(b, h[:])
}

// ReadTopics implements ssehub.TopicIndex with one script call: up to the
// marker M the positions come from the topics' sets (a ZRANGEBYSCORE per
// topic, then an XRANGE per event returned), after M (only while the index
// is being built, see the package documentation) from a scan of the
// stream. It makes more calls only when the first could not answer: while
// it scans more than readScanCap unindexed entries, or when topics sharing
// a hash filled the page. Safe for concurrent use.
func (l *Log) ReadTopics(ctx context.Context, q ssehub.TopicQuery) ([]*ssehub.Event, uint64, error) {
	if err := eventlog.Usable(ctx, l.closing); err != nil {
		return nil, 0, err
	}
	c := eventlog.NewCollector(q)
	keys := []string{l.stream, l.counter, l.marker, l.reserved}
	args := []any{q.After, q.Until, max(q.Limit, 1), max(q.MaxBytes, 0), readScanCap}
	for _, t := range q.Topics {
		if k := l.topicKey(t, false); !slices.Contains(keys[4:], k) {
			keys = append(keys, k, l.topicKey(t, true))
		}
		args = append(args, t)
	}
	for {
		opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		res, err := readScript.Run(opCtx, l.client, keys, args...).StringSlice()
		cancel()
		if err != nil {
			return nil, 0, l.fail(ctx, "read topics", err)
		}
		if len(res) < 2 || len(res)%2 != 0 {
			return nil, 0, fmt.Errorf("redislog: read topics: unexpected reply of %d values", len(res))
		}
		newest, _ := strconv.ParseUint(res[0], 10, 64)
		resume, _ := strconv.ParseUint(res[1], 10, 64)
		for i := 2; i < len(res); i += 2 {
			pos, _ := strconv.ParseUint(res[i], 10, 64)
			if ev := l.decodeEntry(pos, res[i+1]); ev != nil && !c.Offer(ev) {
				break
			}
		}
		if c.Full() || resume == 0 {
			events, through := c.Result(newest)
			return events, through, nil
		}
		args[0] = resume
	}
}

// indexState returns the marker M ("" when absent) and the counter ("" when
// absent), read together.
func (l *Log) indexState(ctx context.Context) (marker, counter string, err error) {
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	vals, err := l.client.MGet(opCtx, l.marker, l.counter).Result()
	if err != nil {
		return "", "", err
	}
	marker, _ = vals[0].(string)
	counter, _ = vals[1].(string)
	return marker, counter, nil
}

// buildIndex indexes the events after the marker M that the index does not
// hold yet (a stream written by a version without the index), a chunk at a
// time, until M reaches the counter. Safe to run on several nodes at once,
// and to stop at any point.
func (l *Log) buildIndex(ctx context.Context) error {
	for {
		done, err := l.buildChunk(ctx)
		if err != nil || done {
			return err
		}
	}
}

// buildChunk indexes the next chunk of events after M, unless M reached
// the counter or cannot move now (done: nothing more to do until the next
// tick). It is one XRANGE after M and one script call that
// indexes the chunk and moves M, only if M did not move in between (so
// several nodes may build at once: one wins each chunk, the others read
// again); appends run between chunks.
func (l *Log) buildChunk(ctx context.Context) (done bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			err = l.fail(ctx, "build topic index", err)
		}
	}()
	marker, counter, err := l.indexState(ctx)
	if err != nil || marker == counter {
		return err == nil, err
	}
	start := "-"
	if marker != "" {
		start = "(" + marker + afterSeq
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	msgs, err := l.client.XRangeN(opCtx, l.stream, start, "+", l.chunk).Result()
	cancel()
	if err != nil {
		return false, err
	}
	last := ""
	args := make([]any, 3, 3+2*len(msgs))
	for _, m := range msgs {
		pos, ok := parseID(m.ID)
		if !ok {
			continue
		}
		last = strconv.FormatUint(pos, 10)
		s, _ := m.Values[field].(string)
		var ev ssehub.Event
		if err := ev.UnmarshalBinary([]byte(s)); err != nil {
			continue // Read skips it too, with a message
		}
		args = append(args, last, topicHashes(&ev, false))
	}
	args[0], args[1], args[2] = marker, l.tprefix, last
	if l.beforeBuildScript != nil {
		l.beforeBuildScript()
	}
	opCtx, cancel = context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	moved, err := buildScript.Run(opCtx, l.client, []string{l.stream, l.counter, l.marker, l.unindexed, l.topics}, args...).Text()
	// No progress (an entry the script cannot step over): try again at
	// the next tick rather than spin.
	return moved == marker, err
}

// sweepTopics removes index entries of events retention removed, and the
// sets of topics none of whose events are retained, looking at up to
// sweepPages×sweepCount topics of each stream. Each set names positions of
// one stream (see the append script), so a set of the reserved stream is
// swept against that stream's oldest entry. Safe to run on several nodes
// at once.
func (l *Log) sweepTopics(ctx context.Context) error {
	for _, keys := range [][]string{{l.stream, l.topics, l.tprefix}, {l.reserved, l.rtopics, l.rprefix}} {
		for range sweepPages {
			opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
			n, err := sweepScript.Run(opCtx, l.client, keys[:2], keys[2], sweepCount).Int()
			cancel()
			if err != nil {
				return l.fail(ctx, "sweep topic index", err)
			}
			if n < sweepCount {
				break
			}
		}
	}
	return nil
}
