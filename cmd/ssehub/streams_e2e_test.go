package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Every acknowledged append to a Durable Stream, and the stream's state
// (content type, closed, producer numbers), survive kill -9 of the hub
// mid-burst with durable bbolt history.
func TestDurableStreamsSurviveKill(t *testing.T) {
	data := t.TempDir()
	h := startHub(t, data, "--anonymous-writes")
	do := func(h *hubProc, method, path, body string, headers ...string) (int, http.Header, string, error) {
		req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b), nil
	}
	const closed, open = "/v1/stream/done", "/v1/stream/busy"
	for _, r := range []struct{ method, path, body string }{{"PUT", closed, "a"}, {"POST", closed, "b"}, {"PUT", open, ""}, {"POST", open, "first"}} {
		if code, _, body, err := do(h, r.method, r.path, r.body, "Content-Type", "text/plain", "Producer-Id", "p", "Producer-Epoch", "0", "Producer-Seq", "0"); err != nil || code >= 300 {
			t.Fatalf("%s %s: %d %q %v", r.method, r.path, code, body, err)
		}
	}
	if code, _, _, err := do(h, "POST", closed, "", "Stream-Closed", "true"); err != nil || code != 204 {
		t.Fatalf("close: %d %v", code, err)
	}

	// Writers append numbered tokens until the hub dies; each remembers
	// what was acknowledged.
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				tok := fmt.Sprintf("<%d.%d>", w, i)
				code, _, _, err := do(h, "POST", open, tok, "Content-Type", "text/plain")
				if err != nil || code != 204 {
					return
				}
				mu.Lock()
				acked[tok] = true
				n := len(acked)
				mu.Unlock()
				if n >= 400 && w == 0 {
					h.stop(t, syscall.SIGKILL)
					return
				}
			}
		}()
	}
	wg.Wait()

	h2 := startHub(t, data, "--anonymous-writes")
	code, hdr, body, err := do(h2, "GET", open+"?offset=-1", "")
	if err != nil || code != 200 {
		t.Fatalf("read after kill -9: %d %v", code, err)
	}
	for tok := range acked {
		if strings.Count(body, tok) != 1 {
			t.Fatalf("acknowledged token %s appears %d times after kill -9 (%d acknowledged)", tok, strings.Count(body, tok), len(acked))
		}
	}
	if !strings.HasPrefix(body, "first") || hdr.Get("Stream-Closed") != "" {
		t.Fatalf("the open stream after kill -9: %.20q… closed=%q, want it to start with its first append and be open", body, hdr.Get("Stream-Closed"))
	}
	code, hdr, body, _ = do(h2, "GET", closed+"?offset=-1", "")
	if code != 200 || body != "ab" || hdr.Get("Stream-Closed") != "true" {
		t.Fatalf("closed stream after kill -9: %d %q closed=%q, want 200 \"ab\" closed", code, body, hdr.Get("Stream-Closed"))
	}
	if code, _, _, _ := do(h2, "POST", closed, "b", "Content-Type", "text/plain", "Producer-Id", "p", "Producer-Epoch", "0", "Producer-Seq", "0"); code != 409 {
		t.Fatalf("append to the closed stream after kill -9: %d, want 409", code)
	}
	if code, hdr, _, _ := do(h2, "POST", open, "first", "Content-Type", "text/plain", "Producer-Id", "p", "Producer-Epoch", "0", "Producer-Seq", "0"); code != 204 || hdr.Get("Producer-Seq") != "0" {
		t.Fatalf("producer retry after kill -9: %d Producer-Seq %q, want 204 (a duplicate) with 0", code, hdr.Get("Producer-Seq"))
	}
	t.Logf("%d acknowledged appends, all present once after kill -9", len(acked))
}
