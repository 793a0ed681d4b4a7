package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ssehub/ssehub/web"
)

// withFakeHub serves the dashboard at / next to a fake hub's endpoints.
func withFakeHub(t *testing.T) (*fakeHub, string) {
	t.Helper()
	f := newFakeHub()
	mux := http.NewServeMux()
	mux.Handle("/.well-known/", f)
	mux.Handle("/", web.Handler())
	srv := serve(t, mux)
	t.Cleanup(f.close) // before the server closes: ends the streams
	return f, srv.URL
}

// Served without a hub, the dashboard says it is not connected instead of
// throwing: the stats stream and the subscription are 404s.
func TestBrowserDashboardWithoutHub(t *testing.T) {
	srv := serve(t, web.Handler())
	p := newPage(t)
	p.Do("loading the dashboard", chromedp.Navigate(srv.URL+"/"))
	p.WaitFor("the stats stream to be reported down",
		`document.querySelector('#stats-state').dataset.state === 'closed'`, waitLong)
	p.WaitFor("the subscription to be closed",
		`document.querySelector('#state').dataset.state === 'closed' && document.querySelector('#log-error').textContent !== ''`, waitLong)
	if got := p.Text("#stats-state"); got != "not connected" {
		t.Errorf("#stats-state = %q", got)
	}
	if got := p.Text("#stat-subscribers"); got != "—" {
		t.Errorf("#stat-subscribers = %q", got)
	}
	if got := p.Text("#log-error"); !strings.HasPrefix(got, "404") {
		t.Errorf("#log-error = %q, want the hub's 404", got)
	}
	if got := p.Text("#log-connect"); got != "Connect" {
		t.Errorf("#log-connect = %q", got)
	}
	p.Screenshot("dashboard-without-hub")
	p.NoErrors()
}

// The dashboard shows the hub's numbers, publishes from its form, and shows
// the events (and a gap) in its live log.
func TestBrowserDashboard(t *testing.T) {
	f, base := withFakeHub(t)
	p := newPage(t)
	p.Do("loading the dashboard", chromedp.Navigate(base+"/"))

	// Stats: one subscriber, the dashboard's own live log.
	p.WaitFor("the live log to open", `document.querySelector('#state').dataset.state === 'open'`, waitLong)
	p.WaitFor("the stats", `document.querySelector('#stat-subscribers').textContent === '1'`, waitLong)
	if got := p.Text("#stats-state"); got != "live" {
		t.Errorf("#stats-state = %q", got)
	}
	if got := p.Text("#log-mode"); got != "EventSource" {
		t.Errorf("#log-mode = %q", got)
	}

	// A publish with the wrong token shows the hub's message.
	p.Do("publishing with a bad token",
		chromedp.SetValue(chromedp.ID("publish-token"), "bad-token"),
		chromedp.SetValue(chromedp.ID("publish-data"), "nope"),
		chromedp.Click(chromedp.ID("publish-submit")),
	)
	p.WaitFor("the error", `document.querySelector('#publish-result').className === 'error'`, waitLong)
	if got := p.Text("#publish-result"); !strings.Contains(got, "401") || !strings.Contains(got, "publisher token is required") {
		t.Errorf("#publish-result = %q", got)
	}

	// A publish of a custom type arrives in the log.
	p.Do("publishing",
		chromedp.SetValue(chromedp.ID("publish-token"), fakePublisherToken),
		chromedp.SetValue(chromedp.ID("publish-topic"), "greetings"),
		chromedp.SetValue(chromedp.ID("publish-type"), "greeting"),
		chromedp.SetValue(chromedp.ID("publish-data"), "hello, browser"),
		chromedp.Click(chromedp.ID("publish-submit")),
	)
	p.WaitFor("the publish result", `document.querySelector('#publish-result').className === 'ok'`, waitLong)
	if got := p.Text("#publish-result"); got != "published, id 1" {
		t.Errorf("#publish-result = %q", got)
	}
	p.WaitFor("the event in the log", `document.querySelector('#log .event[data-id="1"]')`, waitLong)
	row := `#log .event[data-id="1"] `
	if id, typ, data := p.Text(row+".event-id"), p.Text(row+".event-type"), p.Text(row+".event-data"); id != "1" || typ != "greeting" || data != "hello, browser" {
		t.Errorf("row: id %q type %q data %q", id, typ, data)
	}
	f.add("", `{"stock": 12}`, "books")
	f.add("", "line one\nline two", "greetings")
	p.WaitFor("more events", `document.querySelectorAll('#log .event').length === 3`, waitLong)
	if got := p.Text("#log .event:first-child .event-data"); got != "line one\nline two" {
		t.Errorf("newest row's data = %q", got)
	}

	// Resuming from an id the hub does not know shows a highlighted gap.
	p.Do("resuming from an unknown id",
		chromedp.SetValue(chromedp.ID("log-last-id"), "urn:nobody:knows"),
		chromedp.Click(chromedp.ID("log-connect")), // disconnect
		chromedp.Click(chromedp.ID("log-connect")), // connect again
	)
	p.WaitFor("the gap", `document.querySelector('#log .event.gap')`, waitLong)
	if got := p.Text("#log .event.gap .event-type"); got != "ssehub.gap" {
		t.Errorf("gap row type %q", got)
	}
	if got := p.Text("#log .event.gap .event-data"); !strings.Contains(got, "unknown") || !strings.Contains(got, "urn:nobody:knows") {
		t.Errorf("gap row data %q", got)
	}
	p.WaitFor("the log to reopen", `document.querySelector('#state').dataset.state === 'open'`, waitLong)

	// The rates and the chart follow the stats.
	p.WaitFor("the chart's lines", `document.querySelectorAll('#chart path.line').length === 3`, waitLong)
	p.WaitFor("the total of publishes", `document.querySelector('#stat-published').textContent === '3'`, waitLong)
	p.Do("blurring the form", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	p.Screenshot("dashboard")
	p.NoErrors()
}

// A hub that requires subscriber tokens requires one for its stats stream:
// the dashboard sends the live log's, and connects its stats once it is
// given one.
func TestBrowserDashboardStatsNeedToken(t *testing.T) {
	f, base := withFakeHub(t)
	f.setStatsAuth(true)
	p := newPage(t)
	p.Do("loading the dashboard", chromedp.Navigate(base+"/"))
	p.WaitFor("the stats stream to be refused",
		`document.querySelector('#stats-state').dataset.state === 'closed'`, waitLong)
	var title string
	p.Eval(`document.querySelector('#stats-state').title`, &title)
	if got := title; !strings.Contains(got, "subscriber token") {
		t.Errorf("#stats-state title = %q, want it to ask for a subscriber token", got)
	}
	p.Do("giving the live log a subscriber token",
		chromedp.SetValue(chromedp.ID("log-token"), fakeSubscriberToken),
		chromedp.Click(chromedp.ID("log-connect")), // disconnect
		chromedp.Click(chromedp.ID("log-connect")), // connect with the token
	)
	p.WaitFor("the stats", `document.querySelector('#stats-state').dataset.state === 'open'`, waitLong)
	p.WaitFor("the numbers", `document.querySelector('#stat-subscribers').textContent === '1'`, waitLong)
	p.NoErrors()
}
