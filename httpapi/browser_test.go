package httpapi_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/browsertest"
	"github.com/ssehub/ssehub/log/memlog"
)

// A page on another origin subscribes in Chromium with
// new EventSource(url, {withCredentials: true}), authorized by the
// mercureAuthorization cookie alone, and receives a private update.
//
// The setup, and why it is the honest one over plain HTTP: cookies belong
// to a host, not to a port, and SameSite compares sites (scheme and
// registrable domain), not origins. The page is served by its own server
// at http://localhost:<page port> and the hub by another at
// http://localhost:<hub port>: two origins (the browser sends Origin and
// enforces CORS; the hub must allow the page's origin and echo it with
// Access-Control-Allow-Credentials), but one site, like app.example.com and
// hub.example.com in production. The page's server sets the cookie when it
// serves the page (the Mercure "discovery" flow): HttpOnly, so the page's
// script cannot read it, SameSite=Strict, and Path=/.well-known/mercure so
// it goes to the hub only. Because the cookie's host is localhost, the
// browser sends it to the hub's port too, but only on credentialed
// requests: the same page opening an EventSource without withCredentials
// gets the hub's 401. (Putting the hub on 127.0.0.1 and the page on
// localhost would make the cookie a third-party one: SameSite=None, which
// needs Secure and so HTTPS, and which browsers increasingly block.)
func TestBrowserCrossOriginCookieSubscription(t *testing.T) {
	b := browsertest.New(t)

	l := memlog.New(memlog.Options{})
	h, err := hub.New(l, hub.Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	hubLn := listenLocal(t)
	pageLn := listenLocal(t)
	hubURL := "http://localhost:" + port(hubLn)
	pageOrigin := "http://localhost:" + port(pageLn)
	api, err := httpapi.New(httpapi.Config{
		Hub:         h,
		Publishers:  verifier(t, pubKey),
		Subscribers: verifier(t, subKey),
		CORSOrigins: []string{pageOrigin}, // Anonymous is off: no token, no stream
	})
	if err != nil {
		t.Fatal(err)
	}
	// Record how subscribe requests were authorized.
	var (
		mu    sync.Mutex
		seen  []string
		hubMu = http.NewServeMux()
	)
	hubMu.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" && r.URL.Path == httpapi.Path {
			_, cookieErr := r.Cookie("mercureAuthorization")
			mu.Lock()
			seen = append(seen, fmt.Sprintf("origin=%s cookie=%v authorization=%q", r.Header.Get("Origin"), cookieErr == nil, r.Header.Get("Authorization")))
			mu.Unlock()
		}
		api.ServeHTTP(w, r)
	}))
	hubSrv := &httptest.Server{Listener: hubLn, Config: &http.Server{Handler: hubMu}}
	hubSrv.Start()

	const private = "https://example.com/users/42/inbox"
	subTok := token(t, subKey, nil, []string{"https://example.com/users/42/{+rest}"}, time.Hour)
	stream := hubURL + httpapi.Path + "?topic=" + url.QueryEscape(private)
	page := `<!doctype html><meta charset="utf-8"><title>another origin</title>
<script>
window.received = [];
window.withCookie = "connecting";
window.withoutCookie = "connecting";
const es = new EventSource(` + browsertest.JSString(stream) + `, {withCredentials: true});
es.onopen = () => { window.withCookie = "open"; };
es.onerror = () => { window.withCookie = "error " + es.readyState; };
es.onmessage = (e) => { window.received.push({id: e.lastEventId, data: e.data}); };
const bare = new EventSource(` + browsertest.JSString(stream) + `);
bare.onopen = () => { window.withoutCookie = "open"; };
bare.onerror = () => { window.withoutCookie = "error " + bare.readyState; bare.close(); };
</script>`
	pageSrv := &httptest.Server{Listener: pageLn, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "mercureAuthorization", Value: subTok, Path: httpapi.Path, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	})}}
	pageSrv.Start()
	t.Cleanup(func() {
		h.Close()
		api.Close(5 * time.Second)
		hubSrv.CloseClientConnections()
		hubSrv.Close()
		pageSrv.Close()
		l.Close()
	})

	p := b.NewPage(t)
	p.Allow("401") // the EventSource without credentials is refused, on purpose
	p.Allow(httpapi.Path)
	p.Do("loading the page", chromedp.Navigate(pageOrigin+"/"))
	p.WaitFor("the credentialed EventSource to open", `window.withCookie === "open"`, browsertest.WaitLong)
	p.WaitFor("the EventSource without credentials to fail", `window.withoutCookie.startsWith("error")`, browsertest.WaitLong)
	var state string
	if p.Eval(`document.cookie`, &state); state != "" {
		t.Fatalf("the page's script can read the cookie: %q", state)
	}

	e := &env{srv: hubSrv, hub: h, url: hubSrv.URL + httpapi.Path}
	id := e.publish(t, url.Values{"topic": {private}, "data": {"for user 42 only"}, "private": {"on"}})
	p.WaitFor("the private update", `window.received.length === 1`, browsertest.WaitLong)
	var got []struct{ ID, Data string }
	p.Eval(`window.received`, &got)
	if len(got) != 1 || got[0].Data != "for user 42 only" || got[0].ID != id {
		t.Fatalf("the page received %+v, want the private update %s", got, id)
	}
	p.Eval(`window.withoutCookie`, &state)
	if state != "error 2" { // CLOSED: a 401 is not retried
		t.Fatalf("EventSource without credentials: %s", state)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []string{
		fmt.Sprintf(`origin=%s cookie=true authorization=""`, pageOrigin),
		fmt.Sprintf(`origin=%s cookie=false authorization=""`, pageOrigin),
	}
	for _, w := range want {
		found := false
		for _, s := range seen {
			found = found || s == w
		}
		if !found {
			t.Errorf("the hub saw subscribe requests %q; none was %q", seen, w)
		}
	}
	p.NoErrors()
}

// listenLocal listens on a free port of the loopback interface.
func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) string {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}
