package auth

import (
	"net/http"
	"strings"
)

// DefaultCookieName is the cookie TokenFromRequest reads when given no
// name, as in the Mercure protocol.
const DefaultCookieName = "mercureAuthorization"

// Query parameters that may carry a token: "authorization" (Mercure 0.x)
// and "access_token" (RFC 6750, draft-08), tried in this order.
const (
	QueryParam       = "authorization"
	AccessTokenParam = "access_token"
)

// Source says where a request's token came from.
type Source uint8

// Token sources, in TokenFromRequest's order of precedence.
const (
	SourceNone   Source = iota // no token
	SourceHeader               // Authorization: Bearer header
	SourceQuery                // authorization or access_token query parameter
	SourceCookie               // cookie
)

// String returns "none", "header", "query" or "cookie".
func (s Source) String() string {
	switch s {
	case SourceHeader:
		return "header"
	case SourceQuery:
		return "query"
	case SourceCookie:
		return "cookie"
	}
	return "none"
}

// TokenFromRequest returns the token a request carries and where it found
// it, in this precedence: the Authorization header ("Bearer <token>"), the
// "authorization" query parameter (or "access_token"), the cookie named
// cookieName (DefaultCookieName when empty). Lower sources are ignored when
// a higher one is present, even if it is wrong.
//
// Errors: ErrMissing when there is no token (or an empty one), ErrBadRequest
// when the Authorization header is not "Bearer <token>" or a source is
// repeated. Callers use the Source to apply CSRF protection to cookies.
// Safe for concurrent use.
func TokenFromRequest(r *http.Request, cookieName string) (token string, source Source, err error) {
	if values := r.Header.Values("Authorization"); len(values) > 0 {
		if len(values) > 1 {
			return "", SourceHeader, newError(ErrBadRequest, "auth: the request has %d Authorization headers; send one", len(values))
		}
		token, err := bearer(values[0])
		return token, SourceHeader, err
	}
	query := r.URL.Query()
	for _, name := range []string{QueryParam, AccessTokenParam} {
		values, ok := query[name]
		if !ok {
			continue
		}
		switch {
		case len(values) > 1:
			return "", SourceQuery, newError(ErrBadRequest, "auth: the %s query parameter is given %d times; give it once", name, len(values))
		case values[0] == "":
			return "", SourceQuery, newError(ErrMissing, "auth: no token: the %s query parameter is empty", name)
		}
		return values[0], SourceQuery, nil
	}
	if cookieName == "" {
		cookieName = DefaultCookieName
	}
	if c, err := r.Cookie(cookieName); err == nil {
		if c.Value == "" {
			return "", SourceCookie, newError(ErrMissing, "auth: no token: the %s cookie is empty", cookieName)
		}
		return c.Value, SourceCookie, nil
	}
	return "", SourceNone, newError(ErrMissing,
		"auth: no token; send one in an \"Authorization: Bearer <token>\" header, the %s query parameter or the %s cookie",
		QueryParam, cookieName)
}

// bearer extracts the token of an Authorization header value.
func bearer(h string) (string, error) {
	h = strings.TrimSpace(h)
	scheme, token, _ := strings.Cut(h, " ")
	switch {
	case h == "":
		return "", newError(ErrBadRequest, "auth: the Authorization header is empty; send \"Authorization: Bearer <token>\"")
	case strings.Count(h, ".") == 2 && !strings.Contains(h, " "):
		return "", newError(ErrBadRequest, "auth: the Authorization header holds a bare token; prefix it with \"Bearer \"")
	case !strings.EqualFold(scheme, "Bearer"):
		return "", newError(ErrBadRequest, "auth: the Authorization header uses the %q scheme; send \"Authorization: Bearer <token>\"", printable(scheme))
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", newError(ErrBadRequest, "auth: the Authorization header has no token after \"Bearer\"")
	}
	return token, nil
}
