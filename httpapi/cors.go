package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ssehub/ssehub/auth"
)

// corsPolicy answers cross-origin requests for an allowlist of origins.
type corsPolicy struct {
	any     bool
	origins map[string]bool
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

func (p corsPolicy) allowed(origin string) bool {
	return origin != "" && (p.any || p.origins[strings.ToLower(origin)])
}

// apply adds the CORS response headers for an allowed origin. The exact
// origin is echoed with credentials allowed, never "*", so cookies and
// withCredentials work.
func (p corsPolicy) apply(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	h := w.Header()
	h.Add("Vary", "Origin")
	if !p.allowed(origin) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
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
// is not allowed: a forged cross-site request. what names the action.
func (a *API) refuseCrossSite(w http.ResponseWriter, r *http.Request, cred credentials, what string) bool {
	if cred.source != auth.SourceCookie || !a.cors.crossSite(r) {
		return false
	}
	httpError(w, http.StatusForbidden, "cross-site "+what+" refused: the request carries a cookie token but its Origin is not allowed"+a.cfg.hint("CORSOrigins"))
	return true
}

// crossSite reports whether r comes from a page of another origin that is
// not allowed. Requests without Origin (non-browser clients) are not.
func (p corsPolicy) crossSite(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.allowed(origin) {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}
