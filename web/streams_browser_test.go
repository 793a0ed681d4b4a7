package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ssehub/ssehub/web"
)

// The stream page's reads of a real hub are tested with the binary
// (cmd/ssehub/streams_browser_test.go); here, what it says when there is
// nothing to read.

// Served without a hub, the stream page waits for the stream (a 404) and
// says so, retrying; given a stream that is not a path of its origin, it
// says what to give instead.
func TestBrowserStreamPageWithoutStream(t *testing.T) {
	srv := serve(t, web.Handler())
	p := newPage(t)
	p.Do("loading the stream page", chromedp.Navigate(srv.URL+"/streams.html?stream=/v1/stream/nowhere"))
	p.WaitFor("the page to wait for the stream", `document.querySelector('#state').textContent === 'waiting…'`, waitLong)
	if msg := p.Text("#message"); !strings.HasPrefix(msg, "404 page not found") || !strings.Contains(msg, "Waiting for the stream to be created") {
		t.Errorf("#message = %q", msg)
	}
	if got := p.Text("#stream-url"); got != srv.URL+"/v1/stream/nowhere" {
		t.Errorf("#stream-url = %q", got)
	}
	p.NoErrors()

	q := newPage(t)
	q.Do("loading the stream page with a URL", chromedp.Navigate(srv.URL+"/streams.html?stream=https://example.com/v1/stream/x"))
	q.WaitFor("the page to refuse it", `document.querySelector('#state').dataset.state === 'error'`, waitLong)
	if msg := q.Text("#message"); !strings.Contains(msg, "must be a path on this hub") {
		t.Errorf("#message = %q", msg)
	}
	q.NoErrors()
}
