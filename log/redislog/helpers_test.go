package redislog

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
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

var reachable sync.Map // url -> error

// requireRedis skips the test when Redis at url does not answer, or fails it
// when CI=true (CI always provides the service).
func requireRedis(t testing.TB, url string) {
	t.Helper()
	v, ok := reachable.Load(url)
	if !ok {
		opts, err := redis.ParseURL(url)
		if err == nil {
			c := redis.NewClient(opts)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = c.Ping(ctx).Err()
			cancel()
			c.Close()
		}
		v, _ = reachable.LoadOrStore(url, err)
	}
	if err, _ := v.(error); err != nil {
		msg := fmt.Sprintf("Redis at %s is not reachable (%v); start redis-server or set SSEHUB_TEST_REDIS", url, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
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
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c.Del(ctx, "{"+prefix+"}:events", "{"+prefix+"}:seq", "{"+prefix+"}:ids")
	})
	return prefix
}

// open opens a Log on url with a fresh prefix (unless opts has one) and
// closes it when t ends.
func open(t testing.TB, url string, opts Options) *Log {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = newPrefix(t, url)
	}
	l, err := Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
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
type server struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// startServer starts a redis-server on a free port; it is killed when t
// ends.
func startServer(t testing.TB) *server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	s := &server{t: t, port: freePort(t), dir: t.TempDir()}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *server) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// start starts the process and waits until it answers.
func (s *server) start() {
	s.t.Helper()
	s.out.Reset()
	s.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--dir", s.dir)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	opts, _ := redis.ParseURL(s.url())
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.kill()
			s.t.Fatalf("redis-server on port %d did not answer: %v\n%s", s.port, err, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill kills the process (SIGKILL) and waits for it. Killing twice is fine.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// logBuffer is an slog handler target safe for concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// stop stops the server process (SIGSTOP) and waits until the kernel shows
// it stopped, so that it answers nothing until cont.
func (s *server) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(stat)
		// The state follows the command name in parentheses: "pid (comm) T ...".
		if i := bytes.LastIndexByte(b, ')'); err == nil && i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server %d did not stop: %v", s.cmd.Process.Pid, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// cont lets a stopped server process continue (SIGCONT).
func (s *server) cont() { s.cmd.Process.Signal(syscall.SIGCONT) }
