package redislog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/internal/servicetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sharedURL is the machine's shared Redis; tests use unique key prefixes on
// it and delete their keys afterwards. SSEHUB_TEST_REDIS overrides it.
func sharedURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("SSEHUB_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	requireRedis(t, url)
	return url
}

// requireRedis skips the test when Redis at url does not answer, or fails it
// when CI=true (CI always provides the service).
func requireRedis(t testing.TB, url string) {
	t.Helper()
	servicetest.Require(t, url, func() error {
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

// newPrefix returns a key prefix no other test uses and deletes its keys
// from the Redis at url when t ends.
func newPrefix(t testing.TB, url string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "ssehubtest-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return
		}
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		deleteKeys(ctx, c, prefix)
	})
	return prefix
}

// deleteKeys deletes every key of the log with prefix (its stream, counter
// and indexes), found with SCAN: the prefix is the test's own.
func deleteKeys(ctx context.Context, c *redis.Client, prefix string) {
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

// open opens a Log on url with a fresh prefix (unless opts has one) and
// closes it when t ends.
func open(t testing.TB, url string, opts Options) *Log {
	t.Helper()
	return openWith(t, Open, url, opts)
}

// openUnmaintained is open without the background maintenance, which the
// test runs step by step.
func openUnmaintained(t testing.TB, url string, opts Options) *Log {
	t.Helper()
	return openWith(t, openLog, url, opts)
}

func openWith(t testing.TB, openFn func(context.Context, string, Options) (*Log, error), url string, opts Options) *Log {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = newPrefix(t, url)
	}
	l, err := openFn(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rawClient returns a plain go-redis client for url, closed when t ends.
func rawClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// server is a redis-server process of a test's own, for outage tests: the
// test may kill and restart it. It appends every write to an fsynced AOF in
// its directory, so a restart keeps acknowledged events.
type server struct{ *servicetest.Server }

// startServer starts a redis-server on a free port; it is killed when t
// ends.
func startServer(t testing.TB) *server {
	t.Helper()
	return &server{servicetest.StartServer(t, "redis-server", func(port int, dir string) []string {
		return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir}
	}, func(port int) error {
		c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	})}
}

func (s *server) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }
