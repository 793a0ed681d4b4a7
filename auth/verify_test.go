package auth

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVerifyAlgorithms(t *testing.T) {
	tests := []struct {
		alg  string
		keys func(t testing.TB) pemPair
	}{
		{"HS256", nil},
		{"HS384", nil},
		{"HS512", nil},
		{"RS256", rsaPEM},
		{"RS512", rsaPEM},
		{"PS256", rsaPEM},
		{"ES256", ec256PEM},
		{"ES384", ec384PEM},
		{"EdDSA", edPEM},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			signKey, verifyKey := secret, secret
			if tt.keys != nil {
				p := tt.keys(t)
				signKey, verifyKey = p.private, p.public
			}
			tok := sign(t, TokenSpec{Alg: tt.alg, Key: signKey, Publish: []string{"*"}, Subscribe: []string{"https://example.com/books/{id}"}, TTL: time.Hour})
			v := newVerifier(t, Config{Keys: Keys{mustKey(t, tt.alg, verifyKey)}})
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !slices.Equal(c.Publish, []string{"*"}) || !slices.Equal(c.Subscribe, []string{"https://example.com/books/{id}"}) {
				t.Errorf("claims = %q / %q", c.Publish, c.Subscribe)
			}
			if !c.ExpiresAt.Equal(now.Add(time.Hour)) {
				t.Errorf("ExpiresAt = %v, want %v", c.ExpiresAt, now.Add(time.Hour))
			}
		})
	}
}

func TestVerifyFailures(t *testing.T) {
	hs := hsVerifier(t)
	rsaKeys := rsaPEM(t)
	rs := newVerifier(t, Config{Keys: Keys{mustKey(t, "RS256", rsaKeys.public)}})
	es := newVerifier(t, Config{Keys: Keys{mustKey(t, "ES256", ec256PEM(t).public)}})
	strict := newVerifier(t, Config{Keys: Keys{mustKey(t, "HS256", secret)}, RequireExpiration: true, RequireAccessToken: true})
	lenient := newVerifier(t, Config{Keys: Keys{mustKey(t, "HS256", secret)}, Leeway: 5 * time.Second})
	rotated := newVerifier(t, Config{Keys: Keys{{Alg: "HS256", ID: "k1", Material: []byte(secret)}}})

	valid := sign(t, TokenSpec{Publish: []string{"*"}, TTL: time.Hour})
	parts := strings.Split(valid, ".")
	enc := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name     string
		v        *Verifier
		token    string
		want     error
		wantMsg  string // exact message when set
		contains string
	}{
		{name: "empty", v: hs, token: "", want: ErrMissing},
		{name: "expired", v: hs, token: sign(t, TokenSpec{TTL: time.Minute, Now: now.Add(-time.Hour)}), want: ErrExpired,
			wantMsg: "auth: token expired at 2026-03-01T09:01:00Z (it is now 2026-03-01T10:00:00Z)"},
		{name: "expired exactly now", v: hs, token: sign(t, TokenSpec{TTL: time.Minute, Now: now.Add(-time.Minute)}), want: ErrExpired},
		{name: "expired beyond leeway", v: lenient, token: sign(t, TokenSpec{TTL: time.Minute, Now: now.Add(-time.Minute - 6*time.Second)}), want: ErrExpired},
		{name: "not yet valid", v: hs, token: sign(t, TokenSpec{NotBefore: now.Add(time.Minute)}), want: ErrNotYetValid,
			contains: "valid from 2026-03-01T10:01:00Z (it is now 2026-03-01T10:00:00Z"},
		{name: "not yet valid beyond leeway", v: lenient, token: sign(t, TokenSpec{NotBefore: now.Add(6 * time.Second)}), want: ErrNotYetValid},
		{name: "wrong secret", v: hs, token: sign(t, TokenSpec{Key: otherSecret}), want: ErrSignature,
			wantMsg: "auth: signature invalid (signed with a different key?)"},
		{name: "wrong EC key", v: es, token: sign(t, TokenSpec{Alg: "ES256", Key: ec256bPEM(t).private}), want: ErrSignature},
		{name: "tampered claims", v: hs, token: parts[0] + "." + enc([]byte(`{"mercure":{"publish":["*"]},"admin":true}`)) + "." + parts[2], want: ErrSignature},
		{name: "alg none", v: hs, token: enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", want: ErrAlgorithm,
			wantMsg: "auth: algorithm none not allowed: tokens must be signed; this hub accepts HS256"},
		{name: "alg NONE", v: hs, token: enc([]byte(`{"alg":"NONE"}`)) + "." + parts[1] + ".", want: ErrAlgorithm},
		{name: "wrong algorithm", v: hs, token: sign(t, TokenSpec{Alg: "HS512"}), want: ErrAlgorithm,
			wantMsg: "auth: algorithm HS512 not allowed; this hub accepts HS256"},
		{name: "algorithm confusion", v: rs, token: sign(t, TokenSpec{Alg: "HS256", Key: rsaKeys.public}), want: ErrAlgorithm,
			wantMsg: "auth: algorithm HS256 not allowed; this hub accepts RS256"},
		{name: "unknown kid", v: rotated, token: sign(t, TokenSpec{KeyID: "k2"}), want: ErrSignature, contains: `no HS256 key with id "k2"`},
		{name: "garbage", v: hs, token: "not a token", want: ErrMalformed, contains: "3 parts"},
		{name: "two parts", v: hs, token: parts[0] + "." + parts[1], want: ErrMalformed, contains: "this one has 2"},
		{name: "JWE", v: hs, token: "a.b.c.d.e", want: ErrMalformed, contains: "encrypted tokens (JWE) are not supported"},
		{name: "header not base64", v: hs, token: "!!!." + parts[1] + "." + parts[2], want: ErrMalformed, contains: "not base64url"},
		{name: "header not JSON", v: hs, token: enc([]byte("hello")) + "." + parts[1] + "." + parts[2], want: ErrMalformed, contains: "not a JSON object"},
		{name: "header without alg", v: hs, token: enc([]byte(`{"typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], want: ErrMalformed, contains: "no alg"},
		{name: "signature not base64", v: hs, token: parts[0] + "." + parts[1] + ".!!!", want: ErrMalformed},
		{name: "claims not JSON", v: hs, token: rawToken(`{"alg":"HS256"}`, `nope`, secret), want: ErrMalformed},
		{name: "exp not a number", v: hs, token: rawToken(`{"alg":"HS256"}`, `{"exp":"tomorrow"}`, secret), want: ErrMalformed, contains: "exp, nbf and iat are numbers"},
		{name: "mercure not an object", v: hs, token: rawToken(`{"alg":"HS256"}`, `{"mercure":["*"]}`, secret), want: ErrMalformed, contains: "the mercure claim must be an object"},
		{name: "publish not an array", v: hs, token: rawToken(`{"alg":"HS256"}`, `{"mercure":{"publish":"*"}}`, secret), want: ErrMalformed, contains: "mercure.publish must be an array"},
		{name: "subscribe entry a number", v: hs, token: rawToken(`{"alg":"HS256"}`, `{"mercure":{"subscribe":[1]}}`, secret), want: ErrMalformed, contains: "mercure.subscribe[0]"},
		{name: "unknown typ", v: hs, token: rawToken(`{"alg":"HS256","typ":"dpop+jwt"}`, `{}`, secret), want: ErrType, contains: `"dpop+jwt" not accepted`},
		{name: "JWT typ when access tokens required", v: strict, token: sign(t, TokenSpec{TTL: time.Hour}), want: ErrType, contains: "at+jwt"},
		{name: "no exp when required", v: strict, token: sign(t, TokenSpec{AccessToken: true, Subscribe: []string{"*"}}), want: ErrMalformed, contains: "no exp claim"},
		{name: "critical header", v: hs, token: rawToken(`{"alg":"HS256","crit":["exp"]}`, `{}`, secret), want: ErrMalformed, contains: "critical header"},
		{name: "too large", v: hs, token: strings.Repeat("a", MaxTokenSize+1), want: ErrMalformed, contains: "more than the"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.v.Verify(tt.token)
			if err == nil {
				t.Fatalf("Verify succeeded with claims %+v, want %v", c, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %q does not wrap %q", err, tt.want)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("message\n got %q\nwant %q", err, tt.wantMsg)
			}
			if tt.contains != "" && !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("message %q does not contain %q", err, tt.contains)
			}
			if c != nil {
				t.Error("claims returned with an error")
			}
		})
	}
}

func TestVerifyLeewayAccepts(t *testing.T) {
	v := newVerifier(t, Config{Keys: Keys{mustKey(t, "HS256", secret)}, Leeway: 5 * time.Second})
	for name, spec := range map[string]TokenSpec{
		"expired within leeway":       {TTL: time.Minute, Now: now.Add(-time.Minute - 4*time.Second)},
		"not yet valid within leeway": {NotBefore: now.Add(4 * time.Second)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(sign(t, spec)); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestVerifyConcurrent(t *testing.T) {
	v := hsVerifier(t)
	good := sign(t, TokenSpec{Subscribe: []string{"https://example.com/{id}"}})
	bad := sign(t, TokenSpec{Key: otherSecret})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				c, err := v.Verify(good)
				if err != nil || !c.CanReceive([]string{"https://example.com/1"}) {
					t.Errorf("good token: %v", err)
					return
				}
				if _, err := v.Verify(bad); !errors.Is(err, ErrSignature) {
					t.Errorf("bad token: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestVerifyKeyRotation(t *testing.T) {
	v := newVerifier(t, Config{Keys: Keys{
		{Alg: "HS256", ID: "old", Material: []byte(otherSecret)},
		{Alg: "HS256", ID: "new", Material: []byte(secret)},
	}})
	tests := []struct {
		name    string
		spec    TokenSpec
		wantErr error
	}{
		{"new key by kid", TokenSpec{Key: secret, KeyID: "new"}, nil},
		{"old key by kid", TokenSpec{Key: otherSecret, KeyID: "old"}, nil},
		{"new key without kid", TokenSpec{Key: secret}, nil},
		{"old key without kid", TokenSpec{Key: otherSecret}, nil},
		{"kid names the other key", TokenSpec{Key: secret, KeyID: "old"}, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(sign(t, tt.spec))
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Errorf("Verify: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyIssuerAudience(t *testing.T) {
	v := newVerifier(t, Config{
		Keys:     Keys{mustKey(t, "HS256", secret)},
		Issuers:  []string{"https://app.example.com", "https://other.example.com"},
		Audience: "https://hub.example.com/.well-known/mercure",
	})
	hub := []string{"https://hub.example.com/.well-known/mercure"}
	tests := []struct {
		name     string
		spec     TokenSpec
		want     error
		contains string
	}{
		{"accepted", TokenSpec{Issuer: "https://app.example.com", Audience: hub}, nil, ""},
		{"second issuer and several audiences", TokenSpec{Issuer: "https://other.example.com", Audience: []string{"x", hub[0]}}, nil, ""},
		{"unknown issuer", TokenSpec{Issuer: "https://evil.example.com", Audience: hub}, ErrIssuer, `issuer "https://evil.example.com" not accepted; this hub accepts "https://app.example.com", "https://other.example.com"`},
		{"no issuer", TokenSpec{Audience: hub}, ErrIssuer, "no iss claim"},
		{"other audience", TokenSpec{Issuer: "https://app.example.com", Audience: []string{"https://other-hub.example.com"}}, ErrAudience, `aud "https://other-hub.example.com" does not include this hub`},
		{"no audience", TokenSpec{Issuer: "https://app.example.com"}, ErrAudience, "no aud claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(sign(t, tt.spec))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Issuer != tt.spec.Issuer || !slices.Equal(c.Audience, tt.spec.Audience) {
					t.Errorf("claims iss %q aud %q", c.Issuer, c.Audience)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q, want %v containing %q", err, tt.want, tt.contains)
			}
		})
	}
	t.Run("audience as a string", func(t *testing.T) {
		tok := rawToken(`{"alg":"HS256"}`, `{"iss":"https://app.example.com","aud":"https://hub.example.com/.well-known/mercure"}`, secret)
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}

func TestVerifyAuthorizationDetails(t *testing.T) {
	v := newVerifier(t, Config{Keys: Keys{mustKey(t, "HS256", secret)}, RequireAccessToken: true})
	const hdr = `{"alg":"HS256","typ":"at+jwt"}`
	tests := []struct {
		name              string
		claims            string
		wantPub, wantSub  []string
		wantSubExact      []string
		wantErr           error
		wantErrContaining string
	}{
		{
			name: "Mercure 1.0 type",
			claims: `{"authorization_details":[
				{"type":"https://mercure.rocks/authorization-detail","actions":["publish"],"topics":[{"match":"*"}]},
				{"type":"https://mercure.rocks/authorization-detail","actions":["subscribe"],"topics":[{"match":"https://example.com/users/42"},{"match":"https://example.com/books/{id}","match_type":"exact"}]}]}`,
			wantPub: []string{"*"}, wantSub: []string{"https://example.com/users/42"}, wantSubExact: []string{"https://example.com/books/{id}"},
		},
		{
			name:    "short type and both actions",
			claims:  `{"authorization_details":[{"type":"mercure","actions":["publish","subscribe"],"topics":[{"match":"a","matchType":"Exact"}]}]}`,
			wantPub: []string{"a"}, wantSub: []string{"a"},
		},
		{
			name:    "other types are ignored",
			claims:  `{"authorization_details":[{"type":"payment_initiation","topics":"whatever"},{"type":"mercure","actions":["subscribe"],"topics":[{"match":"a"}]}]}`,
			wantSub: []string{"a"},
		},
		{
			name:    "combined with the mercure claim",
			claims:  `{"mercure":{"publish":["x/{id}"]},"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[{"match":"y"}]}]}`,
			wantPub: []string{"x/{id}", "y"},
		},
		{name: "invalid url pattern", claims: `{"authorization_details":[{"type":"mercure","actions":["subscribe"],"topics":[{"match":"books/:id","match_type":"urlpattern"}]}]}`,
			wantErr: ErrMalformed, wantErrContaining: `invalid URL pattern "books/:id"`},
		{name: "unknown match type", claims: `{"authorization_details":[{"type":"mercure","actions":["subscribe"],"topics":[{"match":"a","match_type":"regexp"}]}]}`,
			wantErr: ErrMalformed, wantErrContaining: `unknown match_type "regexp"`},
		{name: "unknown action", claims: `{"authorization_details":[{"type":"mercure","actions":["delete"],"topics":[{"match":"a"}]}]}`,
			wantErr: ErrMalformed, wantErrContaining: `unknown action "delete"`},
		{name: "no actions", claims: `{"authorization_details":[{"type":"mercure","actions":[],"topics":[{"match":"a"}]}]}`,
			wantErr: ErrMalformed, wantErrContaining: "has no actions"},
		{name: "no topics", claims: `{"authorization_details":[{"type":"mercure","actions":["publish"]}]}`,
			wantErr: ErrMalformed, wantErrContaining: "has no topics"},
		{name: "empty topics", claims: `{"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[]}]}`,
			wantErr: ErrMalformed, wantErrContaining: "has no topics"},
		{name: "bare string topics", claims: `{"authorization_details":[{"type":"mercure","actions":["publish"],"topics":["*"]}]}`,
			wantErr: ErrMalformed, wantErrContaining: `must be an object like {"match"`},
		{name: "matcher without match", claims: `{"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[{"match_type":"exact"}]}]}`,
			wantErr: ErrMalformed, wantErrContaining: `has no "match" pattern`},
		{name: "not an array", claims: `{"authorization_details":{"type":"mercure"}}`,
			wantErr: ErrMalformed, wantErrContaining: "must be an array"},
		{name: "entry not an object", claims: `{"authorization_details":["mercure"]}`,
			wantErr: ErrMalformed, wantErrContaining: "authorization_details[0] must be an object"},
		{name: "too many topics", claims: `{"authorization_details":[{"type":"mercure","actions":["subscribe"],"topics":[` + strings.Repeat(`{"match":"a"},`, MaxSelectors) + `{"match":"a"}]}]}`,
			wantErr: ErrMalformed, wantErrContaining: "more than the 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(rawToken(hdr, tt.claims, secret))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantErrContaining) {
					t.Fatalf("error %v, want %v containing %q", err, tt.wantErr, tt.wantErrContaining)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !slices.Equal(c.Publish, tt.wantPub) || !slices.Equal(c.Subscribe, tt.wantSub) || !slices.Equal(c.SubscribeExact, tt.wantSubExact) {
				t.Errorf("Publish %q Subscribe %q SubscribeExact %q; want %q %q %q", c.Publish, c.Subscribe, c.SubscribeExact, tt.wantPub, tt.wantSub, tt.wantSubExact)
			}
			if c.Type != "at+jwt" {
				t.Errorf("Type = %q", c.Type)
			}
		})
	}
}

func TestVerifyMercureClaimMatcherObjects(t *testing.T) {
	tok := rawToken(`{"alg":"HS256"}`, `{"mercure":{"publish":["a/{id}",{"match":"b/{id}"}],"subscribe":[{"match":"*"}]}}`, secret)
	c, err := hsVerifier(t).Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Publish, []string{"a/{id}"}) || !slices.Equal(c.PublishExact, []string{"b/{id}"}) || !slices.Equal(c.Subscribe, []string{"*"}) {
		t.Errorf("Publish %q PublishExact %q Subscribe %q", c.Publish, c.PublishExact, c.Subscribe)
	}
	// The string is a URI template, the object an exact matcher.
	if c.CanPublish([]string{"a/1"}, nil) != nil || c.CanPublish([]string{"b/1"}, nil) == nil || c.CanPublish([]string{"b/{id}"}, nil) != nil {
		t.Error("template string and exact object are not told apart")
	}
}

func TestVerifyPayload(t *testing.T) {
	v := hsVerifier(t)
	t.Run("mercure claim", func(t *testing.T) {
		c, err := v.Verify(sign(t, TokenSpec{Subscribe: []string{"*"}, Payload: map[string]string{"user": "42"}}))
		if err != nil {
			t.Fatal(err)
		}
		if string(c.Payload) != `{"user":"42"}` || string(c.PayloadFor("anything")) != `{"user":"42"}` {
			t.Errorf("Payload %s, PayloadFor %s", c.Payload, c.PayloadFor("anything"))
		}
	})
	t.Run("per detail", func(t *testing.T) {
		tok := rawToken(`{"alg":"HS256","typ":"at+jwt"}`, `{"authorization_details":[
			{"type":"mercure","actions":["subscribe"],"topics":[{"match":"https://example.com/foo"}],"payload":{"custom1":1}},
			{"type":"mercure","actions":["subscribe"],"topics":[{"match":"https://example.com/bar"}]},
			{"type":"mercure","actions":["subscribe"],"topics":[{"match":"*"}],"payload":{"custom3":3}}]}`, secret)
		c, err := v.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		for selector, want := range map[string]string{
			"https://example.com/foo": `{"custom1":1}`,
			"https://example.com/bar": ``, // the first matching detail has none
			"https://example.com/baz": `{"custom3":3}`,
		} {
			if got := string(c.PayloadFor(selector)); got != want {
				t.Errorf("PayloadFor(%q) = %q, want %q", selector, got, want)
			}
		}
		if string(c.Payload) != `{"custom1":1}` {
			t.Errorf("Payload = %s", c.Payload)
		}
	})
}

func TestVerifyAccessTokenFromSpec(t *testing.T) {
	v := newVerifier(t, Config{Keys: Keys{mustKey(t, "HS256", secret)}, RequireAccessToken: true, RequireExpiration: true})
	tok := sign(t, TokenSpec{AccessToken: true, Publish: []string{"https://example.com/a"}, Subscribe: []string{"*"}, TTL: time.Minute, Payload: map[string]int{"n": 1}})
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Publish, []string{"https://example.com/a"}) || !slices.Equal(c.Subscribe, []string{"*"}) || string(c.Payload) != `{"n":1}` {
		t.Errorf("claims %q %q %s", c.Publish, c.Subscribe, c.Payload)
	}
	if _, err := (TokenSpec{Key: secret, AccessToken: true, Subscribe: []string{"a/{id}"}}).Sign(); !errors.Is(err, ErrMalformed) {
		t.Errorf("access token with a template: %v, want ErrMalformed", err)
	}
}

func TestNewVerifierConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no key source", Config{}},
		{"no keys", Config{Keys: Keys{}}},
		{"none algorithm", Config{Keys: Keys{{Alg: "none"}}}},
		{"string secret", Config{Keys: Keys{{Alg: "HS256", Material: secret}}}},
		{"empty secret", Config{Keys: Keys{{Alg: "HS256", Material: []byte{}}}}},
		{"secret for RS256", Config{Keys: Keys{{Alg: "RS256", Material: []byte(secret)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewVerifier(tt.cfg); !errors.Is(err, ErrKey) {
				t.Errorf("NewVerifier: %v, want ErrKey", err)
			}
		})
	}
	v := hsVerifier(t)
	if !slices.Equal(v.Algorithms(), []string{"HS256"}) {
		t.Errorf("Algorithms() = %q", v.Algorithms())
	}
}
