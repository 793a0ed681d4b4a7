// Package servicetest helps tests that need real services (Redis, NATS,
// Chromium, Node): it skips a test whose service is missing, or fails it
// when CI=true (CI provides every service); it runs server processes of a
// test's own that the test may kill, stop and restart; and it has the small
// helpers such tests share. Only tests import it.
package servicetest

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth"
)

// Unavailable skips t because a service it needs is missing (msg says
// which and how to provide it), or fails t when CI=true.
func Unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var reachable sync.Map // key -> error (nil: reachable)

// Require calls ping once per process for key (a service's address) and,
// if it failed, calls Unavailable with describe(err).
func Require(t testing.TB, key string, ping func() error, describe func(err error) string) {
	t.Helper()
	v, ok := reachable.Load(key)
	if !ok {
		v, _ = reachable.LoadOrStore(key, ping())
	}
	if err, _ := v.(error); err != nil {
		Unavailable(t, describe(err))
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond until it holds, failing t after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// LogBuffer collects a process's or a logger's output; safe for
// concurrent writers.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a debug-level text logger writing to b.
func (b *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Server is a server process of a test's own (a redis-server, a
// nats-server) on a free port with a data directory of the test, so that
// a restart keeps what the server persisted. It is killed when the test
// ends.
type Server struct {
	Port int
	Dir  string

	t    testing.TB
	bin  string
	args []string
	ping func() error
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// StartServer starts bin with the arguments args returns for the port and
// directory, and waits until ping (which should talk to 127.0.0.1:port)
// succeeds. A missing bin makes the test Unavailable.
func StartServer(t testing.TB, bin string, args func(port int, dir string) []string, ping func(port int) error) *Server {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		Unavailable(t, bin+" is not installed")
	}
	s := &Server{Port: FreePort(t), Dir: t.TempDir(), t: t, bin: bin}
	s.args = args(s.Port, s.Dir)
	s.ping = func() error { return ping(s.Port) }
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Start starts the process (again) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.out.Reset()
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.bin, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.ping()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.Kill()
			s.t.Fatalf("%s on port %d did not answer: %v\n%s", s.bin, s.Port, err, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the process (SIGKILL) and waits for it. Killing twice is fine.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Stop stops the process (SIGSTOP) and waits until the kernel shows it
// stopped, so that it answers nothing until Cont.
func (s *Server) Stop() {
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
			s.t.Fatalf("%s %d did not stop: %v", s.bin, s.cmd.Process.Pid, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// Cont lets a stopped process continue (SIGCONT).
func (s *Server) Cont() { s.cmd.Process.Signal(syscall.SIGCONT) }

// Verifier returns a token verifier for HS256 tokens signed with secret,
// or fails t.
func Verifier(t testing.TB, secret string) *auth.Verifier {
	t.Helper()
	k, err := auth.ParseKey("HS256", secret)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Keys: auth.Keys{k}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
