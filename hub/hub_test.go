package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/boltlog"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/sse"
	"github.com/ssehub/ssehub/topic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newHub returns a hub on a fresh memory log; both close with the test.
func newHub(t *testing.T, opts hub.Options, logOpts memlog.Options) (*hub.Hub, ssehub.Log) {
	t.Helper()
	l := memlog.New(logOpts)
	if opts.Heartbeat == 0 {
		opts.Heartbeat = -1
	}
	h, err := hub.New(l, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); l.Close() })
	return h, l
}

func sels(t *testing.T, ss ...string) []topic.Selector {
	t.Helper()
	out := make([]topic.Selector, len(ss))
	for i, s := range ss {
		out[i] = topic.MustCompile(s)
	}
	return out
}

func subscribe(t *testing.T, h *hub.Hub, req hub.Request) *hub.Subscriber {
	t.Helper()
	s, err := h.Subscribe(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func publish(t *testing.T, h *hub.Hub, evs ...*ssehub.Event) {
	t.Helper()
	if err := h.Publish(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
}

// collect reads n events (comments and retry-only blocks are not events)
// from s, failing after a few seconds.
func collect(t *testing.T, s *hub.Subscriber, n int) []sse.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var buf bytes.Buffer
	var got []sse.Event
	for len(got) < n {
		chunks, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(got), n, err)
		}
		for _, c := range chunks {
			buf.Write(c)
		}
		got = decodeAll(t, &buf)
	}
	if len(got) > n {
		t.Fatalf("got %d events, want %d: %+v", len(got), n, got)
	}
	return got
}

func decodeAll(t *testing.T, buf *bytes.Buffer) []sse.Event {
	t.Helper()
	d := sse.NewDecoder(bytes.NewReader(buf.Bytes()))
	var out []sse.Event
	for {
		ev, err := d.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
}

// expectNothing checks that s has nothing to deliver after everything
// published so far was dispatched.
func expectNothing(t *testing.T, h *hub.Hub, s *hub.Subscriber) {
	t.Helper()
	waitDispatched(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if chunks, err := s.Next(ctx); err == nil {
		t.Fatalf("unexpected delivery: %q", chunks)
	}
}

// waitDispatched waits until the hub has fanned out everything in its log.
func waitDispatched(t *testing.T, h *hub.Hub) {
	t.Helper()
	_, last, err := h.Log().Bounds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.LastPos() < last {
		if time.Now().After(deadline) {
			t.Fatalf("hub dispatched up to %d, log has %d", h.LastPos(), last)
		}
		time.Sleep(time.Millisecond)
	}
}

func datas(evs []sse.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Data
	}
	return out
}

func TestSelectors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		selectors []string
		topics    [][]string // one event per entry
		want      []string   // data of delivered events, data = index
	}{
		{"exact", []string{"a"}, [][]string{{"a"}, {"b"}, {"ab"}}, []string{"0"}},
		{"all", []string{"*"}, [][]string{{"a"}, {"b"}}, []string{"0", "1"}},
		{"template", []string{"https://example.com/books/{id}"},
			[][]string{{"https://example.com/books/1"}, {"https://example.com/authors/1"}, {"https://example.com/books/2"}},
			[]string{"0", "2"}},
		{"several selectors", []string{"a", "b"}, [][]string{{"a"}, {"b"}, {"c"}}, []string{"0", "1"}},
		{"alternate topic matches", []string{"b"}, [][]string{{"a", "b"}, {"c", "a"}}, []string{"0"}},
		{"event matching twice is delivered once", []string{"a", "b", "*"}, [][]string{{"a", "b"}}, []string{"0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHub(t, hub.Options{}, memlog.Options{})
			s := subscribe(t, h, hub.Request{Selectors: sels(t, tc.selectors...)})
			for i, tp := range tc.topics {
				publish(t, h, &ssehub.Event{Topics: tp, Data: fmt.Sprint(i)})
			}
			got := datas(collect(t, s, len(tc.want)))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			expectNothing(t, h, s)
		})
	}
}

func TestWireFields(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{})
	s := subscribe(t, h, hub.Request{Selectors: sels(t, "t")})
	publish(t, h,
		&ssehub.Event{Topics: []string{"t"}, Data: "line1\nline2\r\nline3\rline4", Type: "book.updated", ID: "urn:uuid:1", Retry: 1500 * time.Millisecond},
		&ssehub.Event{Topics: []string{"t"}, Data: ""},
	)
	got := collect(t, s, 2)
	want0 := sse.Event{ID: "urn:uuid:1", Type: "book.updated", Data: "line1\nline2\nline3\nline4", Retry: 1500 * time.Millisecond}
	if got[0] != want0 {
		t.Errorf("got %+v, want %+v", got[0], want0)
	}
	if got[1].Data != "" || got[1].Type != "message" {
		t.Errorf("empty event: got %+v", got[1])
	}
	if _, ok := ssehub.ParseID(got[1].ID); !ok {
		t.Errorf("hub-assigned id %q is not a position", got[1].ID)
	}
}

func TestPrivateUpdates(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{})
	anon := subscribe(t, h, hub.Request{Selectors: sels(t, "*")})
	authorized := subscribe(t, h, hub.Request{Selectors: sels(t, "*"), Private: func(topics []string) bool { return slices.Contains(topics, "secret") }})
	publish(t, h,
		&ssehub.Event{Topics: []string{"secret"}, Data: "private", Private: true},
		&ssehub.Event{Topics: []string{"other"}, Data: "private-other", Private: true},
		&ssehub.Event{Topics: []string{"secret"}, Data: "public"},
	)
	if got := datas(collect(t, anon, 1)); !slices.Equal(got, []string{"public"}) {
		t.Errorf("anonymous got %q", got)
	}
	if got := datas(collect(t, authorized, 2)); !slices.Equal(got, []string{"private", "public"}) {
		t.Errorf("authorized got %q", got)
	}
	// Replay applies the same rule.
	replay := subscribe(t, h, hub.Request{Selectors: sels(t, "*"), LastEventID: hub.LastEventIDEarliest})
	if got := datas(collect(t, replay, 1)); !slices.Equal(got, []string{"public"}) {
		t.Errorf("anonymous replay got %q", got)
	}
	expectNothing(t, h, replay)
}

func publishN(t *testing.T, h *hub.Hub, topicName string, from, to int) []string {
	t.Helper()
	var ids []string
	for i := from; i < to; i++ {
		ev := &ssehub.Event{Topics: []string{topicName}, Data: fmt.Sprint(i)}
		publish(t, h, ev)
		ids = append(ids, ev.WireID())
	}
	return ids
}

func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

func TestResume(t *testing.T) {
	h, _ := newHub(t, hub.Options{ReplayBatch: 3}, memlog.Options{})
	ids := publishN(t, h, "a", 0, 10)
	publishN(t, h, "b", 100, 105) // not matching: skipped in replay
	waitDispatched(t, h)
	s := subscribe(t, h, hub.Request{Selectors: sels(t, "a"), LastEventID: ids[4]})
	if g := s.Gap(); g.Reason != "" {
		t.Fatalf("unexpected gap %+v", g)
	}
	publishN(t, h, "a", 10, 13) // live, possibly while replaying
	got := datas(collect(t, s, 8))
	if want := seq(5, 13); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	expectNothing(t, h, s)
}

func TestResumeWhilePublishing(t *testing.T) {
	// Subscriptions start while events keep coming: each must see every
	// event after its last id exactly once, in order.
	h, _ := newHub(t, hub.Options{ReplayBatch: 7}, memlog.Options{})
	ids := publishN(t, h, "a", 0, 50)
	done := make(chan []string)
	go func() {
		var more []string
		for i := 50; i < 300; i++ {
			ev := &ssehub.Event{Topics: []string{"a"}, Data: fmt.Sprint(i)}
			if err := h.Publish(context.Background(), ev); err != nil {
				panic(err)
			}
			more = append(more, ev.WireID())
		}
		done <- more
	}()
	var subs []*hub.Subscriber
	starts := []int{0, 10, 25, 49}
	for _, i := range starts {
		subs = append(subs, subscribe(t, h, hub.Request{Selectors: sels(t, "a"), LastEventID: ids[i]}))
	}
	<-done
	for k, s := range subs {
		got := datas(collect(t, s, 300-starts[k]-1))
		if want := seq(starts[k]+1, 300); !slices.Equal(got, want) {
			t.Fatalf("subscriber from %d: got %q", starts[k], got)
		}
		expectNothing(t, h, s)
	}
}

func TestResumeGaps(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{MaxEvents: 5})
	ids := publishN(t, h, "a", 0, 20) // positions of 0..14 are gone
	waitDispatched(t, h)
	for _, tc := range []struct {
		name, lastID, reason string
		want                 []string
	}{
		{"expired", ids[3], hub.GapExpired, seq(15, 20)},
		{"unknown id", "urn:nobody:knows", hub.GapUnknown, seq(15, 20)},
		{"future id", ssehub.FormatID(1 << 62), hub.GapUnknown, seq(15, 20)},
		{"earliest", hub.LastEventIDEarliest, "", seq(15, 20)},
		{"just retained", ids[14], "", seq(15, 20)},
		{"up to date", ids[19], "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := subscribe(t, h, hub.Request{Selectors: sels(t, "a"), LastEventID: tc.lastID})
			if g := s.Gap(); g.Reason != tc.reason {
				t.Fatalf("gap %+v, want reason %q", g, tc.reason)
			}
			n := len(tc.want)
			if tc.reason != "" {
				n++
			}
			if n == 0 {
				expectNothing(t, h, s)
				return
			}
			got := collect(t, s, n)
			if tc.reason != "" {
				g := got[0]
				var data struct{ Reason, Requested, Resumed_after string }
				if g.Type != hub.GapType || json.Unmarshal([]byte(g.Data), &data) != nil {
					t.Fatalf("first event is not a gap event: %+v", g)
				}
				if data.Reason != tc.reason || data.Requested != tc.lastID || g.ID != data.Resumed_after || g.ID != ssehub.FormatID(s.Gap().After) {
					t.Fatalf("gap event %+v (gap %+v)", g, s.Gap())
				}
				got = got[1:]
			}
			if d := datas(got); !slices.Equal(d, tc.want) {
				t.Fatalf("got %q, want %q", d, tc.want)
			}
		})
	}
}

func TestReplayLimit(t *testing.T) {
	h, _ := newHub(t, hub.Options{ReplayLimit: 4}, memlog.Options{})
	ids := publishN(t, h, "a", 0, 20)
	waitDispatched(t, h)
	s := subscribe(t, h, hub.Request{Selectors: sels(t, "a"), LastEventID: ids[2]})
	if s.Gap().Reason != hub.GapReplayLimit {
		t.Fatalf("gap %+v", s.Gap())
	}
	got := collect(t, s, 5)
	if got[0].Type != hub.GapType {
		t.Fatalf("no gap event first: %+v", got[0])
	}
	if d := datas(got[1:]); !slices.Equal(d, seq(16, 20)) {
		t.Fatalf("got %q", d)
	}
}

func TestSlowSubscriberDoesNotBlockOthers(t *testing.T) {
	h, _ := newHub(t, hub.Options{QueueEvents: 10}, memlog.Options{})
	slow := subscribe(t, h, hub.Request{Selectors: sels(t, "a")})
	fast := subscribe(t, h, hub.Request{Selectors: sels(t, "a")})
	// The slow one never reads; the fast one reads each event as it comes
	// and must get all of them while the slow one is cut off.
	var got []string
	for i := range 100 {
		publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: fmt.Sprint(i)})
		got = append(got, datas(collect(t, fast, 1))...)
	}
	if !slices.Equal(got, seq(0, 100)) {
		t.Fatalf("fast subscriber got %q", got)
	}
	if err := slow.Err(); !errors.Is(err, hub.ErrSlow) {
		t.Fatalf("slow subscriber: err %v, want ErrSlow", err)
	}
	// Its pending events were dropped and Next reports why.
	if _, err := slow.Next(context.Background()); !errors.Is(err, hub.ErrSlow) {
		t.Fatalf("Next: %v", err)
	}
	if st := h.Stats(); st.Slow != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSlowByBytes(t *testing.T) {
	h, _ := newHub(t, hub.Options{QueueBytes: 1000}, memlog.Options{})
	slow := subscribe(t, h, hub.Request{Selectors: sels(t, "a")})
	publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: string(make([]byte, 600))})
	publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: string(make([]byte, 600))})
	waitDispatched(t, h)
	if err := slow.Err(); !errors.Is(err, hub.ErrSlow) {
		t.Fatalf("err %v, want ErrSlow", err)
	}
}

func TestHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memlog.New(memlog.Options{})
		defer l.Close()
		h, err := hub.New(l, hub.Options{Heartbeat: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		s, err := h.Subscribe(context.Background(), hub.Request{Selectors: sels(t, "a")})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		start := time.Now()
		chunks, err := s.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := string(bytes.Join(chunks, nil)); got != ":\n\n" {
			t.Fatalf("got %q, want a comment", got)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Fatalf("heartbeat after %v", d)
		}
		// A busy stream gets no heartbeat: the period after an event is skipped.
		time.Sleep(5 * time.Second)
		if err := h.Publish(context.Background(), &ssehub.Event{Topics: []string{"a"}, Data: "x"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, err := s.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		chunks, err = s.Next(context.Background())
		if err != nil || string(bytes.Join(chunks, nil)) != ":\n\n" {
			t.Fatalf("got %q, %v", chunks, err)
		}
		if d := time.Since(start); d != 15*time.Second {
			t.Fatalf("next heartbeat after %v, want 15s (the tick at 20s is skipped)", d)
		}
	})
}

func TestCloseEndsStreamsWithRetry(t *testing.T) {
	l := memlog.New(memlog.Options{})
	defer l.Close()
	h, err := hub.New(l, hub.Options{ShutdownRetry: 2 * time.Second, ShutdownJitter: 3 * time.Second, Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := h.Subscribe(context.Background(), hub.Request{Selectors: sels(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, h, "a", 0, 3)
	waitDispatched(t, h)
	h.Close()
	got, retry := decodeEnd(t, drainShutdown(t, s))
	if !slices.Equal(got, seq(0, 3)) {
		t.Fatalf("pending events before shutdown: %q", got)
	}
	if retry < 2*time.Second || retry >= 5*time.Second {
		t.Fatalf("retry %v, want in [2s, 5s)", retry)
	}
	if _, err := h.Subscribe(context.Background(), hub.Request{Selectors: sels(t, "a")}); !errors.Is(err, hub.ErrShutdown) {
		t.Fatalf("subscribe after close: %v", err)
	}
}

func TestPublishRefusesBadEvents(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{})
	for _, tc := range []struct {
		name string
		ev   ssehub.Event
	}{
		{"no topic", ssehub.Event{Data: "x"}},
		{"empty topic", ssehub.Event{Topics: []string{""}}},
		{"newline in id", ssehub.Event{Topics: []string{"a"}, ID: "a\nb"}},
		{"NUL in type", ssehub.Event{Topics: []string{"a"}, Type: "a\x00"}},
		{"reserved type", ssehub.Event{Topics: []string{"a"}, Type: hub.GapType}},
		{"numeric id", ssehub.Event{Topics: []string{"a"}, ID: "42"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := h.Publish(context.Background(), &tc.ev); !errors.Is(err, ssehub.ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
		})
	}
	if _, last, _ := h.Log().Bounds(context.Background()); last != 0 {
		t.Fatalf("log got events: last %d", last)
	}
}

func TestUnsubscribe(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{})
	s := subscribe(t, h, hub.Request{Selectors: sels(t, "a", "*")})
	if n := h.Stats().Subscribers; n != 1 {
		t.Fatalf("subscribers %d", n)
	}
	s.Close()
	if n := h.Stats().Subscribers; n != 0 {
		t.Fatalf("subscribers after close %d", n)
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, hub.ErrUnsubscribed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

// drainShutdown returns what Next returns until it ends, which must be
// with ErrShutdown.
func drainShutdown(t *testing.T, s *hub.Subscriber) []byte {
	t.Helper()
	b, err := drain(s, 0)
	if !errors.Is(err, hub.ErrShutdown) {
		t.Fatalf("ended with %v", err)
	}
	return b
}

// drain returns what Next returns until it fails, and the error it failed
// with; each Next is given wait (0: no limit).
func drain(s *hub.Subscriber, wait time.Duration) ([]byte, error) {
	next := func() ([][]byte, error) {
		if wait <= 0 {
			return s.Next(context.Background())
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		return s.Next(ctx)
	}
	var buf bytes.Buffer
	for {
		chunks, err := next()
		if err != nil {
			return buf.Bytes(), err
		}
		for _, c := range chunks {
			buf.Write(c)
		}
	}
}

// decodeEnd decodes a stream that ends with the hub's reconnect
// instruction: it returns the data of the events before it and the retry
// time, checking that the event and the retry field agree.
func decodeEnd(t *testing.T, b []byte) ([]string, time.Duration) {
	t.Helper()
	d := sse.NewDecoder(bytes.NewReader(b))
	var evs []sse.Event
	for {
		ev, err := d.Next()
		if err != nil {
			break
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 || evs[len(evs)-1].Type != hub.ReconnectType {
		t.Fatalf("stream does not end with a reconnect event: %+v", evs)
	}
	var rc struct {
		RetryMS int64 `json:"retry_ms"`
	}
	if err := json.Unmarshal([]byte(evs[len(evs)-1].Data), &rc); err != nil {
		t.Fatal(err)
	}
	retry, ok := d.Retry()
	if !ok || retry != time.Duration(rc.RetryMS)*time.Millisecond {
		t.Fatalf("retry field %v (%v) does not match the event's %dms", retry, ok, rc.RetryMS)
	}
	return datas(evs[:len(evs)-1]), retry
}

func TestReconnectSpreadsClients(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{})
	var subs []*hub.Subscriber
	for range 50 {
		subs = append(subs, subscribe(t, h, hub.Request{Selectors: sels(t, "a")}))
	}
	if n := h.Reconnect(10 * time.Second); n != 50 {
		t.Fatalf("Reconnect asked %d subscribers", n)
	}
	distinct := map[time.Duration]bool{}
	for _, s := range subs {
		var buf bytes.Buffer
		for {
			chunks, err := s.Next(context.Background())
			if err != nil {
				if !errors.Is(err, hub.ErrReconnect) {
					t.Fatal(err)
				}
				break
			}
			for _, c := range chunks {
				buf.Write(c)
			}
		}
		_, retry := decodeEnd(t, buf.Bytes())
		if retry < 0 || retry >= 10*time.Second {
			t.Fatalf("retry %v outside the window", retry)
		}
		distinct[retry.Truncate(time.Second)] = true
	}
	if len(distinct) < 4 {
		t.Fatalf("50 clients come back in only %d distinct seconds of 10", len(distinct))
	}
}

// A retained Last-Event-ID whose history is trimmed before Next replays it:
// the events in between vanish without a gap event.
func TestReplayTrimmedMeanwhileIsAGap(t *testing.T) {
	// "a" replays through the topic index, "*" through the shared scan.
	for _, sel := range []string{"a", "*"} {
		t.Run(sel, func(t *testing.T) { testReplayTrimmedMeanwhile(t, sel) })
	}
}

func testReplayTrimmedMeanwhile(t *testing.T, sel string) {
	h, l := newHub(t, hub.Options{}, memlog.Options{MaxEvents: 5})
	var evs []*ssehub.Event
	for i := range 10 {
		ev := &ssehub.Event{Topics: []string{"a"}, Data: string(rune('A' + i))}
		evs = append(evs, ev)
		publish(t, h, ev)
	}
	waitDispatched(t, h)
	first, _, _ := l.Bounds(context.Background())
	if first > evs[5].Pos {
		t.Fatalf("F already trimmed (first %d)", first)
	}
	s := subscribe(t, h, hub.Request{Selectors: sels(t, sel), LastEventID: ssehub.FormatID(evs[5].Pos)})
	// before the subscriber's writer gets to replay, 10 more events trim history
	for i := range 10 {
		publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: string(rune('a' + i))})
		waitDispatched(t, h) // keep the hub's own tail from falling behind retention
	}
	waitDispatched(t, h)
	b, _ := drain(s, 50*time.Millisecond) // until nothing more comes
	got := decodeAll(t, bytes.NewBuffer(b))
	var types []string
	for _, e := range got {
		types = append(types, e.Type)
	}
	_ = types
	if len(got) == 0 || got[0].Type != hub.GapType {
		t.Fatalf("events after F were trimmed but no gap event came first: got %q", datas(got))
	}
	if d := datas(got[1:]); len(d) == 0 || d[len(d)-1] != "j" {
		t.Fatalf("after the gap: %q", d)
	}
}

// feedLog is a memory log whose Tail is fed by the test through feed, so
// the log can be ahead of the hub's dispatcher, and a benchmark measures
// the hub's fan-out alone (no append, no notification).
type feedLog struct {
	*memlog.Log
	feed chan []*ssehub.Event
}

func (f *feedLog) Tail(ctx context.Context, after uint64, fn func([]*ssehub.Event) error) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case b := <-f.feed:
			if err := fn(b); err != nil {
				return err
			}
		}
	}
}

// A client resuming from an id that the log has but this hub has not yet
// dispatched gets duplicates: minPos is set after register released h.mu.
func TestResumeAheadOfDispatchHasNoDuplicates(t *testing.T) {
	dups := 0
	for iter := 0; iter < 300 && dups == 0; iter++ {
		ml := memlog.New(memlog.Options{})
		f := &feedLog{Log: ml, feed: make(chan []*ssehub.Event)}
		h, err := hub.New(f, hub.Options{Heartbeat: -1})
		if err != nil {
			t.Fatal(err)
		}
		var evs []*ssehub.Event
		for range 200 {
			ev := &ssehub.Event{Topics: []string{"a"}, Data: "x"}
			ml.Append(context.Background(), ev)
			evs = append(evs, ev)
		}
		last := evs[len(evs)-1].Pos
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range evs {
				f.feed <- []*ssehub.Event{ev}
			}
		}()
		time.Sleep(time.Duration(iter%50) * time.Microsecond)
		s, err := h.Subscribe(context.Background(), hub.Request{Selectors: sels(t, "a"), LastEventID: ssehub.FormatID(last)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		chunks, _ := s.Next(ctx)
		cancel()
		var buf bytes.Buffer
		for _, c := range chunks {
			buf.Write(c)
		}
		if got := decodeAll(t, &buf); len(got) > 0 {
			dups++
			t.Logf("iter %d: client resumed after %d (the newest) and still got %d old events, first id %s", iter, last, len(got), got[0].ID)
		}
		s.Close()
		h.Close()
		ml.Close()
	}
	if dups > 0 {
		t.Fatal("duplicates delivered")
	}
}

// The hub's own tail falls behind retention: live subscribers silently miss events.
func TestTailBehindRetentionResumesSubscribers(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{MaxEvents: 5})
	publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: "before"})
	waitDispatched(t, h)
	s := subscribe(t, h, hub.Request{Selectors: sels(t, "a")})
	// One append larger than the retention: the tail can never see the
	// first five of these, and the live subscriber must not miss them
	// silently.
	var batch []*ssehub.Event
	for i := range 10 {
		batch = append(batch, &ssehub.Event{Topics: []string{"a"}, Data: string(rune('a' + i))})
	}
	publish(t, h, batch...)
	waitDispatched(t, h)
	b, err := drain(s, 2*time.Second)
	if !errors.Is(err, hub.ErrBehind) {
		t.Fatalf("stream ended with %v, want ErrBehind", err)
	}
	got, _ := decodeEnd(t, b)
	if len(got) != 0 {
		t.Fatalf("events delivered after a hole: %q", got)
	}
}

func TestDuplicateIDIsNotALogError(t *testing.T) {
	h, _ := newHub(t, hub.Options{}, memlog.Options{})
	publish(t, h, &ssehub.Event{Topics: []string{"a"}, ID: "urn:x:1"})
	err := h.Publish(context.Background(), &ssehub.Event{Topics: []string{"a"}, ID: "urn:x:1"})
	if !errors.Is(err, ssehub.ErrDuplicateID) {
		t.Fatalf("second publish of the id: %v", err)
	}
	if st := h.Stats(); st.AppendErrors != 0 {
		t.Fatalf("a refused duplicate counted as a log error: %+v", st)
	}
}

// A stream that is still replaying when the hub closes ends like a live
// one: with the jittered reconnect event, so that a restart during a
// reconnect storm does not bring every replaying client back at once.
// (It may stop its replay there: the reconnect event has no id, and the
// client resumes after the last event it got.)
func TestCloseDuringReplayEndsWithRetry(t *testing.T) {
	for _, sel := range []string{"a", "*"} { // the index, the shared scan
		t.Run(sel, func(t *testing.T) {
			l := memlog.New(memlog.Options{})
			defer l.Close()
			h, err := hub.New(l, hub.Options{ShutdownRetry: 2 * time.Second, ShutdownJitter: 3 * time.Second, Heartbeat: -1})
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, h, "a", 0, 3)
			waitDispatched(t, h)
			s, err := h.Subscribe(context.Background(), hub.Request{Selectors: sels(t, sel), LastEventID: hub.LastEventIDEarliest})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			h.Close()
			got, retry := decodeEnd(t, drainShutdown(t, s))
			if want := seq(0, 3); !slices.Equal(got, want[:len(got)]) {
				t.Fatalf("replayed %q before the end, want a prefix of %q", got, want)
			}
			if retry < 2*time.Second || retry >= 5*time.Second {
				t.Fatalf("retry %v, want in [2s, 5s)", retry)
			}
		})
	}
}

// The replay limit counts events, not positions: bbolt's positions jump to
// the clock at each restart, and a client that missed a few events across
// a restart (a deploy) replays them all instead of being told it missed
// more than the limit and skipping them.
func TestReplayLimitCountsEventsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	open := func() (*hub.Hub, *boltlog.Log) {
		l, err := boltlog.Open(dir, boltlog.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		h, err := hub.New(l, hub.Options{ReplayLimit: 8, Heartbeat: -1})
		if err != nil {
			t.Fatal(err)
		}
		return h, l
	}
	h, l := open()
	before := publishN(t, h, "a", 0, 5)
	h.Close()
	l.Close()
	time.Sleep(2 * time.Millisecond) // the clock, and so the positions, move on

	h, l = open()
	t.Cleanup(func() { h.Close(); l.Close() })
	publishN(t, h, "a", 5, 10)
	waitDispatched(t, h)

	// 8 missed (2, 3, 4 before the restart, 5..9 after): all replayed.
	s := subscribe(t, h, hub.Request{Selectors: sels(t, "a"), LastEventID: before[1]})
	if g := s.Gap(); g.Reason != "" {
		t.Fatalf("8 events missed with a replay limit of 8: gap %+v", g)
	}
	if d := datas(collect(t, s, 8)); !slices.Equal(d, seq(2, 10)) {
		t.Fatalf("got %q, want %q", d, seq(2, 10))
	}

	// 9 missed: the oldest is skipped, and the client is told.
	s = subscribe(t, h, hub.Request{Selectors: sels(t, "a"), LastEventID: before[0]})
	if s.Gap().Reason != hub.GapReplayLimit {
		t.Fatalf("9 events missed with a replay limit of 8: gap %+v", s.Gap())
	}
	got := collect(t, s, 9)
	if got[0].Type != hub.GapType {
		t.Fatalf("no gap event first: %+v", got[0])
	}
	if d := datas(got[1:]); !slices.Equal(d, seq(2, 10)) {
		t.Fatalf("got %q, want %q", d, seq(2, 10))
	}
}
