package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/topic"
)

// errAnonymousRefused: a subscriber came without a token to a hub that
// does not allow anonymous subscribers.
func (a *API) errAnonymousRefused() error {
	return authErr{auth.ErrMissing, "auth: a subscriber token is required (Authorization: Bearer header, ?authorization= query parameter or mercureAuthorization cookie); this hub does not allow anonymous subscribers" + a.cfg.hint("Anonymous")}
}

// errMissingPublisherToken: a publish request came without a token.
var errMissingPublisherToken error = authErr{auth.ErrMissing, "auth: publishing needs a JWT signed with the publisher key whose mercure.publish claim lists the topics; send it as Authorization: Bearer <token>"}

// authErr is an authentication error made here; it unwraps to its kind
// (an auth sentinel) so auth.Reason and auth.WWWAuthenticate understand it.
type authErr struct {
	kind error
	msg  string
}

func (e authErr) Error() string { return e.msg }
func (e authErr) Unwrap() error { return e.kind }

// credentials is who made a request.
type credentials struct {
	claims *auth.Claims // nil: no token
	source auth.Source
	// signed is what the token's signature covers (its header and
	// payload, as sent): one string per token, where the signature has
	// several spellings that verify (base64 with other unused bits;
	// ECDSA's s and n-s), so what the publish rate limit counts.
	signed string
}

// authenticate finds and verifies the request's token with v. No token is
// not an error (credentials.claims is nil); a token that fails is.
func (a *API) authenticate(r *http.Request, v *auth.Verifier, role string) (credentials, error) {
	tok, src, err := auth.TokenFromRequest(r, a.cfg.CookieName)
	if errors.Is(err, auth.ErrMissing) {
		return credentials{}, nil
	}
	if err != nil {
		return credentials{}, err
	}
	if v = a.liveVerifier(role, v); v == nil {
		return credentials{}, errNoKey(role)
	}
	c, err := v.Verify(tok)
	if err != nil {
		return credentials{}, err
	}
	return credentials{claims: c, source: src, signed: tok[:strings.LastIndexByte(tok, '.')]}, nil
}

func errNoKey(role string) error {
	return authErr{auth.ErrKey, "auth: this hub has no " + role + " key configured, so it cannot verify " + role + " tokens"}
}

// authError answers a failed authentication (401) or authorization (403):
// the reason goes in the body and in WWW-Authenticate, and to the debug log.
// Key material never appears: the errors come from auth, which never
// includes it.
func (a *API) authError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusUnauthorized
	if errors.Is(err, auth.ErrTopicNotAllowed) {
		status = http.StatusForbidden
	}
	a.logger.Debug("httpapi: request refused", "status", status, "reason", auth.Reason(err), "err", err, "remote", r.RemoteAddr, "method", r.Method)
	a.met.AuthFailure(auth.Reason(err))
	w.Header().Set("WWW-Authenticate", auth.WWWAuthenticate(err))
	httpError(w, status, err.Error())
}

// privateMatcher returns the function the hub asks whether these claims
// may receive a private update with the given topics. The claims' selectors
// are compiled once per connection.
func privateMatcher(c *auth.Claims, cache *topic.Cache) func([]string) bool {
	return c.SubscribeSet(cache).MatchAny
}
