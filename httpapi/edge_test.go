package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/park"
	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/log/memlog"
)

// An HTTP/1.1 stream over TLS cannot be parked (no raw socket): it must
// stay open on its handler and deliver events.
func TestHTTP11OverTLSStreams(t *testing.T) {
	l := memlog.New(memlog.Options{})
	h, _ := hub.New(l, hub.Options{Heartbeat: -1})
	api, err := httpapi.New(httpapi.Config{Hub: h, Anonymous: true, Publishers: verifier(t, pubKey)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(api) // HTTP/1.1 only
	defer func() { h.Close(); api.Close(time.Second); srv.Close(); l.Close() }()
	resp, err := srv.Client().Get(srv.URL + httpapi.Path + "?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 1 {
		t.Fatalf("proto %s", resp.Proto)
	}
	if err := h.Publish(context.Background(), &ssehub.Event{Topics: []string{"a"}, Data: "over tls"}); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before the event: %v", err)
		}
		if line == "data: over tls\n" {
			return
		}
	}
}

// HEAD answers the stream's headers and nothing else: no bytes may follow
// on the connection.
func TestHEADHasNoStream(t *testing.T) {
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	u, _ := url.Parse(e.srv.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "HEAD "+httpapi.Path+"?topic=a HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}
	e.publish(t, url.Values{"topic": {"a"}, "data": {"x"}})
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if b, _ := io.ReadAll(br); len(b) > 0 {
		t.Fatalf("bytes after a HEAD response: %q", b)
	}
}

// slowLog is a memory log whose reads take a millisecond each and that
// has no topic index (so a replay walks the whole log, as replays of
// wildcards do), so that a long replay outlasts a poll's timeout.
type slowLog struct{ *memlog.Log }

// ReadTopics hides memlog's ssehub.TopicIndex (another signature).
func (slowLog) ReadTopics() {}

func (l slowLog) Read(ctx context.Context, after uint64, limit int) ([]*ssehub.Event, error) {
	time.Sleep(time.Millisecond)
	return l.Log.Read(ctx, after, limit)
}

// A long poll whose replay is cut by its timeout answers how far it got,
// so polling on from there reaches every event: none is skipped.
func TestPollTimeoutDuringReplaySkipsNothing(t *testing.T) {
	l := slowLog{memlog.New(memlog.Options{})}
	h, err := hub.New(l, hub.Options{Heartbeat: -1, ReplayBatch: 16})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Hub: h, Anonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer func() { h.Close(); api.Close(time.Second); srv.Close(); l.Close() }()
	for i := 0; i < 4000; i += 500 {
		batch := make([]*ssehub.Event, 0, 500)
		for range 500 {
			batch = append(batch, &ssehub.Event{Topics: []string{"other"}, Data: "x"})
		}
		if err := h.Publish(context.Background(), batch...); err != nil {
			t.Fatal(err)
		}
	}
	ev := &ssehub.Event{Topics: []string{"a"}, Data: "wanted"}
	if err := h.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	want := ev.WireID()
	// Poll once the hub has fanned everything out: events it has not
	// dispatched yet would reach the poll live, not through the replay.
	for wait := time.Now().Add(10 * time.Second); h.LastPos() < ev.Pos; time.Sleep(time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("the hub did not dispatch the events")
		}
	}
	last := "earliest"
	deadline := time.Now().Add(30 * time.Second)
	for polls := 1; ; polls++ {
		if time.Now().After(deadline) {
			t.Fatalf("event %s never arrived after %d polls (last id %s)", want, polls, last)
		}
		req, _ := http.NewRequest("GET", srv.URL+httpapi.Path+"?topic=a&poll=1&timeout=20&lastEventID="+last, nil)
		code, body := do(t, req)
		if code != 200 {
			t.Fatalf("poll: %d %s", code, body)
		}
		var ans struct {
			Events []struct{ ID, Data string }
			Last   string `json:"last_event_id"`
		}
		if err := json.Unmarshal([]byte(body), &ans); err != nil {
			t.Fatal(err)
		}
		if len(ans.Events) > 0 {
			if ans.Events[0].ID != want || ans.Events[0].Data != "wanted" {
				t.Fatalf("got %+v, want event %s", ans.Events, want)
			}
			if polls < 2 {
				t.Fatalf("the replay fit in one poll: the test did not cut it")
			}
			return
		}
		if ans.Last == want {
			t.Fatalf("poll %d answered the newest id without its event: history skipped", polls)
		}
		last = ans.Last
	}
}

// A stream the poller may take over ends by closing its connection, so
// over HTTP/1.1 its response says Connection: close: a fetch-based client
// must not send its next request into that socket.
func TestParkableStreamsDoNotOfferTheirConnection(t *testing.T) {
	if !park.Supported {
		t.Skip("streams are not parked on this platform")
	}
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	s := e.open(t, "topic=a", nil)
	if !s.resp.Close {
		t.Fatalf("a parkable stream's response without Connection: close (header %q)", s.resp.Header.Get("Connection"))
	}
	e2 := newEnv(t, httpapi.Config{Anonymous: true, NoPark: true}, hub.Options{})
	if s := e2.open(t, "topic=a", nil); s.resp.Close {
		t.Fatal("with NoPark the stream's connection is the client's to reuse: no Connection: close")
	}
}

// A client that resumes on a quiet topic while other topics are busy is
// handed to the poller as soon as its replay (which finds nothing for it)
// is done, not after its next event: a reconnect storm after a deploy
// otherwise holds a goroutine and its buffers per client until each of
// their topics speaks again.
func TestResumedStreamWithNothingToReplayIsParked(t *testing.T) {
	if !park.Supported {
		t.Skip("streams are not parked on this platform")
	}
	e := newEnv(t, httpapi.Config{Anonymous: true}, hub.Options{})
	last := e.publish(t, url.Values{"topic": {"quiet"}, "data": {"before"}})
	for i := range 3 {
		e.publish(t, url.Values{"topic": {"busy"}, "data": {strconv.Itoa(i)}})
	}
	s := e.open(t, "topic=quiet", http.Header{"Last-Event-ID": {last}})
	servicetest.WaitFor(t, 5*time.Second, "the resumed stream to be parked", func() bool { return e.api.Parked() == 1 })
	e.publish(t, url.Values{"topic": {"quiet"}, "data": {"after"}})
	if got := s.datas(t, 1); got[0] != "after" {
		t.Fatalf("the parked stream got %q, want [after]", got)
	}
}
