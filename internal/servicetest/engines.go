package servicetest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// RedisURL is the machine's shared Redis (SSEHUB_TEST_REDIS, else
// redis://127.0.0.1:6379/0), required by t (see RequireRedis). Tests use
// key prefixes of their own on it (RedisPrefix).
func RedisURL(t testing.TB) string {
	t.Helper()
	url := cmp.Or(os.Getenv("SSEHUB_TEST_REDIS"), "redis://127.0.0.1:6379/0")
	RequireRedis(t, url)
	return url
}

// RequireRedis skips t when Redis at url does not answer, or fails it when
// CI=true (CI always provides the service).
func RequireRedis(t testing.TB, url string) {
	t.Helper()
	Require(t, url, func() error {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return err
		}
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	}, func(err error) string {
		return fmt.Sprintf("Redis at %s is not reachable (%v); start redis-server or set SSEHUB_TEST_REDIS", url, err)
	})
}

// RedisPrefix returns a key prefix no other test uses and deletes its keys
// ("{prefix}:*") from the Redis at url when t ends.
func RedisPrefix(t testing.TB, url string) string {
	t.Helper()
	prefix := "ssehubtest-" + randomHex()
	t.Cleanup(func() {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return
		}
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		DeleteRedisKeys(ctx, c, prefix)
	})
	return prefix
}

// DeleteRedisKeys deletes every key "{prefix}:*", found with SCAN: the
// prefix is a test's own.
func DeleteRedisKeys(ctx context.Context, c *redis.Client, prefix string) {
	iter := c.Scan(ctx, 0, "{"+prefix+"}:*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		c.Unlink(ctx, keys[:n]...)
		keys = keys[n:]
	}
}

// NATSURL is the machine's shared NATS server (SSEHUB_TEST_NATS, else
// nats://127.0.0.1:4222), required by t (see RequireNATS). Tests use
// JetStream streams of their own on it (NATSStream).
func NATSURL(t testing.TB) string {
	t.Helper()
	url := cmp.Or(os.Getenv("SSEHUB_TEST_NATS"), "nats://127.0.0.1:4222")
	RequireNATS(t, url)
	return url
}

// RequireNATS skips t when JetStream at url does not answer, or fails it
// when CI=true (CI always provides the service).
func RequireNATS(t testing.TB, url string) {
	t.Helper()
	Require(t, url, func() error { return PingJetStream(url) }, func(err error) string {
		return fmt.Sprintf("NATS JetStream at %s is not reachable (%v); start nats-server -js or set SSEHUB_TEST_NATS", url, err)
	})
}

// PingJetStream asks the JetStream at url for its account information.
func PingJetStream(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// NATSStream returns a JetStream stream name no other test uses and
// deletes that stream, and the streams named prefix+name for each of
// companions, from the server at url when t ends.
func NATSStream(t testing.TB, url string, companions ...string) string {
	t.Helper()
	name := "SSEHUBTEST_" + strings.ToUpper(randomHex())
	t.Cleanup(func() {
		nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
		if err != nil {
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		js.DeleteStream(ctx, name)
		js.DeleteStream(ctx, "KV_SSEHUB_LOCKS_"+name) // natslog's topic locks, when a test took one
		for _, p := range companions {
			js.DeleteStream(ctx, p+name)
		}
	})
	return name
}

func randomHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
