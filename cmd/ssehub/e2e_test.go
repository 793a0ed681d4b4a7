package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/sse"
)

// binary is the ssehub binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ssehub-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "ssehub")
	if out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building ssehub: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testPubKey = "publisher-secret-for-tests-0123456789"
	testSubKey = "subscriber-secret-for-tests-012345678"
)

func hs256(t *testing.T, key string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func publisherToken(t *testing.T) string {
	return hs256(t, testPubKey, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
}

// hubProc is a running `ssehub serve`.
type hubProc struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	stderr *servicetest.LogBuffer
	done   chan error
}

var runningRe = regexp.MustCompile(`is running on (https?://\S+)`)

// startHub starts the binary with the test keys and extra flags, and waits
// until it printed its address.
func startHub(t *testing.T, data string, extra ...string) *hubProc {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data,
		"--publisher-jwt-key", testPubKey, "--subscriber-jwt-key", testSubKey, "--anonymous",
		"--log-level", "debug"}, extra...)
	return launch(t, nil, args...)
}

// launch runs the binary with exactly args and extra environment, and
// waits until it printed the address it serves on. The process is killed
// when the test ends, and its stderr logged if the test failed.
func launch(t *testing.T, env []string, args ...string) *hubProc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &hubProc{cmd: cmd, stderr: &servicetest.LogBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := runningRe.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		close(addr)
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("hub stderr:\n%s", p.stderr.String())
		}
	})
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("hub exited before listening: %v\n%s", <-p.done, p.stderr.String())
		}
		p.base = a
	case <-time.After(20 * time.Second):
		t.Fatalf("hub did not start:\n%s", p.stderr.String())
	}
	return p
}

// stop sends sig and waits for the process to exit.
func (p *hubProc) stop(t *testing.T, sig os.Signal) error {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("hub did not exit")
		return nil
	}
}

func (p *hubProc) publish(t *testing.T, form url.Values) string {
	t.Helper()
	req, _ := http.NewRequest("POST", p.base+"/.well-known/mercure", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+publisherToken(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %s: %s", resp.Status, b)
	}
	return string(b)
}

// stream is an open subscription.
type stream struct{ *servicetest.EventStream }

func (p *hubProc) subscribe(t *testing.T, query, lastEventID string) *stream {
	t.Helper()
	req, _ := http.NewRequest("GET", p.base+"/.well-known/mercure?"+query, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	return streamOf(t, http.DefaultClient, req)
}

// streamOf sends a subscribe request and reads its events in the
// background; it fails the test unless the answer is a 200.
func streamOf(t *testing.T, c *http.Client, req *http.Request) *stream {
	t.Helper()
	return &stream{servicetest.Subscribe(t, c, req, 1000)}
}

func (s *stream) next(t *testing.T) sse.Event {
	t.Helper()
	return s.Next(t, 10*time.Second)
}

func (s *stream) datas(t *testing.T, n int) (data []string, lastID string) {
	t.Helper()
	for range n {
		ev := s.next(t)
		data = append(data, ev.Data)
		lastID = ev.ID
	}
	return data, lastID
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func TestServePublishSubscribe(t *testing.T) {
	p := startHub(t, t.TempDir())
	books := p.subscribe(t, "topic="+url.QueryEscape("https://example.com/books/{id}"), "")
	all := p.subscribe(t, "topic=*", "")
	id := p.publish(t, url.Values{"topic": {"https://example.com/books/1"}, "data": {"first\nsecond"}, "type": {"book.updated"}})
	p.publish(t, url.Values{"topic": {"https://example.com/authors/1"}, "data": {"author"}})
	ev := books.next(t)
	if ev.ID != id || ev.Type != "book.updated" || ev.Data != "first\nsecond" {
		t.Fatalf("got %+v, want id %s", ev, id)
	}
	if got, _ := all.datas(t, 2); !slices.Equal(got, []string{"first\nsecond", "author"}) {
		t.Fatalf("* got %q", got)
	}
	if r := all.Dec; r != nil {
		if retry, ok := r.Retry(); !ok || retry != 3*time.Second {
			t.Fatalf("stream retry %v %v, want 3s", retry, ok)
		}
	}
}

func TestResumeAcrossRestart(t *testing.T) {
	data := t.TempDir()
	p := startHub(t, data)
	s := p.subscribe(t, "topic=a", "")
	for i := range 5 {
		p.publish(t, url.Values{"topic": {"a"}, "data": {fmt.Sprint("e", i)}})
	}
	got, lastID := s.datas(t, 3) // the client has seen 3 of 5
	if !slices.Equal(got, seq("e", 0, 3)) {
		t.Fatalf("got %q", got)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v", err)
	}
	// The stream ended cleanly with a jittered retry.
	for range s.Events {
	}
	if retry, ok := s.Dec.Retry(); !ok || retry < time.Second {
		t.Fatalf("retry after shutdown %v %v", retry, ok)
	}

	p = startHub(t, data)
	p.publish(t, url.Values{"topic": {"a"}, "data": {"e5"}}) // published while the client was away
	s = p.subscribe(t, "topic=a", lastID)
	p.publish(t, url.Values{"topic": {"a"}, "data": {"e6"}})
	if got, _ := s.datas(t, 4); !slices.Equal(got, seq("e", 3, 7)) {
		t.Fatalf("after restart got %q", got)
	}
}

func TestAcknowledgedEventsSurviveKill9(t *testing.T) {
	data := t.TempDir()
	p := startHub(t, data)
	var ids []string
	for i := range 50 {
		ids = append(ids, p.publish(t, url.Values{"topic": {"k"}, "data": {fmt.Sprint(i)}}))
	}
	if err := p.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 exited cleanly?")
	}
	p = startHub(t, data)
	s := p.subscribe(t, "topic=k", "earliest")
	got, last := s.datas(t, 50)
	if !slices.Equal(got, seq("", 0, 50)) || last != ids[49] {
		t.Fatalf("after kill -9: got %q, last id %s (want %s)", got, last, ids[49])
	}
	// New ids do not collide with the old ones.
	if id := p.publish(t, url.Values{"topic": {"k"}, "data": {"new"}}); slices.Contains(ids, id) {
		t.Fatalf("id %s reused after restart", id)
	}
}

func TestDataDirectoryErrors(t *testing.T) {
	t.Run("locked", func(t *testing.T) {
		data := t.TempDir()
		startHub(t, data)
		out, err := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data", data).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "in use") {
			t.Fatalf("second hub on the same data: %v\n%s", err, out)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		data := t.TempDir()
		startHub(t, data).stop(t, syscall.SIGTERM)
		files, _ := filepath.Glob(filepath.Join(data, "*.db"))
		if len(files) != 1 {
			t.Fatalf("data files %q", files)
		}
		if err := os.WriteFile(files[0], []byte(strings.Repeat("garbage!", 2048)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data", data).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "corrupt") || strings.Contains(string(out), "panic") {
			t.Fatalf("corrupt data: %v\n%s", err, out)
		}
	})
}

func TestServeRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--history", "paper"},
		{"serve", "--log-level", "loud"},
		{"serve", "--no-such-flag"},
		{"serve", "extra"},
	} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%q: exited 0\n%s", args, out)
		}
	}
	cmd := exec.Command(binary, "serve", "--history", "paper")
	cmd.Env = append(os.Environ(), "SSEHUB_HISTORY=memory", "SSEHUB_ADDR=127.0.0.1:0")
	// The flag wins over the environment.
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "paper") {
		t.Errorf("flag did not win over env: %v %s", err, out)
	}
}

func TestEnvironmentConfiguresServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env = append(os.Environ(), "SSEHUB_ADDR=127.0.0.1:0", "SSEHUB_HISTORY=memory", "SSEHUB_ANONYMOUS=true")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	var welcome []string
	for sc.Scan() {
		welcome = append(welcome, sc.Text())
		if strings.Contains(sc.Text(), "this run only") {
			break
		}
	}
	text := strings.Join(welcome, "\n")
	if !strings.Contains(text, "http://127.0.0.1:") || !strings.Contains(text, "--history memory") {
		t.Fatalf("welcome text:\n%s", text)
	}
	if strings.Contains(text, "authorization=") {
		t.Fatalf("anonymous hub printed a subscriber token in the URL:\n%s", text)
	}
}
