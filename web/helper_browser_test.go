package web_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssehub/ssehub/web"
)

// helperPage is a bare page that subscribes with /ssehub.js and records what
// the helper reports in window.T. Query: topic (repeated), opts (JSON
// options), tokens (a JSON list: options.token is a function that hands them
// out in turn, then keeps giving the last), noeventsource (removes
// window.EventSource first).
const helperPage = `<!doctype html>
<meta charset="utf-8">
<title>ssehub.js test</title>
<script type="module">
const T = window.T = { events: [], gaps: [], states: [], modes: [], errors: [] };
const q = new URLSearchParams(location.search);
if (q.has('noeventsource')) delete window.EventSource;
const { subscribe } = await import('./ssehub.js');
const opts = JSON.parse(q.get('opts') || '{}');
if (q.has('tokens')) {
  const tokens = JSON.parse(q.get('tokens'));
  opts.token = () => (tokens.length > 1 ? tokens.shift() : tokens[0]);
}
T.sub = subscribe('/.well-known/mercure', q.getAll('topic'), {
  onEvent: (e) => T.events.push(e),
  onGap: (g) => T.gaps.push(g),
  onState: (s) => { T.states.push(s); T.modes.push(T.sub.mode); },
  onError: (e) => T.errors.push(e.message),
}, opts);
</script>`

type helperState struct {
	Events []struct {
		ID, Type, Data string
		Topics         []string
	}
	Gaps []struct {
		ID, Reason, Requested, ResumedAfter string
	}
	States      []string
	Modes       []string
	Errors      []string
	Mode        string
	State       string
	LastEventID string
}

// openHelper serves the helper page next to a fake hub and opens it.
func openHelper(t *testing.T, f *fakeHub, query string) *page {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/.well-known/", f)
	mux.Handle("/ssehub.js", web.Handler())
	mux.HandleFunc("/helper.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(helperPage))
	})
	srv := serve(t, mux)
	t.Cleanup(f.close)
	p := newPage(t)
	p.Do("loading the helper page", chromedp.Navigate(srv.URL+"/helper.html?"+query))
	t.Cleanup(func() {
		if t.Failed() {
			var s any
			p.Eval(`window.T && {...T, sub: undefined, mode: T.sub?.mode, lastEventId: T.sub?.lastEventId}`, &s)
			reqs, _ := f.snapshot()
			t.Logf("helper: %+v\nrequests: %+v", s, reqs)
		}
	})
	return p
}

func (p *page) helper() helperState {
	p.T.Helper()
	var s helperState
	p.Eval(`({...T, sub: undefined, mode: T.sub.mode, state: T.sub.state, lastEventId: T.sub.lastEventId})`, &s)
	return s
}

func (s helperState) summary() []string {
	var out []string
	for _, e := range s.Events {
		out = append(out, e.ID+" "+e.Type+" "+e.Data)
	}
	return out
}

func opts(js string) string { return "opts=" + url.QueryEscape(js) }

// With EventSource: message and the listed custom types arrive, others and
// other topics do not; ssehub.reconnect closes the stream, and the helper
// comes back after the time given, resuming from the last id.
func TestBrowserHelperEventSource(t *testing.T) {
	f := newFakeHub()
	p := openHelper(t, f, "topic=a&topic=b&"+opts(`{"types":["created"],"jitter":100}`))
	p.WaitFor("the stream to open", `T.states.at(-1) === 'open'`, waitLong)

	f.add("", "one", "a")
	f.add("", "other topic", "c")
	f.add("created", "two", "b")
	f.add("unlisted", "not listened for", "a")
	f.add("", "four", "a", "c")
	p.WaitFor("three events", `T.events.length === 3`, waitLong)
	s := p.helper()
	if want := []string{"1 message one", "3 created two", "5 message four"}; !slices.Equal(s.summary(), want) {
		t.Errorf("events %q, want %q", s.summary(), want)
	}
	if s.Mode != "eventsource" || s.LastEventID != "5" || !slices.Equal(s.States, []string{"connecting", "open"}) {
		t.Errorf("mode %q, last id %q, states %q", s.Mode, s.LastEventID, s.States)
	}

	// The hub asks to come back in 700 ms; an event published meanwhile
	// arrives once, through a new stream that resumes after "5".
	f.kick(700)
	p.WaitFor("the helper to wait", `T.states.at(-1) === 'reconnecting'`, waitLong)
	f.add("", "while away", "b")
	p.WaitFor("the event published meanwhile", `T.events.length === 4 && T.states.at(-1) === 'open'`, waitLong)
	s = p.helper()
	if got := s.summary()[3]; got != "6 message while away" {
		t.Errorf("4th event %q", got)
	}
	reqs, _ := f.snapshot()
	var streams []fakeRequest
	for _, r := range reqs {
		if !r.Poll {
			streams = append(streams, r)
		}
	}
	if len(streams) != 2 {
		t.Fatalf("%d stream requests, want 2", len(streams))
	}
	if streams[1].LastEventID != "5" || !strings.Contains(streams[1].Query, "lastEventID=5") {
		t.Errorf("the new stream resumed from %q (query %s)", streams[1].LastEventID, streams[1].Query)
	}
	f.mu.Lock()
	waited := streams[1].At.Sub(f.kickedAt)
	f.mu.Unlock()
	if waited < 700*time.Millisecond {
		t.Errorf("came back after %v, before the 700ms the hub asked for", waited)
	}
	p.Do("closing", chromedp.Evaluate[chromedp.Void](`T.sub.close()`))
	if s := p.helper(); s.State != "closed" || s.States[len(s.States)-1] != "closed" {
		t.Errorf("after close: state %q, states %q", s.State, s.States)
	}
	p.NoErrors()
}

// Without EventSource the helper long-polls: the same events, the topics,
// and a gap for an id the hub does not know.
func TestBrowserHelperLongPolling(t *testing.T) {
	f := newFakeHub()
	f.add("", "before", "a")
	f.add("", "before", "a")
	p := openHelper(t, f, "noeventsource&topic=a&topic=b&"+opts(`{"types":["created"],"lastEventId":"bogus","pollTimeout":3000}`))
	p.WaitFor("the gap", `T.gaps.length === 1`, waitLong)

	f.add("", "one", "a")
	f.add("created", "two", "b")
	f.add("unlisted", "not listened for", "a")
	f.add("", "other topic", "c")
	f.add("", "five", "b")
	p.WaitFor("three events", `T.events.length === 3`, waitLong)
	s := p.helper()
	if want := []string{"3 message one", "4 created two", "7 message five"}; !slices.Equal(s.summary(), want) {
		t.Errorf("events %q, want %q", s.summary(), want)
	}
	if got := s.Events[1].Topics; !slices.Equal(got, []string{"b"}) {
		t.Errorf("topics %q", got)
	}
	if g := s.Gaps[0]; g.Reason != "unknown" || g.Requested != "bogus" || g.ResumedAfter != "2" || g.ID != "2" {
		t.Errorf("gap %+v", g)
	}
	if s.Mode != "poll" || s.LastEventID != "7" || s.States[0] != "connecting" || s.States[1] != "open" {
		t.Errorf("mode %q, last id %q, states %q", s.Mode, s.LastEventID, s.States)
	}
	reqs, polls := f.snapshot()
	if polls != len(reqs) {
		t.Errorf("%d stream requests without EventSource", len(reqs)-polls)
	}
	// The first poll asks for an immediate answer, to learn that the hub is
	// there; the next ones wait.
	for i, r := range reqs {
		timeout := "timeout=3000"
		if i == 0 {
			timeout = "timeout=1"
		}
		if !strings.Contains(r.Query, "poll=1") || !strings.Contains(r.Query, timeout) {
			t.Errorf("poll %d: query %s", i, r.Query)
		}
	}
	p.NoErrors()
}

// A stream whose events are held back (a buffering proxy) is detected: the
// helper switches to long polling and the held event arrives, once.
func TestBrowserHelperBufferedStream(t *testing.T) {
	f := newFakeHub()
	f.setBuffered(true)
	p := openHelper(t, f, "topic=a&"+opts(`{"bufferTimeout":400,"pollTimeout":3000}`))
	p.WaitFor("the stream to open", `T.states.at(-1) === 'open'`, waitLong)
	// The helper learns the hub's position with a quick poll when the stream
	// opens; publish after it answered.
	deadline := time.Now().Add(waitLong)
	for f.pollsAnswered() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the helper never asked for the hub's position")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.add("", "held back", "a")
	p.WaitFor("the held event", `T.events.length === 1`, waitLong)
	f.add("", "after", "a")
	p.WaitFor("the next one", `T.events.length === 2`, waitLong)
	s := p.helper()
	if want := []string{"1 message held back", "2 message after"}; !slices.Equal(s.summary(), want) {
		t.Errorf("events %q, want %q", s.summary(), want)
	}
	if s.Mode != "poll" || !slices.Equal(s.States, []string{"connecting", "open", "reconnecting", "open"}) {
		t.Errorf("mode %q, states %q", s.Mode, s.States)
	}
	p.NoErrors()
}

// A stream that a proxy answers with something else (the browser gives up
// on it) while polling works: the helper polls.
func TestBrowserHelperStreamMangled(t *testing.T) {
	f := newFakeHub()
	f.setMangled(true)
	p := openHelper(t, f, "topic=a&"+opts(`{"pollTimeout":3000}`))
	p.WaitFor("long polling", `T.sub?.mode === 'poll' && T.states.at(-1) === 'open'`, waitLong)
	f.add("", "one", "a")
	p.WaitFor("the event", `T.events.length === 1`, waitLong)
	s := p.helper()
	if want := []string{"1 message one"}; !slices.Equal(s.summary(), want) {
		t.Errorf("events %q, want %q", s.summary(), want)
	}
	if want := []string{"connecting", "reconnecting", "open"}; !slices.Equal(s.States, want) {
		t.Errorf("states %q, want %q", s.States, want)
	}
	p.Allow(`EventSource's response has a MIME type ("text/html") that is not "text/event-stream"`)
	p.NoErrors()
}

// A refused token ends the subscription with the hub's message, unless the
// token comes from a function, which is asked again.
func TestBrowserHelperTokens(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		f := newFakeHub()
		p := openHelper(t, f, "topic=a&"+opts(`{"token":"stale"}`))
		p.WaitFor("the end", `T.states.at(-1) === 'closed'`, waitLong)
		s := p.helper()
		if want := []string{"subscriber token expired: get a fresh one"}; !slices.Equal(s.Errors, want) {
			t.Errorf("errors %q, want %q", s.Errors, want)
		}
		p.NoErrors()
	})
	t.Run("refreshed", func(t *testing.T) {
		f := newFakeHub()
		p := openHelper(t, f, "topic=a&tokens="+url.QueryEscape(`["stale","`+fakeSubscriberToken+`"]`))
		p.WaitFor("the stream", `T.states.at(-1) === 'open'`, waitLong)
		f.add("", "one", "a")
		p.WaitFor("the event", `T.events.length === 1`, waitLong)
		if s := p.helper(); s.Mode != "eventsource" || len(s.Errors) != 0 {
			t.Errorf("mode %q, errors %q", s.Mode, s.Errors)
		}
		p.NoErrors()
	})
}
