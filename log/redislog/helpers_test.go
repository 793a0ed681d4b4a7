package redislog

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/internal/servicetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sharedURL is the machine's shared Redis; tests use unique key prefixes
// on it and delete their keys afterwards.
func sharedURL(t testing.TB) string { t.Helper(); return servicetest.RedisURL(t) }

func requireRedis(t testing.TB, url string) { t.Helper(); servicetest.RequireRedis(t, url) }

// newPrefix returns a key prefix no other test uses, whose keys are
// deleted when t ends.
func newPrefix(t testing.TB, url string) string { t.Helper(); return servicetest.RedisPrefix(t, url) }

func deleteKeys(ctx context.Context, c *redis.Client, prefix string) {
	servicetest.DeleteRedisKeys(ctx, c, prefix)
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
