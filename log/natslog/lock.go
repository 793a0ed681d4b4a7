package natslog

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// Topic locks (ssehub.TopicLocker) live in a key-value bucket of their own,
// SSEHUB_LOCKS_<stream> (JetStream stream KV_SSEHUB_LOCKS_<stream>),
// created at the first lock: a key per topic hash, created only when
// absent, deleted by its holder at the revision it created, and gone by
// itself eventlog.LockTTL after it was written (a holder that died).
const lockBucketPrefix = "SSEHUB_LOCKS_"

var _ ssehub.TopicLocker = (*Log)(nil)

// locks is the lock bucket, made at the first lock.
type locks struct {
	mu sync.Mutex
	kv jetstream.KeyValue
}

func (l *Log) lockBucket(ctx context.Context) (jetstream.KeyValue, error) {
	l.locks.mu.Lock()
	defer l.locks.mu.Unlock()
	if l.locks.kv != nil {
		return l.locks.kv, nil
	}
	opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	kv, err := l.js.CreateOrUpdateKeyValue(opCtx, jetstream.KeyValueConfig{
		Bucket:      lockBucketPrefix + l.name,
		Description: "ssehub topic locks of stream " + l.name,
		TTL:         eventlog.LockTTL,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    l.opts.Replicas,
	})
	if err != nil {
		return nil, l.fail(ctx, "create the lock bucket", err)
	}
	l.locks.kv = kv
	return kv, nil
}

// LockTopic implements ssehub.TopicLocker.
func (l *Log) LockTopic(ctx context.Context, topic string) (func(), error) {
	if l.closing.Err() != nil {
		return nil, ssehub.ErrClosed
	}
	kv, err := l.lockBucket(ctx)
	if err != nil {
		return nil, err
	}
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], eventlog.TopicHash(topic))
	key := hex.EncodeToString(h[:])
	token := []byte(eventlog.LockToken())
	var rev uint64
	err = eventlog.WaitLock(ctx, l.closing.Done(), topic, func(wait context.Context) (bool, error) {
		opCtx, cancel := context.WithTimeout(wait, l.opts.Timeout)
		defer cancel()
		var err error
		rev, err = kv.Create(opCtx, key, token)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil // held: try again
		}
		return err == nil, err
	}, func(err error) error { return l.fail(ctx, "lock", err) })
	if err != nil {
		return nil, err
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
		defer cancel()
		if err := kv.Delete(uctx, key, jetstream.LastRevision(rev)); err != nil {
			l.logger.Warn("natslog: releasing a topic lock failed; it ends by itself", "topic", topic, "after", eventlog.LockTTL, "err", err)
		}
	}, nil
}
