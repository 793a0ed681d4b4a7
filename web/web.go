package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static/index.html static/app.js static/streams.html static/streams.js static/style.css static/favicon.svg js/ssehub.js
var files embed.FS

// contentSecurityPolicy keeps the dashboard to its own scripts and styles;
// connect-src allows the hub's streams and the publish form.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// routes maps each served path to its embedded file.
var routes = map[string]string{
	"/":             "static/index.html",
	"/index.html":   "static/index.html",
	"/app.js":       "static/app.js",
	"/streams.html": "static/streams.html",
	"/streams.js":   "static/streams.js",
	"/style.css":    "static/style.css",
	"/favicon.svg":  "static/favicon.svg",
	"/ssehub.js":    "js/ssehub.js",
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Handler returns the handler of the dashboard, the stream page and the JS
// helper: GET and HEAD of /, /index.html, /app.js, /streams.html,
// /streams.js, /style.css, /favicon.svg and /ssehub.js, each with its
// Content-Type, Cache-Control: no-cache and a strong ETag (so browsers
// revalidate cheaply and see a new version at once after an upgrade);
// anything else is 404. Mounted with http.StripPrefix, a request
// for the bare prefix ("/dashboard") is redirected to "/dashboard/" so that
// the page's relative URLs resolve. The handler is safe for concurrent use.
func Handler() http.Handler {
	assets := make(map[string]*asset, len(routes))
	for route, name := range routes {
		b, err := fs.ReadFile(files, name)
		if err != nil {
			panic("web: missing embedded file " + name) // caught by the tests
		}
		sum := sha256.Sum256(b)
		assets[route] = &asset{
			body:  b,
			ctype: contentTypes[path.Ext(name)],
			etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
	}
	return &handler{assets: assets}
}

type handler struct {
	assets map[string]*asset
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := r.URL.Path
	if route == "" {
		// Mounted with http.StripPrefix and asked for the prefix itself.
		p := r.URL.EscapedPath()
		if r.RequestURI != "" && r.RequestURI != "*" {
			p, _, _ = strings.Cut(r.RequestURI, "?")
		}
		if !strings.HasSuffix(p, "/") {
			// Add the slash, relative to the path the client asked for,
			// so that the page's relative URLs resolve under the prefix.
			w.Header().Set("Location", path.Base(p)+"/")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		route = "/"
	} else if route[0] != '/' {
		route = "/" + route // http.StripPrefix("/dashboard/", …)
	}
	a, ok := h.assets[route]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the dashboard's files are read with GET", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", a.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(a.ctype, "text/html") {
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("Referrer-Policy", "no-referrer")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
