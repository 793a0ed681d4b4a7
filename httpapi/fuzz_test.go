package httpapi_test

import (
	"context"
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

func fuzzVerifier(f *testing.F, secret string) *auth.Verifier {
	k, err := auth.ParseKey("HS256", secret)
	if err != nil {
		f.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Keys: auth.Keys{k}})
	if err != nil {
		f.Fatal(err)
	}
	return v
}

// FuzzPublishForm posts arbitrary bodies to the publish handler: it never
// panics or answers 5xx, refuses with a message, and when it accepts, the
// log holds exactly the event the form described.
func FuzzPublishForm(f *testing.F) {
	for _, s := range []string{
		"topic=a&data=hello",
		"topic=a&topic=b&data=x%0Ay&id=urn:1&type=t&retry=100&private=on",
		"topic=&data=", "data=x", "topic=a&id=12", "topic=a&type=ssehub.gap", "topic=a&retry=1e3",
		"topic=%FF&data=%00%0D", "topic=a;b&data=c", "%zz", strings.Repeat("topic=a&", 50),
		"topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D&data=x", "topic=a&data=" + strings.Repeat("x", 2000),
	} {
		f.Add(s, byte(0))
	}
	f.Add("topic=a", byte(1))
	f.Add("topic=a", byte(2))
	api, h := fuzzAPI(f, httpapi.Config{MaxBodyBytes: 4096, Limits: httpapi.Limits{MaxEventBytes: 1024}})
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
