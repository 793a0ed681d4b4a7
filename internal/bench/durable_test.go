package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// quickDS returns a configuration for a short run against f: 4 streams,
// 8 readers, 20 appends per stream.
func quickDS(f *fakeDS) Config {
	return quickRun(Config{Mode: ModeDurableStreams, URL: f.url(), Subscribers: 8, Topics: 4, Rate: 160, Payload: 20, Concurrency: 2})
}

func TestDurableStreamsCountsLossDuplicatesAndReordering(t *testing.T) {
	f := newFakeDS(t)
	defer f.close()
	cfg := quickDS(f)
	cfg.TopicPrefix = "run1/"
	cfg.Drain = 500 * time.Millisecond // the dropped chunk never arrives
	cfg.Token, cfg.SubscriberToken = "pub-token", "sub-token"
	// Stream 1 loses its 6th append, stream 2 stores its 5th twice, stream
	// 3 stores its 7th after its 8th; each stream has two readers.
	f.appendFault = func(name string, k int) string {
		switch {
		case name == "run1/1" && k == 5:
			return "drop"
		case name == "run1/2" && k == 4:
			return "dup"
		case name == "run1/3" && k == 6:
			return "hold"
		}
		return ""
	}
	f.split = true // every chunk batch arrives in two data events
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for method, want := range map[string]string{"PUT": "Bearer pub-token", "POST": "Bearer pub-token", "GET": "Bearer sub-token"} {
		if got := f.authOf(method); got != want {
			t.Errorf("%s Authorization %q, want %q", method, got, want)
		}
	}
	st := rep.Streams
	if st == nil || st.Streams != 4 || st.Created != 4 || st.CreateFailed != 0 || st.ContentType != "text/plain" {
		t.Fatalf("streams %+v", st)
	}
	if st.DataEvents < 16 || st.ControlEvents < 8 || st.BadControl != 0 || st.Uncommitted != 0 || st.Closed != 0 {
		t.Errorf("events %+v", st)
	}
	p := rep.Publish
	if p.Scheduled != 80 || p.Acked != 80 || p.Errors != 0 || p.Latency.Count != 80 {
		t.Errorf("appends %+v", p)
	}
	d := rep.Delivery
	// 80 acknowledged chunks, each for two readers; one was lost (for
	// both readers of its stream), one stored twice, one late.
	if d.Expected != 160 || d.Received != 158 || d.Missing != 2 || d.Duplicated != 2 || d.OutOfOrder != 2 ||
		d.SubscribersWithLoss != 2 || d.Foreign != 0 || d.Other != 0 || d.Latency.Count != 158 {
		t.Errorf("delivery %+v", d)
	}
	for name, data := range f.appended() {
		if !strings.HasPrefix(name, "run1/") || strings.Count(data, ";") < 19 {
			t.Errorf("stream %q holds %q", name, data)
		}
		for c := range strings.SplitSeq(strings.TrimSuffix(data, ";"), ";") {
			if len(c)+1 != 20 {
				t.Errorf("chunk %q is not 20 bytes", c+";")
			}
		}
	}
	var out strings.Builder
	rep.WriteText(&out)
	for _, want := range []string{"(durable-streams): 4 streams, 8 SSE readers, 160 appends/s (40 per stream)", "append       80 acked", "missing 2, duplicated 2, out of order 2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDurableStreamsResumeFromTheLastControlEvent(t *testing.T) {
	f := newFakeDS(t)
	defer f.close()
	// Every stream's first two responses end after their 3rd data event,
	// before the control event: what it carried comes again, from the
	// offset of the control event before it, and counts once.
	f.cut = func(_ string, conn, ev int) bool { return conn < 2 && ev == 2 }
	cfg := quickDS(f)
	cfg.Subscribers = 4
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Delivery
	if d.Expected != 80 || d.Received != 80 || d.Missing != 0 || d.Duplicated != 0 || d.OutOfOrder != 0 {
		t.Errorf("delivery %+v", d)
	}
	rc := rep.Reconnect
	if rc == nil || rc.Reconnected != 8 || rc.Ended != 8 || rc.NotCaughtUp != 0 || rep.Connections.EndedEarly != 0 {
		t.Errorf("reconnect %+v, connections %+v", rc, rep.Connections)
	}
	if !f.hasPrefix("bench-") {
		t.Errorf("streams %v: want the default prefix bench-<time>/", f.appended())
	}
}

func TestDurableStreamsWithoutControlEvents(t *testing.T) {
	f := newFakeDS(t)
	defer f.close()
	f.noControl = true
	cfg := quickDS(f)
	cfg.Drain = 200 * time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Data that no control event confirms does not count: a reader
	// resuming from its last offset would get it again.
	if d, st := rep.Delivery, rep.Streams; d.Received != 0 || d.Missing != 160 || st.Uncommitted != 8*20*20 {
		t.Errorf("delivery %+v, streams %+v", d, st)
	}
}

func TestDurableStreamsDrainWaitsForFailedAppends(t *testing.T) {
	f := newFakeDS(t)
	defer f.close()
	// Stream 0's 4th append is applied but answered after the timeout: a
	// failed append that its reader receives. Stream 1's last one is
	// acknowledged and reaches its reader 300 ms later: the drain must not
	// take the first for the second.
	f.appendFault = func(name string, k int) string {
		switch {
		case strings.HasSuffix(name, "/0") && k == 3:
			return "slow"
		case strings.HasSuffix(name, "/1") && k == 19:
			return "late"
		}
		return ""
	}
	cfg := quickDS(f)
	cfg.Subscribers = 4
	cfg.PublishTimeout = 300 * time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, d := rep.Publish, rep.Delivery
	if p.Acked != 79 || p.Errors != 1 || d.Expected != 79 || d.Missing != 0 || d.UnackedReceived != 1 || d.Received != 80 {
		t.Errorf("appends %+v\ndelivery %+v", p, d)
	}
}

func TestDurableStreamsRefusesExistingStreams(t *testing.T) {
	f := newFakeDS(t)
	defer f.close()
	cfg := quickDS(f)
	cfg.TopicPrefix = "again/"
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "4 of 4 streams could not be created") || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("second run: %v", err)
	}
	if rep.Connections.Attempted != 0 || rep.Publish.Sent != 0 || rep.Streams.CreateFailed != 4 {
		t.Errorf("after the failed creation: connections %+v, appends %+v, streams %+v", rep.Connections, rep.Publish, rep.Streams)
	}
}

func TestDSReaderParsesEvents(t *testing.T) {
	r := &runner{cfg: Config{Mode: ModeDurableStreams}}
	s := &subscriber{r: r, topic: 2, phase: phaseMain, cnt: &r.cnt, trk: make([]topicTrack, 1), ds: &dsReader{}}
	chunk := func(topic, seq int) string {
		return string(appendChunk(nil, payload{phase: phaseMain, topic: topic, seq: seq}, 20))
	}
	feed := func(lines ...string) {
		for _, l := range lines {
			s.dsLine([]byte(l))
		}
	}
	ctl := func(off string) []string {
		return []string{"event: control", `data: {"streamNextOffset":"` + off + `","upToDate":true}`, ""}
	}
	c1, c2, c3, c4 := chunk(2, 1), chunk(2, 2), chunk(2, 3), chunk(2, 4)
	s.ds.begin()
	feed(ctl("a")...)
	feed("event: data", "data:"+chunk(2, 0)+c1, "") // two appends in one event, no space after the colon
	feed("event: data", "data: "+c2[:7], "")        // an append over two events
	feed(": a comment", "event: data", "data: "+c2[7:]+c3[:5], "")
	if n := r.cnt.unique.Load(); n != 0 {
		t.Fatalf("%d chunks counted before a control event", n)
	}
	feed(ctl("b")...)
	if n := r.cnt.unique.Load(); n != 3 || string(s.lastID) != "b" || string(s.ds.pend) != c3[:5] {
		t.Fatalf("after the control event: %d chunks, offset %q, pending %q", n, s.lastID, s.ds.pend)
	}
	// The response ends after data that no control event confirmed: the
	// next response, from offset b, sends it again.
	feed("event: data", "data: "+c3[5:], "")
	s.ds.begin()
	feed("event: data", "data: "+c3[5:]+c4+chunk(1, 5)+"garbage;", "")
	feed("event: data", "data: "+c1, "") // a duplicate
	feed("event: message", "data: hello", "")
	feed("event: control", "data: {\"upToDate\":true}", "") // no offset: ignored
	feed("event: control", "data:{\"streamNextOffset\":\"c\",", "data:\"streamClosed\":true}", "")
	c := &r.cnt
	if c.unique.Load() != 5 || c.dup.Load() != 1 || c.foreign.Load() != 1 || c.other.Load() != 2 || c.outOfOrder.Load() != 0 {
		t.Errorf("unique %d dup %d foreign %d other %d ooo %d", c.unique.Load(), c.dup.Load(), c.foreign.Load(), c.other.Load(), c.outOfOrder.Load())
	}
	d := s.ds
	if string(s.lastID) != "c" || !d.closed || d.badControl != 1 || d.controlEvents != 4 || d.dataEvents != 6 || len(d.pend) != 0 {
		t.Errorf("offset %q, reader %+v", s.lastID, d)
	}
	if !strings.Contains(d.badControlMsg, "no streamNextOffset") {
		t.Errorf("bad control message %q", d.badControlMsg)
	}
	// Out of order within a batch.
	feed("event: data", "data: "+chunk(2, 7)+chunk(2, 6), "")
	feed(ctl("d")...)
	if c.outOfOrder.Load() != 1 || c.unique.Load() != 7 {
		t.Errorf("unique %d ooo %d", c.unique.Load(), c.outOfOrder.Load())
	}
}

func TestParseControl(t *testing.T) {
	for _, tc := range []struct {
		in     string
		off    string
		closed bool
		err    string
	}{
		{`{"streamNextOffset":"0000_0015","streamCursor":"3389853","upToDate":true}`, "0000_0015", false, ""},
		{" { \"upToDate\" : true,\n \"streamNextOffset\" : \"a\\u002fb\" , \"streamClosed\": true }", "a/b", true, ""},
		{`{"streamNextOffset":"x","streamClosed":false,"n":null}`, "x", false, ""},
		{`{"streamNextOffset":"x","streamClosed":true,"streamClosed":null}`, "x", true, ""},
		{`{"streamNextOffset":"x","cursor":12}`, "x", false, ""},
		{`{"streamNextOffset":"x","STREAMNEXTOFFSET":"y"}`, "y", false, ""},
		{`{"streamNextOffset":""}`, "", false, "no streamNextOffset"},
		{`{"streamNextOffset":"x","streamNextOffset":null}`, "", false, "no streamNextOffset"},
		{`{"streamCursor":"1"}`, "", false, "no streamNextOffset"},
		{`{}`, "", false, "no streamNextOffset"},
		{`{"streamNextOffset":12}`, "", false, "cannot unmarshal"},
		{`{"streamNextOffset":"x","streamClosed":"true"}`, "", false, "cannot unmarshal"},
		{`{"streamNextOffset":"x"`, "", false, "unexpected end"},
		{`{"streamNextOffset":"x",}`, "", false, "invalid character"},
		{`{"streamNextOffset":"x"} x`, "", false, "invalid character"},
		{`streamNextOffset=x`, "", false, "invalid character"},
	} {
		off, closed, err := parseControl([]byte(tc.in))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || string(off) != tc.off || closed != tc.closed):
			t.Errorf("%s: %q %v %v", tc.in, off, closed, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		scanControl([]byte(`{"streamNextOffset":"0000000000000000_0000000000000015","streamCursor":"3389853","upToDate":true}`))
	}); n != 0 {
		t.Errorf("scanControl allocates %v times", n)
	}
}

// FuzzScanControl checks that the hand-written reading of control events
// agrees with encoding/json whenever it answers.
func FuzzScanControl(f *testing.F) {
	for _, s := range []string{
		`{"streamNextOffset":"0000_0015","streamCursor":"3389853","upToDate":true}`,
		`{"streamNextOffset":"x","streamClosed":true}`,
		`{"streamClosed":false,"streamNextOffset":"x","streamClosed":null}`,
		`{"streamNextOffset":"x","streamnextoffset":"y"}`,
		` {"streamNextOffset" : "x" , "a":null } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		off, closed, ok := scanControl(b)
		if !ok {
			return
		}
		var c struct {
			Offset *string `json:"streamNextOffset"`
			Closed bool    `json:"streamClosed"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%q: scanned %q %v, encoding/json: %v", b, off, closed, err)
		}
		if c.Offset == nil || *c.Offset != string(off) || c.Closed != closed {
			t.Fatalf("%q: scanned %q %v, encoding/json %v %v", b, off, closed, c.Offset, c.Closed)
		}
	})
}

func TestDSReadTarget(t *testing.T) {
	for _, tc := range []struct{ path, off, want string }{
		{"/v1/stream/a/0", "", "/v1/stream/a/0?offset=-1&live=sse"},
		{"/v1/stream/a/0", "12_34", "/v1/stream/a/0?offset=12_34&live=sse"},
		{"/s?x=1", "a+b&c", "/s?x=1&offset=a%2Bb%26c&live=sse"},
	} {
		if got := dsReadTarget(tc.path, tc.off); got != tc.want {
			t.Errorf("dsReadTarget(%q, %q) = %q, want %q", tc.path, tc.off, got, tc.want)
		}
	}
}

func TestDurableStreamsConfig(t *testing.T) {
	c, err := Config{Mode: ModeDurableStreams, URL: "http://h:1/v1/stream"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.TopicPrefix, "bench-") || !strings.HasSuffix(c.TopicPrefix, "/") || !c.Reconnect || c.PublishFormat != FormatRaw {
		t.Errorf("defaults %+v", c)
	}
	if u, _ := c.subscribeURL("a b/1"); u.RequestURI() != "/v1/stream/a%20b/1" {
		t.Errorf("stream target %q", u.RequestURI())
	}
	c, _ = Config{Mode: ModeDurableStreams, URL: "http://h:1/s/{topic}/x"}.withDefaults()
	if u, _ := c.subscribeURL("t/1"); u.RequestURI() != "/s/t/1/x" {
		t.Errorf("templated stream target %q", u.RequestURI())
	}
	for name, bad := range map[string]Config{
		"publish URL": {PublishURL: "http://h/p"},
		"form":        {PublishFormat: FormatForm},
		"all":         {SubscribeAll: true},
		"storm":       {Storm: 2},
		"resume":      {ResumeMissed: 2},
	} {
		bad.Mode, bad.URL = ModeDurableStreams, "http://h/v1/stream/"
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// TestHTTPConn drives the appenders' client against a scripted server:
// keep-alive over an empty chunked body whose end comes in a later write,
// a body of known length, and a response that closes the connection.
func TestHTTPConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	replies := [][]string{
		{"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "\r\n"},
		{"HTTP/1.1 204 No Content\r\nStream-Next-Offset: 1\r\n\r\n"},
		{"HTTP/1.1 404 Not Found\r\nContent-Length: 16\r\n\r\nStream not", " found"},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nbye"},
		{"HTTP/1.1 204 No Content\r\n\r\n"},
	}
	var got []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		next := 0
		for next < len(replies) {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			br := bufio.NewReader(c)
			for next < len(replies) {
				req, err := readRawRequest(br)
				if err != nil {
					break
				}
				got = append(got, req)
				for _, part := range replies[next] {
					c.Write([]byte(part))
					time.Sleep(10 * time.Millisecond)
				}
				next++
				if next == 4 {
					break // the 4th reply closes the connection
				}
			}
			c.Close()
		}
	}()
	r := &runner{cfg: Config{Token: "tok", PublishTimeout: 2 * time.Second, ConnectTimeout: 2 * time.Second},
		addr: ln.Addr().String(), host: "h", dialers: []*net.Dialer{{}}}
	h := r.newHTTPConn(context.Background(), 0)
	defer h.close()
	for i, want := range []struct {
		status int
		msg    string
	}{{201, ""}, {204, ""}, {404, "Stream not found"}, {200, ""}, {204, ""}} {
		status, msg, err := h.do("POST", "/s/1", "text/plain", []byte("abc;"))
		if err != nil || status != want.status || msg != want.msg {
			t.Errorf("request %d: %d %q %v, want %d %q", i, status, msg, err, want.status, want.msg)
		}
	}
	<-done
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (one until Connection: close, then one)", n)
	}
	want := "POST /s/1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ssehub-bench\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nAuthorization: Bearer tok\r\n\r\nabc;"
	if len(got) != 5 || got[0] != want || got[4] != want {
		t.Errorf("requests %q, want 5 of %q", got, want)
	}
}

// readRawRequest reads a request with a Content-Length body as its bytes.
func readRawRequest(br *bufio.Reader) (string, error) {
	var b strings.Builder
	n := 0
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		b.WriteString(l)
		if v, ok := strings.CutPrefix(l, "Content-Length: "); ok {
			for _, c := range strings.TrimSpace(v) {
				n = n*10 + int(c-'0')
			}
		}
		if l == "\r\n" {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return "", err
	}
	b.Write(body)
	return b.String(), nil
}
