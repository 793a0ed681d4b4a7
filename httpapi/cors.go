package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ssehub/ssehub/auth"
)

// corsPolicy answers cross-origin requests for an allowlist of origins.
// Origins listed by name may use credentials (cookies, withCredentials);
// "*" lets any other page read and send requests without them: a browser
// then sends no cookie, and the hub refuses a cookie from such a page
// (refuseCrossSite), so no site can act with a user's cookie because "*"
// was configured.
type corsPolicy struct {
	any     bool
	origins map[string]bool // lower-cased, listed by name
}

func newCORSPolicy(origins []string) corsPolicy {
	p := corsPolicy{origins: make(map[string]bool)}
	for _, o := range origins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch o {
		case "":
		case "*":
			p.any = true
		default:
			p.origins[strings.ToLower(o)] = true
		}
	}
	return p
}

// listed reports whether origin is allowed by name, with credentials.
func (p corsPolicy) listed(origin string) bool {
	return origin != "" && p.origins[strings.ToLower(origin)]
}

// allowed reports whether origin may make cross-origin requests, with
// credentials or (through "*") without.
func (p corsPolicy) allowed(origin string) bool {
	return origin != "" && (p.any || p.listed(origin))
}

// apply adds the CORS response headers for an allowed origin: a listed
// origin is echoed with credentials allowed, so cookies and
// withCredentials work; any other, allowed by "*", gets "*" without
// credentials.
func (p corsPolicy) apply(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	h := w.Header()
	h.Add("Vary", "Origin")
	switch {
	case p.listed(origin):
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	case p.allowed(origin):
		h.Set("Access-Control-Allow-Origin", "*")
	default:
		return
	}
	h.Set("Access-Control-Expose-Headers", "Last-Event-ID, Mercure-Last-Event-ID, Ssehub-Gap, WWW-Authenticate, Retry-After")
}

// preflight answers OPTIONS requests.
func (a *API) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !a.cors.allowed(origin) {
		httpError(w, http.StatusForbidden, "origin "+origin+" is not allowed"+a.cfg.hint("CORSOrigins"))
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	} else {
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, Cache-Control")
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// refuseCrossSite answers 403 and returns true when r authenticates with a
// cookie (which a browser sends by itself) from a page of an origin that
// is not listed by name: a forged cross-site request. what names the
// action.
func (a *API) refuseCrossSite(w http.ResponseWriter, r *http.Request, cred credentials, what string) bool {
	if cred.source != auth.SourceCookie || !a.cors.crossSite(r) {
		return false
	}
	httpError(w, http.StatusForbidden, "cross-site "+what+" refused: the request carries a cookie token but its Origin may not send credentials; only origins listed by name may (\"*\" allows none)"+a.cfg.hint("CORSOrigins"))
	return true
}

// CrossSite reports whether r comes from a page of another origin that may
// not send credentials under the API's CORS policy (an Origin not listed
// by name and not the request's own host): for handlers mounted beside the
// API that accept cookie tokens (the Durable Streams server's writes).
// Safe for concurrent use.
func (a *API) CrossSite(r *http.Request) bool { return a.cors.crossSite(r) }

// crossSite reports whether r comes from a page of another origin that is
// not listed by name ("*" does not count: it allows no credentials).
// Requests without Origin (non-browser clients) are not.
func (p corsPolicy) crossSite(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.listed(origin) {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}
