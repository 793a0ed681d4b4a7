package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests run the pages in Debian's headless Chromium, driven with
// chromedp. One browser serves the whole package (each test gets a tab of
// its own); TestMain stops it.

// chromiumPath is Debian's chromium package (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

// waitLong bounds each wait for something the page should do. It is far
// above what a wait takes (well under a second here) so that a loaded CI
// machine does not fail the tests; it is a timeout, not an assertion.
const waitLong = 15 * time.Second

var shared struct {
	once    sync.Once
	ctx     context.Context // the browser's first tab; new tabs derive from it
	cancel  func()
	dataDir string
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cancel != nil {
		shared.cancel()
	}
	if shared.dataDir != "" {
		os.RemoveAll(shared.dataDir)
	}
	os.Exit(code)
}

// startBrowser starts Chromium once for the package: headless, with a fresh
// profile and nothing that reaches out to the network by itself.
func startBrowser() (context.Context, error) {
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "ssehub-chromium-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dataDir = dir
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(chromiumPath),
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
		}
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		shared.ctx = ctx
		shared.cancel = func() { cancel(); acancel() }
		// The first action starts the browser and binds its life to the
		// context it runs with, so it gets no timeout of its own; a browser
		// that does not start in time is stopped instead.
		watchdog := time.AfterFunc(30*time.Second, shared.cancel)
		shared.err = chromedp.Do(ctx)
		watchdog.Stop()
	})
	return shared.ctx, shared.err
}

// needBrowser skips the test when Chromium is not installed, unless it runs
// in CI (CI=true), where a missing browser is a failure.
func needBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("browser test needs Debian's Chromium at %s (apt-get install chromium): %v", chromiumPath, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ctx, err := startBrowser()
	if err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// page is a browser tab of one test. It records the page's JavaScript
// exceptions, console.error calls and error-level log entries that are not
// network failures (a 404 is the server's answer, not a page error).
type page struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	errs    []string
	output  []string
	allowed []string
}

// allow makes noErrors accept the errors containing s (say, the browser's
// own report of a bad response that the test causes on purpose).
func (p *page) allow(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allowed = append(p.allowed, s)
}

// newPage opens a tab; it closes when the test ends.
func newPage(t *testing.T) *page {
	t.Helper()
	root := needBrowser(t)
	tab, cancel := chromedp.NewContext(root)
	ctx, stop := context.WithTimeout(tab, 60*time.Second)
	t.Cleanup(func() { stop(); cancel() })
	p := &page{t: t, ctx: ctx}
	err := chromedp.Listen(tab, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
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
			line := fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
			p.output = append(p.output, line)
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				p.errs = append(p.errs, line)
			}
		case *cdplog.EventEntryAdded:
			e := ev.Entry
			line := fmt.Sprintf("log %s/%s: %s %s", e.Source, e.Level, e.Text, e.URL)
			p.output = append(p.output, line)
			if e.Level == cdplog.EntryLevelError && e.Source != cdplog.EntrySourceNetwork {
				p.errs = append(p.errs, line)
			}
		}
	})
	if err != nil {
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

// do runs actions, failing the test on error.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression whose value is JSON-encoded into v.
func (p *page) eval(expr string, v any) {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify(`+expr+`)`))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		p.t.Fatalf("decoding %s = %s: %v", expr, s, err)
	}
}

// waitFor waits until the JavaScript expression is truthy.
func (p *page) waitFor(what, expr string, timeout time.Duration) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(25*time.Millisecond)))
	if err != nil {
		p.t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// text returns the text of the element with the given CSS selector.
func (p *page) text(sel string) string {
	p.t.Helper()
	var s string
	p.eval(`document.querySelector(`+jsString(sel)+`)?.textContent ?? null`, &s)
	return s
}

// noErrors fails the test if the page threw or logged an error.
func (p *page) noErrors() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
next:
	for _, e := range p.errs {
		for _, a := range p.allowed {
			if strings.Contains(e, a) {
				continue next
			}
		}
		p.t.Errorf("page error: %s", e)
	}
}

// screenshot saves a PNG of the whole page in the test's artifact directory
// (kept with go test -artifacts; see go help testflag) and logs its path.
func (p *page) screenshot(name string) string {
	p.t.Helper()
	buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(p.t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// serve starts a test server; it closes when the test ends.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
