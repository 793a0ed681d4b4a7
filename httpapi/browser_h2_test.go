package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/browsertest"
	"github.com/ssehub/ssehub/log/memlog"
)

// Over HTTPS with HTTP/2, Chromium opens more event streams to one origin
// than HTTP/1.1's six connections allow, all on one connection, and each
// receives its events.
func TestBrowserOverHTTP2(t *testing.T) {
	b := browsertest.New(t)
	l := memlog.New(memlog.Options{})
	h, err := hub.New(l, hub.Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Hub: h, Anonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	const streams = 10 // more than the six an HTTP/1.1 origin gets
	var h2 atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>h2</title><script>
window.opened = 0; window.got = {};
for (let i = 0; i < %d; i++) {
  const es = new EventSource('%s?topic=t' + i);
  es.onopen = () => { window.opened++; };
  es.onmessage = e => { window.got['t' + i] = e.data; };
}
</script>`, streams, httpapi.Path)
	})
	mux.Handle(httpapi.Path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		}
		api.ServeHTTP(w, r)
	}))
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(func() { h.Close(); api.Close(time.Second); srv.Close(); l.Close() })

	p := b.NewPage(t)
	p.Do("open the page", chromedp.Navigate(srv.URL+"/page"))
	p.WaitFor("every stream to open", fmt.Sprintf("window.opened === %d", streams), 15*time.Second)
	var proto string
	p.Eval("performance.getEntriesByType('navigation')[0].nextHopProtocol", &proto)
	if proto != "h2" {
		t.Fatalf("the page was loaded over %q, not h2", proto)
	}
	if n := h2.Load(); n != streams {
		t.Fatalf("%d of %d subscribe requests came over HTTP/2", n, streams)
	}
	for i := range streams {
		if err := h.Publish(context.Background(), &ssehub.Event{Topics: []string{fmt.Sprint("t", i)}, Data: fmt.Sprint("event ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	p.WaitFor("every stream to get its event", fmt.Sprintf("Object.keys(window.got).length === %d", streams), 15*time.Second)
	var got map[string]string
	p.Eval("window.got", &got)
	for i := range streams {
		if want := fmt.Sprint("event ", i); got[fmt.Sprint("t", i)] != want {
			t.Fatalf("stream t%d got %q, want %q", i, got[fmt.Sprint("t", i)], want)
		}
	}
	p.NoErrors()
}
