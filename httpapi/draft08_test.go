package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/boltlog"
)

// Both protocol forms, on one hub at the same time: 0.x topic= selectors
// (exact, "*", URI templates) and draft-08 match= (exact, byte for byte)
// and match_urlpattern= (WHATWG URL patterns).
func TestBothProtocolForms(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	const (
		book    = "https://example.com/books/1"
		literal = "https://example.com/books/{id}" // a topic that looks like a template
		reviews = "https://example.com/books/1/reviews"
	)
	q := url.QueryEscape
	subs := map[string]*stream{
		"0.x template":         e.open(t, "topic="+q("https://example.com/books/{id}"), nil),
		"0.x wildcard":         e.open(t, "topic=*", nil),
		"draft-08 exact":       e.open(t, "match="+q(literal), nil),
		"draft-08 url pattern": e.open(t, "match_urlpattern="+q("https://example.com/books/:id"), nil),
		"camel-case pattern":   e.open(t, "matchURLPattern="+q("https://example.com/books/*"), nil),
		"mixed in one request": e.open(t, "topic="+q(reviews)+"&match="+q(book)+"&match_exact="+q(book), nil),
	}
	for _, topic := range []string{book, literal, reviews} {
		e.publish(t, url.Values{"topic": {topic}, "data": {topic}})
	}
	want := map[string][]string{
		"0.x template":         {book, literal}, // a template matches its own text
		"0.x wildcard":         {book, literal, reviews},
		"draft-08 exact":       {literal}, // byte for byte: "{id}" is no variable
		"draft-08 url pattern": {book, literal},
		"camel-case pattern":   {book, literal, reviews},
		"mixed in one request": {book, reviews}, // each event once
	}
	for name, s := range subs {
		if got := s.datas(t, len(want[name])); !slices.Equal(got, want[name]) {
			t.Errorf("%s received %q, want %q", name, got, want[name])
		}
		s.quiet(t, e)
	}
}

func TestSubscribeBadRequests(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	for _, tc := range []struct {
		name, query, says string
	}{
		{"unknown match parameter", "match_regexp=a", `"match_regexp"`},
		{"misspelled matcher type", "match_urlPattern=a", `"match_urlPattern"`},
		{"match prefix is reserved, whatever its case", "MATCH=a", `"MATCH"`},
		{"unknown match parameter next to valid ones", "topic=a&match=b&matches=c", `"matches"`},
		{"empty match", "match=", "empty match"},
		{"empty topic", "topic=", "empty topic"},
		{"control character in match", "match=a%01b", "control character"},
		{"C1 control character in topic", "topic=a%C2%85", "U+0085"},
		{"DEL in match_urlpattern", "match_urlpattern=%2Fa%7F", "control character"},
		{"invalid UTF-8 in topic", "topic=a%FF", "UTF-8"},
		{"relative URL pattern without slash", "match_urlpattern=books%2F%3Aid", `must start with "/"`},
		{"URL pattern with a backreference", "match_urlpattern=" + url.QueryEscape(`https://example.com/(a)/(b\1)`), "RE2"},
		{"malformed URL pattern", "match_urlpattern=" + url.QueryEscape("https://example.com/:id/:id"), "used twice"},
		{"no selector at all", "last_event_id=earliest", "match_urlpattern"},
		{"too long", "match=" + strings.Repeat("a", 5000), "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, mustRequest(t, "GET", e.url+"?"+tc.query))
			if code != 400 || !strings.Contains(body, tc.says) {
				t.Fatalf("got %d %q, want 400 saying %q", code, body, tc.says)
			}
		})
	}
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestPublishDraft08Rules(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	watcher := e.open(t, "topic=*", nil)
	tok := token(t, pubKey, []string{"*"}, nil, time.Hour)
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		says   string
	}{
		{"topic * is the wildcard", url.Values{"topic": {"*"}}, 400, `"*" is reserved`},
		{"type mercure is reserved", url.Values{"topic": {"a"}, "type": {"mercure"}}, 400, `type "mercure" is reserved`},
		{"id starting with #", url.Values{"topic": {"a"}, "id": {"#1"}}, 400, `starts with "#"`},
		{"id earliest", url.Values{"topic": {"a"}, "id": {"earliest"}}, 400, `"earliest" is reserved`},
		{"control character in id", url.Values{"topic": {"a"}, "id": {"a\x01b"}}, 400, "control character"},
		{"tab in type", url.Values{"topic": {"a"}, "type": {"a\tb"}}, 400, "control character"},
		{"CR in type", url.Values{"topic": {"a"}, "type": {"a\rb"}}, 400, "type must not contain"},
		{"C1 control character in topic", url.Values{"topic": {"a\u0085"}}, 400, "U+0085"},
		{"invalid UTF-8 topic", url.Values{"topic": {"a\xff"}}, 400, "UTF-8"},
		{"invalid UTF-8 data", url.Values{"topic": {"a"}, "data": {"\xff\xfe"}}, 400, "data is not valid UTF-8"},
		{"retry with a sign", url.Values{"topic": {"a"}, "retry": {"-1"}}, 400, "retry must be"},
		{"retry with a fraction", url.Values{"topic": {"a"}, "retry": {"1.5"}}, 400, "retry must be"},
		{"second topic *", url.Values{"topic": {"a", "*"}}, 400, `"*" is reserved`},
		{"subscription event topic", url.Values{"topic": {"/.well-known/mercure/subscriptions/a/urn%3Ax"}}, 403, "reserved namespace"},
		{"absolute subscription event topic", url.Values{"topic": {"https://hub.example.com/.well-known/mercure/subscriptions/a/b"}}, 403, "reserved namespace"},
		{"the hub's own path", url.Values{"topic": {"/.well-known/mercure"}}, 403, "reserved namespace"},
		{"dot segments into the namespace", url.Values{"topic": {"/books/../.well-known/mercure/subscriptions"}}, 403, "reserved namespace"},
		{"percent-encoded namespace", url.Values{"topic": {"/.well-known/%6Dercure/subscriptions/x/y"}}, 403, "reserved namespace"},
		{"alternate topic in the namespace", url.Values{"topic": {"a", "/.well-known/mercure/x"}}, 403, "reserved namespace"},
		{"hub heartbeat topic", url.Values{"topic": {"/.well-known/ssehub/nodes/x"}}, 403, "reserved namespace"},
		{"subscription event topic with a bad escape", url.Values{"topic": {"/.well-known/mercure/subscriptions/%zz/x"}}, 403, "reserved namespace"},
		{"heartbeat topic with a bad escape", url.Values{"topic": {"/.well-known/ssehub/nodes/%zz"}}, 403, "reserved namespace"},
		{"escaped namespace with a bad escape", url.Values{"topic": {"https://h/%2Ewell-known/Mercure/x%"}}, 403, "reserved namespace"},
		{"a bad escape elsewhere is fine", url.Values{"topic": {"50%off"}, "data": {"ok"}}, 200, ""},
		{"a neighbour of the namespace is fine", url.Values{"topic": {"https://example.com/.well-known/mercure-docs"}, "data": {"ok"}}, 200, ""},
		{"a relative word is fine", url.Values{"topic": {"chat-room"}, "data": {"ok"}}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.post(t, tok, tc.form)
			if code != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("got %d %q, want %d saying %q", code, body, tc.status, tc.says)
			}
		})
	}
	// Only the three valid updates were dispatched.
	if got := watcher.datas(t, 3); !slices.Equal(got, []string{"ok", "ok", "ok"}) {
		t.Fatalf("watcher got %q", got)
	}
	watcher.quiet(t, e)
}

// A publisher-supplied id names one event: publishing it again is refused
// with 409 Conflict (the draft-08 "reject duplicates" of replayed publish
// requests), and nothing is dispatched.
func TestDuplicatePublisherIDs(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	s := e.open(t, "topic=a", nil)
	tok := token(t, pubKey, []string{"*"}, nil, time.Hour)
	if code, body := e.post(t, tok, url.Values{"topic": {"a"}, "id": {"urn:order:1"}, "data": {"first"}}); code != 200 || body != "urn:order:1" {
		t.Fatalf("first publish: %d %q", code, body)
	}
	code, body := e.post(t, tok, url.Values{"topic": {"a"}, "id": {"urn:order:1"}, "data": {"retry"}})
	if code != http.StatusConflict || !strings.Contains(body, `"urn:order:1" is already the id`) {
		t.Fatalf("duplicate publish: %d %q, want 409", code, body)
	}
	if got := s.datas(t, 1); got[0] != "first" {
		t.Fatalf("got %q", got)
	}
	s.quiet(t, e)
}

// Resuming from a publisher-supplied id works like from a hub id, on the
// memory log and on bbolt, including after a restart.
func TestResumeFromPublisherID(t *testing.T) {
	for _, backend := range []string{"memory", "bolt"} {
		t.Run(backend, func(t *testing.T) {
			var e *env
			if backend == "memory" {
				e = newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
			} else {
				e, _ = newBoltEnv(t, t.TempDir())
			}
			ids := []string{"urn:a", "", "urn:c", ""}
			for i, id := range ids {
				form := url.Values{"topic": {"t"}, "data": {string(rune('a' + i))}}
				if id != "" {
					form.Set("id", id)
				}
				e.publish(t, form)
			}
			for _, tc := range []struct {
				name  string
				query string
				hdr   http.Header
				want  []string
			}{
				{"header", "topic=t", http.Header{"Last-Event-Id": {"urn:a"}}, []string{"b", "c", "d"}},
				{"last_event_id", "topic=t&last_event_id=urn%3Ac", nil, []string{"d"}},
				{"lastEventID", "match=t&lastEventID=urn%3Ac", nil, []string{"d"}},
			} {
				s := e.open(t, tc.query, tc.hdr)
				if g := s.resp.Header.Get("Ssehub-Gap"); g != "" {
					t.Fatalf("%s: gap %q", tc.name, g)
				}
				if got := s.datas(t, len(tc.want)); !slices.Equal(got, tc.want) {
					t.Fatalf("%s: resumed with %q, want %q", tc.name, got, tc.want)
				}
				s.quiet(t, e)
			}
		})
	}
	t.Run("bolt after a restart", func(t *testing.T) {
		dir := t.TempDir()
		e, stop := newBoltEnv(t, dir)
		e.publish(t, url.Values{"topic": {"t"}, "id": {"urn:before"}, "data": {"before"}})
		e.publish(t, url.Values{"topic": {"t"}, "data": {"after"}})
		stop()
		e, _ = newBoltEnv(t, dir)
		s := e.open(t, "topic=t", http.Header{"Last-Event-Id": {"urn:before"}})
		if got := s.datas(t, 1); got[0] != "after" {
			t.Fatalf("after a restart resumed with %q", got)
		}
		// The id is still taken after the restart.
		if code, _ := e.post(t, token(t, pubKey, []string{"*"}, nil, time.Hour), url.Values{"topic": {"t"}, "id": {"urn:before"}}); code != http.StatusConflict {
			t.Fatalf("duplicate after restart: %d", code)
		}
	})
}

// newBoltEnv starts the real API over a bbolt log in dir. stop stops it,
// as a restart would; the test's end does too.
func newBoltEnv(t *testing.T, dir string) (e *env, stop func()) {
	t.Helper()
	l, err := boltlog.Open(dir, boltlog.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(l, hub.Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Hub: h, Anonymous: true, Publishers: verifier(t, pubKey), Subscribers: verifier(t, subKey)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			h.Close()
			api.Close(5 * time.Second)
			srv.CloseClientConnections()
			srv.Close()
			l.Close()
		})
	}
	t.Cleanup(stop)
	return &env{srv: srv, hub: h, url: srv.URL + httpapi.Path}, stop
}

// A draft-08 client end to end: an RFC 9068 access token (typ at+jwt) with
// iss and aud bound to the hub's configuration and authorization_details
// whose exact matchers contain "{" (byte-for-byte topics, not templates).
func TestDraft08AccessTokenEndToEnd(t *testing.T) {
	const (
		issuer   = "https://auth.example.com"
		audience = "https://hub.example.com/.well-known/mercure"
		literal  = "https://example.com/books/{id}"
		book1    = "https://example.com/books/1"
	)
	strict := func(secret string) *auth.Verifier {
		k, err := auth.ParseKey("HS256", secret)
		if err != nil {
			t.Fatal(err)
		}
		v, err := auth.NewVerifier(auth.Config{Keys: auth.Keys{k}, Issuers: []string{issuer}, Audience: audience, RequireAccessToken: true, RequireExpiration: true})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	e := newEnv(t, httpapi.Config{Anonymous: true, Publishers: strict(pubKey), Subscribers: strict(subKey)}, hub.Options{})
	sign := func(key, typ string, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tok.Header["typ"] = typ
		s, err := tok.SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims := func(details ...map[string]any) jwt.MapClaims {
		return jwt.MapClaims{"iss": issuer, "aud": audience, "sub": "user-1", "exp": time.Now().Add(time.Hour).Unix(), "authorization_details": details}
	}
	subTok := sign(subKey, "at+jwt", claims(map[string]any{
		"type": "https://mercure.rocks/authorization-detail", "actions": []string{"subscribe"},
		"topics": []map[string]string{{"match": literal, "match_type": "exact"}},
	}))
	pubTok := sign(pubKey, "at+jwt", claims(map[string]any{
		"type": "mercure", "actions": []string{"publish"}, "topics": []map[string]string{{"match": "*"}},
	}))

	// Routing selects both topics; the token grants private updates of the
	// literal topic only.
	s := e.open(t, "match="+url.QueryEscape(literal)+"&match_urlpattern="+url.QueryEscape("https://example.com/books/:id"), http.Header{"Authorization": {"Bearer " + subTok}})
	for _, u := range []url.Values{
		{"topic": {book1}, "data": {"private book 1"}, "private": {"on"}},
		{"topic": {literal}, "data": {"private literal"}, "private": {"on"}},
		{"topic": {book1}, "data": {"public book 1"}},
	} {
		if code, body := e.post(t, pubTok, u); code != 200 {
			t.Fatalf("publish with an access token: %d %s", code, body)
		}
	}
	if got := s.datas(t, 2); !slices.Equal(got, []string{"private literal", "public book 1"}) {
		t.Fatalf("got %q", got)
	}
	s.quiet(t, e)

	for _, tc := range []struct {
		name, tok, says string
	}{
		{"plain JWT refused when at+jwt is required", sign(subKey, "JWT", claims()), "at+jwt"},
		{"other issuer", sign(subKey, "at+jwt", jwt.MapClaims{"iss": "https://evil.example", "aud": audience, "exp": time.Now().Add(time.Hour).Unix()}), "issuer"},
		{"other audience", sign(subKey, "at+jwt", jwt.MapClaims{"iss": issuer, "aud": "https://other-hub.example", "exp": time.Now().Add(time.Hour).Unix()}), "audience"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := mustRequest(t, "GET", e.url+"?match=a")
			req.Header.Set("Authorization", "Bearer "+tc.tok)
			if code, body := do(t, req); code != 401 || !strings.Contains(body, tc.says) {
				t.Fatalf("got %d %q, want 401 saying %q", code, body, tc.says)
			}
		})
	}
}
