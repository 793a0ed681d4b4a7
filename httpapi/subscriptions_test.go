package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/sse"
)

// presenceSelector is a 0.x selector matching every subscription event
// (/subscriptions/{topic}/{subscriber}) and the collection URL.
const presenceSelector = "/.well-known/mercure/subscriptions{/topic}{/subscriber}"

// subscriptionJSON is a subscription as the API and its events show it.
type subscriptionJSON struct {
	Context     string          `json:"@context"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Topic       string          `json:"topic"`
	Match       string          `json:"match"`
	MatchType   string          `json:"match_type"`
	Subscriber  string          `json:"subscriber"`
	Active      bool            `json:"active"`
	Payload     json.RawMessage `json:"payload"`
	LastEventID string          `json:"lastEventID"`
}

type subscriptionsJSON struct {
	Context       string             `json:"@context"`
	ID            string             `json:"id"`
	Type          string             `json:"type"`
	LastEventID   string             `json:"lastEventID"`
	LastEventIDSC string             `json:"last_event_id"`
	Subscriptions []subscriptionJSON `json:"subscriptions"`
}

// getJSON GETs path on the hub with tok and decodes a 200 answer into v; it
// returns the status and body.
func getJSON(t *testing.T, base, path, tok string, v any) (int, string) {
	t.Helper()
	req := mustRequest(t, "GET", base+path)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == 200 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/ld+json" {
			t.Fatalf("Content-Type %q", ct)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
	}
	return resp.StatusCode, string(body)
}

// eventually retries check for a few seconds; subscription events are
// published asynchronously.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// list returns the collection at path once fn accepts it.
func list(t *testing.T, base, path, tok string, what string, fn func(subscriptionsJSON) bool) subscriptionsJSON {
	t.Helper()
	var got subscriptionsJSON
	eventually(t, what, func() bool {
		got = subscriptionsJSON{}
		code, body := getJSON(t, base, path, tok, &got)
		if code != 200 && code != 503 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		return code == 200 && fn(got)
	})
	return got
}

func subscriptionEvent(t *testing.T, ev sse.Event) subscriptionJSON {
	t.Helper()
	var s subscriptionJSON
	if err := json.Unmarshal([]byte(ev.Data), &s); err != nil {
		t.Fatalf("subscription event %+v: %v", ev, err)
	}
	return s
}

func TestSubscriptionsAPI(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true, Subscriptions: true}, hub.Options{})
	base := e.srv.URL
	watcher := token(t, subKey, nil, []string{presenceSelector}, time.Hour)

	// An empty list first.
	empty := list(t, base, httpapi.SubscriptionsPath, watcher, "the API is ready", func(s subscriptionsJSON) bool { return true })
	if empty.Type != "Subscriptions" || empty.Context != "https://mercure.rocks/" || empty.ID != httpapi.SubscriptionsPath ||
		len(empty.Subscriptions) != 0 || empty.LastEventID == "" || empty.LastEventID != empty.LastEventIDSC {
		t.Fatalf("empty collection %+v", empty)
	}

	// Alice subscribes with a payload in her token.
	alice := auth.TokenSpec{Key: subKey, Subscribe: []string{"https://example.com/doc/{id}"}, Payload: map[string]string{"user": "alice"}, TTL: time.Hour}
	aliceTok, err := alice.Sign()
	if err != nil {
		t.Fatal(err)
	}
	const doc = "https://example.com/doc/1"
	e.open(t, "topic="+url.QueryEscape(doc), http.Header{"Authorization": {"Bearer " + aliceTok}})
	got := list(t, base, httpapi.SubscriptionsPath, watcher, "alice is listed", func(s subscriptionsJSON) bool { return len(s.Subscriptions) == 1 })
	a := got.Subscriptions[0]
	wantID := httpapi.SubscriptionsPath + "/https%3A%2F%2Fexample.com%2Fdoc%2F1/" + escape(a.Subscriber)
	if a.Type != "Subscription" || a.Topic != doc || a.Match != doc || a.MatchType != "exact" || !a.Active ||
		!strings.HasPrefix(a.Subscriber, "urn:uuid:") || string(a.Payload) != `{"user":"alice"}` || a.ID != wantID {
		t.Fatalf("alice's subscription %+v (want id %s)", a, wantID)
	}

	// The cursor: list, then subscribe to subscription events from the
	// returned lastEventID; the next subscription event arrives exactly
	// once, and nothing from before the list is replayed.
	snapshot := list(t, base, httpapi.SubscriptionsPath, watcher, "a snapshot", func(subscriptionsJSON) bool { return true })
	events := e.open(t, "topic="+url.QueryEscape(presenceSelector)+"&lastEventID="+url.QueryEscape(snapshot.LastEventID), http.Header{"Authorization": {"Bearer " + watcher}})
	// The watcher's own subscription comes first: it is one too.
	if own := subscriptionEvent(t, events.next(t)); own.Topic != presenceSelector || !own.Active {
		t.Fatalf("first event %+v, want the watcher's own start", own)
	}
	bob := e.open(t, "match="+url.QueryEscape(doc), nil) // anonymous, draft-08 form
	started := subscriptionEvent(t, events.next(t))
	if !started.Active || started.Subscriber == a.Subscriber || started.MatchType != "exact" || started.Payload != nil {
		t.Fatalf("bob's start event %+v", started)
	}
	// Bob used the draft-08 form: his event's id is the draft-08 topic.
	if !strings.HasPrefix(started.ID, httpapi.SubscriptionsPath+"/exact/") {
		t.Fatalf("bob's event id %q", started.ID)
	}
	events.quiet(t, e)

	// The single-subscription resources, in both forms.
	var single subscriptionJSON
	if code, body := getJSON(t, base, started.ID, watcher, &single); code != 403 {
		// The watcher's 0.x selector does not match draft-08 paths.
		t.Fatalf("draft-08 path with a 0.x watcher token: %d %s", code, body)
	}
	star := token(t, subKey, nil, []string{"*"}, time.Hour)
	if code, body := getJSON(t, base, started.ID, star, &single); code != 200 || single.Subscriber != started.Subscriber || single.LastEventID == "" {
		t.Fatalf("GET %s: %d %s", started.ID, code, body)
	}
	oldForm := httpapi.SubscriptionsPath + "/" + escape(doc) + "/" + escape(started.Subscriber)
	if code, body := getJSON(t, base, oldForm, watcher, &single); code != 200 || single.Subscriber != started.Subscriber {
		t.Fatalf("GET %s: %d %s", oldForm, code, body)
	}
	var byTopic subscriptionsJSON
	if code, body := getJSON(t, base, httpapi.SubscriptionsPath+"/"+escape(doc), watcher, &byTopic); code != 200 || len(byTopic.Subscriptions) != 2 {
		t.Fatalf("by topic: %d %s", code, body)
	}
	if code, body := getJSON(t, base, httpapi.SubscriptionsPath+"/exact/"+escape(doc), star, &byTopic); code != 200 || len(byTopic.Subscriptions) != 2 {
		t.Fatalf("by draft-08 matcher: %d %s", code, body)
	}
	if code, _ := getJSON(t, base, httpapi.SubscriptionsPath+"/"+escape(doc)+"/urn%3Auuid%3Anobody", watcher, &single); code != 404 {
		t.Fatalf("unknown subscriber: %d", code)
	}

	// Bob leaves: exactly one "ended" event.
	bob.resp.Body.Close()
	ended := subscriptionEvent(t, events.next(t))
	if ended.Active || ended.Subscriber != started.Subscriber || ended.ID != started.ID {
		t.Fatalf("bob's end event %+v", ended)
	}
	events.quiet(t, e)
	list(t, base, httpapi.SubscriptionsPath, watcher, "bob is gone", func(s subscriptionsJSON) bool {
		return !slices.ContainsFunc(s.Subscriptions, func(x subscriptionJSON) bool { return x.Subscriber == started.Subscriber }) &&
			slices.ContainsFunc(s.Subscriptions, func(x subscriptionJSON) bool { return x.Subscriber == a.Subscriber })
	})
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func TestSubscriptionsAPIAuthorization(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true, Subscriptions: true}, hub.Options{})
	base := e.srv.URL
	e.open(t, "topic=secret-room", nil)
	for _, tc := range []struct {
		name, tok string
		status    int
		says      string
	}{
		{"no token", "", 401, "needs a subscriber token"},
		{"a token for other topics", token(t, subKey, nil, []string{"https://example.com/{x}"}, time.Hour), 403, "do not match"},
		{"a publisher token", token(t, pubKey, []string{"*"}, []string{"*"}, time.Hour), 401, "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v subscriptionsJSON
			if code, body := getJSON(t, base, httpapi.SubscriptionsPath, tc.tok, &v); code != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("got %d %q, want %d saying %q", code, body, tc.status, tc.says)
			}
		})
	}
	// A token allowed the collection URL only sees no subscription: each
	// is listed only to tokens that may receive its events.
	only := token(t, subKey, nil, []string{httpapi.SubscriptionsPath}, time.Hour)
	all := token(t, subKey, nil, []string{"*"}, time.Hour)
	list(t, base, httpapi.SubscriptionsPath, all, "the subscription is listed", func(s subscriptionsJSON) bool { return len(s.Subscriptions) == 1 })
	if got := list(t, base, httpapi.SubscriptionsPath, only, "list", func(subscriptionsJSON) bool { return true }); len(got.Subscriptions) != 0 {
		t.Fatalf("a token for the collection only saw %+v", got.Subscriptions)
	}
	// Subscription events are private.
	anon := e.open(t, "topic=*", nil)
	e.open(t, "topic=another-room", nil)
	e.publish(t, url.Values{"topic": {"x"}, "data": {"public"}})
	if ev := anon.next(t); ev.Data != "public" {
		t.Fatalf("an anonymous subscriber got %+v", ev)
	}
}

func TestSubscriptionsAPIDisabled(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	var v subscriptionsJSON
	code, body := getJSON(t, e.srv.URL, httpapi.SubscriptionsPath, token(t, subKey, nil, []string{"*"}, time.Hour), &v)
	if code != 404 || !strings.Contains(body, "not enabled") || !strings.Contains(body, "hint Subscriptions") {
		t.Fatalf("got %d %q", code, body)
	}
}

// node is one hub process of a cluster sharing a log.
type node struct {
	hub  *hub.Hub
	api  *httpapi.API
	srv  *httptest.Server
	stop func()
}

func startNode(t *testing.T, l ssehub.Log, heartbeat time.Duration) *node {
	t.Helper()
	h, err := hub.New(l, hub.Options{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Hub: h, Anonymous: true, Subscriptions: true, SubscriptionsHeartbeat: heartbeat,
		Publishers: verifier(t, pubKey), Subscribers: verifier(t, subKey)})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{hub: h, api: api, srv: httptest.NewServer(api)}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			h.Close()
			api.Close(5 * time.Second)
			n.srv.CloseClientConnections()
			n.srv.Close()
		})
	}
	t.Cleanup(n.stop)
	return n
}

// The view is built from the log: a hub started later lists the
// subscriptions of another; when a hub stops, another ends its
// subscriptions for it.
func TestSubscriptionsAcrossHubs(t *testing.T) {
	l := memlog.New(memlog.Options{})
	t.Cleanup(func() { l.Close() })
	star := token(t, subKey, nil, []string{"*"}, time.Hour)
	one := startNode(t, l, 100*time.Millisecond)
	e1 := &env{srv: one.srv, hub: one.hub, url: one.srv.URL + httpapi.Path}
	e1.open(t, "topic=room", nil)
	list(t, one.srv.URL, httpapi.SubscriptionsPath, star, "node one lists its subscriber", func(s subscriptionsJSON) bool { return len(s.Subscriptions) == 1 })

	two := startNode(t, l, 100*time.Millisecond) // reads the history
	got := list(t, two.srv.URL, httpapi.SubscriptionsPath, star, "node two lists node one's subscriber", func(s subscriptionsJSON) bool { return len(s.Subscriptions) == 1 })
	e2 := &env{srv: two.srv, hub: two.hub, url: two.srv.URL + httpapi.Path}
	watch := e2.open(t, "topic="+url.QueryEscape(presenceSelector)+"&lastEventID="+got.LastEventID, http.Header{"Authorization": {"Bearer " + star}})

	if own := subscriptionEvent(t, watch.next(t)); own.Topic != presenceSelector {
		t.Fatalf("first event %+v, want the watcher's own start", own)
	}
	one.stop() // its goodbye heartbeat says it is gone; node two ends its subscriptions
	ended := subscriptionEvent(t, watch.next(t))
	if ended.Active || ended.Subscriber != got.Subscriptions[0].Subscriber {
		t.Fatalf("end event %+v", ended)
	}
	list(t, two.srv.URL, httpapi.SubscriptionsPath, star, "node one's subscriber is gone", func(s subscriptionsJSON) bool {
		return !slices.ContainsFunc(s.Subscriptions, func(x subscriptionJSON) bool { return x.Subscriber == ended.Subscriber })
	})
}

// A hub that died without a word (kill -9) stops sending heartbeats: once
// they expire, a live hub ends its subscriptions.
func TestSubscriptionsOfADeadHubExpire(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true, Subscriptions: true, SubscriptionsHeartbeat: 50 * time.Millisecond}, hub.Options{})
	star := token(t, subKey, nil, []string{"*"}, time.Hour)
	list(t, e.srv.URL, httpapi.SubscriptionsPath, star, "ready", func(subscriptionsJSON) bool { return true })
	// What a hub that then died left in the log: a heartbeat valid for a
	// little while, and the start of one subscription.
	dead := "urn:uuid:00000000-0000-4000-8000-00000000dead"
	start := subscriptionJSON{Context: "https://mercure.rocks/", ID: httpapi.SubscriptionsPath + "/room/urn%3Auuid%3A1", Type: "Subscription", Topic: "room", Match: "room", MatchType: "exact", Subscriber: "urn:uuid:1", Active: true}
	data, _ := json.Marshal(struct {
		subscriptionJSON
		Node string `json:"node"`
	}{start, dead})
	hb := fmt.Sprintf(`{"type":"Node","node":%q,"expires":%d}`, dead, time.Now().Add(300*time.Millisecond).UnixMilli())
	if err := e.hub.Publish(context.Background(),
		&ssehub.Event{Topics: []string{"/.well-known/ssehub/nodes/" + escape(dead)}, Type: "mercure", Data: hb, Private: true},
		&ssehub.Event{Topics: []string{start.ID}, Data: string(data), Private: true},
	); err != nil {
		t.Fatal(err)
	}
	list(t, e.srv.URL, httpapi.SubscriptionsPath, star, "the dead hub's subscription is listed", func(s subscriptionsJSON) bool { return len(s.Subscriptions) == 1 })
	got := list(t, e.srv.URL, httpapi.SubscriptionsPath, star, "the dead hub's subscription expires", func(s subscriptionsJSON) bool { return len(s.Subscriptions) == 0 })
	// The end went through the log, as an event every hub sees.
	events := e.open(t, "topic=*&lastEventID=earliest", http.Header{"Authorization": {"Bearer " + star}})
	var ends []subscriptionJSON
	for {
		ev := events.next(t)
		if ev.Type == "message" {
			s := subscriptionEvent(t, ev)
			if s.Type == "Subscription" && !s.Active {
				ends = append(ends, s)
			}
		}
		if ev.ID == got.LastEventID {
			break
		}
	}
	if len(ends) != 1 || ends[0].Subscriber != "urn:uuid:1" {
		t.Fatalf("end events %+v", ends)
	}
	if !slices.ContainsFunc(ends, func(s subscriptionJSON) bool { return s.ID == start.ID }) {
		t.Fatalf("no end for %s", start.ID)
	}
}
