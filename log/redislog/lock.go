package redislog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// Topic locks (ssehub.TopicLocker): {P}:lock:<hash> holds the token of
// the hub holding it, set with NX and a lifetime, deleted by its holder
// only (a compare-and-delete script).
const (
	lockKeyPart = ":lock:"
	// lockTTL is how long a lock outlives a holder that died with it.
	lockTTL = 5 * time.Second
	// lockWait bounds the wait for a lock, beside the caller's context.
	lockWait = 10 * time.Second
)

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

var _ ssehub.TopicLocker = (*Log)(nil)

// LockTopic implements ssehub.TopicLocker.
func (l *Log) LockTopic(ctx context.Context, topic string) (func(), error) {
	if l.closing.Err() != nil {
		return nil, ssehub.ErrClosed
	}
	key := string(appendHash([]byte(l.lprefix), topic))
	var tok [16]byte
	rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	err := eventlog.WaitLock(ctx, l.closing.Done(), lockWait, func(wait context.Context) (bool, error) {
		opCtx, cancel := context.WithTimeout(wait, l.opts.Timeout)
		defer cancel()
		return l.client.SetNX(opCtx, key, token, lockTTL).Result()
	})
	switch {
	case errors.Is(err, eventlog.ErrLockBusy):
		return nil, fmt.Errorf("%w: redislog: the lock of topic %q was held by another hub for over %v", ssehub.ErrUnavailable, topic, lockWait)
	case errors.Is(err, eventlog.ErrLockClosed):
		return nil, ssehub.ErrClosed
	case err != nil:
		return nil, l.fail(ctx, "lock", err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
		defer cancel()
		if err := unlockScript.Run(uctx, l.client, []string{key}, token).Err(); err != nil {
			l.logger.Warn("redislog: releasing a topic lock failed; it ends by itself", "topic", topic, "after", lockTTL, "err", err)
		}
	}, nil
}
