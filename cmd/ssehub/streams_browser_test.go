package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssehub/ssehub/internal/browsertest"
	"github.com/ssehub/ssehub/internal/servicetest"
)

// The hub's stream page (/streams.html, web/static/streams.js) reads a
// Durable Stream with a plain EventSource and keeps what it showed and the
// offset after it in sessionStorage, so that a reload goes on where it was.

// mustDS sends a Durable Streams request to the hub (headers alternate
// names and values) and fails t unless it answers with the status code.
func mustDS(t *testing.T, want int, base, method, path, body string, headers ...string) {
	t.Helper()
	if resp, msg := servicetest.Do(t, method, base+path, body, headers...); resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d (%q)", method, path, resp.Status, want, msg)
	}
}

// streamReads returns the offsets of the EventSource reads a stream page
// made, in order, with when each was sent.
func streamReads(p *browsertest.Page, path string) (offsets []string, sent []time.Time) {
	for _, r := range p.Requests(path) {
		u, err := url.Parse(r.URL)
		if r.Type != "EventSource" || err != nil || u.Path != path {
			continue
		}
		offsets = append(offsets, u.Query().Get("offset"))
		sent = append(sent, r.Sent)
	}
	return offsets, sent
}

// kept is what a stream page keeps in sessionStorage.
type kept struct{ Offset, Text string }

func keptBy(p *browsertest.Page, path string) kept {
	p.T.Helper()
	var k kept
	p.Eval(`JSON.parse(sessionStorage.getItem(`+browsertest.JSString("ssehub.stream "+path)+`) || '{}')`, &k)
	return k
}

// A text is appended to a stream token by token (60 appends, 20 ms apart)
// while the hub's stream page shows it, and the page is reloaded twice
// mid-stream, while the appends go on. Once the stream is closed, the page
// shows exactly the text, every token once, and "done"; each reload went
// on from the offset the page had kept (never from -1, the start), also
// for the tokens appended while it reloaded.
func TestBrowserStreamPageResumesAfterReload(t *testing.T) {
	b := browsertest.New(t)
	h := startHub(t, t.TempDir(), "--anonymous-writes")
	const stream = "/v1/stream/demo/reload"
	const ct = "text/plain; charset=utf-8"
	mustDS(t, http.StatusCreated, h.base, "PUT", stream, "", "Content-Type", ct)

	tokens := make([]string, 60)
	for i := range tokens {
		switch {
		case i%10 == 9:
			tokens[i] = fmt.Sprintf("t%02d.\n", i) // a line ends
		case i%7 == 3:
			tokens[i] = fmt.Sprintf(" t%02d·é", i) // a leading space, UTF-8
		default:
			tokens[i] = fmt.Sprintf("t%02d ", i)
		}
	}
	want := strings.Join(tokens, "")

	p := b.NewPage(t)
	p.Do("loading the stream page", chromedp.Navigate(h.base+"/streams.html?stream="+url.QueryEscape(stream)))
	p.WaitFor("the page to read the stream", `document.querySelector('#state').dataset.state === 'open'`, browsertest.WaitLong)
	t.Cleanup(func() {
		if t.Failed() {
			offsets, sent := streamReads(p, stream)
			for i := range offsets {
				t.Logf("page read from offset %s at %s", offsets[i], sent[i].Format("15:04:05.000"))
			}
		}
	})

	// The appends run on their own while the test reloads the page; each
	// reports the offset after it and when it was acknowledged.
	type ack struct {
		offset string
		at     time.Time
	}
	appended := make(chan ack, len(tokens))
	failed := make(chan error, 1)
	go func() {
		defer close(appended)
		for i, tok := range tokens {
			req, _ := http.NewRequest("POST", h.base+stream, strings.NewReader(tok))
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				failed <- fmt.Errorf("append %d: %v", i, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				failed <- fmt.Errorf("append %d: %s", i, resp.Status)
				return
			}
			appended <- ack{resp.Header.Get("Stream-Next-Offset"), time.Now()}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	type reload struct {
		at     time.Time
		before kept // what the page had kept just before
	}
	var reloads []reload
	var acks []ack
	for a := range appended {
		acks = append(acks, a)
		if n := len(acks); n != 20 && n != 40 {
			continue
		}
		p.WaitFor("some text before the reload", `document.querySelector('#output').textContent.length > 0`, browsertest.WaitLong)
		k := keptBy(p, stream)
		if k.Offset == "" || k.Offset == "-1" || k.Text == "" || !strings.HasPrefix(want, k.Text) || k.Text == want {
			t.Fatalf("before reload %d the page kept %+v: want some of the text, not all of it", len(reloads)+1, k)
		}
		reloads = append(reloads, reload{time.Now(), k})
		p.Do("reloading the page", chromedp.Reload())
	}
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}
	mustDS(t, http.StatusNoContent, h.base, "POST", stream, "", "Stream-Closed", "true")

	p.WaitFor("the page to be done", `document.querySelector('#state').dataset.state === 'done'`, browsertest.WaitLong)
	if got := p.Text("#output"); got != want {
		t.Errorf("the page shows\n%q\nwant\n%q", got, want)
	}
	if got := p.Text("#state"); got != "done" {
		t.Errorf("#state = %q, want done", got)
	}
	if k := keptBy(p, stream); k.Text != want || k.Offset != p.Text("#offset") {
		t.Errorf("the page kept %+v (shows offset %s)", k, p.Text("#offset"))
	}

	// One read from the start (the first load); after each reload, the
	// first read is from what the page kept, or later.
	offsets, sent := streamReads(p, stream)
	starts := 0
	for _, off := range offsets {
		if off == "-1" {
			starts++
		}
	}
	if starts != 1 || offsets[0] != "-1" {
		t.Errorf("the page read from -1 %d times (offsets %q), want once, first", starts, offsets)
	}
	caughtUp := 0 // tokens appended while the page reloaded
	for i, r := range reloads {
		j := 0
		for j < len(sent) && !sent[j].After(r.at) {
			j++
		}
		if j == len(sent) {
			t.Errorf("reload %d: no read after it", i+1)
			continue
		}
		off := offsets[j]
		if off == "-1" || off < r.before.Offset {
			t.Errorf("reload %d: read from offset %s, want %s (what the page kept) or later", i+1, off, r.before.Offset)
		}
		for _, a := range acks {
			if a.offset > off && a.at.Before(sent[j]) {
				caughtUp++
			}
		}
	}
	if caughtUp == 0 {
		t.Errorf("no token was appended while the page reloaded: the test did not test catching up")
	}
	t.Logf("%d reads, %d tokens appended while the page reloaded", len(offsets), caughtUp)
	p.Screenshot("stream-page")
	p.NoErrors()
}

// The hub stops (SIGTERM ends the page's read) and starts again on the
// same port with the same history; tokens are appended before the page is
// back. The page comes back by itself, from the offset it kept, not with
// the URL its EventSource started with (offset -1), which EventSource's
// own reconnection would reuse: it shows every token once.
func TestBrowserStreamPageReconnects(t *testing.T) {
	b := browsertest.New(t)
	data := t.TempDir()
	h := startHub(t, data, "--anonymous-writes")
	flags := []string{"--anonymous-writes", "--addr", "127.0.0.1:" + hubPort(t, h)}
	const stream = "/v1/stream/demo/restart"
	mustDS(t, http.StatusCreated, h.base, "PUT", stream, "", "Content-Type", "text/plain")
	p := b.NewPage(t)
	p.Do("loading the stream page", chromedp.Navigate(h.base+"/streams.html?stream="+url.QueryEscape(stream)))
	p.WaitFor("the page to read the stream", `document.querySelector('#state').dataset.state === 'open'`, browsertest.WaitLong)

	var want strings.Builder
	for i := range 10 {
		tok := fmt.Sprintf("before%d ", i)
		mustDS(t, http.StatusNoContent, h.base, "POST", stream, tok, "Content-Type", "text/plain")
		want.WriteString(tok)
	}
	p.WaitFor("the first tokens", `document.querySelector('#output').textContent === `+browsertest.JSString(want.String()), browsertest.WaitLong)
	k := keptBy(p, stream)

	if err := h.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("hub exit after SIGTERM: %v", err)
	}
	p.WaitFor("the page to say it reconnects", `document.querySelector('#state').dataset.state === 'reconnecting'`, browsertest.WaitLong)
	h = startHub(t, data, flags...)
	for i := range 10 {
		tok := fmt.Sprintf("after%d ", i)
		mustDS(t, http.StatusNoContent, h.base, "POST", stream, tok, "Content-Type", "text/plain")
		want.WriteString(tok)
	}
	mustDS(t, http.StatusNoContent, h.base, "POST", stream, "", "Stream-Closed", "true")
	p.WaitFor("the page to be done", `document.querySelector('#state').dataset.state === 'done'`, browsertest.WaitLong)
	if got := p.Text("#output"); got != want.String() {
		t.Errorf("the page shows\n%q\nwant\n%q", got, want.String())
	}
	offsets, _ := streamReads(p, stream)
	if len(offsets) != 2 || offsets[0] != "-1" || offsets[1] != k.Offset {
		t.Errorf("the page read from offsets %q, want -1 then %s (what it kept before the restart)", offsets, k.Offset)
	}
	p.NoErrors()
}

// Reading a stream of a hub without --anonymous needs a subscriber token:
// the page shows the hub's 401 and asks for one, and reads the stream once
// it is given in the form or in the page's ?authorization=.
func TestBrowserStreamPageToken(t *testing.T) {
	b := browsertest.New(t)
	h := launch(t, nil, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(),
		"--publisher-jwt-key", testPubKey, "--subscriber-jwt-key", testSubKey)
	const stream = "/v1/stream/demo/private"
	pub := "Bearer " + publisherToken(t)
	mustDS(t, http.StatusCreated, h.base, "PUT", stream, "", "Content-Type", "text/plain", "Authorization", pub)
	mustDS(t, http.StatusNoContent, h.base, "POST", stream, "hello, ", "Content-Type", "text/plain", "Authorization", pub)
	page := h.base + "/streams.html?stream=" + url.QueryEscape(stream)

	p := b.NewPage(t)
	p.Do("loading the stream page", chromedp.Navigate(page))
	p.WaitFor("the page to say it needs a token", `document.querySelector('#state').dataset.state === 'error'`, browsertest.WaitLong)
	if msg := p.Text("#message"); !strings.HasPrefix(msg, "401: ") || !strings.Contains(msg, "subscriber JWT") || !strings.Contains(msg, "authorization=") {
		t.Errorf("#message = %q, want the hub's 401 and how to give a token", msg)
	}
	if got := p.Text("#state"); got != "not authorized" {
		t.Errorf("#state = %q", got)
	}
	if offsets, _ := streamReads(p, stream); len(offsets) != 0 {
		t.Errorf("the page opened an EventSource without a token: %q", offsets)
	}

	sub := subscriberToken(t, testSubKey)
	p.Do("giving a token", chromedp.SetValue(chromedp.ID("token"), sub), chromedp.Click(chromedp.ID("open")))
	p.WaitFor("the text", `document.querySelector('#output').textContent === 'hello, '`, browsertest.WaitLong)
	mustDS(t, http.StatusNoContent, h.base, "POST", stream, "world", "Content-Type", "text/plain", "Authorization", pub, "Stream-Closed", "true")
	p.WaitFor("the page to be done", `document.querySelector('#state').dataset.state === 'done'`, browsertest.WaitLong)
	if got := p.Text("#output"); got != "hello, world" {
		t.Errorf("#output = %q", got)
	}
	p.NoErrors()

	// A new tab (nothing kept) with the token in the page's URL.
	q := b.NewPage(t)
	q.Do("loading the stream page with ?authorization=", chromedp.Navigate(page+"&authorization="+url.QueryEscape(sub)))
	q.WaitFor("the page to be done", `document.querySelector('#state').dataset.state === 'done'`, browsertest.WaitLong)
	if got := q.Text("#output"); got != "hello, world" {
		t.Errorf("with ?authorization=: #output = %q", got)
	}
	q.NoErrors()
}
