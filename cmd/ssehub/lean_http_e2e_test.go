package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A publisher's keep-alive connection is served by the lean HTTP/1.1 loop
// (internal/h1) from its first POST, with the answers net/http gave; a GET
// on it goes back to net/http, and the next POST is taken over again.
// With --lean-http=false net/http serves everything.
func TestLeanHTTPServesKeepAlivePublishes(t *testing.T) {
	for _, lean := range []bool{true, false} {
		name := "lean"
		if !lean {
			name = "net/http"
		}
		t.Run(name, func(t *testing.T) {
			var extra []string
			if !lean {
				extra = append(extra, "--lean-http=false")
			}
			p := startHub(t, t.TempDir(), extra...)
			s := p.subscribe(t, "topic=a", "")
			one := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
			defer one.CloseIdleConnections()
			do := func(method, path, body string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
				if method == "POST" {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Authorization", "Bearer "+publisherToken(t))
				}
				resp, err := one.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			publish := func(data string) string {
				t.Helper()
				code, id := do("POST", "/.well-known/mercure", url.Values{"topic": {"a"}, "data": {data}}.Encode())
				if code != 200 || id == "" {
					t.Fatalf("publish %q: %d %q", data, code, id)
				}
				return id
			}
			ids := []string{publish("1"), publish("2")}
			if code, body := do("POST", "/.well-known/mercure", "data=x"); code != 400 || !strings.Contains(body, "topic") {
				t.Fatalf("a publish without a topic: %d %q, want 400 saying what is missing", code, body)
			}
			taken := scrapeValue(t, p.base+"/metrics", "ssehub_lean_http_connections")
			if lean && taken != 1 || !lean && taken != -1 {
				t.Fatalf("ssehub_lean_http_connections %v with --lean-http=%v (-1: absent)", taken, lean)
			}
			if code, body := do("GET", "/healthz", ""); code != 200 {
				t.Fatalf("a GET on the publisher's connection: %d %q", code, body)
			}
			ids = append(ids, publish("3"))
			for i, want := range []string{"1", "2", "3"} {
				ev := s.next(t)
				if ev.Data != want || ev.ID != ids[i] {
					t.Fatalf("event %d: %q id %q, want %q id %q", i, ev.Data, ev.ID, want, ids[i])
				}
			}
		})
	}
}
