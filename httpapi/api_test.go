package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/ops"
	"github.com/ssehub/ssehub/sse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	pubKey = "publisher-key-for-httpapi-tests-000"
	subKey = "subscriber-key-for-httpapi-tests-00"
)

type env struct {
	srv *httptest.Server
	hub *hub.Hub
	url string       // the Mercure endpoint
	api *httpapi.API // nil where a test builds env itself
}

func verifier(t *testing.T, secret string) *auth.Verifier { return servicetest.Verifier(t, secret) }

// newEnv starts the real API on a real HTTP server over a memory log.
func newEnv(t *testing.T, cfg httpapi.Config, hopts hub.Options) *env {
	t.Helper()
	return newEnvWith(t, cfg, hopts, nil)
}

// token signs an HS256 token; a negative ttl makes one that expired that
// long ago.
func token(t *testing.T, key string, publish, subscribe []string, ttl time.Duration) string {
	t.Helper()
	spec := auth.TokenSpec{Key: key, Publish: publish, Subscribe: subscribe, TTL: ttl}
	if ttl < 0 {
		spec.Now, spec.TTL = time.Now().Add(2*ttl), -ttl
	}
	tok, err := spec.Sign()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) post(t *testing.T, tok string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) publish(t *testing.T, form url.Values) string {
	t.Helper()
	code, body := e.post(t, token(t, pubKey, []string{"*"}, nil, time.Hour), form)
	if code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	return body
}

// stream is a subscription of these tests; resp is its response, under
// the name the tests use.
type stream struct {
	*servicetest.EventStream
	resp *http.Response
}

// open subscribes with query and extra request headers; it fails the test
// unless the answer is a 200 event stream.
func (e *env) open(t *testing.T, query string, hdr http.Header) *stream {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+"?"+query, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	es := servicetest.Subscribe(t, http.DefaultClient, req, 10000)
	return &stream{es, es.Resp}
}

func (s *stream) next(t *testing.T) sse.Event {
	t.Helper()
	return s.Next(t, 5*time.Second)
}

func (s *stream) datas(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, s.next(t).Data)
	}
	return out
}

// settle waits until the hub has fanned out everything in its log.
func (e *env) settle(t *testing.T) {
	t.Helper()
	_, last, _ := e.hub.Log().Bounds(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for e.hub.LastPos() < last {
		if time.Now().After(deadline) {
			t.Fatalf("hub dispatched up to %d of %d", e.hub.LastPos(), last)
		}
		time.Sleep(time.Millisecond)
	}
}

// quiet checks that nothing more arrives once the hub has dispatched all.
func (s *stream) quiet(t *testing.T, e *env) {
	t.Helper()
	e.settle(t)
	select {
	case ev, ok := <-s.Events:
		if ok {
			t.Fatalf("unexpected event %+v", ev)
		}
	case <-time.After(50 * time.Millisecond):
	}
}

func TestStreamHeadersAndFirstBytes(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true, Retry: 2500 * time.Millisecond}, hub.Options{})
	resp, err := http.Get(e.url + "?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	// The headers and a retry line arrive at once, before any event.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "retry: 2500\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
}

func TestPublishSubscribe(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	exact := e.open(t, "topic=https://example.com/books/1", nil)
	tmpl := e.open(t, "topic="+url.QueryEscape("https://example.com/books/{id}")+"&topic=other", nil)
	id := e.publish(t, url.Values{"topic": {"https://example.com/books/1"}, "data": {"a\nb"}, "type": {"update"}, "retry": {"1234"}})
	e.publish(t, url.Values{"topic": {"https://example.com/books/2", "alt"}, "data": {"two"}})
	e.publish(t, url.Values{"topic": {"other"}, "data": {"three"}})
	ev := exact.next(t)
	if want := (sse.Event{ID: id, Type: "update", Data: "a\nb", Retry: 1234 * time.Millisecond}); ev != want {
		t.Fatalf("got %+v, want %+v", ev, want)
	}
	exact.quiet(t, e)
	if got := tmpl.datas(t, 3); !slices.Equal(got, []string{"a\nb", "two", "three"}) {
		t.Fatalf("template subscriber got %q", got)
	}
}

func TestPublisherIDsAreKept(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	s := e.open(t, "topic=a", nil)
	if id := e.publish(t, url.Values{"topic": {"a"}, "id": {"urn:uuid:42"}}); id != "urn:uuid:42" {
		t.Fatalf("publish answered id %q", id)
	}
	if ev := s.next(t); ev.ID != "urn:uuid:42" {
		t.Fatalf("id %q", ev.ID)
	}
}

func TestResumeWithQueryParameter(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	var ids []string
	for i := range 6 {
		ids = append(ids, e.publish(t, url.Values{"topic": {"a"}, "data": {fmt.Sprint(i)}}))
	}
	e.settle(t) // so the Last-Event-ID response header names ids[5]
	for _, tc := range []struct {
		name, query string
		hdr         http.Header
	}{
		{"header", "topic=a", http.Header{"Last-Event-Id": {ids[2]}}},
		{"lastEventID", "topic=a&lastEventID=" + ids[2], nil},
		{"last_event_id", "topic=a&last_event_id=" + ids[2], nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := e.open(t, tc.query, tc.hdr)
			if got := s.datas(t, 3); !slices.Equal(got, []string{"3", "4", "5"}) {
				t.Fatalf("got %q", got)
			}
			if got := s.resp.Header.Get("Last-Event-ID"); got != ids[5] {
				t.Fatalf("Last-Event-ID header %q, want %q", got, ids[5])
			}
		})
	}
}

func TestGapIsVisible(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	e.publish(t, url.Values{"topic": {"a"}, "data": {"x"}})
	s := e.open(t, "topic=a", http.Header{"Last-Event-Id": {"no-such-id"}})
	if got := s.resp.Header.Get("Ssehub-Gap"); got != hub.GapUnknown {
		t.Fatalf("Ssehub-Gap %q", got)
	}
	if ev := s.next(t); ev.Type != hub.GapType {
		t.Fatalf("first event %+v", ev)
	}
	if ev := s.next(t); ev.Data != "x" {
		t.Fatalf("then %+v", ev)
	}
}

// complexSelectors returns a subscribe query of n URI templates of 100
// expressions each (a matching cost of about 2,500 each).
func complexSelectors(n int) string {
	v := url.Values{}
	for i := range n {
		v.Add("topic", fmt.Sprintf("https://example.com/%d/", i)+strings.Repeat("{v}/", 100))
	}
	return v.Encode()
}

// Limits that bound the matching work a subscriber or a publisher can
// cause accept what realistic apps send.
func TestMatchingLimitsAcceptRealisticUse(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	v := url.Values{}
	for i := range 90 {
		v.Add("topic", fmt.Sprintf("https://example.com/users/%d/books/{id}{?page}", i))
	}
	s := e.open(t, v.Encode(), nil)
	e.open(t, complexSelectors(2), nil) // two very complex templates
	topics := make([]string, 100)
	for i := range topics {
		topics[i] = fmt.Sprintf("https://example.com/users/%d/books/7", i)
	}
	e.publish(t, url.Values{"topic": topics, "data": {"to a hundred topics"}})
	if ev := s.next(t); ev.Data != "to a hundred topics" {
		t.Fatalf("got %+v", ev)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, httpapi.Config{MaxBodyBytes: 1000}, hub.Options{})
	healthy := e.open(t, "topic=a&authorization="+token(t, subKey, nil, []string{"a"}, time.Hour), nil)
	good := token(t, pubKey, []string{"*"}, nil, time.Hour)
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	type req struct {
		method, query, body, ctype, auth string
		hdr                              http.Header
	}
	for _, tc := range []struct {
		name   string
		r      req
		status int
		says   string // the message names what to fix
	}{
		{"missing topic", req{body: form("data", "x")}, 400, "topic is required"},
		{"CR in id", req{body: form("topic", "a", "id", "a\rb")}, 400, "id must not contain"},
		{"LF in type", req{body: form("topic", "a", "type", "a\nb")}, 400, "type must not contain"},
		{"NUL in id", req{body: form("topic", "a", "id", "a\x00")}, 400, "id must not contain"},
		{"non-numeric retry", req{body: form("topic", "a", "retry", "12s")}, 400, "retry must be"},
		{"control character in topic", req{body: form("topic", "a\x01")}, 400, "control character"},
		{"digits-only id", req{body: form("topic", "a", "id", "12")}, 400, "reserved"},
		// HTTP trims Last-Event-ID: such ids could never be resumed from.
		{"id with a leading space", req{body: form("topic", "a", "id", " urn:1")}, 400, "white space"},
		{"id with a trailing space", req{body: form("topic", "a", "id", "urn:1 ")}, 400, "white space"},
		{"reserved type", req{body: form("topic", "a", "type", "ssehub.gap")}, 400, "reserved"},
		{"body too large", req{body: form("topic", "a", "data", strings.Repeat("x", 2000))}, 413, "exceeds 1000 bytes"},
		{"wrong content type", req{body: `{"topic":"a"}`, ctype: "application/json"}, 415, "application/x-www-form-urlencoded"},
		{"no token", req{body: form("topic", "a"), auth: "-"}, 401, "Authorization: Bearer"},
		{"not a bearer header", req{body: form("topic", "a"), auth: "Basic Zm9vOmJhcg=="}, 401, "Bearer"},
		{"malformed token", req{body: form("topic", "a"), auth: "Bearer not.a.jwt"}, 401, "malformed"},
		{"wrong key", req{body: form("topic", "a"), auth: "Bearer " + token(t, "another-key-entirely-000000000000", []string{"*"}, nil, time.Hour)}, 401, "signature"},
		{"subscriber token used to publish", req{body: form("topic", "a"), auth: "Bearer " + token(t, subKey, []string{"*"}, nil, time.Hour)}, 401, "signature"},
		{"expired token", req{body: form("topic", "a"), auth: "Bearer " + token(t, pubKey, []string{"*"}, nil, -time.Hour)}, 401, "expired at"},
		{"topic not allowed", req{body: form("topic", "b"), auth: "Bearer " + token(t, pubKey, []string{"a"}, nil, time.Hour)}, 403, `"b"`},
		{"one of two topics not allowed", req{body: form("topic", "a", "topic", "b"), auth: "Bearer " + token(t, pubKey, []string{"a"}, nil, time.Hour)}, 403, `"b"`},
		{"unsupported method", req{method: "PUT", body: form("topic", "a")}, 405, "use GET to subscribe or POST to publish"},
		{"subscribe without topic", req{method: "GET"}, 400, "topic"},
		{"subscribe with a bad template", req{method: "GET", query: "topic=" + url.QueryEscape("https://x/{id")}, 400, "invalid topic selector"},
		{"anonymous subscriber refused", req{method: "GET", query: "topic=a", auth: "-"}, 401, "(hint Anonymous)"},
		{"subscriber with a bad token", req{method: "GET", query: "topic=a", auth: "Bearer x.y.z"}, 401, "malformed"},
		{"bad poll timeout", req{method: "GET", query: "topic=a&poll=1&timeout=soon"}, 400, "timeout"},
		{"too many topics in one update", req{body: strings.Repeat("topic=a&", 101)}, 400, "(hint Limits.MaxPublishTopics)"},
		{"selectors too complex together", req{method: "GET", query: complexSelectors(3)}, 400, "(hint Limits.MaxSelectorCost)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			if r.method == "" {
				r.method = "POST"
			}
			if r.ctype == "" && r.method == "POST" {
				r.ctype = "application/x-www-form-urlencoded"
			}
			req, _ := http.NewRequest(r.method, e.url+"?"+r.query, strings.NewReader(r.body))
			if r.ctype != "" {
				req.Header.Set("Content-Type", r.ctype)
			}
			switch r.auth {
			case "":
				if r.method == "GET" {
					req.Header.Set("Authorization", "Bearer "+token(t, subKey, nil, []string{"*"}, time.Hour))
				} else {
					req.Header.Set("Authorization", "Bearer "+good)
				}
			case "-":
			default:
				req.Header.Set("Authorization", r.auth)
			}
			code, body := do(t, req)
			if code != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("got %d %q, want %d saying %q", code, body, tc.status, tc.says)
			}
		})
	}
	t.Run("401 and 403 explain themselves in WWW-Authenticate", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.url, strings.NewReader(form("topic", "a")))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+token(t, pubKey, []string{"*"}, nil, -time.Minute))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h := resp.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_token"`) || !strings.Contains(h, "expired") {
			t.Fatalf("WWW-Authenticate %q", h)
		}
	})
	// Nothing bad reached the log, and the hub still serves everyone.
	e.publish(t, url.Values{"topic": {"a"}, "data": {"still fine"}})
	if ev := healthy.next(t); ev.Data != "still fine" {
		t.Fatalf("healthy subscriber got %+v", ev)
	}
	healthy.quiet(t, e)
}

func TestPrivateUpdates(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	anon := e.open(t, "topic=*", nil)
	allowed := e.open(t, "topic=*", http.Header{"Authorization": {"Bearer " + token(t, subKey, nil, []string{"https://example.com/users/{id}"}, time.Hour)}})
	other := e.open(t, "topic=*", http.Header{"Authorization": {"Bearer " + token(t, subKey, nil, []string{"https://example.com/orders/1"}, time.Hour)}})
	e.publish(t, url.Values{"topic": {"https://example.com/users/7"}, "data": {"secret"}, "private": {"on"}})
	e.publish(t, url.Values{"topic": {"https://example.com/users/7"}, "data": {"public"}})
	if got := allowed.datas(t, 2); !slices.Equal(got, []string{"secret", "public"}) {
		t.Fatalf("authorized subscriber got %q", got)
	}
	for _, s := range []*stream{anon, other} {
		if got := s.datas(t, 1); !slices.Equal(got, []string{"public"}) {
			t.Fatalf("unauthorized subscriber got %q", got)
		}
		s.quiet(t, e)
	}
	// Replay applies the same rule.
	replay := e.open(t, "topic=*", http.Header{"Last-Event-Id": {"earliest"}})
	if got := replay.datas(t, 1); !slices.Equal(got, []string{"public"}) {
		t.Fatalf("anonymous replay got %q", got)
	}
	replay.quiet(t, e)
}

func TestTokenExpiryEndsStream(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, hub.Options{})
	s := e.open(t, "topic=a&authorization="+token(t, subKey, nil, []string{"*"}, 1500*time.Millisecond), nil)
	select {
	case <-s.Ended():
		if err := s.Err(); err != io.EOF && err != io.ErrUnexpectedEOF {
			t.Fatalf("stream ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open 10s after its token expired")
	}
}

func TestLongPolling(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	poll := func(t *testing.T, query string, hdr http.Header) (ans struct {
		Events []struct{ ID, Type, Data string }
		Last   string `json:"last_event_id"`
	}) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.url+"?"+query, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		code, body := do(t, req)
		if code != 200 {
			t.Fatalf("poll: %d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &ans); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return ans
	}
	ids := []string{}
	for i := range 3 {
		ids = append(ids, e.publish(t, url.Values{"topic": {"a"}, "data": {fmt.Sprint(i)}, "type": {"t"}}))
	}
	e.settle(t) // so an empty answer's cursor is ids[2]
	t.Run("replays after the last id", func(t *testing.T) {
		ans := poll(t, "topic=a&poll=1&lastEventID="+ids[0], nil)
		if len(ans.Events) != 2 || ans.Events[0].Data != "1" || ans.Events[1].ID != ids[2] || ans.Events[0].Type != "t" || ans.Last != ids[2] {
			t.Fatalf("%+v", ans)
		}
	})
	t.Run("Accept: application/json", func(t *testing.T) {
		ans := poll(t, "topic=a&lastEventID="+ids[1], http.Header{"Accept": {"application/json"}})
		if len(ans.Events) != 1 || ans.Events[0].Data != "2" {
			t.Fatalf("%+v", ans)
		}
	})
	t.Run("times out empty with a cursor", func(t *testing.T) {
		ans := poll(t, "topic=a&poll=1&timeout=1", nil)
		if len(ans.Events) != 0 || ans.Last != ids[2] {
			t.Fatalf("%+v", ans)
		}
	})
	t.Run("waits for the next event", func(t *testing.T) {
		go func() {
			time.Sleep(100 * time.Millisecond)
			e.publish(t, url.Values{"topic": {"a"}, "data": {"later"}})
		}()
		ans := poll(t, "topic=a&poll=1&lastEventID="+ids[2], nil)
		if len(ans.Events) != 1 || ans.Events[0].Data != "later" {
			t.Fatalf("%+v", ans)
		}
	})
}

// A long-poll answer carries each event's topics, and its data with the
// line breaks an EventSource would deliver; a gap is an event of its own.
func TestLongPollingEventFields(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	before := e.publish(t, url.Values{"topic": {"a"}, "data": {"before"}})
	e.publish(t, url.Values{"topic": {"a", "https://example.com/b"}, "data": {"x\r\ny\rz"}})
	e.publish(t, url.Values{"topic": {"elsewhere"}, "data": {"not for us"}})
	e.settle(t)
	type answer struct {
		Events []struct {
			ID, Type, Data string
			Topics         []string
		}
	}
	get := func(query string) answer {
		req, _ := http.NewRequest("GET", e.url+"?"+query, nil)
		code, body := do(t, req)
		var ans answer
		if err := json.Unmarshal([]byte(body), &ans); code != 200 || err != nil {
			t.Fatalf("poll: %d %s %v", code, body, err)
		}
		return ans
	}
	ans := get("topic=a&poll=1&lastEventID=" + url.QueryEscape(before))
	if len(ans.Events) != 1 {
		t.Fatalf("%+v", ans)
	}
	ev := ans.Events[0]
	if !slices.Equal(ev.Topics, []string{"a", "https://example.com/b"}) || ev.Data != "x\ny\nz" || ev.Type != "message" {
		t.Fatalf("event %+v, want both topics and LF line breaks", ev)
	}
	ans = get("topic=a&poll=1&lastEventID=urn:never-issued")
	if len(ans.Events) != 1 || ans.Events[0].Type != hub.GapType || ans.Events[0].Topics != nil {
		t.Fatalf("after an unknown id: %+v, want a gap event", ans)
	}
	ans = get("topic=a&poll=1&lastEventID=" + url.QueryEscape(ans.Events[0].ID))
	if len(ans.Events) == 0 || ans.Events[0].Data != "before" {
		t.Fatalf("after the gap: %+v, want the history", ans)
	}
	// A poll waiting when the hub sends everyone away answers the
	// reconnect instruction, with the cursor as its id.
	last := ans.Events[len(ans.Events)-1].ID
	done := make(chan answer, 1)
	go func() { done <- get("topic=a&poll=1&lastEventID=" + url.QueryEscape(last)) }()
	for deadline := time.Now().Add(5 * time.Second); e.hub.Stats().Subscribers == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the poll did not subscribe")
		}
	}
	e.hub.Reconnect(2 * time.Second)
	ans = <-done
	if len(ans.Events) != 1 || ans.Events[0].Type != hub.ReconnectType || ans.Events[0].ID != last || !strings.Contains(ans.Events[0].Data, "retry_ms") {
		t.Fatalf("poll during Reconnect: %+v, want an ssehub.reconnect event with id %s", ans, last)
	}
}

func TestReconnectEndpoint(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	s := e.open(t, "topic=a", nil)
	req, _ := http.NewRequest("POST", e.srv.URL+httpapi.ReconnectPath+"?window=2s", nil)
	req.Header.Set("Authorization", "Bearer "+token(t, pubKey, []string{"a"}, nil, time.Hour))
	if code, body := do(t, req); code != 403 {
		t.Fatalf("limited publisher: %d %s", code, body)
	}
	req.Header.Set("Authorization", "Bearer "+token(t, pubKey, []string{"*"}, nil, time.Hour))
	if code, body := do(t, req); code != 200 || !strings.Contains(body, `"subscribers":1`) {
		t.Fatalf("%d %s", code, body)
	}
	ev := s.next(t)
	if ev.Type != hub.ReconnectType {
		t.Fatalf("got %+v", ev)
	}
	if err := s.Err(); err != io.EOF {
		t.Fatalf("stream end: %v", err)
	}
	if retry, ok := s.Dec.Retry(); !ok || retry >= 2*time.Second {
		t.Fatalf("retry %v %v", retry, ok)
	}
}

func TestStatsStream(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	e.publish(t, url.Values{"topic": {"a"}})
	resp, err := http.Get(e.srv.URL + httpapi.StatsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ev, err := sse.NewDecoder(resp.Body).Next()
	if err != nil || ev.Type != "stats" {
		t.Fatalf("%+v %v", ev, err)
	}
	var st struct{ Published, Subscribers int }
	if err := json.Unmarshal([]byte(ev.Data), &st); err != nil || st.Published != 1 || st.Subscribers != 0 {
		t.Fatalf("%s %v", ev.Data, err)
	}
}

// The stats stream is a connection like a subscription: it counts in the
// connection limits (six from one address were all accepted while a third
// subscription got 429), and a hub that requires subscriber tokens
// requires one for it too (anonymous users learned the log position every
// second).
func TestStatsStreamIsLimitedAndAuthorized(t *testing.T) {
	openStats := func(t *testing.T, e *env, query string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(e.srv.URL + httpapi.StatsPath + query)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 {
			t.Cleanup(func() { resp.Body.Close() })
			return resp, ""
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	t.Run("connection limits", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			limits ops.ConnLimits
			status int
			says   string
		}{
			{"per IP", ops.ConnLimits{MaxConnectionsPerIP: 2}, 429, "(hint MaxConnectionsPerIP)"},
			{"global", ops.ConnLimits{MaxConnections: 2}, 503, "(hint MaxConnections)"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e, _ := limitedEnv(t, httpapi.Config{Anonymous: true}, tc.limits)
				first, _ := openStats(t, e, "")
				e.open(t, "topic=a", nil)
				if resp, body := openStats(t, e, ""); resp.StatusCode != tc.status || !strings.Contains(body, tc.says) {
					t.Fatalf("a third stats stream: %d %q, want %d saying %q", resp.StatusCode, body, tc.status, tc.says)
				}
				code, body := do(t, mustReq(t, "GET", e.url+"?topic=a&poll=1&timeout=1"))
				if code != tc.status {
					t.Fatalf("a subscription beside two connections: %d %s, want %d", code, body, tc.status)
				}
				first.Body.Close() // frees its slot
				waitFor(t, "the stats stream's slot", func() bool {
					code, _ := do(t, mustReq(t, "GET", e.url+"?topic=a&poll=1&timeout=1"))
					return code == 200
				})
			})
		}
	})
	t.Run("subscriber token", func(t *testing.T) {
		e := newEnv(t, httpapi.Config{}, hub.Options{})
		for _, tc := range []struct {
			name, query string
			status      int
			says        string
		}{
			{"none", "", 401, "subscriber token is required"},
			{"malformed", "?authorization=x.y.z", 401, "malformed"},
			{"publisher's", "?authorization=" + token(t, pubKey, []string{"*"}, nil, time.Hour), 401, "signature"},
			{"expired", "?authorization=" + token(t, subKey, nil, nil, -time.Hour), 401, "expired"},
			{"any subscriber token", "?authorization=" + token(t, subKey, nil, nil, time.Hour), 200, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := openStats(t, e, tc.query)
				if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) {
					t.Fatalf("%d %q, want %d saying %q", resp.StatusCode, body, tc.status, tc.says)
				}
				if tc.status != 200 {
					return
				}
				if ev, err := sse.NewDecoder(resp.Body).Next(); err != nil || ev.Type != "stats" {
					t.Fatalf("%+v %v", ev, err)
				}
			})
		}
	})
}

func TestCORS(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true, CORSOrigins: []string{"https://app.example.com"}}, hub.Options{})
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", e.url, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	t.Run("preflight allowed", func(t *testing.T) {
		resp := preflight("https://app.example.com")
		h := resp.Header
		if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			h.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Fatalf("%d %v", resp.StatusCode, h)
		}
	})
	t.Run("preflight refused", func(t *testing.T) {
		resp := preflight("https://evil.example")
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("credentialed subscribe echoes the origin", func(t *testing.T) {
		s := e.open(t, "topic=a", http.Header{"Origin": {"https://app.example.com"}})
		if got := s.resp.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
			t.Fatalf("Allow-Origin %q", got)
		}
		if s.resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatal("no Allow-Credentials")
		}
	})
	t.Run("cookie reconnect request from a foreign origin is refused (CSRF)", func(t *testing.T) {
		tok := token(t, pubKey, []string{"*"}, nil, time.Hour)
		for _, tc := range []struct {
			origin string
			status int
		}{{"https://evil.example", 403}, {"https://app.example.com", 200}, {"", 200}} {
			req, _ := http.NewRequest("POST", e.srv.URL+httpapi.ReconnectPath+"?window=1h", nil)
			req.AddCookie(&http.Cookie{Name: "mercureAuthorization", Value: tok})
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if code, body := do(t, req); code != tc.status || (code == 403 && !strings.Contains(body, "(hint CORSOrigins)")) {
				t.Errorf("origin %q: %d %s, want %d", tc.origin, code, body, tc.status)
			}
		}
	})
	t.Run("cookie publish from a foreign origin is refused (CSRF)", func(t *testing.T) {
		tok := token(t, pubKey, []string{"*"}, nil, time.Hour)
		for _, tc := range []struct {
			origin string
			status int
		}{{"https://evil.example", 403}, {"https://app.example.com", 200}, {"", 200}} {
			req, _ := http.NewRequest("POST", e.url, strings.NewReader("topic=a&data=x"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: "mercureAuthorization", Value: tok})
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if code, body := do(t, req); code != tc.status {
				t.Errorf("origin %q: %d %s, want %d", tc.origin, code, body, tc.status)
			}
		}
	})
}

// "*" allows any page to read public updates and to publish with a
// bearer token, never with credentials: echoing any Origin (even "null")
// with Access-Control-Allow-Credentials let every site act with the
// user's cookie, and the cross-site cookie check counted every origin as
// allowed, so a cookie publish from https://evil.example got 200.
func TestCORSWildcardNeverAllowsCredentials(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true, CORSOrigins: []string{"*", "https://app.example.com"}}, hub.Options{})
	tok := token(t, pubKey, []string{"*"}, nil, time.Hour)
	for _, tc := range []struct {
		origin, allow, credentials string
	}{
		{"https://evil.example", "*", ""},
		{"null", "*", ""},
		{"https://app.example.com", "https://app.example.com", "true"}, // listed by name: credentials allowed
	} {
		t.Run("subscribe from "+tc.origin, func(t *testing.T) {
			s := e.open(t, "topic=a", http.Header{"Origin": {tc.origin}})
			h := s.resp.Header
			if h.Get("Access-Control-Allow-Origin") != tc.allow || h.Get("Access-Control-Allow-Credentials") != tc.credentials {
				t.Fatalf("Allow-Origin %q, Allow-Credentials %q; want %q, %q", h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"), tc.allow, tc.credentials)
			}
		})
		t.Run("preflight from "+tc.origin, func(t *testing.T) {
			req, _ := http.NewRequest("OPTIONS", e.url, nil)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := resp.Header
			if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != tc.allow || h.Get("Access-Control-Allow-Credentials") != tc.credentials {
				t.Fatalf("%d, Allow-Origin %q, Allow-Credentials %q; want 204, %q, %q", resp.StatusCode, h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"), tc.allow, tc.credentials)
			}
		})
	}
	for _, tc := range []struct {
		name, origin string
		cookie       bool
		status       int
	}{
		{"cookie publish from a foreign origin", "https://evil.example", true, 403},
		{"cookie publish from null", "null", true, 403},
		{"cookie publish from a listed origin", "https://app.example.com", true, 200},
		{"cookie publish without Origin", "", true, 200},
		{"bearer publish from a foreign origin", "https://evil.example", false, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.url, strings.NewReader("topic=a&data=x"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.cookie {
				req.AddCookie(&http.Cookie{Name: "mercureAuthorization", Value: tok})
			} else {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if code, body := do(t, req); code != tc.status || (code == 403 && !strings.Contains(body, "(hint CORSOrigins)")) {
				t.Fatalf("%d %s, want %d", code, body, tc.status)
			}
		})
	}
}

func TestStalledSubscriberIsDisconnected(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true, WriteTimeout: 500 * time.Millisecond}, hub.Options{QueueBytes: 256 << 10})
	// A raw client that subscribes and then never reads.
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(conn, "GET %s?topic=a HTTP/1.1\r\nHost: x\r\n\r\n", httpapi.Path)
	reader := e.open(t, "topic=a", nil)
	deadline := time.Now().Add(5 * time.Second)
	for e.hub.Stats().Subscribers < 2 {
		if time.Now().After(deadline) {
			t.Fatal("stalled client never subscribed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	big := strings.Repeat("x", 64<<10)
	for i := range 100 {
		e.publish(t, url.Values{"topic": {"a"}, "data": {fmt.Sprint(i, big)}})
		if got := reader.next(t).Data; got != fmt.Sprint(i, big) {
			t.Fatalf("reader got event %.10q, want %d", got, i)
		}
	}
	for e.hub.Stats().Subscribers > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stalled subscriber still connected: %+v", e.hub.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, hub.Options{})
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(e.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}
