package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/servicetest"
)

// subServer is the server of the subscribe tests: see
// servicetest.NumberedServer.
type subServer struct{ *servicetest.NumberedServer }

func newSubServer(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, n int)) subServer {
	t.Helper()
	return subServer{servicetest.NewNumberedServer(t, respond)}
}

// header returns the header key of request i (0-based).
func (s subServer) header(i int, key string) string {
	v, _ := s.Header(i, key)
	return v
}

// subStream answers with an event stream.
func subStream(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, body)
	http.NewResponseController(w).Flush()
}

// onceThen204 serves body on the first request and 204 after, so that
// subscribe ends by itself.
func onceThen204(body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		subStream(w, body)
	}
}

func runSub(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runSubscribe(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// withRetry1 puts "retry: 1" at the start of a stream (after a BOM), so
// that the reconnection that ends the test (204) comes at once.
func withRetry1(body string) string {
	if b, ok := strings.CutPrefix(body, "\uFEFF"); ok {
		return "\uFEFFretry: 1\n" + b
	}
	return "retry: 1\n" + body
}

type browserCase struct {
	name string
	body string
	then string // the second connection's stream ("": 204 No Content)
	want string
}

// respond answers the case's n-th request: body (starting with "retry: 1"),
// then, if set, then, and 204 No Content after.
func (c browserCase) respond(w http.ResponseWriter, n int) {
	switch {
	case n == 1:
		subStream(w, withRetry1(c.body))
	case n == 2 && c.then != "":
		subStream(w, c.then)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// browserCases are streams with the output a browser's EventSource gives for
// them: one {"type","data","id"} per event, where id is the event's
// lastEventId. (TestSubscribeMatchesBrowser checks them in Chromium when
// it is installed.)
var browserCases = []browserCase{
	{name: "last event id survives a reconnection",
		body: "id: 5\ndata: a\n\n",
		then: "\n: blank lines do not forget the id\n\ndata: b\n\n",
		want: `{"type":"message","data":"a","id":"5"}
{"type":"message","data":"b","id":"5"}
`},
	{"types ids and multi-line data",
		"id: 1\nevent: add\ndata: {\"a\":1}\n\ndata: line 1\ndata: line 2\n\nid: 2\nevent: remove\ndata:\n\n",
		"",
		`{"type":"add","data":"{\"a\":1}","id":"1"}
{"type":"message","data":"line 1\nline 2","id":"1"}
{"type":"remove","data":"","id":"2"}
`},
	{"CR and CRLF endings",
		"data: a\r\rdata: b\r\n\r\nid: 3\rdata: c\r\n\n",
		"",
		`{"type":"message","data":"a","id":""}
{"type":"message","data":"b","id":""}
{"type":"message","data":"c","id":"3"}
`},
	{"BOM, comments and unknown fields",
		"\uFEFF: hello\nfoo: bar\ndata: a\n\n\uFEFFdata: ignored\n\ndata\n\n",
		"",
		`{"type":"message","data":"a","id":""}
{"type":"message","data":"","id":""}
`},
	{"one space removed, colons kept",
		"data:  two spaces\ndata:none\ndata: a: b\n\n",
		"",
		`{"type":"message","data":" two spaces\nnone\na: b","id":""}
`},
	{"type resets, empty id resets, NUL id ignored",
		"event: t\n\ndata: a\n\nid: 5\ndata: b\n\nid: x\x00y\ndata: c\n\nid\ndata: d\n\n",
		"",
		`{"type":"message","data":"a","id":""}
{"type":"message","data":"b","id":"5"}
{"type":"message","data":"c","id":"5"}
{"type":"message","data":"d","id":""}
`},
	{"id-only block and trailing LF in data",
		"id: 7\n\ndata: a\ndata:\n\n",
		"",
		`{"type":"message","data":"a\n","id":"7"}
`},
	{"invalid UTF-8 and special characters",
		"data: \xff\xe2\x82a <&> \u2028 \"q\" \\ \t\n\n",
		"",
		"{\"type\":\"message\",\"data\":\"\uFFFD\uFFFDa <&> \\u2028 \\\"q\\\" \\\\ \\t\",\"id\":\"\"}\n"},
	{"event names with spaces and an empty event resets the type",
		"event:  spaced \ndata: a\n\nevent: x\nevent:\ndata: b\n\n",
		"",
		`{"type":" spaced ","data":"a","id":""}
{"type":"message","data":"b","id":""}
`},
	{"LF CR is two line endings, retry lines dispatch nothing",
		"data: a\n\rretry: 5\n\nretry: x\ndata: b\n\n",
		"",
		`{"type":"message","data":"a","id":""}
{"type":"message","data":"b","id":""}
`},
	{"id with spaces, case-sensitive field names",
		"id:  a b \nData: no\nEVENT: no\ndata: c\n\n",
		"",
		`{"type":"message","data":"c","id":" a b "}
`},
	{"unfinished event never dispatched",
		"data: a\n\nid: 9\ndata: unfinished\n",
		"",
		`{"type":"message","data":"a","id":""}
`},
}

func TestSubscribeJSON(t *testing.T) {
	for _, tc := range browserCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSubServer(t, func(w http.ResponseWriter, r *http.Request, n int) { tc.respond(w, n) })
			code, out, errOut := runSub(t, t.Context(), "--json", srv.URL)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if out != tc.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tc.want)
			}
			if !strings.Contains(errOut, "204 No Content") {
				t.Errorf("stderr %q does not say why it stopped", errOut)
			}
		})
	}
}

func TestSubscribeHuman(t *testing.T) {
	srv := newSubServer(t, onceThen204("retry: 1\nid: 42\nevent: update\ndata: line one\ndata: line two\n\ndata:\n\nid: \x1b[2J\ndata: \x1b[31mred\n\n"))
	code, out, errOut := runSub(t, t.Context(), srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "update id=42\n  line one\n  line two\n" +
		"message id=42\n" +
		"message id=\\x1b[2J\n  \\x1b[31mred\n"
	if out != want {
		t.Errorf("stdout:\n%q\nwant:\n%q", out, want)
	}
	for _, s := range []string{"connected to " + srv.URL, "reconnecting in 1ms", "204 No Content"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("stderr %q lacks %q", errOut, s)
		}
	}
}

func TestSubscribeExitCodes(t *testing.T) {
	hold := func(w http.ResponseWriter, r *http.Request, n int) {
		subStream(w, "data: a\n\ndata: b\n\ndata: c\n\n")
		<-r.Context().Done()
	}
	tests := []struct {
		name      string
		respond   func(http.ResponseWriter, *http.Request, int)
		args      []string
		code      int
		stdout    string
		stderrHas []string
	}{
		{"count", hold, []string{"--json", "--count", "2"}, 0,
			`{"type":"message","data":"a","id":""}` + "\n" + `{"type":"message","data":"b","id":""}` + "\n", nil},
		{"timeout", hold, []string{"--json", "--timeout", "100ms"}, 0,
			`{"type":"message","data":"a","id":""}` + "\n" + `{"type":"message","data":"b","id":""}` + "\n" + `{"type":"message","data":"c","id":""}` + "\n", nil},
		{"204 at once", func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(204) }, nil, 0, "",
			[]string{"204 No Content"}},
		{"404 with reason", func(w http.ResponseWriter, r *http.Request, n int) {
			http.Error(w, "no such topic", http.StatusNotFound)
		}, nil, 1, "", []string{"404 Not Found", "no such topic"}},
		{"401 with reason", func(w http.ResponseWriter, r *http.Request, n int) {
			http.Error(w, "token expired at 2025-01-01T00:00:00Z", http.StatusUnauthorized)
		}, []string{"--json"}, 1, "", []string{"401 Unauthorized", "token expired at 2025-01-01T00:00:00Z"}},
		{"wrong content type", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<p>hello</p>")
		}, nil, 1, "", []string{`Content-Type "text/html"`, "want text/event-stream"}},
		{"events then refused", func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				subStream(w, "retry: 1\ndata: a\n\n")
				return
			}
			http.Error(w, "gone", http.StatusGone)
		}, []string{"--json"}, 1, `{"type":"message","data":"a","id":""}` + "\n", []string{"410 Gone"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSubServer(t, tc.respond)
			code, out, errOut := runSub(t, t.Context(), append(tc.args, srv.URL)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if out != tc.stdout {
				t.Errorf("stdout %q, want %q", out, tc.stdout)
			}
			for _, s := range tc.stderrHas {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr %q lacks %q", errOut, s)
				}
			}
		})
	}
}

func TestSubscribeInterrupted(t *testing.T) {
	srv := newSubServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		subStream(w, "data: a\n\n")
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	var out servicetest.LogBuffer
	done := make(chan int)
	go func() { done <- runSubscribe(ctx, []string{srv.URL}, &out, io.Discard) }()
	for !strings.Contains(out.String(), "message") {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after interrupt, want 0", code)
	}
}

func TestSubscribeRequest(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		header map[string]string // on the first request
	}{
		{"defaults", nil, map[string]string{"Accept": "text/event-stream", "Cache-Control": "no-cache", "Last-Event-ID": ""}},
		{"headers", []string{"--header", "Authorization: Bearer abc", "--header", "X-Trace:1"},
			map[string]string{"Authorization": "Bearer abc", "X-Trace": "1"}},
		{"last event id", []string{"--last-event-id", "17"}, map[string]string{"Last-Event-ID": "17"}},
		{"flags after the URL", []string{"URL", "--last-event-id", "18", "--json"}, map[string]string{"Last-Event-ID": "18"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSubServer(t, onceThen204("retry: 1\nid: 99\ndata: x\n\n"))
			args := tc.args
			if len(args) == 0 || args[0] != "URL" {
				args = append(args, srv.URL)
			} else {
				args = append([]string{srv.URL}, args[1:]...)
			}
			if code, _, errOut := runSub(t, t.Context(), args...); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for k, v := range tc.header {
				if got := srv.header(0, k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			// It resumed from the event it got.
			if got := srv.header(1, "Last-Event-ID"); got != "99" {
				t.Errorf("reconnected with Last-Event-ID %q, want 99", got)
			}
		})
	}
}

func TestSubscribeReconnects(t *testing.T) {
	srv := newSubServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			subStream(w, "retry: 1\nid: 1\ndata: a\n\n")
		case 2:
			// A broken connection: the client retries too.
			conn, buf, _ := http.NewResponseController(w).Hijack()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 100\r\n\r\nid: 2\ndata: b\n\n")
			buf.Flush()
			conn.Close()
		default:
			subStream(w, fmt.Sprintf("id: %d\ndata: c\n\n", n))
		}
	})
	code, out, errOut := runSub(t, t.Context(), "--json", "--count", "3", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `{"type":"message","data":"a","id":"1"}
{"type":"message","data":"b","id":"2"}
{"type":"message","data":"c","id":"3"}
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if got := srv.header(1, "Last-Event-ID"); got != "1" {
		t.Errorf("second request Last-Event-ID %q", got)
	}
	if got := srv.header(2, "Last-Event-ID"); got != "2" {
		t.Errorf("third request Last-Event-ID %q", got)
	}
	if !strings.Contains(errOut, "reconnecting in") || !strings.Contains(errOut, "unexpected EOF") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestSubscribeUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		has  string
	}{
		{"no URL", []string{"--json"}, 2, "URL is missing"},
		{"two URLs", []string{"http://a/", "http://b/"}, 2, "one URL expected"},
		{"not http", []string{"ftp://a/"}, 2, "scheme must be http or https"},
		{"no scheme", []string{"localhost:3000"}, 2, "invalid URL"},
		{"negative count", []string{"--count", "-1", "http://a/"}, 2, "--count"},
		{"negative timeout", []string{"--timeout", "-1s", "http://a/"}, 2, "--timeout"},
		{"bad duration", []string{"--timeout", "soon", "http://a/"}, 2, "invalid value"},
		{"bad header", []string{"--header", "NoColon", "http://a/"}, 2, "want 'Key: Value'"},
		{"header with a control character", []string{"--header", "X: a\x01", "http://a/"}, 2, "invalid header"},
		{"unknown flag", []string{"--nope", "http://a/"}, 2, "not defined"},
		{"help", []string{"-h"}, 0, "Usage: ssehub subscribe"},
		{"URL after --", []string{"--json", "--", "http://a/", "--count"}, 2, "one URL expected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runSub(t, t.Context(), tc.args...)
			if tc.code == 0 { // help goes to stdout
				out, errOut = errOut, out
			}
			if code != tc.code || !strings.Contains(errOut, tc.has) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tc.code, tc.has)
			}
		})
	}
}

// TestSubscribeMatchesBrowser serves every browserCases stream to headless
// Chromium's EventSource and to "ssehub subscribe --json", and checks that
// both see the same events (type, data, lastEventId), that both match the
// table, and that both reconnect with the same Last-Event-ID. It is skipped
// when Chromium is not installed, and with -short.
func TestSubscribeMatchesBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	var browser string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no Chromium installed")
	}

	var mu sync.Mutex
	hits := map[string]int{}           // "i/client" -> requests
	resumedWith := map[string]string{} // "i/client" -> Last-Event-ID of each reconnection
	mux := http.NewServeMux()
	mux.HandleFunc("/case/{i}/{client}", func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscan(r.PathValue("i"), &i)
		key := r.PathValue("i") + "/" + r.PathValue("client")
		mu.Lock()
		hits[key]++
		n := hits[key]
		if n > 1 {
			resumedWith[key] += "[" + r.Header.Get("Last-Event-ID") + "]"
		}
		mu.Unlock()
		if i >= len(browserCases) {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		browserCases[i].respond(w, n)
	})
	type pageCase struct {
		URL   string   `json:"url"`
		Types []string `json:"types"`
	}
	var cases []pageCase
	eventLine := regexp.MustCompile(`(?m)^event: ?(.*)$`)
	for i, tc := range browserCases {
		pc := pageCase{URL: fmt.Sprintf("/case/%d/browser", i), Types: []string{}}
		norm := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(tc.body + "\n" + tc.then)
		for _, m := range eventLine.FindAllStringSubmatch(norm, -1) {
			if m[1] != "" && m[1] != "message" && !slices.Contains(pc.Types, m[1]) {
				pc.Types = append(pc.Types, m[1])
			}
		}
		cases = append(cases, pc)
	}
	casesJSON, _ := json.Marshal(cases)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><pre id="out">pending</pre><script>
const cases = %s;
function run(c) {
  return new Promise(resolve => {
    const out = [];
    const es = new EventSource(c.url);
    const push = e => out.push({type: e.type, data: e.data, id: e.lastEventId});
    es.onmessage = push;
    for (const t of c.types) es.addEventListener(t, push);
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) resolve(out); };
  });
}
(async () => {
  const all = [];
  for (const c of cases) all.push(await run(c));
  document.getElementById("out").textContent = JSON.stringify(all);
})();
</script>`, casesJSON)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=30000",
		"--dump-dom", srv.URL+"/")
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	m := regexp.MustCompile(`(?s)<pre id="out">(.*?)</pre>`).FindSubmatch(dom)
	if m == nil {
		t.Fatalf("no result in the page:\n%s", dom)
	}
	var fromBrowser [][]jsonEvent
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &fromBrowser); err != nil || len(fromBrowser) != len(browserCases) {
		t.Fatalf("page result %q: %v", m[1], err)
	}

	parse := func(lines string) []jsonEvent {
		var out []jsonEvent
		dec := json.NewDecoder(strings.NewReader(lines))
		for dec.More() {
			var e jsonEvent
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("%q: %v", lines, err)
			}
			out = append(out, e)
		}
		return out
	}
	for i, tc := range browserCases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runSub(t, t.Context(), "--json", fmt.Sprintf("%s/case/%d/cli", srv.URL, i))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			got, browser, want := parse(out), fromBrowser[i], parse(tc.want)
			if !reflect.DeepEqual(got, browser) && !(len(got) == 0 && len(browser) == 0) {
				t.Errorf("ssehub subscribe: %+v\nChromium:         %+v", got, browser)
			}
			if !reflect.DeepEqual(browser, want) && !(len(want) == 0 && len(browser) == 0) {
				t.Errorf("Chromium: %+v\ntable:    %+v", browser, want)
			}
			mu.Lock()
			defer mu.Unlock()
			cli, br := fmt.Sprint(i, "/cli"), fmt.Sprint(i, "/browser")
			if resumedWith[cli] != resumedWith[br] || hits[cli] != hits[br] || hits[cli] < 2 {
				t.Errorf("reconnection: ssehub subscribe sent Last-Event-ID %q (%d requests), Chromium %q (%d requests)",
					resumedWith[cli], hits[cli], resumedWith[br], hits[br])
			}
		})
	}
}
