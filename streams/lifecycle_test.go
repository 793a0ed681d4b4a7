package streams_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/log/boltlog"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/streams"
)

// A fork made while its source is being deleted either fails or keeps the
// source alive (soft-deleted, 410); never a fork of a stream that is gone,
// whose path could then be made a fork of its own fork (a loop that
// crashed every read of it).
func TestForkAndDeleteOfTheSourceAtOnce(t *testing.T) {
	n := serve(t, memlog.New(memlog.Options{}), streams.Config{AnonymousWrites: true})
	for i := range 30 {
		src, fork := fmt.Sprintf("/v1/stream/race/s%d", i), fmt.Sprintf("/v1/stream/race/f%d", i)
		n.do(t, "PUT", src, "data", "Content-Type", "text/plain").want(t, 201, "create the source")
		var wg sync.WaitGroup
		var forked response
		wg.Add(2)
		go func() { defer wg.Done(); n.do(t, "DELETE", src, "") }()
		go func() {
			defer wg.Done()
			forked = n.do(t, "PUT", fork, "", "Stream-Forked-From", src)
		}()
		wg.Wait()
		if forked.code != 201 {
			continue
		}
		if h := n.do(t, "HEAD", src, ""); h.code != 410 {
			t.Fatalf("round %d: the fork was made and its source answers HEAD %d, want 410 (soft-deleted while the fork lives)", i, h.code)
		}
		if r := n.do(t, "PUT", src, "", "Stream-Forked-From", fork); r.code != 409 {
			t.Fatalf("round %d: making the source's path a fork of its fork answered %d, want 409", i, r.code)
		}
		if r := n.do(t, "GET", fork+"?offset=-1", "").want(t, 200, "read the fork"); r.body != "data" {
			t.Fatalf("round %d: the fork reads %q, want its source's data", i, r.body)
		}
	}
}

// Forking reads the source: the writer's token must cover the source too.
func TestForkNeedsTheSource(t *testing.T) {
	const pubKey, subKey = "publisher-secret-0123456789abcdef", "subscriber-secret-0123456789abcde"
	n := serve(t, memlog.New(memlog.Options{}), streams.Config{Publishers: servicetest.Verifier(t, pubKey), Subscribers: servicetest.Verifier(t, subKey)})
	token := func(pub []string) string {
		tok, err := auth.NewToken(pubKey, "HS256", pub, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	owner, mallory := token([]string{"/v1/stream/secret"}), token([]string{"/v1/stream/mallory/{x}"})
	n.do(t, "PUT", "/v1/stream/secret", "TOP SECRET", "Content-Type", "text/plain", "Authorization", owner).want(t, 201, "create")
	if r := n.do(t, "PUT", "/v1/stream/mallory/f", "", "Stream-Forked-From", "/v1/stream/secret", "Authorization", mallory); r.code != 403 || !strings.Contains(r.body, "/v1/stream/secret") {
		t.Fatalf("fork of a stream the token does not cover: %d %q, want 403 naming it", r.code, r.body)
	}
	both := token([]string{"/v1/stream/mallory/{x}", "/v1/stream/secret"})
	n.do(t, "PUT", "/v1/stream/mallory/f", "", "Stream-Forked-From", "/v1/stream/secret", "Authorization", both).want(t, 201, "fork with a token covering both")
}

// A cookie token does not authorize writes from a page of another origin
// (cross-site request forgery), as for Mercure publishes.
func TestCrossSiteCookieWritesAreRefused(t *testing.T) {
	const pubKey = "publisher-secret-0123456789abcdef"
	n := serve(t, memlog.New(memlog.Options{}), streams.Config{Publishers: servicetest.Verifier(t, pubKey), Anonymous: true})
	tok, _ := auth.NewToken(pubKey, "HS256", []string{"*"}, nil, time.Hour)
	cookie := "mercureAuthorization=" + tok
	n.do(t, "PUT", "/v1/stream/c", "", "Content-Type", "text/plain", "Cookie", cookie, "Origin", n.url).want(t, 201, "create from the hub's own origin")
	if r := n.do(t, "POST", "/v1/stream/c", "forged", "Content-Type", "text/plain", "Cookie", cookie, "Origin", "https://evil.example"); r.code != 403 || !strings.Contains(r.body, "cross-site") {
		t.Fatalf("cookie append from another origin: %d %q, want 403 saying cross-site", r.code, r.body)
	}
	n.do(t, "DELETE", "/v1/stream/c", "", "Cookie", cookie, "Origin", "https://evil.example").want(t, 403, "cookie delete from another origin")
	n.do(t, "POST", "/v1/stream/c", "x", "Content-Type", "text/plain", "Authorization", "Bearer "+tok, "Origin", "https://evil.example").want(t, 204, "a bearer token from another origin (not a cookie)")
	if r := n.do(t, "GET", "/v1/stream/c", ""); r.body != "x" {
		t.Fatalf("the stream holds %q, want only the bearer append", r.body)
	}
}

// One JSON append flattens into one event per message: their number is
// bounded, so one request cannot push the whole history out.
func TestJSONAppendsAreBoundedInMessages(t *testing.T) {
	var limited []string
	n := serve(t, memlog.New(memlog.Options{}), streams.Config{AnonymousWrites: true, MaxMessages: 100, OnLimit: func(l string) { limited = append(limited, l) }})
	n.do(t, "PUT", "/v1/stream/j", "", "Content-Type", jsonCT).want(t, 201, "create")
	many := "[" + strings.TrimSuffix(strings.Repeat("0,", 101), ",") + "]"
	if r := n.do(t, "POST", "/v1/stream/j", many, "Content-Type", jsonCT); r.code != 413 || !strings.Contains(r.body, "at most 100") {
		t.Fatalf("101 messages in one append: %d %q, want 413 naming the bound", r.code, r.body)
	}
	n.do(t, "POST", "/v1/stream/j", "["+strings.TrimSuffix(strings.Repeat("0,", 100), ",")+"]", "Content-Type", jsonCT).want(t, 204, "100 messages")
	if len(limited) != 1 || limited[0] != "streams_messages" {
		t.Fatalf("limits counted: %q", limited)
	}
}

// A long-poll answer says Stream-Up-To-Date only when it holds everything:
// the hub may hand one large append over in several steps.
func TestLongPollUpToDateOnlyWithEverything(t *testing.T) {
	n := serve(t, memlog.New(memlog.Options{}), streams.Config{AnonymousWrites: true, MaxMessages: 20_000})
	n.do(t, "PUT", "/v1/stream/big", "", "Content-Type", jsonCT).want(t, 201, "create")
	polled := make(chan response, 1)
	go func() { polled <- n.do(t, "GET", "/v1/stream/big?offset=now&live=long-poll", "") }()
	time.Sleep(100 * time.Millisecond)
	msgs := 8000
	n.do(t, "POST", "/v1/stream/big", "["+strings.TrimSuffix(strings.Repeat("1,", msgs), ",")+"]", "Content-Type", jsonCT).want(t, 204, "append")
	r := <-polled
	got := strings.Count(r.body, "1")
	if r.h.Get("Stream-Up-To-Date") == "true" && got != msgs {
		t.Fatalf("long-poll answered %d of %d messages with Stream-Up-To-Date: true", got, msgs)
	}
}

// A stream's sliding TTL counts from its newest write, also across a
// restart (the hub does not keep reads on disk): a stream idle for longer
// than its TTL does not come back when the hub starts again.
func TestTTLSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	l, err := boltlog.Open(dir, boltlog.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	n := serve(t, l, streams.Config{AnonymousWrites: true})
	n.do(t, "PUT", "/v1/stream/ttl", "x", "Content-Type", "text/plain", "Stream-TTL", "1").want(t, 201, "create")
	n.stop()
	l.Close()
	time.Sleep(1200 * time.Millisecond)
	l, err = boltlog.Open(dir, boltlog.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	n = serve(t, l, streams.Config{AnonymousWrites: true})
	n.do(t, "HEAD", "/v1/stream/ttl", "").want(t, 404, "a stream idle past its TTL across a restart")
}

// Reading a deleted stream (here: expired while a fork keeps it) writes
// nothing to the log, however often it is asked.
func TestReadsOfAnExpiredStreamWriteNothing(t *testing.T) {
	l := memlog.New(memlog.Options{})
	n := serve(t, l, streams.Config{AnonymousWrites: true})
	n.do(t, "PUT", "/v1/stream/src", "x", "Content-Type", "text/plain", "Stream-TTL", "1").want(t, 201, "create")
	n.do(t, "PUT", "/v1/stream/fork", "", "Stream-Forked-From", "/v1/stream/src", "Stream-TTL", "3600").want(t, 201, "fork")
	time.Sleep(1100 * time.Millisecond)
	n.do(t, "HEAD", "/v1/stream/src", "").want(t, 410, "the expired source of a live fork")
	_, before, _ := l.Bounds(t.Context())
	for range 5 {
		n.do(t, "HEAD", "/v1/stream/src", "").want(t, 410, "again")
		n.do(t, "GET", "/v1/stream/src", "").want(t, 410, "a read")
	}
	if _, after, _ := l.Bounds(t.Context()); after != before {
		t.Fatalf("reads of a deleted stream wrote %d events", after-before)
	}
	if r := n.do(t, "GET", "/v1/stream/fork?offset=-1", "").want(t, 200, "the fork still reads its inheritance"); r.body != "x" {
		t.Fatalf("fork reads %q", r.body)
	}
}
