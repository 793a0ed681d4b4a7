package redislog

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// Topic locks (ssehub.TopicLocker): {P}:lock:<hash> holds the token of
// the hub holding it, set with NX and a lifetime (eventlog.LockTTL),
// deleted by its holder only (a compare-and-delete script).
const lockKeyPart = ":lock:"

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

var _ ssehub.TopicLocker = (*Log)(nil)

// LockTopic implements ssehub.TopicLocker.
func (l *Log) LockTopic(ctx context.Context, topic string) (func(), error) {
	key := string(appendHash([]byte(l.lprefix), topic))
	token := eventlog.LockToken()
	err := eventlog.WaitLock(ctx, l.closing.Done(), topic, func(wait context.Context) (bool, error) {
		opCtx, cancel := context.WithTimeout(wait, l.opts.Timeout)
		defer cancel()
		return l.client.SetNX(opCtx, key, token, eventlog.LockTTL).Result()
	}, func(err error) error { return l.fail(ctx, "lock", err) })
	if err != nil {
		return nil, err
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
		defer cancel()
		if err := unlockScript.Run(uctx, l.client, []string{key}, token).Err(); err != nil {
			l.logger.Warn("redislog: releasing a topic lock failed; it ends by itself", "topic", topic, "after", eventlog.LockTTL, "err", err)
		}
	}, nil
}
