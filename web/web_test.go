package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/web"
)

func get(t *testing.T, h http.Handler, method, target string, hdr http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAssets(t *testing.T) {
	h := web.Handler()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"/index.html", "text/html; charset=utf-8", "<title>ssehub</title>"},
		{"/app.js", "text/javascript; charset=utf-8", "from './ssehub.js'"},
		{"/streams.html", "text/html; charset=utf-8", `<script type="module" src="streams.js">`},
		{"/streams.js", "text/javascript; charset=utf-8", "new EventSource("},
		{"/style.css", "text/css; charset=utf-8", ":root"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
		{"/ssehub.js", "text/javascript; charset=utf-8", "export function subscribe("},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := get(t, h, http.MethodGet, tc.path, nil)
			b := body(t, res)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q", got)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no nosniff")
			}
			if !strings.Contains(b, tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
			etag := res.Header.Get("ETag")
			if !regexp.MustCompile(`^"[A-Za-z0-9_-]+"$`).MatchString(etag) {
				t.Fatalf("ETag %q", etag)
			}

			// Revalidation answers 304 without a body.
			res = get(t, h, http.MethodGet, tc.path, http.Header{"If-None-Match": {etag}})
			if res.StatusCode != http.StatusNotModified || body(t, res) != "" {
				t.Errorf("If-None-Match: status %d", res.StatusCode)
			}
			// HEAD: headers, no body.
			res = get(t, h, http.MethodHead, tc.path, nil)
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != tc.ctype || body(t, res) != "" {
				t.Errorf("HEAD: status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
			}
		})
	}
}

func TestDashboardHeaders(t *testing.T) {
	for _, page := range []string{"/", "/streams.html"} {
		res := get(t, web.Handler(), http.MethodGet, page, nil)
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "connect-src 'self'", "form-action 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", page, csp, want)
			}
		}
		if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q (the stream page may carry a token in its URL)", page, got)
		}
	}
	for _, script := range []string{"/app.js", "/streams.js"} {
		if res := get(t, web.Handler(), http.MethodGet, script, nil); res.Header.Get("Content-Security-Policy") != "" {
			t.Errorf("CSP on the script %s", script)
		}
	}
}

// The pages keep to their Content-Security-Policy: no inline script, style
// or event handler, which script-src 'self' and style-src 'self' would block.
func TestPagesHaveNoInlineCode(t *testing.T) {
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<style|\sstyle=|\son[a-z]+=|javascript:`)
	for _, page := range []string{"/", "/streams.html"} {
		b := body(t, get(t, web.Handler(), http.MethodGet, page, nil))
		if m := inline.FindString(b); m != "" {
			t.Errorf("%s has inline code: %q", page, m)
		}
	}
}

func TestNotFound(t *testing.T) {
	h := web.Handler()
	for _, p := range []string{"/nope", "/static/app.js", "/js/ssehub.js", "/app.js/", "/favicon.ico", "/.well-known/mercure", "//app.js"} {
		t.Run(p, func(t *testing.T) {
			if res := get(t, h, http.MethodGet, p, nil); res.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d", res.StatusCode)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	res := get(t, web.Handler(), http.MethodPost, "/app.js", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("status %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

// The helper served at /ssehub.js is the npm package's file, not a copy.
func TestHelperIsThePackageFile(t *testing.T) {
	want, err := os.ReadFile("js/ssehub.js")
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, get(t, web.Handler(), http.MethodGet, "/ssehub.js", nil)); got != string(want) {
		t.Fatal("/ssehub.js differs from web/js/ssehub.js")
	}
}

// Every relative URL in the pages is served, so they work wherever the
// handler is mounted.
func TestPageReferencesResolve(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/dashboard", web.Handler()))
	defer srv.Close()

	res, err := http.Get(srv.URL + "/dashboard") // redirected to /dashboard/
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, res)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/dashboard/" {
		t.Fatalf("GET /dashboard: status %d at %s", res.StatusCode, res.Request.URL.Path)
	}
	page += body(t, get(t, web.Handler(), http.MethodGet, "/streams.html", nil))
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	app := body(t, get(t, web.Handler(), http.MethodGet, "/app.js", nil))
	refs = append(refs, regexp.MustCompile(`from '(\./[^']+)'`).FindAllStringSubmatch(app, -1)...)
	if len(refs) < 8 {
		t.Fatalf("found only %d references", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "https://") {
			continue // a link for the reader, not something the page loads
		}
		if strings.HasPrefix(ref, "/") || strings.Contains(ref, "//") {
			t.Errorf("reference %q is not relative", ref)
			continue
		}
		res, err := http.Get(srv.URL + "/dashboard/" + strings.TrimPrefix(ref, "./"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", ref, res.StatusCode)
		}
	}
}

func TestPrefixWithSlash(t *testing.T) {
	h := http.StripPrefix("/dashboard/", web.Handler())
	req := httptest.NewRequest(http.MethodGet, "/dashboard/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<title>ssehub</title>") {
		t.Fatalf("status %d", rec.Code)
	}
	req = httptest.NewRequest(http.MethodGet, "/dashboard/app.js", nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("app.js: status %d", rec.Code)
	}
}
