package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// startServe starts `ssehub serve` with exactly args (plus a listen address
// and a data directory) and env, and waits until it printed its address.
func startServe(t *testing.T, env []string, args ...string) *hubProc {
	t.Helper()
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--no-dashboard"}, args...)
	return launch(t, env, args...)
}

// waitLog waits until the hub's stderr contains s.
func (p *hubProc) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the hub never logged %q", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// post publishes form with a token signed by key and returns the answer.
func post(t *testing.T, c *http.Client, base, key string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/.well-known/mercure", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+hs256(t, key, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}}))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// openStream subscribes with c and fails unless the answer is a 200 stream.
func openStream(t *testing.T, c *http.Client, u string) *stream {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return streamOf(t, c, req)
}

func subscriberToken(t *testing.T, key string) string {
	return hs256(t, key, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"*"}}})
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `# a comment
history-size: 42
heartbeat: 5s
retry: 7s
max-topics: 9
anonymous: true
cors-origins: [https://a.example, "https://b.example"]
publisher-jwt-key: from-the-file-secret
queue-events:
`)
	for _, tc := range []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		out    []string // lines of --print-config, or fragments of the error
		absent []string
	}{
		{"file values", []string{"--config", good}, nil, 0, []string{
			"history-size: 42  # config file", "heartbeat: 5s  # config file", "anonymous: true  # config file",
			"cors-origins: [https://a.example, https://b.example]  # config file",
			"# publisher-jwt-key: (set; not shown)  # config file", "addr: localhost:8080  # default",
		}, []string{"from-the-file-secret"}},
		{"env beats file, flag beats env", []string{"--config", good, "--retry", "9s"},
			map[string]string{"SSEHUB_HISTORY_SIZE": "43", "SSEHUB_RETRY": "8s"}, 0, []string{
				"history-size: 43  # environment SSEHUB_HISTORY_SIZE", "retry: 9s  # flag --retry", "max-topics: 9  # config file",
			}, nil},
		{"config from the environment", nil, map[string]string{"SSEHUB_CONFIG": good}, 0, []string{"max-topics: 9  # config file"}, nil},
		{"unknown key", []string{"--config", write("unknown.yaml", "history-size: 1\nhistroy-age: 1h\n")}, nil, 2,
			[]string{"line 2", `unknown key "histroy-age"`, `did you mean "history-age"?`}, nil},
		{"bad value", []string{"--config", write("bad.yaml", "max-topics: lots\n")}, nil, 2,
			[]string{"line 1", `invalid value "lots" for max-topics`}, nil},
		{"nested value", []string{"--config", write("nested.yaml", "addr:\n  host: x\n")}, nil, 2,
			[]string{`key "addr" needs a value or a list`}, nil},
		{"not a mapping", []string{"--config", write("list.yaml", "- addr\n")}, nil, 2, []string{"must be a mapping"}, nil},
		{"config key in the file", []string{"--config", write("self.yaml", "config: other.yaml\n")}, nil, 2, []string{`unknown key "config"`}, nil},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml")}, nil, 2, []string{"cannot read --config"}, nil},
		{"empty file", []string{"--config", write("empty.yaml", "")}, nil, 0, []string{"history-size: 1000000  # default"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"serve", "--print-config"}, tc.args...), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			got := stdout.String() + stderr.String()
			for _, want := range tc.out {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q:\n%s", want, got)
				}
			}
			for _, bad := range tc.absent {
				if strings.Contains(got, bad) {
					t.Errorf("output shows %q:\n%s", bad, got)
				}
			}
		})
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts it.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	crt, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(crt)
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, pool
}

func TestTLSAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir, "hub")
	tlsHub := startServe(t, nil, "--publisher-jwt-key", testPubKey, "--subscriber-jwt-key", testSubKey, "--anonymous",
		"--tls-cert", certFile, "--tls-key", keyFile)
	h2cHub := startServe(t, nil, "--publisher-jwt-key", testPubKey, "--subscriber-jwt-key", testSubKey, "--anonymous", "--h2c")
	if !strings.HasPrefix(tlsHub.base, "https://") {
		t.Fatalf("TLS hub announced %s", tlsHub.base)
	}
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	for _, tc := range []struct {
		name  string
		hub   *hubProc
		tr    *http.Transport
		major int
	}{
		{"h2 over TLS", tlsHub, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}, 2},
		{"HTTP/1.1 over TLS", tlsHub, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}}}, 1},
		{"h2c", h2cHub, &http.Transport{Protocols: &h2c}, 2},
		{"HTTP/1.1 next to h2c", h2cHub, &http.Transport{}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &http.Client{Transport: tc.tr}
			defer tc.tr.CloseIdleConnections()
			s := openStream(t, c, tc.hub.base+"/.well-known/mercure?topic=a")
			if s.Resp.ProtoMajor != tc.major {
				t.Fatalf("protocol %s, want major %d", s.Resp.Proto, tc.major)
			}
			if s.Resp.Header.Get("Connection") != "" && tc.major == 2 {
				t.Errorf("Connection header on HTTP/2: %q", s.Resp.Header.Get("Connection"))
			}
			// Several events, spaced so that the stream is live (and, on
			// HTTP/1.1, parked) in between.
			for i := range 3 {
				data := fmt.Sprint(tc.name, " ", i)
				if code, body := post(t, c, tc.hub.base, testPubKey, url.Values{"topic": {"a"}, "data": {data}}); code != 200 {
					t.Fatalf("publish: %d %s", code, body)
				}
				if ev := s.next(t); ev.Data != data {
					t.Fatalf("got %+v, want %q", ev, data)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func TestMetricsOnASeparateAddress(t *testing.T) {
	p := startServe(t, nil, "--publisher-jwt-key", testPubKey, "--anonymous", "--metrics-addr", "127.0.0.1:0", "--log-level", "debug")
	p.waitLog(t, `msg="serving metrics"`) // stderr may lag behind the stdout line startServe waited for
	m := regexp.MustCompile(`msg="serving metrics" addr=(\S+)`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", p.stderr.String())
	}
	s := openStream(t, http.DefaultClient, p.base+"/.well-known/mercure?topic=a")
	post(t, http.DefaultClient, p.base, testPubKey, url.Values{"topic": {"a"}, "data": {"x"}})
	s.next(t)
	for _, tc := range []struct {
		url, want string
		status    int
	}{
		{"http://" + m[1] + "/metrics", "ssehub_events_published_total 1", 200},
		{"http://" + m[1] + "/metrics", `ssehub_subscriptions{transport="stream"} 1`, 200},
		{"http://" + m[1] + "/metrics", "go_goroutines", 200},
		{"http://" + m[1] + "/healthz", "ok", 200},
		{"http://" + m[1] + "/readyz", "ready", 200},
		{p.base + "/metrics", "", 404},
	} {
		resp, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d, want %d with %q", tc.url, resp.StatusCode, tc.status, tc.want)
		}
	}
	// One debug line when a subscriber connects and one when it leaves.
	s.Resp.Body.Close()
	p.waitLog(t, `msg="httpapi: subscriber disconnected"`)
	if n := strings.Count(p.stderr.String(), `msg="httpapi: subscriber connected"`); n != 1 {
		t.Errorf("%d connect lines, want 1", n)
	}
}

func TestSIGHUPReloadsKeysAndCORS(t *testing.T) {
	const (
		oldPub, oldSub = "old-publisher-secret-0123456789abcdef", "old-subscriber-secret-0123456789abcde"
		newPub, newSub = "new-publisher-secret-0123456789abcdef", "new-subscriber-secret-0123456789abcde"
	)
	cfg := filepath.Join(t.TempDir(), "ssehub.yaml")
	writeCfg := func(pub, sub, origin string) {
		c := fmt.Sprintf("publisher-jwt-key: %s\nsubscriber-jwt-key: %s\ncors-origins: [%s]\n", pub, sub, origin)
		if err := os.WriteFile(cfg, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(oldPub, oldSub, "https://old.example")
	p := startServe(t, nil, "--config", cfg)
	c := http.DefaultClient
	old := openStream(t, c, p.base+"/.well-known/mercure?topic=a&authorization="+subscriberToken(t, oldSub))

	writeCfg(newPub, newSub, "https://new.example")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reloaded keys")

	for _, tc := range []struct {
		name, key string
		status    int
	}{
		{"old publisher key", oldPub, 401},
		{"new publisher key", newPub, 200},
	} {
		if code, body := post(t, c, p.base, tc.key, url.Values{"topic": {"a"}, "data": {tc.name}}); code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.status)
		}
	}
	if ev := old.next(t); ev.Data != "new publisher key" {
		t.Fatalf("the stream opened before the reload got %+v", ev)
	}
	for _, tc := range []struct {
		name, key string
		status    int
	}{
		{"old subscriber key", oldSub, 401},
		{"new subscriber key", newSub, 200},
	} {
		resp, err := c.Get(p.base + "/.well-known/mercure?topic=a&poll=1&timeout=1&authorization=" + subscriberToken(t, tc.key))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	req, _ := http.NewRequest("OPTIONS", p.base+"/.well-known/mercure", nil)
	req.Header.Set("Origin", "https://new.example")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://new.example" {
		t.Errorf("new origin not allowed after reload: %q", got)
	}

	// A broken file is refused and the running keys stay.
	os.WriteFile(cfg, []byte("publisher-jwt-key: [\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reload failed")
	if code, body := post(t, c, p.base, newPub, url.Values{"topic": {"a"}}); code != 200 {
		t.Errorf("after a failed reload: %d %s", code, body)
	}
	if ev := old.next(t); ev.ID == "" {
		t.Errorf("the old stream missed the last event: %+v", ev)
	}
}

// --cors-origins '*' allows no credentials: the hub says so when it
// starts, and a cookie publish from a foreign page is refused.
func TestCORSWildcardWarnsAndRefusesCookies(t *testing.T) {
	p := startServe(t, nil, "--publisher-jwt-key", testPubKey, "--anonymous", "--history", "memory", "--cors-origins", "*")
	p.waitLog(t, "--cors-origins * allows no credentials")
	req, _ := http.NewRequest("POST", p.base+"/.well-known/mercure", strings.NewReader("topic=a&data=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.AddCookie(&http.Cookie{Name: "mercureAuthorization", Value: publisherToken(t)})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "--cors-origins") {
		t.Fatalf("cookie publish from a foreign origin: %d %s, want 403 naming --cors-origins", resp.StatusCode, b)
	}
	if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "" {
		t.Errorf("Access-Control-Allow-Credentials %q for a page allowed by *", got)
	}
}

func TestSIGTERMDrainsWithinShutdownTimeout(t *testing.T) {
	p := startServe(t, nil, "--publisher-jwt-key", testPubKey, "--anonymous", "--shutdown-timeout", "1s", "--read-timeout", "5m")
	s := openStream(t, http.DefaultClient, p.base+"/.well-known/mercure?topic=a")
	// A publisher that sends its headers and never its body keeps a request
	// in flight; only the shutdown timeout ends it.
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntopic=a", publisherToken(t))
	time.Sleep(100 * time.Millisecond) // let the handler start reading

	start := time.Now()
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr.String())
	}
	// Far below --read-timeout: the shutdown timeout cut the stuck request.
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	ev := s.next(t)
	if ev.Type != "ssehub.reconnect" {
		t.Errorf("the stream ended with %+v, want a ssehub.reconnect event", ev)
	}
	if !strings.Contains(p.stderr.String(), "shutdown timed out") {
		t.Errorf("no shutdown timeout in the log:\n%s", p.stderr.String())
	}
}

// scrapeValue returns the value of an unlabelled metric (-1 if absent).
func scrapeValue(t *testing.T, u, name string) float64 {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func TestLimitFlags(t *testing.T) {
	p := startServe(t, nil, "--publisher-jwt-key", testPubKey, "--anonymous", "--history", "memory",
		"--max-connections", "2", "--max-topics", "2", "--max-event-bytes", "5", "--publish-rate", "0.001", "--publish-burst", "8",
		"--replay-limit", "2", "--max-header-bytes", "4096")
	c := http.DefaultClient
	var ids []string
	for i := range 5 {
		code, id := post(t, c, p.base, testPubKey, url.Values{"topic": {"a"}, "data": {fmt.Sprint(i)}})
		if code != 200 {
			t.Fatalf("publish %d: %d %s", i, code, id)
		}
		ids = append(ids, id)
	}
	// --replay-limit: once the hub has fanned out every event, resuming
	// from the first replays only the last two, after a replay_limit gap.
	last, _ := strconv.ParseFloat(ids[4], 64)
	deadline := time.Now().Add(10 * time.Second)
	for scrapeValue(t, p.base+"/metrics", "ssehub_log_position") != last {
		if time.Now().After(deadline) {
			t.Fatal("the hub did not fan out the events")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := openStream(t, c, p.base+"/.well-known/mercure?topic=a&lastEventID="+ids[0])
	if g := s.Resp.Header.Get("Ssehub-Gap"); g != "replay_limit" {
		t.Errorf("Ssehub-Gap %q, want replay_limit", g)
	}
	if ev := s.next(t); ev.Type != "ssehub.gap" || !strings.Contains(ev.Data, `"replay_limit"`) {
		t.Errorf("first event %+v, want a replay_limit gap", ev)
	}
	if got, _ := s.datas(t, 2); strings.Join(got, ",") != "3,4" {
		t.Errorf("replayed %q, want 3,4", got)
	}
	// publish makes an authorized publish request of form.
	publish := func(form string) func() *http.Request {
		return func() *http.Request {
			r, _ := http.NewRequest("POST", p.base+"/.well-known/mercure", strings.NewReader(form))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Authorization", "Bearer "+publisherToken(t))
			return r
		}
	}
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		status int
		says   string
	}{
		{"--max-topics", func() *http.Request {
			r, _ := http.NewRequest("GET", p.base+"/.well-known/mercure?topic=a&topic=b&topic=c", nil)
			return r
		}, 400, "at most 2"},
		{"--max-connections", func() *http.Request {
			openStream(t, c, p.base+"/.well-known/mercure?topic=b") // the second of 2
			r, _ := http.NewRequest("GET", p.base+"/.well-known/mercure?topic=b", nil)
			return r
		}, 503, "--max-connections"},
		{"--max-event-bytes", publish("topic=a&data=123456"), 413, "--max-event-bytes"},
		{"--publish-rate", publish("topic=a&data=x"), 429, "--publish-rate"},
		{"--max-header-bytes", func() *http.Request {
			r, _ := http.NewRequest("GET", p.base+"/healthz", nil)
			r.Header.Set("X-Big", strings.Repeat("a", 16<<10))
			return r
		}, 431, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp *http.Response
			var err error
			// publisherToken is the same token every time: its bucket (8)
			// is used up by the publishes above and these attempts.
			for range 10 {
				resp, err = c.Do(tc.req())
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != 200 || tc.status == 200 {
					break
				}
				resp.Body.Close()
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.says) {
				t.Errorf("%d %q, want %d saying %q", resp.StatusCode, b, tc.status, tc.says)
			}
		})
	}
}

func TestTLSFlagErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir, "ok")
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"cert without key", []string{"--tls-cert", certFile}, "--tls-cert and --tls-key go together"},
		{"key without cert", []string{"--tls-key", keyFile}, "--tls-cert and --tls-key go together"},
		{"h2c with TLS", []string{"--tls-cert", certFile, "--tls-key", keyFile, "--h2c"}, "--h2c is cleartext"},
		{"unreadable certificate", []string{"--tls-cert", filepath.Join(dir, "nope.crt"), "--tls-key", keyFile}, "cannot load --tls-cert"},
		{"key of another certificate", []string{"--tls-cert", certFile, "--tls-key", certFile}, "cannot load --tls-cert"},
		{"bad metrics address", []string{"--metrics-addr", "256.0.0.1:1"}, "cannot listen on --metrics-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--history", "memory", "--data", t.TempDir()}, tc.args...)
			if code := run(context.Background(), args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.says) {
				t.Fatalf("exit %d, stderr %q; want 1 saying %q", code, stderr.String(), tc.says)
			}
		})
	}
}
