package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/topic"
)

// Limits on what a token may carry.
const (
	// MaxTokenSize is the largest token Verify reads, in bytes.
	MaxTokenSize = 32 << 10
	// MaxSelectors is the largest number of topic selectors and matchers
	// one token may grant, all claims together.
	MaxSelectors = 1000
	// DefaultCacheSize is the size of the template cache a Verifier makes
	// when Config.Cache is nil.
	DefaultCacheSize = 1024
)

// Authorization detail types understood in the authorization_details claim:
// the one of Mercure 1.0 and the short one of the latest protocol draft.
const (
	DetailType      = "https://mercure.rocks/authorization-detail"
	DetailTypeShort = "mercure"
)

// Config configures a Verifier.
type Config struct {
	// Keys provides the verification keys and, through Algorithms, the
	// only algorithms accepted. Required.
	Keys KeySource
	// Issuers, when not empty, lists the accepted iss values: a token
	// without iss, or with another, is refused with ErrIssuer.
	Issuers []string
	// Audience, when not empty, is the hub's resource identifier (usually
	// its public URL, "https://hub.example.com/.well-known/mercure"): the
	// token's aud must contain it, else ErrAudience.
	Audience string
	// Leeway is the clock skew tolerated when checking exp and nbf. The
	// default is zero: exp and nbf are exact. A few seconds is reasonable
	// when tokens are minted on other machines.
	Leeway time.Duration
	// RequireExpiration refuses tokens without exp (ErrMalformed). Mercure
	// 0.x tokens often have none, so it is off by default; draft-08 asks
	// for it.
	RequireExpiration bool
	// RequireAccessToken refuses tokens whose typ header is not "at+jwt"
	// (RFC 9068), as draft-08 asks. Off by default: 0.x tokens have typ
	// "JWT" or none. Any typ other than those is always refused.
	RequireAccessToken bool
	// Cache compiles the selectors of tokens; share the hub's. When nil,
	// the Verifier makes its own of DefaultCacheSize templates.
	Cache *topic.Cache
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// Verifier checks tokens of one role (publisher or subscriber). It is
// immutable and safe for concurrent use; to change keys, build a new one.
type Verifier struct {
	cfg    Config
	algs   []string
	parser *jwt.Parser

	// Verified tokens, so that a publisher sending the same token with
	// every request pays for its signature and JSON once (it was ~10% of
	// the CPU of a publish). Entries live cacheTTL at most, so a key
	// source that revokes keys is obeyed within that time.
	cacheMu sync.Mutex
	cache   map[string]cachedClaims
}

// cachedClaims is a verified token's claims and when it was verified.
type cachedClaims struct {
	c  *Claims
	at time.Time
}

// Bounds of the verified-token cache.
const (
	cacheTTL     = time.Minute
	cacheEntries = 4096
)

// NewVerifier returns a Verifier for cfg. It fails when cfg has no keys, its
// KeySource names an algorithm this package cannot verify ("none"
// included), or, for Keys, a key's material does not suit its algorithm.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Keys == nil {
		return nil, newError(ErrKey, "auth: invalid key: Config.Keys is required")
	}
	algs := slices.Clone(cfg.Keys.Algorithms())
	if len(algs) == 0 {
		return nil, newError(ErrKey, "auth: invalid key: the key source has no keys")
	}
	for _, alg := range algs {
		if !slices.Contains(supported, alg) {
			return nil, newError(ErrKey, "auth: invalid key: algorithm %q cannot be accepted (supported: %s)", alg, strings.Join(supported, ", "))
		}
	}
	if ks, ok := cfg.Keys.(Keys); ok {
		for i, k := range ks {
			if err := k.check(); err != nil {
				return nil, fmt.Errorf("key %d: %w", i, err)
			}
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Cache == nil {
		cfg.Cache = topic.NewCache(DefaultCacheSize)
	}
	cfg.Issuers = slices.Clone(cfg.Issuers)
	return &Verifier{
		cfg:    cfg,
		algs:   algs,
		parser: jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithoutClaimsValidation()),
	}, nil
}

// Algorithms returns the algorithms the Verifier accepts.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algs) }

// header is the JOSE header fields Verify looks at.
type header struct {
	Alg  string   `json:"alg"`
	Typ  string   `json:"typ"`
	Kid  string   `json:"kid"`
	Crit []string `json:"crit"`
}

// rawClaims is what Verify decodes from the token payload.
type rawClaims struct {
	jwt.RegisteredClaims
	Mercure              json.RawMessage `json:"mercure"`
	AuthorizationDetails json.RawMessage `json:"authorization_details"`
}

// Verify checks token and returns its claims. The error wraps ErrMissing
// (empty token), ErrMalformed, ErrAlgorithm, ErrType, ErrSignature,
// ErrExpired, ErrNotYetValid, ErrIssuer or ErrAudience, with a message that
// says what to fix. The returned Claims have their selectors compiled, so
// their authorization methods are cheap. Safe for concurrent use.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, newError(ErrMissing, "auth: no token (the token is empty)")
	}
	if len(token) > MaxTokenSize {
		return nil, newError(ErrMalformed, "auth: malformed token: it is %d bytes, more than the %d this hub reads", len(token), MaxTokenSize)
	}
	now := v.cfg.Now()
	if c := v.cached(token, now); c != nil {
		return c, nil
	}
	hdr, err := v.checkHeader(token)
	if err != nil {
		return nil, err
	}

	var raw rawClaims
	_, err = v.parser.ParseWithClaims(token, &raw, func(*jwt.Token) (any, error) {
		var keys []any
		if f, ok := v.cfg.Keys.(KeyFinder); ok {
			var err error
			if keys, err = f.FindKeys(hdr.Alg, hdr.Kid); len(keys) == 0 && err != nil {
				return nil, err
			}
		} else {
			keys = v.cfg.Keys.VerificationKeys(hdr.Alg, hdr.Kid)
		}
		switch len(keys) {
		case 0:
			if hdr.Kid != "" {
				return nil, newError(ErrSignature, "auth: signature invalid (signed with a different key?): no %s key with id %q", hdr.Alg, hdr.Kid)
			}
			return nil, newError(ErrSignature, "auth: signature invalid (signed with a different key?): no %s key", hdr.Alg)
		case 1:
			return keys[0], nil
		}
		set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
		for i, k := range keys {
			set.Keys[i] = k
		}
		return set, nil
	})
	if err != nil {
		return nil, v.mapJWTError(err)
	}

	if err := v.checkTimes(&raw, now); err != nil {
		return nil, err
	}
	if err := v.checkIssuerAudience(&raw); err != nil {
		return nil, err
	}
	c := &Claims{
		Subject:  raw.Subject,
		Issuer:   raw.Issuer,
		Audience: []string(raw.Audience),
		Type:     hdr.Typ,
	}
	if raw.ExpiresAt != nil {
		c.ExpiresAt = raw.ExpiresAt.Time
	}
	if err := parseMercureClaim(c, raw.Mercure, v.cfg.Cache); err != nil {
		return nil, err
	}
	if err := parseAuthorizationDetails(c, raw.AuthorizationDetails, v.cfg.Cache); err != nil {
		return nil, err
	}
	if n := c.count(); n > MaxSelectors {
		return nil, newError(ErrMalformed, "auth: malformed token: it grants %d topic selectors, more than the %d this hub accepts", n, MaxSelectors)
	}
	c.compile(v.cfg.Cache)
	v.remember(token, c, now)
	return c, nil
}

// cached returns the claims of token if it was verified less than cacheTTL
// ago and has not expired since; nil otherwise.
func (v *Verifier) cached(token string, now time.Time) *Claims {
	v.cacheMu.Lock()
	defer v.cacheMu.Unlock()
	e, ok := v.cache[token]
	switch {
	case !ok:
		return nil
	case now.Sub(e.at) >= cacheTTL || now.Before(e.at) ||
		(!e.c.ExpiresAt.IsZero() && !now.Before(e.c.ExpiresAt.Add(v.cfg.Leeway))):
		delete(v.cache, token) // verify again: it may have expired, or its key gone
		return nil
	}
	return e.c
}

// remember caches verified claims; a full cache starts over.
func (v *Verifier) remember(token string, c *Claims, now time.Time) {
	v.cacheMu.Lock()
	defer v.cacheMu.Unlock()
	if v.cache == nil || len(v.cache) >= cacheEntries {
		v.cache = make(map[string]cachedClaims)
	}
	v.cache[token] = cachedClaims{c: c, at: now}
}

// checkHeader decodes the token's header and checks its alg, typ and crit
// before any key is used.
func (v *Verifier) checkHeader(token string) (header, error) {
	var hdr header
	switch n := strings.Count(token, "."); n {
	case 2:
	case 4:
		return hdr, newError(ErrMalformed, "auth: malformed token: encrypted tokens (JWE) are not supported; send a signed JWT")
	default:
		return hdr, newError(ErrMalformed, "auth: malformed token: a JWT has 3 parts separated by dots, this one has %d", n+1)
	}
	seg, _, _ := strings.Cut(token, ".")
	js, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return hdr, newError(ErrMalformed, "auth: malformed token: its header is not base64url-encoded")
	}
	if err := json.Unmarshal(js, &hdr); err != nil {
		return hdr, newError(ErrMalformed, "auth: malformed token: its header is not a JSON object with string alg, typ and kid")
	}
	switch {
	case hdr.Alg == "":
		return hdr, newError(ErrMalformed, "auth: malformed token: its header has no alg")
	case strings.EqualFold(hdr.Alg, "none"):
		return hdr, newError(ErrAlgorithm, "auth: algorithm none not allowed: tokens must be signed; this hub accepts %s", strings.Join(v.algs, ", "))
	case !slices.Contains(v.algs, hdr.Alg):
		return hdr, newError(ErrAlgorithm, "auth: algorithm %s not allowed; this hub accepts %s", printable(hdr.Alg), strings.Join(v.algs, ", "))
	}
	switch typ := strings.ToLower(hdr.Typ); typ {
	case "at+jwt", "application/at+jwt":
	case "", "jwt", "application/jwt":
		if v.cfg.RequireAccessToken {
			return hdr, newError(ErrType, "auth: token type %q not accepted; this hub requires access tokens of type \"at+jwt\" (RFC 9068)", printable(hdr.Typ))
		}
	default:
		return hdr, newError(ErrType, "auth: token type %q not accepted; use \"at+jwt\" or \"JWT\"", printable(hdr.Typ))
	}
	if len(hdr.Crit) > 0 {
		return hdr, newError(ErrMalformed, "auth: malformed token: critical header parameters %q are not supported", hdr.Crit)
	}
	return hdr, nil
}

// mapJWTError turns an error of the jwt parser into one of ours.
func (v *Verifier) mapJWTError(err error) error {
	var ae *authError
	switch {
	case errors.As(err, &ae): // from the key function
		return ae
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return newError(ErrSignature, "auth: signature invalid (signed with a different key?)")
	case errors.Is(err, jwt.ErrTokenMalformed):
		detail := "it is not a well-formed JWT"
		if strings.Contains(err.Error(), "claim") {
			detail = "its claims are not valid JSON of the expected types (exp, nbf and iat are numbers; iss and sub strings; aud a string or an array of strings)"
		}
		return newError(ErrMalformed, "auth: malformed token: %s", detail)
	}
	return newError(ErrMalformed, "auth: malformed token: it cannot be verified")
}

func (v *Verifier) checkTimes(raw *rawClaims, now time.Time) error {
	leeway := v.cfg.Leeway
	if raw.ExpiresAt == nil {
		if v.cfg.RequireExpiration {
			return newError(ErrMalformed, "auth: malformed token: it has no exp claim; this hub requires tokens to expire")
		}
	} else if exp := raw.ExpiresAt.Time; !now.Before(exp.Add(leeway)) {
		return newError(ErrExpired, "auth: token expired at %s (it is now %s)", stamp(exp), stamp(now))
	}
	if raw.NotBefore != nil {
		if nbf := raw.NotBefore.Time; now.Add(leeway).Before(nbf) {
			return newError(ErrNotYetValid, "auth: token not valid yet: valid from %s (it is now %s; are the clocks in sync?)", stamp(nbf), stamp(now))
		}
	}
	return nil
}

func (v *Verifier) checkIssuerAudience(raw *rawClaims) error {
	if len(v.cfg.Issuers) > 0 && !slices.Contains(v.cfg.Issuers, raw.Issuer) {
		accepted := quoteList(v.cfg.Issuers)
		if raw.Issuer == "" {
			return newError(ErrIssuer, "auth: issuer not accepted: the token has no iss claim; this hub accepts %s", accepted)
		}
		return newError(ErrIssuer, "auth: issuer %q not accepted; this hub accepts %s", printable(raw.Issuer), accepted)
	}
	if v.cfg.Audience != "" && !slices.Contains(raw.Audience, v.cfg.Audience) {
		if len(raw.Audience) == 0 {
			return newError(ErrAudience, "auth: audience not accepted: the token has no aud claim; it must name this hub, %q", v.cfg.Audience)
		}
		return newError(ErrAudience, "auth: audience not accepted: the token's aud %s does not include this hub, %q", quoteList(raw.Audience), v.cfg.Audience)
	}
	return nil
}

// matcher is one entry of a topics list: a 0.x selector string or a
// draft-08 matcher object.
type matcher struct {
	Match     *string `json:"match"`
	MatchType string  `json:"match_type"`
	// matchType is the camel-case spelling of the latest draft.
	MatchTypeCamel string `json:"matchType"`
}

// addTopics parses a JSON array of topic selectors (strings) and matcher
// objects ({"match": …, "match_type": "exact"} or "urlpattern") into
// selectors, exact patterns and URL patterns (validated through cache).
// what names the claim in error messages.
func addTopics(data json.RawMessage, what string, allowStrings bool, cache *topic.Cache, selectors, exact, patterns *[]string) error {
	var entries []json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		return newError(ErrMalformed, "auth: malformed token: %s must be an array of topic selectors", what)
	}
	if len(entries) > MaxSelectors {
		return newError(ErrMalformed, "auth: malformed token: %s has %d entries, more than the %d this hub accepts", what, len(entries), MaxSelectors)
	}
	for i, e := range entries {
		e = bytes.TrimSpace(e)
		if len(e) > 0 && e[0] == '"' {
			if !allowStrings {
				return newError(ErrMalformed, `auth: malformed token: %s[%d] must be an object like {"match": "https://example.com/books/1"}`, what, i)
			}
			var s string
			if err := json.Unmarshal(e, &s); err != nil {
				return newError(ErrMalformed, "auth: malformed token: %s[%d] is not a valid string", what, i)
			}
			*selectors = append(*selectors, s)
			continue
		}
		var m matcher
		if len(e) == 0 || e[0] != '{' || json.Unmarshal(e, &m) != nil {
			return newError(ErrMalformed, `auth: malformed token: %s[%d] must be a topic selector string or an object like {"match": "https://example.com/books/1"}`, what, i)
		}
		if m.Match == nil || *m.Match == "" {
			return newError(ErrMalformed, `auth: malformed token: %s[%d] has no "match" pattern`, what, i)
		}
		typ := m.MatchType
		if typ == "" {
			typ = m.MatchTypeCamel
		}
		switch typ {
		case "", "exact", "Exact":
			// Without "{", an exact pattern means the same as a selector.
			if topic.IsExact(*m.Match) || *m.Match == topic.Wildcard {
				*selectors = append(*selectors, *m.Match)
			} else {
				*exact = append(*exact, *m.Match)
			}
		case "urlpattern", "URLPattern":
			if *m.Match == topic.Wildcard {
				*selectors = append(*selectors, *m.Match)
				break
			}
			if _, err := cache.CompileURLPattern(*m.Match); err != nil {
				return newError(ErrMalformed, "auth: malformed token: %s[%d]: %s", what, i, printable(err.Error()))
			}
			*patterns = append(*patterns, *m.Match)
		default:
			return newError(ErrMalformed, "auth: malformed token: %s[%d] has unknown match_type %q (use \"exact\" or \"urlpattern\")", what, i, printable(typ))
		}
	}
	return nil
}

// parseMercureClaim reads the 0.x "mercure" claim into c.
func parseMercureClaim(c *Claims, data json.RawMessage, cache *topic.Cache) error {
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	var m struct {
		Publish   json.RawMessage `json:"publish"`
		Subscribe json.RawMessage `json:"subscribe"`
		Payload   json.RawMessage `json:"payload"`
	}
	if bytes.TrimSpace(data)[0] != '{' || json.Unmarshal(data, &m) != nil {
		return newError(ErrMalformed, `auth: malformed token: the mercure claim must be an object like {"publish": ["*"], "subscribe": ["*"]}`)
	}
	if len(m.Publish) > 0 && string(m.Publish) != "null" {
		if err := addTopics(m.Publish, "mercure.publish", true, cache, &c.Publish, &c.PublishExact, &c.PublishURLPattern); err != nil {
			return err
		}
	}
	if len(m.Subscribe) > 0 && string(m.Subscribe) != "null" {
		if err := addTopics(m.Subscribe, "mercure.subscribe", true, cache, &c.Subscribe, &c.SubscribeExact, &c.SubscribeURLPattern); err != nil {
			return err
		}
	}
	if len(m.Payload) > 0 && string(m.Payload) != "null" {
		c.Payload, c.mercurePayload = m.Payload, m.Payload
	}
	return nil
}

// parseAuthorizationDetails reads the draft-08 authorization_details claim
// into c. Entries of other types are ignored; a malformed Mercure entry
// rejects the whole token (no partial acceptance).
func parseAuthorizationDetails(c *Claims, data json.RawMessage, cache *topic.Cache) error {
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		return newError(ErrMalformed, "auth: malformed token: authorization_details must be an array of objects")
	}
	type pending struct {
		sels, exact, patterns []string
		payload               json.RawMessage
	}
	var (
		details    []pending
		hasPayload bool
	)
	for i, e := range entries {
		var d struct {
			Type    string          `json:"type"`
			Actions []string        `json:"actions"`
			Topics  json.RawMessage `json:"topics"`
			Payload json.RawMessage `json:"payload"`
		}
		var head struct {
			Type string `json:"type"`
		}
		if e = bytes.TrimSpace(e); len(e) == 0 || e[0] != '{' || json.Unmarshal(e, &head) != nil {
			return newError(ErrMalformed, "auth: malformed token: authorization_details[%d] must be an object with a string type", i)
		}
		if head.Type != DetailType && head.Type != DetailTypeShort {
			continue // another resource's detail
		}
		what := fmt.Sprintf("authorization_details[%d]", i)
		if json.Unmarshal(e, &d) != nil {
			return newError(ErrMalformed, "auth: malformed token: %s must have an array of actions and an array of topics", what)
		}
		var publish, subscribe bool
		for _, a := range d.Actions {
			switch a {
			case "publish":
				publish = true
			case "subscribe":
				subscribe = true
			default:
				return newError(ErrMalformed, "auth: malformed token: %s has unknown action %q (use \"publish\" and \"subscribe\")", what, printable(a))
			}
		}
		if !publish && !subscribe {
			return newError(ErrMalformed, "auth: malformed token: %s has no actions (use \"publish\" and/or \"subscribe\")", what)
		}
		var sels, exact, patterns []string
		if len(d.Topics) == 0 || string(d.Topics) == "null" {
			return newError(ErrMalformed, "auth: malformed token: %s has no topics", what)
		}
		if err := addTopics(d.Topics, what+".topics", false, cache, &sels, &exact, &patterns); err != nil {
			return err
		}
		if len(sels)+len(exact)+len(patterns) == 0 {
			return newError(ErrMalformed, "auth: malformed token: %s has no topics", what)
		}
		if n := c.count() + len(sels) + len(exact) + len(patterns); n > MaxSelectors {
			return newError(ErrMalformed, "auth: malformed token: it grants more than the %d topic selectors this hub accepts", MaxSelectors)
		}
		if publish {
			c.Publish = append(c.Publish, sels...)
			c.PublishExact = append(c.PublishExact, exact...)
			c.PublishURLPattern = append(c.PublishURLPattern, patterns...)
		}
		if subscribe {
			c.Subscribe = append(c.Subscribe, sels...)
			c.SubscribeExact = append(c.SubscribeExact, exact...)
			c.SubscribeURLPattern = append(c.SubscribeURLPattern, patterns...)
			if string(d.Payload) == "null" {
				d.Payload = nil
			}
			details = append(details, pending{sels, exact, patterns, d.Payload})
			hasPayload = hasPayload || d.Payload != nil
		}
	}
	if !hasPayload {
		return nil // PayloadFor falls back to Payload
	}
	// Payloads are chosen per subscription by the first subscribe detail
	// whose topics match it, so keep each detail's topics.
	for _, d := range details {
		c.details = append(c.details, detail{topics: compileSet(cache, d.sels, d.exact, d.patterns), payload: d.payload})
		if c.Payload == nil && d.payload != nil {
			c.Payload = d.payload
		}
	}
	return nil
}

// stamp formats a time for error messages.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// printable cuts token-supplied strings for error messages.
func printable(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

func quoteList(list []string) string {
	q := make([]string, 0, len(list))
	for i, s := range list {
		if i == 5 {
			q = append(q, fmt.Sprintf("and %d more", len(list)-i))
			break
		}
		q = append(q, fmt.Sprintf("%q", printable(s)))
	}
	return strings.Join(q, ", ")
}
