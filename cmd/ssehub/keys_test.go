package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/MicahParks/jwkset"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/topic"
)

// keyPair is a generated signing key, its PEM files and its public key.
type keyPair struct {
	alg                 string
	public              crypto.PublicKey
	privFile, pubFile   string
	privPEM, pubPEMText string
}

var (
	rsaOnce  sync.Once
	rsaKey   *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	keyFiles atomic.Int32 // numbers key files apart
	rsaUsed  atomic.Int32
)

// newKeyPair generates a key for alg (RSA keys are two generated once per
// test binary, used in turn: they are slow to make) and writes its PEM files into dir.
func newKeyPair(t *testing.T, dir, alg string) keyPair {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg[:2] {
	case "RS", "PS":
		rsaOnce.Do(func() {
			if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
				rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048)
			}
		})
		priv = rsaKey // two RSA keys, used in turn
		if rsaUsed.Add(1)%2 == 0 {
			priv = rsaKey2
		}
	case "ES":
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		priv, err = ecdsa.GenerateKey(curve, rand.Reader)
	case "Ed":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	kp := keyPair{
		alg:        alg,
		public:     priv.Public(),
		privFile:   filepath.Join(dir, fmt.Sprintf("%s-%d-private.pem", alg, keyFiles.Add(1))),
		pubFile:    filepath.Join(dir, fmt.Sprintf("%s-%d-public.pem", alg, keyFiles.Add(1))),
		privPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
		pubPEMText: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})),
	}
	if err := os.WriteFile(kp.privFile, []byte(kp.privPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.pubFile, []byte(kp.pubPEMText), 0o644); err != nil {
		t.Fatal(err)
	}
	return kp
}

// tokenCmd runs `ssehub token` with args in the binary and returns the token.
func tokenCmd(t *testing.T, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(binary, append([]string{"token"}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssehub token %q: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// publishWith publishes one update on topic with token and returns the
// status and body.
func publishWith(t *testing.T, base, token, topic, data string) (int, string) {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}}
	req, _ := http.NewRequest("POST", base+"/.well-known/mercure", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestTokenSignsEveryAlgorithm(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			keyArg, verifyKey := "@"+filepath.Join(dir, alg+".secret"), "a-secret-long-enough-for-"+alg+"-tokens-0123456789"
			if strings.HasPrefix(alg, "HS") {
				os.WriteFile(keyArg[1:], []byte(verifyKey+"\n"), 0o600) // the trailing newline is ignored
			} else {
				kp := newKeyPair(t, dir, alg)
				keyArg, verifyKey = "@"+kp.privFile, kp.pubPEMText
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"token", "--alg", alg, "--key", keyArg, "--publish", "*"}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			k, err := auth.ParseKey(alg, verifyKey)
			if err != nil {
				t.Fatal(err)
			}
			v, err := auth.NewVerifier(auth.Config{Keys: auth.Keys{k}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(strings.TrimSpace(stdout.String()))
			if err != nil {
				t.Fatalf("the hub would refuse the token: %v", err)
			}
			if err := c.CanPublish([]string{"https://example.com/x"}, topic.NewCache(8)); err != nil {
				t.Errorf("token does not grant publishing: %v", err)
			}
		})
	}
}

// TestKeyFlagErrors: a key that "ssehub token" (run in process) or "ssehub
// serve" (the binary) cannot use is refused with a reason.
func TestKeyFlagErrors(t *testing.T) {
	dir := t.TempDir()
	kp := newKeyPair(t, dir, "ES256")
	for _, tc := range []struct {
		cmd  string // token or serve
		name string
		args []string
		want string
	}{
		{"token", "missing file", []string{"--alg", "ES256", "--key", "@" + filepath.Join(dir, "nope.pem")}, "--key: cannot read the key file"},
		{"token", "file name without @", []string{"--alg", "ES256", "--key", kp.privFile}, "give --key @" + kp.privFile},
		{"token", "public key to sign", []string{"--alg", "ES256", "--key", "@" + kp.pubFile}, "private key"},
		{"token", "no key", nil, "--key is required"},
		{"serve", "asymmetric without key", []string{"--publisher-jwt-alg", "RS256"}, "--publisher-jwt-alg RS256 needs a public key"},
		{"serve", "file name without @", []string{"--publisher-jwt-alg", "ES256", "--publisher-jwt-key", kp.pubFile}, "give --publisher-jwt-key @" + kp.pubFile},
		{"serve", "missing file", []string{"--subscriber-jwt-alg", "ES256", "--subscriber-jwt-key", "@" + filepath.Join(dir, "nope")}, "--subscriber-jwt-key: cannot read the key file"},
		{"serve", "wrong curve", []string{"--publisher-jwt-alg", "ES384", "--publisher-jwt-key", "@" + kp.pubFile}, "ES384 needs an EC key on curve P-384"},
		{"serve", "unknown alg", []string{"--publisher-jwt-alg", "RS1", "--publisher-jwt-key", "x"}, `unsupported algorithm "RS1"`},
		{"serve", "key and JWKS", []string{"--publisher-jwt-key", "x", "--publisher-jwks-url", "http://127.0.0.1:1/jwks"}, "give one of them"},
		{"serve", "JWKS down", []string{"--subscriber-jwks-url", "http://127.0.0.1:1/jwks"}, "--subscriber-jwks-url: auth: invalid key: cannot fetch the JWKS"},
		{"serve", "HS with JWKS", []string{"--publisher-jwt-alg", "HS256", "--publisher-jwks-url", "http://127.0.0.1:1/jwks"}, "a JWKS is public"},
	} {
		t.Run(tc.cmd+"/"+tc.name, func(t *testing.T) {
			if tc.cmd == "token" {
				var stdout, stderr bytes.Buffer
				code := run(context.Background(), append(append([]string{"token"}, tc.args...), "--publish", "*"), &stdout, &stderr)
				if code == 0 || !strings.Contains(stderr.String(), tc.want) {
					t.Errorf("exit %d, stderr %q; want it to say %q", code, stderr.String(), tc.want)
				}
				return
			}
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--history", "memory"}, tc.args...)
			out, err := exec.Command(binary, args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("%v: %s\nwant it to say %q", err, out, tc.want)
			}
		})
	}
}

func TestAsymmetricKeysEndToEnd(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			pub, sub := newKeyPair(t, dir, alg), newKeyPair(t, dir, alg)
			// The publisher key from a file, the subscriber key inline, as
			// Mercure's publisher_jwt takes it.
			p := startServe(t, nil, "--publisher-jwt-alg", alg, "--publisher-jwt-key", "@"+pub.pubFile,
				"--subscriber-jwt-alg", alg, "--subscriber-jwt-key", sub.pubPEMText)
			subTok := tokenCmd(t, "--alg", alg, "--key", "@"+sub.privFile, "--subscribe", "*")
			s := openStream(t, http.DefaultClient, p.base+"/.well-known/mercure?topic=news&authorization="+subTok)
			pubTok := tokenCmd(t, "--alg", alg, "--key", "@"+pub.privFile, "--publish", "*")
			if code, body := publishWith(t, p.base, pubTok, "news", "signed with "+alg); code != 200 {
				t.Fatalf("publish: %d %s", code, body)
			}
			if ev := s.next(t); ev.Data != "signed with "+alg {
				t.Fatalf("got %+v", ev)
			}
			// Tokens of the other role's key, or HS256, are refused with
			// the reason.
			wrong := tokenCmd(t, "--alg", alg, "--key", "@"+sub.privFile, "--publish", "*")
			if code, body := publishWith(t, p.base, wrong, "news", "x"); code != 401 || !strings.Contains(body, "signature invalid") {
				t.Errorf("token of another key: %d %s", code, body)
			}
			hs := tokenCmd(t, "--key", "some-secret-that-is-long-enough-0123456789", "--publish", "*")
			if code, body := publishWith(t, p.base, hs, "news", "x"); code != 401 || !strings.Contains(body, "algorithm HS256 not allowed; this hub accepts "+alg) {
				t.Errorf("HS256 token: %d %s", code, body)
			}
		})
	}
}

func TestMercureEnvironmentNames(t *testing.T) {
	dir := t.TempDir()
	kp := newKeyPair(t, dir, "ES256")
	const ours, theirs = "ssehub-subscriber-secret-0123456789abcdef", "mercure-subscriber-secret-0123456789abcde"
	p := startServe(t, []string{
		"MERCURE_PUBLISHER_JWT_KEY=" + kp.pubPEMText, "MERCURE_PUBLISHER_JWT_ALG=ES256",
		"MERCURE_SUBSCRIBER_JWT_KEY=" + theirs, "MERCURE_SUBSCRIBER_JWT_ALG=HS256",
		"SSEHUB_SUBSCRIBER_JWT_KEY=" + ours, // our name wins
	})
	pubTok := tokenCmd(t, "--alg", "ES256", "--key", kp.privPEM, "--publish", "*")
	if code, body := publishWith(t, p.base, pubTok, "a", "x"); code != 200 {
		t.Errorf("ES256 token with MERCURE_PUBLISHER_JWT_*: %d %s", code, body)
	}
	for key, want := range map[string]int{ours: 200, theirs: 401} {
		resp, err := http.Get(p.base + "/.well-known/mercure?topic=a&poll=1&timeout=1&authorization=" + subscriberToken(t, key))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("subscriber key %q: %d, want %d", key[:7], resp.StatusCode, want)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(binary, "serve", "--print-config")
	cmd.Env = append(os.Environ(), "MERCURE_PUBLISHER_JWT_ALG=ES256")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "publisher-jwt-alg: ES256  # environment MERCURE_PUBLISHER_JWT_ALG") {
		t.Errorf("--print-config does not name the Mercure variable: %v\n%s", err, out.String())
	}
}

// jwksServer is an issuer's JWKS endpoint whose keys the test rotates.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	keys []jwkset.JWKMarshal
}

func newJWKSServer(t *testing.T) *jwksServer {
	js := &jwksServer{}
	js.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.mu.Lock()
		defer js.mu.Unlock()
		json.NewEncoder(w).Encode(jwkset.JWKSMarshal{Keys: js.keys})
	}))
	t.Cleanup(js.Close)
	return js
}

// serve replaces the set with the public keys of pairs, by kid.
func (js *jwksServer) serve(t *testing.T, pairs map[string]keyPair) {
	t.Helper()
	var keys []jwkset.JWKMarshal
	for kid, kp := range pairs {
		j, err := jwkset.NewJWKFromKey(kp.public, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.ALG(kp.alg), USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, j.Marshal())
	}
	js.mu.Lock()
	js.keys = keys
	js.mu.Unlock()
}

func TestJWKSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	rs, es, ed := newKeyPair(t, dir, "RS256"), newKeyPair(t, dir, "ES256"), newKeyPair(t, dir, "EdDSA")
	js := newJWKSServer(t)
	js.serve(t, map[string]keyPair{"rsa-2026": rs})
	const iss, aud = "https://id.example.com/realms/app", "https://hub.example.com/.well-known/mercure"
	p := startServe(t, nil, "--publisher-jwks-url", js.URL, "--subscriber-jwks-url", js.URL,
		"--issuer", iss, "--audience", aud, "--require-access-token")
	tok := func(kp keyPair, kid string, extra ...string) string {
		return tokenCmd(t, append([]string{"--alg", kp.alg, "--key", "@" + kp.privFile, "--kid", kid, "--publish", "*"}, extra...)...)
	}
	full := []string{"--iss", iss, "--aud", aud, "--access-token"}

	for _, tc := range []struct {
		name  string
		token string
		code  int
		body  string
	}{
		{"key of the set", tok(rs, "rsa-2026", full...), 200, ""},
		{"no iss", tok(rs, "rsa-2026", "--aud", aud, "--access-token"), 401, "issuer not accepted"},
		{"other aud", tok(rs, "rsa-2026", "--iss", iss, "--aud", "https://other.example", "--access-token"), 401, "audience not accepted"},
		{"not an access token", tok(rs, "rsa-2026", "--iss", iss, "--aud", aud), 401, `requires access tokens of type "at+jwt"`},
		{"unknown kid", tok(es, "made-up", full...), 401, `unknown key id (kid) "made-up"`},
	} {
		code, body := publishWith(t, p.base, tc.token, "a", tc.name)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, code, body, tc.code, tc.body)
		}
	}

	// The issuer rotates its keys: the first token with a new kid makes
	// the hub fetch the set again. (The made-up kid above made the hub
	// fetch it less than the gap ago, so it would not again: a SIGHUP, which
	// builds the key sources anew, comes first.)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reloaded keys")
	js.serve(t, map[string]keyPair{"ec-2027": es, "ed-2027": ed})
	for _, kp := range []struct {
		kp  keyPair
		kid string
	}{{es, "ec-2027"}, {ed, "ed-2027"}} {
		if code, body := publishWith(t, p.base, tok(kp.kp, kp.kid, full...), "a", "rotated"); code != 200 {
			t.Errorf("%s token of the rotated-in key: %d %s", kp.kp.alg, code, body)
		}
	}
	sub := tokenCmd(t, "--alg", "EdDSA", "--key", "@"+ed.privFile, "--kid", "ed-2027", "--subscribe", "*", "--iss", iss, "--aud", aud, "--access-token")
	openStream(t, http.DefaultClient, p.base+"/.well-known/mercure?topic=a&authorization="+sub)
}

func TestSIGHUPSwitchesToAsymmetricKeys(t *testing.T) {
	dir := t.TempDir()
	kp := newKeyPair(t, dir, "ES256")
	cfg := filepath.Join(dir, "ssehub.yaml")
	os.WriteFile(cfg, []byte("publisher-jwt-key: "+testPubKey+"\n"), 0o600)
	p := startServe(t, nil, "--config", cfg, "--subscriber-jwt-key", testSubKey)
	if code, body := post(t, http.DefaultClient, p.base, testPubKey, url.Values{"topic": {"a"}}); code != 200 {
		t.Fatalf("HS256 before the reload: %d %s", code, body)
	}
	os.WriteFile(cfg, []byte(fmt.Sprintf("publisher-jwt-alg: ES256\npublisher-jwt-key: \"@%s\"\n", kp.pubFile)), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reloaded keys")
	if code, body := publishWith(t, p.base, tokenCmd(t, "--alg", "ES256", "--key", "@"+kp.privFile, "--publish", "*"), "a", "x"); code != 200 {
		t.Errorf("ES256 after the reload: %d %s", code, body)
	}
	if code, _ := post(t, http.DefaultClient, p.base, testPubKey, url.Values{"topic": {"a"}}); code != 401 {
		t.Errorf("HS256 after the reload: %d, want 401", code)
	}
}
