package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"go.uber.org/goleak"
)

// noLeaks checks, after every other cleanup of t, that t left no
// goroutine behind.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// issuer is a local JWKS endpoint whose keys a test can rotate and whose
// answers it can break.
type issuer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jwkset.JWKMarshal
	status  int
	fetches atomic.Int32
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{status: http.StatusOK}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		if is.status != http.StatusOK {
			http.Error(w, "issuer down", is.status)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		json.NewEncoder(w).Encode(jwkset.JWKSMarshal{Keys: is.keys})
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// publish replaces the set with the public halves of keys (kid → key),
// without an alg member unless withAlg.
func (is *issuer) publish(t *testing.T, withAlg bool, keys ...jwkEntry) {
	t.Helper()
	var ms []jwkset.JWKMarshal
	for _, k := range keys {
		md := jwkset.JWKMetadataOptions{KID: k.kid, USE: jwkset.UseSig}
		if withAlg {
			md.ALG = jwkset.ALG(k.alg)
		}
		j, err := jwkset.NewJWKFromKey(k.pub, jwkset.JWKOptions{Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, j.Marshal())
	}
	is.mu.Lock()
	is.keys = ms
	is.mu.Unlock()
}

func (is *issuer) setStatus(code int) {
	is.mu.Lock()
	is.status = code
	is.mu.Unlock()
}

type jwkEntry struct {
	kid, alg string
	pub      any
	private  string // PEM, to sign with
}

func jwkEntries(t *testing.T) (rs, es, ed jwkEntry) {
	rsaPEM(t)
	genEC()
	return jwkEntry{"rsa-1", "RS256", &rsaKey.PublicKey, rsaPEM(t).private},
		jwkEntry{"ec-1", "ES256", &ec256.PublicKey, ec256PEM(t).private},
		jwkEntry{"ed-1", "EdDSA", edPublic, edPEM(t).private}
}

// clock is a settable time for JWKSOptions.Now.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newJWKS(t *testing.T, is *issuer, opts JWKSOptions) (*JWKS, *clock) {
	t.Helper()
	c := &clock{}
	c.ns.Store(now.UnixNano())
	opts.URL, opts.Now = is.srv.URL, c.now
	j, err := NewJWKS(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	return j, c
}

func signWith(t *testing.T, e jwkEntry, kid string) string {
	return sign(t, TokenSpec{Alg: e.alg, Key: e.private, KeyID: kid, Publish: []string{"*"}})
}

func TestJWKSAlgorithmsEndToEnd(t *testing.T) {
	rs, es, ed := jwkEntries(t)
	for _, withAlg := range []bool{false, true} {
		is := newIssuer(t)
		is.publish(t, withAlg, rs, es, ed)
		j, _ := newJWKS(t, is, JWKSOptions{})
		v := newVerifier(t, Config{Keys: j})
		for _, e := range []jwkEntry{rs, es, ed} {
			if _, err := v.Verify(signWith(t, e, e.kid)); err != nil {
				t.Errorf("alg member %v: %s token: %v", withAlg, e.alg, err)
			}
		}
		// A key is only used with the algorithm it fits: the RSA key's kid
		// on an ES256 token finds nothing.
		if _, err := v.Verify(signWith(t, es, rs.kid)); !errors.Is(err, ErrSignature) {
			t.Errorf("ES256 token naming the RSA key: %v, want ErrSignature", err)
		}
	}
}

func TestJWKSRotationAndUnknownKID(t *testing.T) {
	noLeaks(t)
	rs, es, _ := jwkEntries(t)
	is := newIssuer(t)
	is.publish(t, true, rs)
	j, clk := newJWKS(t, is, JWKSOptions{UnknownKIDGap: time.Minute, Refresh: time.Hour})
	v := newVerifier(t, Config{Keys: j})
	if _, err := v.Verify(signWith(t, rs, rs.kid)); err != nil {
		t.Fatal(err)
	}

	// The issuer rotates to an EC key: the first token naming it makes the
	// hub fetch the set again, and it is accepted.
	is.publish(t, true, es)
	clk.advance(2 * time.Minute)
	before := is.fetches.Load()
	if _, err := v.Verify(signWith(t, es, es.kid)); err != nil {
		t.Fatalf("token signed with the rotated-in key: %v", err)
	}
	if got := is.fetches.Load() - before; got != 1 {
		t.Errorf("%d fetches for the new kid, want 1", got)
	}

	// A flood of made-up kids within the gap does not reach the issuer,
	// and each is refused saying the kid is unknown.
	before = is.fetches.Load()
	for i := range 50 {
		_, err := v.Verify(signWith(t, es, "bogus-"+string(rune('a'+i%26))+strings.Repeat("x", i)))
		if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "unknown key id") || !strings.Contains(err.Error(), is.srv.URL) {
			t.Fatalf("bogus kid: %v", err)
		}
	}
	if got := is.fetches.Load() - before; got != 0 {
		t.Errorf("%d fetches for bogus kids within the gap, want 0", got)
	}
	// After the gap, an unknown kid may cause one fetch again.
	clk.advance(2 * time.Minute)
	if _, err := v.Verify(signWith(t, es, "bogus-after-gap")); err == nil {
		t.Fatal("bogus kid accepted")
	}
	if got := is.fetches.Load() - before; got != 1 {
		t.Errorf("%d fetches after the gap, want 1", got)
	}
	// The rotated-out key is gone (a new token: the Verifier remembers
	// verified tokens for a minute).
	old := sign(t, TokenSpec{Alg: rs.alg, Key: rs.private, KeyID: rs.kid, Subject: "new", Publish: []string{"*"}})
	if _, err := v.Verify(old); !errors.Is(err, ErrSignature) {
		t.Errorf("token of the rotated-out key: %v", err)
	}
}

func TestJWKSKeepsKeysWhenRefreshFails(t *testing.T) {
	rs, es, _ := jwkEntries(t)
	is := newIssuer(t)
	is.publish(t, false, rs)
	j, clk := newJWKS(t, is, JWKSOptions{})
	v := newVerifier(t, Config{Keys: j})

	is.setStatus(http.StatusInternalServerError)
	clk.advance(time.Hour)
	_, err := v.Verify(signWith(t, es, "new"))
	if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "500") {
		t.Errorf("unknown kid while the issuer fails: %v, want the fetch failure in the message", err)
	}
	if _, err := v.Verify(signWith(t, rs, rs.kid)); err != nil {
		t.Errorf("known key after a failed refresh: %v", err)
	}
	// A set that suddenly has no usable key is a failed refresh too.
	is.setStatus(http.StatusOK)
	is.publish(t, false)
	clk.advance(time.Hour)
	j.refresh(false)
	if keys := j.VerificationKeys("RS256", rs.kid); len(keys) != 1 {
		t.Errorf("after an empty set: %d keys, want the 1 fetched before", len(keys))
	}
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	noLeaks(t)
	rs, es, _ := jwkEntries(t)
	is := newIssuer(t)
	is.publish(t, false, rs)
	j, _ := newJWKS(t, is, JWKSOptions{Refresh: 20 * time.Millisecond})
	is.publish(t, false, rs, es)
	deadline := time.Now().Add(10 * time.Second)
	for len(j.lookup("ES256", es.kid)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the background refresh never picked up the new key")
		}
		time.Sleep(5 * time.Millisecond)
	}
	j.Close()
}

func TestNewJWKSErrors(t *testing.T) {
	rs, _, _ := jwkEntries(t)
	up := newIssuer(t)
	up.publish(t, false, rs)
	down := newIssuer(t)
	down.setStatus(http.StatusNotFound)
	empty := newIssuer(t)
	oct := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}`))
	}))
	defer oct.Close()
	for _, tc := range []struct {
		name string
		opts JWKSOptions
		want string
	}{
		{"no URL", JWKSOptions{}, "must be an http:// or https:// URL"},
		{"file URL", JWKSOptions{URL: "file:///etc/keys.json"}, "must be an http:// or https:// URL"},
		{"HMAC", JWKSOptions{URL: up.srv.URL, Algorithms: []string{"HS256"}}, "shared-secret algorithm"},
		{"unknown alg", JWKSOptions{URL: up.srv.URL, Algorithms: []string{"RS1"}}, "unsupported algorithm"},
		{"issuer down", JWKSOptions{URL: down.srv.URL}, "404"},
		{"empty set", JWKSOptions{URL: empty.srv.URL}, "has no key usable"},
		{"symmetric key", JWKSOptions{URL: oct.URL}, "symmetric keys are not accepted"},
		{"alg not accepted", JWKSOptions{URL: up.srv.URL, Algorithms: []string{"ES256"}}, "fits none of ES256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := NewJWKS(tc.opts)
			if err == nil {
				j.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrKey saying %q", err, tc.want)
			}
		})
	}
}
