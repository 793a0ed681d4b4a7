package streams_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/ops"
	"github.com/ssehub/ssehub/sse"
	"github.com/ssehub/ssehub/streams"
)

const jsonCT = "application/json"

// A stream's state (content type, TTL, closed, producer numbers, Stream-Seq)
// lives in the log with its data: it survives a restart on every durable
// engine, and every hub on a shared log serves the same streams.
func TestEngines(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			l, reopen := e.open(t)
			a := serve(t, l, streams.Config{AnonymousWrites: true})
			const p = "/v1/stream/orders/7"
			a.do(t, "PUT", p, `[{"n":0}]`, "Content-Type", jsonCT, "Stream-TTL", "3600").want(t, 201, "create")
			r := a.do(t, "POST", p, `[{"n":1},{"n":2}]`, "Content-Type", jsonCT, "Producer-Id", "w", "Producer-Epoch", "0", "Producer-Seq", "0").want(t, 200, "producer append")
			if r.h.Get("Producer-Seq") != "0" {
				t.Fatalf("Producer-Seq = %q, want 0", r.h.Get("Producer-Seq"))
			}
			a.do(t, "POST", p, `{"n":3}`, "Content-Type", jsonCT, "Producer-Id", "w", "Producer-Epoch", "0", "Producer-Seq", "1", "Stream-Seq", "001").want(t, 200, "append with Stream-Seq")
			closing := []string{"Content-Type", jsonCT, "Stream-Closed", "true", "Producer-Id", "w", "Producer-Epoch", "0", "Producer-Seq", "2"}
			r = a.do(t, "POST", p, `{"n":4}`, closing...).want(t, 200, "append and close")
			tail := r.next()
			const all = `[{"n":0},{"n":1},{"n":2},{"n":3},{"n":4}]`

			check := func(t *testing.T, n *node, when string) {
				t.Helper()
				h := n.do(t, "HEAD", p, "").want(t, 200, when+": HEAD")
				if h.h.Get("Stream-Closed") != "true" || h.h.Get("Stream-TTL") != "3600" || h.h.Get("Content-Type") != jsonCT || h.next() != tail {
					t.Fatalf("%s: HEAD headers %v, want closed, TTL 3600, %s, next offset %s", when, h.h, jsonCT, tail)
				}
				g := n.do(t, "GET", p+"?offset=-1", "").want(t, 200, when+": read")
				if g.body != all || g.h.Get("Stream-Closed") != "true" {
					t.Fatalf("%s: read %q (closed %q), want %s and closed", when, g.body, g.h.Get("Stream-Closed"), all)
				}
				// The closing append's retry is a duplicate; any other is refused.
				n.do(t, "POST", p, `{"n":4}`, closing...).want(t, 204, when+": retry of the closing append")
				n.do(t, "POST", p, `{"n":5}`, "Content-Type", jsonCT, "Producer-Id", "w", "Producer-Epoch", "0", "Producer-Seq", "3").want(t, 409, when+": append after close")
				n.do(t, "POST", p, `{"n":5}`, "Content-Type", jsonCT).want(t, 409, when+": plain append after close")
			}
			check(t, a, "before restart")
			if reopen == nil {
				return
			}

			// A second hub on the same log (Redis, NATS) serves the same
			// stream; its readers wake for the first hub's appends.
			if e.name != "boltlog" {
				b := serve(t, reopen(t), streams.Config{AnonymousWrites: true})
				check(t, b, "on a second hub")
				const q = "/v1/stream/chat"
				r := b.do(t, "PUT", q, "", "Content-Type", "text/plain").want(t, 201, "create on the second hub")
				polled := make(chan response, 1)
				go func() {
					polled <- a.do(t, "GET", q+"?live=long-poll&offset="+r.next(), "")
				}()
				time.Sleep(200 * time.Millisecond) // let the poll wait
				b.do(t, "POST", q, "token", "Content-Type", "text/plain").want(t, 204, "append on the second hub")
				select {
				case got := <-polled:
					got.want(t, 200, "long-poll on the first hub")
					if got.body != "token" {
						t.Fatalf("long-poll on the first hub read %q, want %q", got.body, "token")
					}
				case <-time.After(10 * time.Second):
					t.Fatal("a long-poll on one hub did not wake for an append on the other")
				}
				a.do(t, "POST", q, "", "Stream-Closed", "true").want(t, 204, "close on the first hub")
				b.do(t, "POST", q, "more", "Content-Type", "text/plain").want(t, 409, "append on the second hub after a close on the first")
			}

			a.stop()
			l.Close()
			check(t, serve(t, reopen(t), streams.Config{AnonymousWrites: true}), "after restart")
		})
	}
}

// An offset is the position of the last data event read, as the Mercure
// endpoint's event id padded to 20 digits: offsets sort as strings, and
// an EventSource on the stream's topic resumes from one with Last-Event-ID.
func TestOffsetsAreMercureIDs(t *testing.T) {
	n := serve(t, memlog.New(memlog.Options{}), streams.Config{AnonymousWrites: true})
	const p = "/v1/stream/tokens"
	var offsets []string
	offsets = append(offsets, n.do(t, "PUT", p, "", "Content-Type", "text/plain").want(t, 201, "create").next())
	for _, tok := range []string{"Hel", "lo", " wor", "ld\n"} {
		offsets = append(offsets, n.do(t, "POST", p, tok, "Content-Type", "text/plain").want(t, 204, "append").next())
	}
	if !slices.IsSorted(offsets) || len(offsets[0]) != 20 || len(offsets[4]) != 20 {
		t.Fatalf("offsets %q: want 20 characters each, sorted as strings", offsets)
	}
	if got := n.do(t, "GET", p+"?offset="+offsets[2], "").body; got != " world\n" {
		t.Fatalf("read after the second token: %q, want %q", got, " world\n")
	}

	id := strings.TrimLeft(offsets[2], "0")
	req, _ := http.NewRequestWithContext(t.Context(), "GET", n.url+"/.well-known/mercure?topic="+url.QueryEscape(p), nil)
	req.Header.Set("Last-Event-ID", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := sse.NewDecoder(bufio.NewReader(resp.Body))
	for i, want := range []string{" wor", "ld\n"} {
		ev, err := dec.Next()
		if err != nil {
			t.Fatalf("Mercure event %d: %v", i, err)
		}
		wantID := strings.TrimLeft(offsets[3+i], "0")
		if ev.Data != want || ev.ID != wantID || ev.Type != "message" {
			t.Fatalf("Mercure event %d: id %q type %q data %q, want id %q, a message with %q", i, ev.ID, ev.Type, ev.Data, wantID, want)
		}
	}
}

// Bad requests get the status the protocol names and a message that says
// what to fix; none of them changes the stream.
func TestBadInput(t *testing.T) {
	var limited []string
	n := serve(t, memlog.New(memlog.Options{}), streams.Config{AnonymousWrites: true, MaxBodyBytes: 1024, OnLimit: func(l string) { limited = append(limited, l) }})
	const p = "/v1/stream/bad"
	n.do(t, "PUT", p, "x", "Content-Type", "text/plain").want(t, 201, "create")
	n.do(t, "PUT", "/v1/stream/bad-json", "", "Content-Type", jsonCT).want(t, 201, "create JSON")
	n.do(t, "POST", p, "y", "Content-Type", "text/plain", "Stream-Seq", "b").want(t, 204, "append with Stream-Seq")
	n.do(t, "POST", p, "z", "Content-Type", "text/plain", "Producer-Id", "w", "Producer-Epoch", "3", "Producer-Seq", "0").want(t, 200, "producer append")
	before := n.do(t, "GET", p, "").body

	for _, tc := range []struct {
		name, method, path, body string
		headers                  []string
		code                     int
		says                     string
	}{
		{"TTL with a leading zero", "PUT", "/v1/stream/new", "", []string{"Stream-TTL", "0360"}, 400, "Stream-TTL"},
		{"TTL and expiry", "PUT", "/v1/stream/new", "", []string{"Stream-TTL", "60", "Stream-Expires-At", "2030-01-01T00:00:00Z"}, 400, "not both"},
		{"expiry not RFC 3339", "PUT", "/v1/stream/new", "", []string{"Stream-Expires-At", "tomorrow"}, 400, "RFC 3339"},
		{"other configuration", "PUT", p, "", []string{"Content-Type", jsonCT}, 409, "another configuration"},
		{"fork of nothing", "PUT", "/v1/stream/new", "", []string{"Stream-Forked-From", "/v1/stream/none"}, 404, "no stream at"},
		{"fork beyond the tail", "PUT", "/v1/stream/new", "", []string{"Stream-Forked-From", p, "Stream-Fork-Offset", "09999999999999999999"}, 400, "beyond the source's tail"},
		{"fork offset garbage", "PUT", "/v1/stream/new", "", []string{"Stream-Forked-From", p, "Stream-Fork-Offset", "abc"}, 400, "not an offset"},
		{"append to nothing", "POST", "/v1/stream/none", "x", []string{"Content-Type", "text/plain"}, 404, "create it with PUT"},
		{"empty append", "POST", p, "", []string{"Content-Type", "text/plain"}, 400, "body is empty"},
		{"no content type", "POST", p, "x", nil, 400, "Content-Type is required"},
		{"other content type", "POST", p, "x", []string{"Content-Type", jsonCT}, 409, "does not match"},
		{"bad JSON", "POST", "/v1/stream/bad-json", "{", []string{"Content-Type", jsonCT}, 400, "not valid JSON"},
		{"JSON not in UTF-8", "POST", "/v1/stream/bad-json", "{\"s\":\"\xff\"}", []string{"Content-Type", jsonCT}, 400, "not valid UTF-8"},
		{"empty JSON array", "POST", "/v1/stream/bad-json", "[]", []string{"Content-Type", jsonCT}, 400, "empty JSON array"},
		{"too large", "POST", p, strings.Repeat("x", 1025), []string{"Content-Type", "text/plain"}, 413, "exceeds 1024 bytes"},
		{"Stream-Seq regression", "POST", p, "x", []string{"Content-Type", "text/plain", "Stream-Seq", "a"}, 409, "not greater"},
		{"producer headers apart", "POST", p, "x", []string{"Content-Type", "text/plain", "Producer-Id", "w"}, 400, "go together"},
		{"producer epoch not a number", "POST", p, "x", []string{"Content-Type", "text/plain", "Producer-Id", "w", "Producer-Epoch", "x", "Producer-Seq", "1"}, 400, "non-negative integers"},
		{"producer epoch too large", "POST", p, "x", []string{"Content-Type", "text/plain", "Producer-Id", "w", "Producer-Epoch", "9007199254740992", "Producer-Seq", "0"}, 400, "2^53-1"},
		{"stale producer epoch", "POST", p, "x", []string{"Content-Type", "text/plain", "Producer-Id", "w", "Producer-Epoch", "2", "Producer-Seq", "1"}, 403, "stale"},
		{"new epoch not at 0", "POST", p, "x", []string{"Content-Type", "text/plain", "Producer-Id", "w", "Producer-Epoch", "4", "Producer-Seq", "1"}, 400, "start at Producer-Seq 0"},
		{"producer sequence gap", "POST", p, "x", []string{"Content-Type", "text/plain", "Producer-Id", "w", "Producer-Epoch", "3", "Producer-Seq", "5"}, 409, "expected 1"},
		{"bad offset", "GET", p + "?offset=abc", "", nil, 400, "not an offset"},
		{"two offsets", "GET", p + "?offset=-1&offset=now", "", nil, 400, "one offset"},
		{"bad live mode", "GET", p + "?offset=-1&live=ws", "", nil, 400, "live must be"},
		{"live without offset", "GET", p + "?live=sse", "", nil, 400, "needs an offset"},
		{"control character in the path", "PUT", "/v1/stream/a%01b", "", nil, 400, "control character"},
		{"not a method of the protocol", "PATCH", p, "x", nil, 405, "not part of the Durable Streams protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.do(t, tc.method, tc.path, tc.body, tc.headers...)
			if r.code != tc.code || !strings.Contains(r.body, tc.says) {
				t.Fatalf("%s %s: %d %q, want %d saying %q", tc.method, tc.path, r.code, r.body, tc.code, tc.says)
			}
		})
	}
	if after := n.do(t, "GET", p, "").body; after != before {
		t.Fatalf("the refused requests changed the stream: %q, then %q", before, after)
	}
	n.do(t, "HEAD", "/v1/stream/new", "").want(t, 404, "no refused create made a stream")
	if !slices.Equal(limited, []string{"streams_body"}) {
		t.Fatalf("limits counted: %q, want the body limit once", limited)
	}
}

// Without AnonymousWrites, writers need a publisher token whose publish
// selectors match the stream's path, readers a subscriber token whose
// subscribe selectors do.
func TestAuthorization(t *testing.T) {
	const pubKey, subKey = "publisher-secret-0123456789abcdef", "subscriber-secret-0123456789abcde"
	verifier := func(secret string) *auth.Verifier { return servicetest.Verifier(t, secret) }
	token := func(key string, pub, sub []string) string {
		tok, err := auth.NewToken(key, "HS256", pub, sub, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	n := serve(t, memlog.New(memlog.Options{}), streams.Config{Publishers: verifier(pubKey), Subscribers: verifier(subKey)})
	const p = "/v1/stream/jobs/1"
	mine := token(pubKey, []string{"/v1/stream/jobs/{id}"}, nil)
	other := token(pubKey, []string{"/v1/stream/other"}, nil)
	reader := token(subKey, nil, []string{"/v1/stream/jobs/{id}"})

	if r := n.do(t, "PUT", p, "", "Content-Type", "text/plain"); r.code != 401 || !strings.Contains(r.body, "publisher JWT") {
		t.Fatalf("create without a token: %d %q, want 401 naming the publisher JWT", r.code, r.body)
	}
	if r := n.do(t, "PUT", p, "", "Content-Type", "text/plain", "Authorization", other); r.code != 403 || !strings.Contains(r.body, p) {
		t.Fatalf("create with a token for another stream: %d %q, want 403 naming the stream", r.code, r.body)
	}
	n.do(t, "PUT", p, "", "Content-Type", "text/plain", "Authorization", reader).want(t, 401, "create with a subscriber token")
	n.do(t, "PUT", p, "hi", "Content-Type", "text/plain", "Authorization", mine).want(t, 201, "create with a matching publisher token")
	n.do(t, "POST", p, "!", "Content-Type", "text/plain", "Authorization", other).want(t, 403, "append with a token for another stream")

	if r := n.do(t, "GET", p, ""); r.code != 401 || !strings.Contains(r.body, "subscriber JWT") {
		t.Fatalf("read without a token: %d %q, want 401 naming the subscriber JWT", r.code, r.body)
	}
	n.do(t, "GET", p, "", "Authorization", token(subKey, nil, []string{"/v1/stream/other"})).want(t, 403, "read with a token for another stream")
	if r := n.do(t, "GET", p, "", "Authorization", reader).want(t, 200, "read with a matching token"); r.body != "hi" {
		t.Fatalf("read %q, want %q", r.body, "hi")
	}
	n.do(t, "DELETE", p, "", "Authorization", mine).want(t, 204, "delete with a matching publisher token")

	// Reload replaces the keys for the requests that follow.
	const newPubKey = "publisher-secret-after-reload-0123456"
	n.ds.Reload(verifier(newPubKey), verifier(subKey))
	n.do(t, "PUT", p, "", "Content-Type", "text/plain", "Authorization", mine).want(t, 401, "create with a token of the replaced key")
	n.do(t, "PUT", p, "", "Content-Type", "text/plain", "Authorization", token(newPubKey, []string{p}, nil)).want(t, 201, "create with a token of the new key")

	anon := serve(t, memlog.New(memlog.Options{}), streams.Config{Anonymous: true, Publishers: verifier(pubKey)})
	anon.do(t, "PUT", p, "x", "Content-Type", "text/plain", "Authorization", mine).want(t, 201, "create")
	anon.do(t, "GET", p, "").want(t, 200, "anonymous read with Anonymous")
	anon.do(t, "POST", p, "y", "Content-Type", "text/plain").want(t, 401, "anonymous append with Anonymous (reads only)")
}

// A long-poll at the tail waits for the next append; an SSE read gets the
// data, a control event with the next offset, and closes after the
// stream's end with streamClosed.
func TestLiveReads(t *testing.T) {
	n := serve(t, memlog.New(memlog.Options{}), streams.Config{AnonymousWrites: true, PollTimeout: 300 * time.Millisecond})
	const p = "/v1/stream/live"
	tail := n.do(t, "PUT", p, "", "Content-Type", "application/octet-stream").want(t, 201, "create").next()
	r := n.do(t, "GET", p+"?live=long-poll&offset="+tail, "").want(t, 204, "long-poll with nothing new")
	if r.h.Get("Stream-Up-To-Date") != "true" || r.h.Get("Stream-Cursor") == "" {
		t.Fatalf("long-poll timeout headers %v: want Stream-Up-To-Date and Stream-Cursor", r.h)
	}
	wrote := make(chan [2]int, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		a := n.do(t, "POST", p, "\x00\x01\xff", "Content-Type", "application/octet-stream")
		c := n.do(t, "POST", p, "", "Stream-Closed", "true")
		wrote <- [2]int{a.code, c.code}
	}()
	defer func() {
		if codes := <-wrote; codes != [2]int{204, 204} {
			t.Errorf("append and close answered %v, want 204 each", codes)
		}
	}()
	resp, err := http.Get(n.url + p + "?live=sse&offset=" + tail)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Stream-Sse-Data-Encoding") != "base64" {
		t.Fatalf("binary stream over SSE: headers %v, want stream-sse-data-encoding: base64", resp.Header)
	}
	dec := sse.NewDecoder(resp.Body)
	var got []string
	for {
		ev, err := dec.Next()
		if err != nil {
			break
		}
		got = append(got, ev.Type+" "+ev.Data)
	}
	joined := strings.Join(got, "\n")
	if !strings.Contains(joined, "data AAH/") || !strings.Contains(joined, `"streamClosed":true`) {
		t.Fatalf("SSE read:\n%s\nwant the bytes in base64 and a closing control event", joined)
	}
	if last := got[len(got)-1]; !strings.HasPrefix(last, "control ") || !strings.Contains(last, strconv.Quote("streamClosed")) {
		t.Fatalf("the SSE read did not end with the closing control event: %q", last)
	}
}

// Live reads hold a connection: with the connection limits they share with
// the Mercure API wrapped around them, they count like subscriptions;
// other requests do not.
func TestLiveReadsCountAsConnections(t *testing.T) {
	n := serveAPI(t, memlog.New(memlog.Options{}), httpapi.Config{Anonymous: true, Connections: ops.NewConnLimiter(ops.ConnLimits{MaxConnectionsPerIP: 1})}, streams.Config{AnonymousWrites: true})
	ds := n.ds

	const p = "/v1/stream/limited"
	n.do(t, "PUT", p, "x", "Content-Type", "text/plain").want(t, 201, "create")
	resp, err := http.Get(n.url + p + "?offset=-1&live=sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("first live read: %d", resp.StatusCode)
	}
	// The reader is parked once it has caught up and followed the stream;
	// an append before that would leave it replaying, on its goroutine.
	servicetest.WaitFor(t, 5*time.Second, "the SSE reader to be parked", func() bool { return ds.Parked() == 1 })
	if r := n.do(t, "GET", p+"?offset=-1&live=long-poll", ""); r.code != 429 {
		t.Fatalf("second live read from one address with MaxConnectionsPerIP 1: %d %q, want 429", r.code, r.body)
	}
	n.do(t, "GET", p+"?offset=-1", "").want(t, 200, "catch-up read beside a live one")
	n.do(t, "POST", p, "y", "Content-Type", "text/plain").want(t, 204, "append beside a live read")

	// The SSE reader is held by the poller (a local log): its slot is
	// given back when its connection ends, not when its handler returned.
	if park := ds.Parked(); park != 1 {
		t.Fatalf("%d SSE readers parked, want 1", park)
	}
	n.do(t, "POST", p, "", "Stream-Closed", "true").want(t, 204, "close")
	dec := sse.NewDecoder(resp.Body)
	for {
		ev, err := dec.Next()
		if err != nil {
			t.Fatalf("the parked SSE read ended before its closing control event: %v", err)
		}
		if ev.Type == "control" && strings.Contains(ev.Data, `"streamClosed":true`) {
			break
		}
	}
	servicetest.WaitFor(t, 5*time.Second, "the parked reader's slot to be given back", func() bool {
		return n.do(t, "GET", p+"?offset=-1&live=long-poll", "").code == 200
	})
}

// A parked SSE read ends by closing its connection, so its response tells
// the client not to reuse the connection: a fetch reader (the protocol's
// JS client, the conformance suite) would otherwise send its next request
// into the closed socket and fail ("other side closed").
func TestParkedSSEReadsDoNotOfferTheirConnection(t *testing.T) {
	n := serveAPI(t, memlog.New(memlog.Options{}), httpapi.Config{Anonymous: true}, streams.Config{AnonymousWrites: true})
	const p = "/v1/stream/parked-close"
	n.do(t, "PUT", p, "x", "Content-Type", "text/plain").want(t, 201, "create")
	resp, err := http.Get(n.url + p + "?offset=-1&live=sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	servicetest.WaitFor(t, 5*time.Second, "the SSE reader to be parked", func() bool { return n.ds.Parked() == 1 })
	n.do(t, "POST", p, "y", "Content-Type", "text/plain", "Stream-Closed", "true").want(t, 204, "append and close")
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reading the parked stream to its end: %v", err)
	}
	if !resp.Close {
		t.Fatalf("a parked SSE response without Connection: close (header %q): the client may reuse a connection the hub closes", resp.Header.Get("Connection"))
	}
}

// A reader that catches up while other streams are busy is parked too:
// its subscription starts behind the log's head (other streams' events
// came after its offset), and it is parked once that short replay is done,
// not left on its own goroutine for the rest of its lifetime.
func TestSSEReaderBehindOtherStreamsIsParked(t *testing.T) {
	n := serveAPI(t, memlog.New(memlog.Options{}), httpapi.Config{Anonymous: true}, streams.Config{AnonymousWrites: true})
	const p, other = "/v1/stream/quiet", "/v1/stream/busy"
	n.do(t, "PUT", p, "x", "Content-Type", "text/plain").want(t, 201, "create")
	n.do(t, "PUT", other, "", "Content-Type", "text/plain").want(t, 201, "create the other stream")
	for i := range 3 {
		n.do(t, "POST", other, "t"+strconv.Itoa(i), "Content-Type", "text/plain").want(t, 204, "append to the other stream")
	}
	resp, err := http.Get(n.url + p + "?offset=-1&live=sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	servicetest.WaitFor(t, 5*time.Second, "the SSE reader to be parked", func() bool { return n.ds.Parked() == 1 })
	n.do(t, "POST", p, "y", "Content-Type", "text/plain").want(t, 204, "append to the followed stream")
	dec := sse.NewDecoder(resp.Body)
	var data []string
	for len(data) < 2 {
		ev, err := dec.Next()
		if err != nil {
			t.Fatalf("the parked SSE read ended early: %v (data so far %q)", err, data)
		}
		if ev.Type == "data" {
			data = append(data, ev.Data)
		}
	}
	if data[0] != "x" || data[1] != "y" {
		t.Fatalf("parked reader got %q, want [x y]", data)
	}
}

// Two hubs on one shared log that get writes to the same stream at the
// same moment check each against the other's: of two appends with the
// same Stream-Seq, one is refused (409), and an append racing a close is
// either refused or readable before the close, never acknowledged and
// lost behind it.
func TestConcurrentWritesOnTwoHubs(t *testing.T) {
	for _, e := range engines() {
		if e.name != "redislog" && e.name != "natslog" {
			continue // one writer: memlog, boltlog
		}
		t.Run(e.name, func(t *testing.T) {
			l, reopen := e.open(t)
			a := serve(t, l, streams.Config{AnonymousWrites: true})
			b := serve(t, reopen(t), streams.Config{AnonymousWrites: true})
			const p = "/v1/stream/race"
			a.do(t, "PUT", p, "", "Content-Type", "text/plain").want(t, 201, "create")
			b.do(t, "HEAD", p, "").want(t, 200, "the second hub reads the stream")
			both := func(fa, fb func() response) (response, response) {
				var ra, rb response
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); ra = fa() }()
				go func() { defer wg.Done(); rb = fb() }()
				wg.Wait()
				return ra, rb
			}
			for i := range 40 {
				seq := fmt.Sprintf("%04d", i)
				ra, rb := both(
					func() response { return a.do(t, "POST", p, "a"+seq, "Content-Type", "text/plain", "Stream-Seq", seq) },
					func() response { return b.do(t, "POST", p, "b"+seq, "Content-Type", "text/plain", "Stream-Seq", seq) })
				if ok := (ra.code == 204) != (rb.code == 204); !ok || ra.code != 409 && rb.code != 409 {
					t.Fatalf("Stream-Seq %s on both hubs at once: %d %q and %d %q, want one 204 and one 409", seq, ra.code, ra.body, rb.code, rb.body)
				}
			}
			ra, rb := both(
				func() response { return a.do(t, "POST", p, "last", "Content-Type", "text/plain") },
				func() response { return b.do(t, "POST", p, "", "Stream-Closed", "true") })
			if rb.code != 204 {
				t.Fatalf("close: %d %q", rb.code, rb.body)
			}
			got := a.do(t, "GET", p+"?offset=-1", "").want(t, 200, "read")
			if ra.code == 204 && !strings.HasSuffix(got.body, "last") {
				t.Fatalf("an append acknowledged while the other hub closed the stream is not in it: %q", got.body)
			}
		})
	}
}
