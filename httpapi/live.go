package httpapi

import (
	"net/http"
	"sync/atomic"

	"github.com/ssehub/ssehub/auth"
)

// ReloadConfig is what Reload changes on a running API. Every field
// replaces the current value, with the meaning it has in Config.
type ReloadConfig struct {
	// Publishers verifies publisher tokens from now on (nil: nobody can
	// publish).
	Publishers *auth.Verifier
	// Subscribers verifies subscriber tokens from now on (nil: only
	// anonymous subscribers, if allowed).
	Subscribers *auth.Verifier
	// CORSOrigins replaces the allowed cross-origin origins.
	CORSOrigins []string
}

// Reload swaps the token verifiers and the CORS policy atomically, without
// touching open connections: streams that were authorized with the old
// keys stay connected (until their token expires); every request that
// arrives after Reload returns is checked with the new keys and origins
// only. Safe for concurrent use with requests and other Reloads.
func (a *API) Reload(rc ReloadConfig) {
	a.keys.Store(&verifierPair{pub: rc.Publishers, sub: rc.Subscribers})
	a.cors.store(newCORSPolicy(rc.CORSOrigins))
}

// verifierPair is the set of verifiers installed by Reload.
type verifierPair struct{ pub, sub *auth.Verifier }

// liveVerifier returns the verifier to use for role ("publisher" or
// "subscriber"): the one installed by the last Reload, or v (from Config)
// when there was none. authenticate calls it, so every handler that
// authenticates follows reloads.
func (a *API) liveVerifier(role string, v *auth.Verifier) *auth.Verifier {
	k := a.keys.Load()
	if k == nil {
		return v
	}
	switch role {
	case "publisher":
		return k.pub
	case "subscriber":
		return k.sub
	}
	return v
}

// liveCORS is a corsPolicy that Reload can replace while requests use it.
// It has the methods of corsPolicy, each reading the current policy once.
type liveCORS struct{ p atomic.Pointer[corsPolicy] }

func newLiveCORS(origins []string) *liveCORS {
	l := &liveCORS{}
	l.store(newCORSPolicy(origins))
	return l
}

func (l *liveCORS) store(p corsPolicy)                           { l.p.Store(&p) }
func (l *liveCORS) allowed(origin string) bool                   { return l.p.Load().allowed(origin) }
func (l *liveCORS) apply(w http.ResponseWriter, r *http.Request) { l.p.Load().apply(w, r) }
func (l *liveCORS) crossSite(r *http.Request) bool               { return l.p.Load().crossSite(r) }
