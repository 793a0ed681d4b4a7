package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/log/boltlog"
	"github.com/ssehub/ssehub/ops"
)

// A flipped byte in the history file: the event "w3-5" reads back damaged.
// A replay that met it answered 200, sent retry: and closed, at every
// reconnect (EventSource looped; long polling answered 500), and said so
// only at debug level. Now the subscriber gets a gap in its place and the
// rest, the hub logs it at warn, and ssehub_damaged_events_total counts it.
func TestDamagedHistoryIsAGap(t *testing.T) {
	dir := t.TempDir()
	l, err := boltlog.Open(dir, boltlog.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var evs []*ssehub.Event
	for i := range 10 {
		evs = append(evs, &ssehub.Event{Topics: []string{"t"}, Data: fmt.Sprintf("w3-%d", i)})
	}
	if err := l.Append(t.Context(), evs...); err != nil { // one commit: each record once in the file
		t.Fatal(err)
	}
	l.Close()
	file := filepath.Join(dir, boltlog.FileName)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(b, []byte("w3-5")) != 1 {
		t.Fatal(`"w3-5" is not once in the file`)
	}
	b[bytes.Index(b, []byte("w3-5"))+3] = 'X'
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}

	var logged servicetest.LogBuffer
	l, err = boltlog.Open(dir, boltlog.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var m *ops.Metrics
	e := newEnvOn(t, l, httpapi.Config{Anonymous: true}, hub.Options{Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))},
		func(h *hub.Hub, c *httpapi.Config) { m = ops.NewMetrics(h); c.Metrics = m })
	from := url.Values{"lastEventID": {evs[2].WireID()}}.Encode()
	gapAfter := `"resumed_after":"` + evs[5].WireID() + `"`
	var streams []*stream
	for _, sel := range []string{"t", "*"} { // the topic index, the shared scan
		s := e.open(t, "topic="+url.QueryEscape(sel)+"&"+from, nil)
		streams = append(streams, s)
		var got []string
		for range 7 {
			ev := s.next(t)
			if ev.Type == hub.GapType {
				if !strings.Contains(ev.Data, `"reason":"damaged"`) || !strings.Contains(ev.Data, gapAfter) {
					t.Fatalf("%s: gap event %+v, want reason damaged, %s", sel, ev, gapAfter)
				}
				got = append(got, "gap")
				continue
			}
			got = append(got, ev.Data)
		}
		if want := "w3-3 w3-4 gap w3-6 w3-7 w3-8 w3-9"; strings.Join(got, " ") != want {
			t.Fatalf("%s: resumed with %q, want %q", sel, got, want)
		}
	}
	// The streams stay open, live.
	e.publish(t, url.Values{"topic": {"t"}, "data": {"live"}})
	for _, s := range streams {
		if ev := s.next(t); ev.Data != "live" {
			t.Fatalf("live: %+v", ev)
		}
	}
	t.Run("long poll", func(t *testing.T) {
		poll := func(query string) (ans struct {
			Events []struct{ Type, Data string }
			Last   string `json:"last_event_id"`
		}) {
			code, body := do(t, mustReq(t, "GET", e.url+"?topic=t&poll=1&"+query))
			if code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			if err := json.Unmarshal([]byte(body), &ans); err != nil {
				t.Fatal(err)
			}
			return ans
		}
		// What comes before the damaged event, then (resuming from there)
		// the gap and what follows.
		ans := poll(from)
		if len(ans.Events) == 0 || ans.Events[0].Data != "w3-3" {
			t.Fatalf("first poll: %+v", ans)
		}
		for ans.Events[len(ans.Events)-1].Data != "w3-4" {
			if ans = poll(url.Values{"lastEventID": {ans.Last}}.Encode()); len(ans.Events) == 0 {
				t.Fatalf("no more events before the damaged one: %+v", ans)
			}
		}
		ans = poll(url.Values{"lastEventID": {ans.Last}}.Encode())
		if len(ans.Events) == 0 || ans.Events[0].Type != hub.GapType || !strings.Contains(ans.Events[0].Data, `"damaged"`) {
			t.Fatalf("poll after w3-4: %+v, want a damaged gap first", ans)
		}
	})
	if got := scrape(t, m)["ssehub_damaged_events_total"]; got < 1 {
		t.Errorf("ssehub_damaged_events_total = %v", got)
	}
	if w := logged.String(); !strings.Contains(w, "level=WARN") || !strings.Contains(w, "damaged") || !strings.Contains(w, evs[5].WireID()) {
		t.Errorf("no warning naming the damaged event: %q", w)
	}
}
