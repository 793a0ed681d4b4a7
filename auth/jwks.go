package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
)

// KeyFinder is a KeySource that can say why it has no key for a token. A
// Verifier probes for it and, when the source implements it, uses
// FindKeys instead of VerificationKeys and returns its error (which should
// wrap ErrSignature) as the reason the token was refused. Methods may be
// called from many goroutines at once.
type KeyFinder interface {
	KeySource
	// FindKeys is VerificationKeys with the reason there are none.
	FindKeys(alg, kid string) ([]any, error)
}

// Defaults of JWKSOptions.
const (
	DefaultJWKSRefresh       = 10 * time.Minute
	DefaultJWKSUnknownKIDGap = 30 * time.Second
	DefaultJWKSTimeout       = 10 * time.Second
	// MaxJWKSSize is the largest JWKS document read, in bytes.
	MaxJWKSSize = 1 << 20
)

// asymmetric lists the algorithms a JWKS may provide keys for. HMAC is
// left out on purpose: a JWKS is public, and a public key used as an HMAC
// secret lets anyone sign tokens.
var asymmetric = slices.DeleteFunc(slices.Clone(supported), isHMAC)

// JWKSOptions configures a JWKS key source.
type JWKSOptions struct {
	// URL of the JSON Web Key Set (RFC 7517), e.g. an OpenID Connect
	// issuer's jwks_uri. Required; http or https.
	URL string
	// Algorithms accepted; empty means every asymmetric algorithm (RS*,
	// PS*, ES*, EdDSA) — a key is only used with the algorithms its type,
	// curve and "alg" member allow. HS* cannot be used with a JWKS.
	Algorithms []string
	// Client fetches the set; nil means a client with DefaultJWKSTimeout.
	Client *http.Client
	// Refresh is how often the set is fetched in the background;
	// DefaultJWKSRefresh when zero.
	Refresh time.Duration
	// UnknownKIDGap is the least time between two fetches caused by tokens
	// naming a kid the set does not have, so that a flood of made-up kids
	// cannot hammer the issuer; DefaultJWKSUnknownKIDGap when zero.
	UnknownKIDGap time.Duration
	// Logger receives refresh failures; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// JWKS is a KeySource (and KeyFinder) that takes its keys from a JSON Web
// Key Set fetched over HTTP. Keys are selected by kid; the set is fetched
// again in the background every Refresh, and when a token names a kid the
// set does not have (at most once per UnknownKIDGap: the requests that
// arrive meanwhile wait for the fetch under way or are refused at once). A
// fetch that fails, or that yields no usable key, keeps the keys already
// known. Create it with NewJWKS and stop it with Close. Safe for
// concurrent use.
type JWKS struct {
	opts   JWKSOptions
	algs   []string
	own    bool // opts.Client was made here
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	keys      []Key         // guarded by mu
	fetched   time.Time     // last successful fetch; guarded by mu
	unknownAt time.Time     // last fetch for an unknown kid began; guarded by mu
	lastErr   error         // of the last fetch, nil after a success; guarded by mu
	inflight  chan struct{} // closed when the fetch under way ends; guarded by mu
}

var _ KeyFinder = (*JWKS)(nil)

// NewJWKS fetches the set at opts.URL once and starts refreshing it in the
// background. It fails when the options are invalid or the first fetch
// fails or yields no usable key; errors wrap ErrKey.
func NewJWKS(opts JWKSOptions) (*JWKS, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, newError(ErrKey, "auth: invalid key: the JWKS URL %q must be an http:// or https:// URL", opts.URL)
	}
	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = asymmetric
	}
	for _, a := range algs {
		if err := checkAlg(a); err != nil {
			return nil, err
		}
		if isHMAC(a) {
			return nil, newError(ErrKey, "auth: invalid key: %s is a shared-secret algorithm and a JWKS is public; use RS*, PS*, ES* or EdDSA with a JWKS", a)
		}
	}
	own := opts.Client == nil
	if own {
		opts.Client = &http.Client{Timeout: DefaultJWKSTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultJWKSRefresh
	}
	if opts.UnknownKIDGap <= 0 {
		opts.UnknownKIDGap = DefaultJWKSUnknownKIDGap
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	j := &JWKS{opts: opts, algs: slices.Clone(algs), own: own}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	if err := j.refresh(false); err != nil {
		j.Close()
		return nil, err
	}
	j.wg.Add(1)
	go j.loop()
	return j, nil
}

// Close stops the background refresh and waits for it. Keys already
// fetched stay usable; no fetch happens after Close.
func (j *JWKS) Close() {
	j.cancel()
	j.wg.Wait()
	if j.own {
		j.opts.Client.CloseIdleConnections()
	}
}

// Algorithms returns the accepted algorithms.
func (j *JWKS) Algorithms() []string { return slices.Clone(j.algs) }

// VerificationKeys returns the keys for alg and kid; see FindKeys.
func (j *JWKS) VerificationKeys(alg, kid string) []any {
	keys, _ := j.FindKeys(alg, kid)
	return keys
}

// FindKeys returns the keys of the set usable with alg whose kid is kid
// (every key of alg when kid is empty). When there is none, it fetches the
// set again unless that happened less than UnknownKIDGap ago, and looks
// again; the error then says the kid is unknown and when the set was
// fetched.
func (j *JWKS) FindKeys(alg, kid string) ([]any, error) {
	if keys := j.lookup(alg, kid); len(keys) > 0 {
		return keys, nil
	}
	j.refresh(true)
	if keys := j.lookup(alg, kid); len(keys) > 0 {
		return keys, nil
	}
	j.mu.Lock()
	fetched, lastErr := j.fetched, j.lastErr
	j.mu.Unlock()
	state := "fetched at " + stamp(fetched)
	if lastErr != nil {
		state += "; fetching it again failed: " + lastErr.Error()
	}
	if kid == "" {
		return nil, newError(ErrSignature, "auth: signature invalid: the token has no kid and the JWKS at %s has no %s key (%s)", j.opts.URL, alg, state)
	}
	return nil, newError(ErrSignature, "auth: signature invalid: unknown key id (kid) %q: the JWKS at %s has no %s key with this kid (%s)", printable(kid), j.opts.URL, alg, state)
}

func (j *JWKS) lookup(alg, kid string) []any {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []any
	for _, k := range j.keys {
		if (k.Alg == "" || k.Alg == alg) && (kid == "" || k.ID == kid) && checkKeyFits(alg, k.Material) == nil {
			out = append(out, k.Material)
		}
	}
	return out
}

// loop refreshes the set every Refresh until Close.
func (j *JWKS) loop() {
	defer j.wg.Done()
	t := time.NewTicker(j.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-j.ctx.Done():
			return
		case <-t.C:
			j.refresh(false)
		}
	}
}

// refresh fetches the set, or waits for the fetch under way. With
// limited, it does nothing when a fetch began less than UnknownKIDGap ago.
func (j *JWKS) refresh(limited bool) error {
	j.mu.Lock()
	if wait := j.inflight; wait != nil {
		j.mu.Unlock()
		select {
		case <-wait:
		case <-j.ctx.Done():
		}
		return nil
	}
	if limited {
		now := j.opts.Now()
		if j.ctx.Err() != nil || (!j.unknownAt.IsZero() && now.Sub(j.unknownAt) < j.opts.UnknownKIDGap) {
			j.mu.Unlock()
			return nil
		}
		j.unknownAt = now
	}
	done := make(chan struct{})
	j.inflight = done
	j.mu.Unlock()

	keys, err := j.fetch()

	j.mu.Lock()
	defer j.mu.Unlock()
	j.inflight = nil
	close(done)
	j.lastErr = err
	if err != nil {
		if len(j.keys) > 0 {
			j.opts.Logger.Warn("JWKS refresh failed; keeping the keys fetched before", "url", j.opts.URL, "fetched", j.fetched, "err", err)
		}
		return err
	}
	j.keys, j.fetched = keys, j.opts.Now()
	return nil
}

// fetch gets and parses the set. Keys that are not usable (symmetric,
// for encryption, of an unsupported type or of an algorithm not accepted)
// are left out; a set without any usable key is an error.
func (j *JWKS) fetch() ([]Key, error) {
	req, err := http.NewRequestWithContext(j.ctx, http.MethodGet, j.opts.URL, nil)
	if err != nil {
		return nil, newError(ErrKey, "auth: invalid key: JWKS request: %v", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.opts.Client.Do(req)
	if err != nil {
		return nil, newError(ErrKey, "auth: invalid key: cannot fetch the JWKS: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, newError(ErrKey, "auth: invalid key: fetching the JWKS at %s: %s", j.opts.URL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, newError(ErrKey, "auth: invalid key: reading the JWKS at %s: %v", j.opts.URL, err)
	}
	if len(body) > MaxJWKSSize {
		return nil, newError(ErrKey, "auth: invalid key: the JWKS at %s is larger than %d bytes", j.opts.URL, MaxJWKSSize)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, newError(ErrKey, "auth: invalid key: the JWKS at %s is not a JSON Web Key Set ({\"keys\": [...]}): %v", j.opts.URL, err)
	}
	var (
		keys    []Key
		skipped []string
	)
	for i, m := range set.Keys {
		k, err := j.usable(m)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, printable(m.KID), err))
			continue
		}
		keys = append(keys, k)
	}
	if len(skipped) > 0 {
		j.opts.Logger.Debug("JWKS keys not used", "url", j.opts.URL, "keys", skipped)
	}
	if len(keys) == 0 {
		why := ""
		if len(skipped) > 0 {
			why = ": " + strings.Join(skipped, "; ")
		}
		return nil, newError(ErrKey, "auth: invalid key: the JWKS at %s has no key usable with %s%s", j.opts.URL, strings.Join(j.algs, ", "), why)
	}
	return keys, nil
}

// usable returns the Key of one JWK, or why it cannot verify tokens.
func (j *JWKS) usable(m jwkset.JWKMarshal) (Key, error) {
	if m.USE != "" && m.USE != jwkset.UseSig {
		return Key{}, fmt.Errorf("use %q is not \"sig\"", m.USE)
	}
	if m.KTY == jwkset.KtyOct {
		return Key{}, errors.New("symmetric keys are not accepted from a JWKS")
	}
	alg := string(m.ALG)
	if alg != "" && !slices.Contains(j.algs, alg) {
		return Key{}, fmt.Errorf("alg %q is not accepted", alg)
	}
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return Key{}, err
	}
	pub := jwk.Key()
	fits := false
	for _, a := range j.algs {
		if (alg == "" || a == alg) && checkKeyFits(a, pub) == nil {
			fits = true
			break
		}
	}
	if !fits {
		return Key{}, fmt.Errorf("a %s key fits none of %s", keyType(pub), strings.Join(j.algs, ", "))
	}
	return Key{Alg: alg, ID: m.KID, Material: pub}, nil
}
