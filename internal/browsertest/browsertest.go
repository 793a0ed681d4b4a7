// Package browsertest runs pages in Debian's headless Chromium for the
// browser tests of the web package and of the ssehub binary, driven with
// chromedp: it starts the browser (headless, a fresh profile, nothing that
// reaches out to the network by itself), opens tabs, records what a page
// reports (exceptions, console errors, its network requests and the
// EventSource messages they received), and takes screenshots.
//
// A test calls Require first: it skips when Chromium is missing (or in
// -short mode), except in CI (CI=true), where a missing browser fails the
// test. A package either starts one browser per test with New, or shares
// one with Shared and stops it from TestMain with CloseShared.
//
// It is internal and only for tests; everything here is safe for concurrent
// use unless said otherwise.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ssehub/ssehub/internal/servicetest"
)

// ChromiumPath is Debian's chromium package (apt-get install chromium).
const ChromiumPath = "/usr/bin/chromium"

// WaitLong bounds each wait for something a page should do. It is far above
// what a wait takes (well under a second here) so that a loaded CI machine
// does not fail the tests; it is a timeout, not an assertion.
const WaitLong = 15 * time.Second

// ArtifactsEnv names the environment variable of a directory where
// Screenshot also writes its pictures, under stable names, for a person to
// look at after the run (t.ArtifactDir is removed at the end of the test
// unless go test runs with -artifacts).
const ArtifactsEnv = "SSEHUB_ARTIFACTS"

// Require skips the test when Chromium is not installed, unless it runs in
// CI (CI=true), where a missing browser is a failure. Browser tests are also
// skipped in -short mode.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		msg := fmt.Sprintf("browser test needs Debian's Chromium at %s (apt-get install chromium; scripts/browser-deps.sh does it): %v", ChromiumPath, err)
		servicetest.Unavailable(t, msg)
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
}

// Browser is a running headless Chromium.
type Browser struct {
	ctx    context.Context // the browser's first tab; new tabs derive from it
	cancel func()
	dir    string // the profile
	once   sync.Once
}

// Start starts a headless Chromium with a fresh profile. Close stops it;
// on Linux the kernel also stops it if the test process dies first.
func Start() (*Browser, error) {
	dir, err := os.MkdirTemp("", "ssehub-chromium-")
	if err != nil {
		return nil, err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		// Test servers over TLS (HTTP/2) use httptest's self-signed
		// certificate; this browser only ever talks to them.
		chromedp.Flag("ignore-certificate-errors", true),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{ctx: ctx, cancel: func() { cancel(); acancel() }, dir: dir}
	// The first action starts the browser and binds its life to the context
	// it runs with, so it gets no timeout of its own; a browser that does
	// not start in time is stopped instead.
	watchdog := time.AfterFunc(30*time.Second, b.cancel)
	err = chromedp.Do(ctx)
	watchdog.Stop()
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("starting Chromium: %w", err)
	}
	return b, nil
}

// Close stops the browser and removes its profile. Safe to call more than
// once.
func (b *Browser) Close() {
	b.once.Do(func() {
		b.cancel()
		os.RemoveAll(b.dir)
	})
}

// New requires the browser (see Require) and starts one for this test only;
// it stops when the test ends.
func New(t testing.TB) *Browser {
	t.Helper()
	Require(t)
	b, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

var shared struct {
	mu sync.Mutex
	b  *Browser
	// err is the first start's failure: later tests fail at once instead of
	// waiting for a browser that does not start.
	err error
}

// Shared requires the browser (see Require) and returns one shared by every
// test of the package, started on first use. The package's TestMain stops
// it with CloseShared.
func Shared(t testing.TB) *Browser {
	t.Helper()
	Require(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.b == nil && shared.err == nil {
		shared.b, shared.err = Start()
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.b
}

// CloseShared stops the browser that Shared started, if any.
func CloseShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.b != nil {
		shared.b.Close()
		shared.b = nil
	}
}

// Request is a network request a page made, as the browser reported it.
type Request struct {
	ID     string
	Method string
	URL    string
	Type   string            // the resource type: Document, Script, Fetch, EventSource, …
	Header map[string]string // the request headers sent, keys in lower case
	Sent   time.Time         // when the browser sent it
	// Failed is the browser's error text when the request failed without a
	// response (net::ERR_CONNECTION_REFUSED); Status the HTTP status
	// otherwise, once the response arrived.
	Failed string
	Status int
	// Messages are the events an EventSource request received.
	Messages []Message
}

// Message is an event an EventSource received.
type Message struct {
	Type, ID, Data string
	At             time.Time
}

// Page is a browser tab of one test. It records the page's JavaScript
// exceptions, console.error calls and error-level log entries that are not
// network failures (a 404 is the server's answer, not a page error), and its
// network requests.
type Page struct {
	T   testing.TB
	Ctx context.Context // the tab's context, with a deadline for the test

	mu      sync.Mutex
	errs    []string
	output  []string
	allowed []string
	reqs    map[network.RequestID]*Request
	order   []network.RequestID
	offset  float64 // wall time minus the browser's monotonic time, seconds
}

// NewPage opens a tab; it closes when the test ends.
func (b *Browser) NewPage(t testing.TB) *Page {
	t.Helper()
	tab, cancel := chromedp.NewContext(b.ctx)
	ctx, stop := context.WithTimeout(tab, 2*time.Minute)
	t.Cleanup(func() { stop(); cancel() })
	p := &Page{T: t, Ctx: ctx, reqs: make(map[network.RequestID]*Request)}
	if err := chromedp.Listen(tab, p.event); err != nil {
		t.Fatalf("listening to the tab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, l := range p.output {
				t.Log("browser:", l)
			}
		}
	})
	return p
}

func (p *Page) event(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now().Format("15:04:05.000 ")
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		p.errs = append(p.errs, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			if a.Description != "" {
				args = append(args, a.Description)
			} else {
				args = append(args, string(a.Value))
			}
		}
		line := fmt.Sprintf("%sconsole.%s: %s", now, ev.Type, strings.Join(args, " "))
		p.output = append(p.output, line)
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			p.errs = append(p.errs, line)
		}
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		line := fmt.Sprintf("%slog %s/%s: %s %s", now, e.Source, e.Level, e.Text, e.URL)
		p.output = append(p.output, line)
		if e.Level == cdplog.EntryLevelError && e.Source != cdplog.EntrySourceNetwork {
			p.errs = append(p.errs, line)
		}
	case *network.EventRequestWillBeSent:
		p.offset = float64(ev.WallTime) - float64(ev.Timestamp)
		r := p.request(ev.RequestID)
		r.Method, r.URL, r.Type = ev.Request.Method, ev.Request.URL, string(ev.Type)
		r.Sent = p.wall(ev.Timestamp)
		addHeaders(r.Header, ev.Request.Headers)
	case *network.EventRequestWillBeSentExtraInfo:
		// The headers as sent on the wire, Last-Event-ID among them.
		addHeaders(p.request(ev.RequestID).Header, ev.Headers)
	case *network.EventResponseReceived:
		p.request(ev.RequestID).Status = int(ev.Response.Status)
	case *network.EventLoadingFailed:
		p.request(ev.RequestID).Failed = ev.ErrorText
	case *network.EventEventSourceMessageReceived:
		r := p.request(ev.RequestID)
		r.Messages = append(r.Messages, Message{Type: ev.EventName, ID: ev.EventID, Data: ev.Data, At: p.wall(ev.Timestamp)})
	}
}

// request returns the record of id, creating it. p.mu is held.
func (p *Page) request(id network.RequestID) *Request {
	r, ok := p.reqs[id]
	if !ok {
		r = &Request{ID: string(id), Header: make(map[string]string)}
		p.reqs[id] = r
		p.order = append(p.order, id)
	}
	return r
}

// wall converts a browser timestamp to wall time. p.mu is held.
func (p *Page) wall(ts cdp.MonotonicTime) time.Time {
	sec := float64(ts) + p.offset
	return time.Unix(0, int64(sec*1e9))
}

func addHeaders(dst map[string]string, h network.Headers) {
	for k, v := range h {
		dst[strings.ToLower(k)] = fmt.Sprint(v)
	}
}

// Requests returns a copy of the page's requests whose URL contains substr,
// in the order the browser sent them.
func (p *Page) Requests(substr string) []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Request
	for _, id := range p.order {
		r := p.reqs[id]
		if r.URL == "" || !strings.Contains(r.URL, substr) {
			continue
		}
		c := *r
		c.Header = make(map[string]string, len(r.Header))
		for k, v := range r.Header {
			c.Header[k] = v
		}
		c.Messages = append([]Message(nil), r.Messages...)
		out = append(out, c)
	}
	return out
}

// Allow makes NoErrors accept the errors containing s (say, the browser's
// own report of a bad response that the test causes on purpose).
func (p *Page) Allow(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allowed = append(p.allowed, s)
}

// Do runs actions, failing the test on error.
func (p *Page) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.T.Helper()
	if err := chromedp.Do(p.Ctx, actions...); err != nil {
		p.T.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression whose value is JSON-encoded into v.
func (p *Page) Eval(expr string, v any) {
	p.T.Helper()
	s, err := chromedp.Run(p.Ctx, chromedp.Evaluate[string](`JSON.stringify(`+expr+`)`))
	if err != nil {
		p.T.Fatalf("evaluating %s: %v", expr, err)
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		p.T.Fatalf("decoding %s = %s: %v", expr, s, err)
	}
}

// WaitFor waits until the JavaScript expression is truthy.
func (p *Page) WaitFor(what, expr string, timeout time.Duration) {
	p.T.Helper()
	_, err := chromedp.Run(p.Ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(25*time.Millisecond)))
	if err != nil {
		p.T.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// Text returns the text of the element with the given CSS selector.
func (p *Page) Text(sel string) string {
	p.T.Helper()
	var s string
	p.Eval(`document.querySelector(`+JSString(sel)+`)?.textContent ?? null`, &s)
	return s
}

// NoErrors fails the test if the page threw or logged an error.
func (p *Page) NoErrors() {
	p.T.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
next:
	for _, e := range p.errs {
		for _, a := range p.allowed {
			if strings.Contains(e, a) {
				continue next
			}
		}
		p.T.Errorf("page error: %s", e)
	}
}

// Screenshot saves a PNG of the whole page in the test's artifact
// directory (kept with go test -artifacts; see go help testflag) and, when
// $SSEHUB_ARTIFACTS names a directory, as <test>-<name>.png there too. It
// logs and returns the path a person should look at.
func (p *Page) Screenshot(name string) string {
	p.T.Helper()
	buf, err := chromedp.Run(p.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.T.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(p.T.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.T.Fatal(err)
	}
	if dir := os.Getenv(ArtifactsEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.T.Fatal(err)
		}
		stable := strings.NewReplacer("/", "-", " ", "_").Replace(p.T.Name()) + "-" + name + ".png"
		path = filepath.Join(dir, stable)
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			p.T.Fatal(err)
		}
	}
	p.T.Logf("screenshot: %s", path)
	return path
}

// JSString quotes s as a JavaScript string literal.
func JSString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
