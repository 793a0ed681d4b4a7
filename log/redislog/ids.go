package redislog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// The id index: the hash {prefix}:ids maps each publisher-supplied event id
// to the position of its event. The append script checks and fills it in
// the same script call that adds the events, so every node refuses an id
// another node took (ssehub.IDIndex). Retention (XADD MAXLEN ~, XTRIM)
// does not touch the hash: an entry whose position is no longer in the
// stream is free, and the trimmer deletes such entries a page at a time.

var _ ssehub.IDIndex = (*Log)(nil)

const (
	idScanCount = 256 // hash fields asked for per HSCAN while cleaning
	idScanPages = 8   // HSCAN calls per cleaning pass
)

// idCleanInterval is how often a Log with retention cleans the id index.
const idCleanInterval = time.Second

// lookupScript returns the position stored for id ARGV[1] in the id index
// KEYS[2] when the stream KEYS[1] or the reserved stream KEYS[3] still
// holds it, else nil.
var lookupScript = redis.NewScript(`
local p = redis.call('HGET', KEYS[2], ARGV[1])
if not p then return false end
if #redis.call('XRANGE', KEYS[1], p .. '-0', p .. '-0') == 0 and
	#redis.call('XRANGE', KEYS[3], p .. '-0', p .. '-0') == 0 then return false end
return p
`)

// cleanScript deletes from the id index KEYS[2] the pairs (id, position) of
// ARGV whose entry still holds that position and whose position is before
// the oldest entry of the stream KEYS[1] (all of them when it is empty) and
// not in the reserved stream KEYS[3]. (A reserved event's id stays until
// the stream's oldest entry passes it; the append script counts it free
// meanwhile.) It returns how many it deleted. Comparing inside the script
// keeps an id that an append reused since the HSCAN.
var cleanScript = redis.NewScript(`
local function first(stream)
	local e = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
	if #e > 0 then return tonumber(string.match(e[1][1], '^(%d+)')) end
	return nil
end
local f, fr = first(KEYS[1]), first(KEYS[3])
local n = 0
for i = 1, #ARGV, 2 do
	local p = ARGV[i+1]
	local gone = f == nil or tonumber(p) < f
	if gone and fr ~= nil and tonumber(p) >= fr then
		gone = #redis.call('XRANGE', KEYS[3], p .. '-0', p .. '-0') == 0
	end
	if gone and redis.call('HGET', KEYS[2], ARGV[i]) == p then
		redis.call('HDEL', KEYS[2], ARGV[i])
		n = n + 1
	end
end
return n
`)

// LookupID implements ssehub.IDIndex: the position of the retained event
// whose publisher-supplied ID is id, read from the id index in one script
// call that also checks the stream still holds the event. Safe for
// concurrent use.
func (l *Log) LookupID(ctx context.Context, id string) (pos uint64, found bool, err error) {
	if err := eventlog.Usable(ctx, l.closing); err != nil {
		return 0, false, err
	}
	if id == "" {
		return 0, false, nil
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	s, err := lookupScript.Run(opCtx, l.client, []string{l.stream, l.ids, l.reserved}, id).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return 0, false, nil
	case err != nil:
		return 0, false, l.fail(ctx, "lookup id", err)
	}
	pos, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("redislog: lookup id %q: the id index holds %q, not a position", id, s)
	}
	return pos, true, nil
}

// cleanIDs deletes id index entries whose events retention removed,
// looking at up to idScanPages pages of the hash from cursor, and returns
// the cursor to continue from (0 after a full sweep). Safe to run on
// several nodes at once.
func (l *Log) cleanIDs(ctx context.Context, cursor uint64) (uint64, error) {
	var args []any
	for range idScanPages {
		opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		kv, next, err := l.client.HScan(opCtx, l.ids, cursor, "", idScanCount).Result()
		cancel()
		if err != nil {
			return cursor, l.fail(ctx, "clean id index", err)
		}
		args = args[:0]
		for i := 0; i+1 < len(kv); i += 2 {
			args = append(args, kv[i], kv[i+1])
		}
		if len(args) > 0 {
			opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
			err := cleanScript.Run(opCtx, l.client, []string{l.stream, l.ids, l.reserved}, args...).Err()
			cancel()
			if err != nil {
				return cursor, l.fail(ctx, "clean id index", err)
			}
		}
		cursor = next
		if cursor == 0 {
			return 0, nil
		}
	}
	return cursor, nil
}
