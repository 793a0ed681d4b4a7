package natslog

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sharedURL is the machine's shared NATS server; tests use unique stream
// names on it and delete their streams afterwards. SSEHUB_TEST_NATS
// overrides it.
func sharedURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("SSEHUB_TEST_NATS")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	requireNATS(t, url)
	return url
}

var reachable sync.Map // url -> error

// requireNATS skips the test when JetStream at url does not answer, or
// fails it when CI=true (CI always provides the service).
func requireNATS(t testing.TB, url string) {
	t.Helper()
	v, ok := reachable.Load(url)
	if !ok {
		nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
		if err == nil {
			var js jetstream.JetStream
			js, err = jetstream.New(nc)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err = js.AccountInfo(ctx)
				cancel()
			}
			nc.Close()
		}
		v, _ = reachable.LoadOrStore(url, err)
	}
	if err, _ := v.(error); err != nil {
		msg := fmt.Sprintf("NATS JetStream at %s is not reachable (%v); start nats-server -js or set SSEHUB_TEST_NATS", url, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// newStream returns a stream name no other test uses and deletes the stream
// from the server at url when t ends.
func newStream(t testing.TB, url string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "SSEHUBTEST_" + strings.ToUpper(hex.EncodeToString(b))
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
		js.DeleteStream(ctx, idStreamPrefix+name)
	})
	return name
}

// open opens a Log on url with a fresh stream (unless opts names one) and
// closes it when t ends.
func open(t testing.TB, url string, opts Options) *Log {
	t.Helper()
	if opts.Stream == "" {
		opts.Stream = newStream(t, url)
	}
	l, err := Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rawJS returns a plain JetStream client for url, closed when t ends.
func rawJS(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// server is a nats-server process of a test's own, for outage tests: the
// test may kill and restart it. Its JetStream store is in a directory of
// the test, so a restart keeps the stream.
type server struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// startServer starts a nats-server with JetStream on a free port; it is
// killed when t ends.
func startServer(t testing.TB) *server {
	t.Helper()
	if _, err := exec.LookPath("nats-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nats-server is not installed")
		}
		t.Skip("nats-server is not installed")
	}
	s := &server{t: t, port: freePort(t), dir: t.TempDir()}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *server) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// start starts the process and waits until JetStream answers.
func (s *server) start() {
	s.t.Helper()
	s.out.Reset()
	s.cmd = exec.Command("nats-server", "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.ping()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.kill()
			s.t.Fatalf("nats-server on port %d did not answer: %v\n%s", s.port, err, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) ping() error {
	nc, err := nats.Connect(s.url(), nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
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

// waitFor polls cond until it holds, failing after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
			s.t.Fatalf("nats-server %d did not stop: %v", s.cmd.Process.Pid, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// cont lets a stopped server process continue (SIGCONT).
func (s *server) cont() { s.cmd.Process.Signal(syscall.SIGCONT) }
