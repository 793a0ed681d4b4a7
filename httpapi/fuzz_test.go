package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/topic"
)

// fuzzAPI is an API over a small memory log, served in-process (fuzzing
// wants many executions per second).
func fuzzAPI(f *testing.F, cfg httpapi.Config) (*httpapi.API, *hub.Hub) {
	l := memlog.New(memlog.Options{MaxEvents: 64})
	h, err := hub.New(l, hub.Options{Heartbeat: -1})
	if err != nil {
		f.Fatal(err)
	}
	cfg.Hub = h
	cfg.Publishers = fuzzVerifier(f, pubKey)
	cfg.Subscribers = fuzzVerifier(f, subKey)
	cfg.NoPark = true
	api, err := httpapi.New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		h.Close()
		api.Close(time.Second)
		l.Close()
	})
	return api, h
}

func fuzzVerifier(f *testing.F, secret string) *auth.Verifier { return servicetest.Verifier(f, secret) }

// FuzzPublishForm posts arbitrary bodies to the publish handler: it never
// panics or answers 5xx, refuses with a message, and when it accepts, the
// log holds exactly the event the form described, within the bounds that
// keep its dispatch cheap: at most Limits.MaxPublishTopics topics (each is
// matched against every template of every subscriber) and MaxEventBytes
// of data.
func FuzzPublishForm(f *testing.F) {
	for _, s := range []string{
		"topic=a&data=hello",
		"topic=a&topic=b&data=x%0Ay&id=urn:1&type=t&retry=100&private=on",
		"topic=&data=", "data=x", "topic=a&id=12", "topic=a&type=ssehub.gap", "topic=a&retry=1e3",
		"topic=%FF&data=%00%0D", "topic=a;b&data=c", "%zz", strings.Repeat("topic=a&", 50),
		"topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D&data=x", "topic=a&data=" + strings.Repeat("x", 2000),
		"topic=a&id=+urn%3A1", "topic=a&id=urn%3A1%C2%A0", strings.Repeat("topic=a&", 9),
		"topic=%2F.well-known%2Fmercure%2Fsubscriptions%2F%25zz%2Fx&data=forged",
	} {
		f.Add(s, byte(0))
	}
	f.Add("topic=a", byte(1))
	f.Add("topic=a", byte(2))
	const maxTopics = 8
	api, h := fuzzAPI(f, httpapi.Config{MaxBodyBytes: 4096, Limits: httpapi.Limits{MaxEventBytes: 1024, MaxPublishTopics: maxTopics}})
	tok, err := auth.TokenSpec{Key: pubKey, Publish: []string{"*"}, TTL: 24 * time.Hour}.Sign()
	if err != nil {
		f.Fatal(err)
	}
	ctypes := []string{"application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "text/plain"}
	f.Fuzz(func(t *testing.T, body string, ct byte) {
		req := httptest.NewRequest("POST", httpapi.Path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctypes[int(ct)%len(ctypes)])
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
		case 400, 403, 409, 413, 415: // 403: a reserved topic; 409: a duplicate id
			if strings.TrimSpace(rec.Body.String()) == "" {
				t.Fatalf("%d without a message", rec.Code)
			}
			return
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		form, err := url.ParseQuery(body)
		if err != nil {
			t.Fatalf("accepted a body that does not parse: %q", body)
		}
		_, last, err := h.Log().Bounds(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		evs, err := h.Log().Read(context.Background(), last-1, 1)
		if err != nil || len(evs) != 1 {
			t.Fatalf("reading back: %v %d", err, len(evs))
		}
		ev := evs[0]
		if got := rec.Body.String(); got != ev.WireID() {
			t.Fatalf("answered id %q, logged %q", got, ev.WireID())
		}
		if !slices.Equal(ev.Topics, form["topic"]) || ev.Data != form.Get("data") || ev.Type != form.Get("type") {
			t.Fatalf("logged %+v for form %v", ev, form)
		}
		if len(ev.Data) > 1024 {
			t.Fatalf("accepted %d bytes of data, over the limit", len(ev.Data))
		}
		if len(ev.Topics) > maxTopics {
			t.Fatalf("accepted %d topics, over the limit of %d", len(ev.Topics), maxTopics)
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
	})
}

// FuzzLastEventID resumes with arbitrary last event ids, through ParseID
// and through a (long-poll) subscribe request, which resolves the id in the
// hub: it never panics or fails, and a gap is signalled exactly when the
// id is not one the log can resume from.
func FuzzLastEventID(f *testing.F) {
	for _, s := range []string{"", "0", "1", "5", "earliest", "nope", "urn:ev:3", "00", "-1", "18446744073709551615",
		"18446744073709551616", "9999999999999999999999", " 1", "1\x00", "\xff", strings.Repeat("7", 300)} {
		f.Add(s)
	}
	api, h := fuzzAPI(f, httpapi.Config{Anonymous: true})
	var ids []string
	for i := range 8 {
		ev := &ssehub.Event{Topics: []string{"a"}, Data: "x"}
		if i%3 == 0 {
			ev.ID = "urn:ev:" + string(rune('0'+i))
		}
		if err := h.Publish(context.Background(), ev); err != nil {
			f.Fatal(err)
		}
		ids = append(ids, ev.WireID())
	}
	sel, err := topic.Compile("a")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id string) {
		pos, ok := ssehub.ParseID(id)
		if ok && ssehub.FormatID(pos) != id {
			t.Fatalf("ParseID(%q) = %d, which formats as %q", id, pos, ssehub.FormatID(pos))
		}

		sub, err := h.Subscribe(context.Background(), hub.Request{Selectors: []topic.Selector{sel}, LastEventID: id})
		if err != nil {
			t.Fatalf("Subscribe(%q): %v", id, err)
		}
		gap := sub.Gap()
		sub.Close()
		known := id == "" || id == hub.LastEventIDEarliest || slices.Contains(ids, id)
		switch {
		case known && gap.Reason != "":
			t.Fatalf("gap %+v for the known id %q", gap, id)
		case !known && !ok && gap.Reason != hub.GapUnknown:
			t.Fatalf("gap %+v for the unknown id %q", gap, id)
		case gap.Reason != "" && gap.Reason != hub.GapUnknown && gap.Reason != hub.GapExpired:
			t.Fatalf("gap reason %q for %q", gap.Reason, id)
		}

		req := httptest.NewRequest("GET", httpapi.Path+"?topic=a&poll=1&timeout=1&last_event_id="+url.QueryEscape(id), nil)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("poll with last event id %q: %d %s", id, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("Ssehub-Gap"); got != gap.Reason {
			t.Fatalf("poll with %q: Ssehub-Gap %q, hub said %q", id, got, gap.Reason)
		}
	})
}

// FuzzSubscribeQuery subscribes (long polling, through the real handler)
// with arbitrary query strings, after publishing one event with an
// arbitrary topic. The handler never panics or answers 5xx and refuses
// with a message; when it accepts, the subscription's selectors are within
// the bounds that keep every publish's dispatch cheap — at most MaxTopics
// selectors whose topic.Selector.Cost (the size of their compiled
// patterns, which bounds the work of matching one topic byte; the topic
// package's fuzzing checks that it does) adds up to at most
// Limits.MaxSelectorCost — and the event is delivered exactly when one of
// them matches its topic.
func FuzzSubscribeQuery(f *testing.F) {
	for _, seed := range [][2]string{
		{"topic=a", "a"},
		{"topic=*", "anything"},
		{"topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D", "https://example.com/books/1"},
		{"topic=%7Ba%3A100%7D%7Bb%3A100%7D%7Bc%3A100%7D", "xyz"},
		{"match=a&match_urlpattern=https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid", "https://example.com/books/2"},
		{"matchURLPattern=%2Fbooks%2F%3Aid(%5Cd%2B)&matchExact=%7Bx%7D", "{x}"},
		{"match_urlpattern=https%3A%2F%2F*.example.com%2F*&topic=b", "https://a.example.com/x"},
		{"topic=a&topic=a&match=a", "a"},
		{"topic=%7B", "{"},
		{"matchFoo=a", "a"},
		{"topic=", "a"},
		{"topic=a&timeout=abc", "a"},
		{"topic=a&authorization=x.y.z", "a"},
		{"topic=%FF", "\xff"},
		{"topic=a&lastEventID=earliest&poll=0", "a"},
		{strings.Repeat("topic=%7B%3Bx%2Cy%7D&", 30), ";x=1"},
		{strings.Repeat("match_urlpattern=%2F%3Aa(x%7Cy)*%2F%3Ab&", 20), "/x/y"},
	} {
		f.Add(seed[0], seed[1])
	}
	const maxSelectors, maxCost = 100, 5000 // the defaults
	api, h := fuzzAPI(f, httpapi.Config{Anonymous: true, PollTimeout: time.Millisecond})
	f.Fuzz(func(t *testing.T, query, eventTopic string) {
		ev := &ssehub.Event{Topics: []string{eventTopic}, Data: "x"}
		if ev.Validate() != nil {
			ev.Topics = []string{"fuzz/other"}
		}
		if err := h.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		poll := func(after string) (int, string, []string, string) {
			req := httptest.NewRequest("GET", httpapi.Path, nil)
			req.URL.RawQuery = query // as is: NewRequest would refuse some
			req.Header.Set("Accept", "application/json")
			req.Header.Set("Last-Event-ID", after)
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if rec.Code != 200 {
				return rec.Code, rec.Body.String(), nil, ""
			}
			var ans struct {
				Events []struct{ ID string }
				Last   string `json:"last_event_id"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
				t.Fatalf("answer %q: %v", rec.Body, err)
			}
			var ids []string
			for _, e := range ans.Events {
				ids = append(ids, e.ID)
			}
			return 200, "", ids, ans.Last
		}
		code, body, ids, last := poll(ssehub.FormatID(ev.Pos - 1))
		switch code {
		case 200:
		case 400, 401, 403:
			if strings.TrimSpace(body) == "" {
				t.Fatalf("%d without a message", code)
			}
			return
		default:
			t.Fatalf("status %d for %q: %s", code, query, body)
		}

		sels := fuzzSelectors(t, query)
		cost := 0
		for _, s := range sels {
			cost += s.Cost()
		}
		if len(sels) == 0 || len(sels) > maxSelectors || cost > maxCost {
			t.Fatalf("accepted %d selectors costing %d (at most %d costing %d): %q", len(sels), cost, maxSelectors, maxCost, query)
		}
		want := slices.ContainsFunc(sels, func(s topic.Selector) bool { return s.Match(ev.Topics[0]) })
		// A poll answers what it has when its timeout ends, maybe before
		// the replay reached the event: poll on from its cursor.
		for tries := 0; ; tries++ {
			if slices.Contains(ids, ev.WireID()) {
				if !want {
					t.Fatalf("event of topic %q delivered to %q, whose selectors do not match it", ev.Topics[0], query)
				}
				return
			}
			if pos, ok := ssehub.ParseID(last); ok && pos >= ev.Pos {
				if want {
					t.Fatalf("event of topic %q not delivered to %q, whose selectors match it", ev.Topics[0], query)
				}
				return
			}
			if tries == 100 {
				t.Fatalf("the poll does not get to the event (cursor %q, event %d)", last, ev.Pos)
			}
			if code, body, ids, last = poll(last); code != 200 {
				t.Fatalf("polling on: %d %s", code, body)
			}
		}
	})
}

// fuzzSelectors compiles the topic selectors of a subscribe query as the
// protocol defines them (topic=, match= and match_urlpattern= in their
// spellings), each distinct one once: the oracle FuzzSubscribeQuery
// checks the handler's bounds against.
func fuzzSelectors(t *testing.T, query string) []topic.Selector {
	q, _ := url.ParseQuery(query) // as http.Request.URL.Query does
	type key struct{ kind, src string }
	seen := map[key]bool{}
	var out []topic.Selector
	for name, values := range q {
		kind := ""
		switch name {
		case "topic":
			kind = "selector"
		case "match", "match_exact", "matchExact":
			kind = "exact"
		case "match_urlpattern", "matchURLPattern":
			kind = "urlpattern"
		default:
			continue
		}
		for _, v := range values {
			if seen[key{kind, v}] {
				continue
			}
			seen[key{kind, v}] = true
			var s topic.Selector
			var err error
			switch kind {
			case "selector":
				s, err = topic.Compile(v)
			case "exact":
				s = topic.CompileExact(v)
			default:
				s, err = topic.CompileURLPattern(v)
			}
			if err != nil {
				t.Fatalf("accepted the selector %q (%s), which does not compile: %v", v, name, err)
			}
			out = append(out, s)
		}
	}
	return out
}
