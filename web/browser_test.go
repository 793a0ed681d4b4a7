package web_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/ssehub/ssehub/internal/browsertest"
)

// The browser tests run the pages in Debian's headless Chromium (see
// internal/browsertest). One browser serves the whole package (each test
// gets a tab of its own); TestMain stops it.

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.CloseShared()
	os.Exit(code)
}

// waitLong bounds each wait for something the page should do; it is a
// timeout, not an assertion.
const waitLong = browsertest.WaitLong

// page is a browser tab of one test.
type page struct{ *browsertest.Page }

// newPage opens a tab of the shared browser; it closes when the test ends.
// The test is skipped without Chromium (failed in CI).
func newPage(t *testing.T) *page {
	t.Helper()
	return &page{browsertest.Shared(t).NewPage(t)}
}

// serve starts a test server; it closes when the test ends.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
