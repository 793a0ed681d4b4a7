package natslog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/log/logtest"
)

func TestConformance(t *testing.T) {
	url := sharedURL(t)
	logtest.Run(t, logtest.Harness{
		Open: func(t *testing.T) ssehub.Log { return open(t, url, Options{}) },
		OpenRetained: func(t *testing.T, maxEvents int) ssehub.Log {
			return open(t, url, Options{MaxEvents: maxEvents})
		},
		OpenReserved: func(t *testing.T, maxEvents, maxReserved int) ssehub.Log {
			return open(t, url, Options{MaxEvents: maxEvents, MaxReserved: maxReserved, trimEveryAppend: true})
		},
		Reopen: logtest.ReopenWith(func(ctx context.Context, old *Log) (*Log, error) {
			return Open(ctx, url, old.opts)
		}),
	})
}

func event(topic, data string) *ssehub.Event {
	return &ssehub.Event{Topics: []string{topic}, Data: data}
}

// appendN appends n events with data "<prefix><i>" one by one.
func appendN(t *testing.T, l *Log, prefix string, n int) []*ssehub.Event {
	t.Helper()
	events := make([]*ssehub.Event, n)
	for i := range events {
		events[i] = event("a", fmt.Sprint(prefix, i))
		if err := l.Append(t.Context(), events[i]); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	return events
}

// TestStoredMessages checks the layout other tools and nodes rely on: the
// subject, one message per event holding its encoding, positions equal to
// stream sequences plus the stream's creation time in µs.
func TestStoredMessages(t *testing.T) {
	url := sharedURL(t)
	before := time.Now().Add(-time.Minute)
	l := open(t, url, Options{})
	e := &ssehub.Event{ID: "pub-1", Topics: []string{"c", "d"}, Type: "t", Data: "three\nlines", Private: true, Retry: time.Second}
	if err := l.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if min := uint64(before.UnixMicro()); e.Pos < min {
		t.Fatalf("first position %d: want the stream's creation time in µs (at least %d)", e.Pos, min)
	}
	s, err := rawJS(t, url).Stream(t.Context(), l.name)
	if err != nil {
		t.Fatal(err)
	}
	if l.offset.Load() < uint64(before.UnixMicro()) {
		t.Fatalf("offset %d: want the stream's creation time in µs", l.offset.Load())
	}
	msg, err := s.GetMsg(t.Context(), e.Pos-l.offset.Load())
	if err != nil {
		t.Fatal(err)
	}
	if want := "ssehub." + l.name + ".events.m"; msg.Subject != want {
		t.Errorf("subject of an event with two topics %q, want %s", msg.Subject, want)
	}
	// One topic (named twice): the subject of its hash, 16 hex digits.
	one := &ssehub.Event{Topics: []string{"https://example.com/books/1", "https://example.com/books/1"}, Data: "x"}
	if err := l.Append(t.Context(), one); err != nil {
		t.Fatal(err)
	}
	msg1, err := s.GetMsg(t.Context(), one.Pos-l.offset.Load())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("ssehub.%s.events.t.%016x", l.name, eventlog.TopicHash(one.Topics[0])); msg1.Subject != want {
		t.Errorf("subject of an event with one topic %q, want %s", msg1.Subject, want)
	}
	var got ssehub.Event
	if err := got.UnmarshalBinary(msg.Data); err != nil {
		t.Fatal(err)
	}
	got.Pos = e.Pos
	if got.Data != e.Data || got.ID != e.ID || got.Type != e.Type || !got.Private || got.Retry != e.Retry || !got.Time.Equal(e.Time) {
		t.Errorf("message decodes to %+v, want %+v", got, *e)
	}
}

// TestRead covers both ways Read fetches: direct gets for small limits and
// a consumer for large ones, also over a sparse range.
func TestRead(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{})
	events := appendN(t, l, "e", 40)
	// Make the log sparse: delete every third message.
	s, err := rawJS(t, url).Stream(t.Context(), l.name)
	if err != nil {
		t.Fatal(err)
	}
	var kept []*ssehub.Event
	for i, e := range events {
		if i%3 == 1 {
			if err := s.DeleteMsg(t.Context(), e.Pos-l.offset.Load()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		kept = append(kept, e)
	}
	tests := []struct {
		name  string
		after uint64
		limit int
		want  []*ssehub.Event
	}{
		{"small from start", 0, 3, kept[:3]},
		{"small at the limit", kept[2].Pos, smallRead, kept[3 : 3+smallRead]},
		{"large from start", 0, 100, kept},
		{"large from middle", kept[10].Pos, 100, kept[11:]},
		{"large limited", kept[5].Pos, smallRead + 1, kept[6 : 6+smallRead+1]},
		{"large near the end", kept[len(kept)-3].Pos, 100, kept[len(kept)-2:]},
		{"large after a deleted one", events[len(events)-2].Pos, 100, kept[len(kept)-1:]},
		{"nothing after last", kept[len(kept)-1].Pos, 100, nil},
		{"max position", ^uint64(0), 100, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.Read(t.Context(), tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Read(%d, %d) = %d events, want %d", tc.after, tc.limit, len(got), len(tc.want))
			}
			for i := range got {
				if got[i].Pos != tc.want[i].Pos || got[i].Data != tc.want[i].Data {
					t.Fatalf("event %d = %d %q, want %d %q", i, got[i].Pos, got[i].Data, tc.want[i].Pos, tc.want[i].Data)
				}
			}
		})
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers left behind by Read", info.State.Consumers)
	}
}

// TestNodesShareOnePositionSpace runs three Logs on one stream, as three
// hub nodes would, opened at once on a new stream, then appending
// concurrently (logtest.SharedPositions).
func TestNodesShareOnePositionSpace(t *testing.T) {
	url := sharedURL(t)
	name := newStream(t, url)
	// Three nodes start at once on a new stream: their Opens must agree on
	// where positions start and lose nothing.
	nodes := make([]*Log, 3)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			l, err := Open(t.Context(), url, Options{Stream: name})
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			t.Cleanup(func() { l.Close() })
			nodes[i] = l
			if err := l.Append(t.Context(), event("t", fmt.Sprintf("node %d hello", i))); err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	logtest.SharedPositions(t, nodes[0], nodes[1], nodes[2])
}

// TestPositionsAfterStreamLoss deletes the stream: the next Open recreates
// it and its positions start above the old ones.
func TestPositionsAfterStreamLoss(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{})
	old := appendN(t, l, "old", 3)
	l.Close()
	if err := rawJS(t, url).DeleteStream(t.Context(), l.name); err != nil {
		t.Fatal(err)
	}
	l2 := open(t, url, Options{Stream: l.name})
	next := appendN(t, l2, "new", 1)
	if next[0].Pos <= old[2].Pos {
		t.Fatalf("after the stream was lost the next position is %d, not after %d", next[0].Pos, old[2].Pos)
	}
}

// TestStreamCreatedAgain deletes the stream under running Logs and lets
// another node create it again: positions keep increasing across the two
// streams, for appends and for a running Tail.
func TestStreamCreatedAgain(t *testing.T) {
	url := sharedURL(t)
	var logs servicetest.LogBuffer
	a := open(t, url, Options{Logger: logs.Logger()})
	tl := logtest.StartTail(t, a, 0, 15*time.Second)
	old := appendN(t, a, "old", 3)
	tl.Next(t, 3)
	if err := rawJS(t, url).DeleteStream(t.Context(), a.name); err != nil {
		t.Fatal(err)
	}
	open(t, url, Options{Stream: a.name}) // another node starts and creates it again
	next := event("a", "new0")
	if err := a.Append(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	if next.Pos <= old[2].Pos {
		t.Fatalf("first position in the new stream %d, not after the old %d", next.Pos, old[2].Pos)
	}
	if got := tl.Next(t, 1)[0]; got.Pos != next.Pos || got.Data != "new0" {
		t.Fatalf("Tail delivered %d %q after the new stream was created, want %d new0", got.Pos, got.Data, next.Pos)
	}
	if !strings.Contains(logs.String(), "created again") {
		t.Fatalf("no warning about the stream created again in the log:\n%s", logs.String())
	}
}

func TestMaxAge(t *testing.T) {
	l := open(t, sharedURL(t), Options{MaxAge: 200 * time.Millisecond})
	e := appendN(t, l, "x", 1)[0]
	servicetest.WaitFor(t, 15*time.Second, "the event to expire", func() bool {
		first, last, err := l.Bounds(t.Context())
		return err == nil && first == 0 && last == e.Pos
	})
}

func TestOpenErrors(t *testing.T) {
	url := sharedURL(t)
	logtest.OpenErrors(t, Open, []logtest.OpenError[Options]{
		{Name: "bad url", URL: "http://127.0.0.1:4222", Opts: Options{}, Want: ErrOptions},
		{Name: "negative MaxEvents", URL: url, Opts: Options{MaxEvents: -1}, Want: ErrOptions},
		{Name: "negative MaxAge", URL: url, Opts: Options{MaxAge: -time.Second}, Want: ErrOptions},
		{Name: "negative Timeout", URL: url, Opts: Options{Timeout: -time.Second}, Want: ErrOptions},
		{Name: "too many replicas", URL: url, Opts: Options{Replicas: 7}, Want: ErrOptions},
		{Name: "dot in stream", URL: url, Opts: Options{Stream: "a.b"}, Want: ErrOptions},
		{Name: "wildcard subject", URL: url, Opts: Options{Stream: "X", Subject: "a.*"}, Want: ErrOptions},
		{Name: "empty subject token", URL: url, Opts: Options{Stream: "X", Subject: "a..b"}, Want: ErrOptions},
		{Name: "nothing listening", URL: fmt.Sprintf("nats://127.0.0.1:%d", servicetest.FreePort(t)), Opts: Options{}, Want: ssehub.ErrUnavailable},
	})
}

func TestAppendErrors(t *testing.T) {
	l := open(t, sharedURL(t), Options{})
	tests := []struct {
		name   string
		events []*ssehub.Event
		want   error
	}{
		{"nil event", []*ssehub.Event{event("a", "x"), nil}, ssehub.ErrInvalid},
		{"over the server's max payload", []*ssehub.Event{event("a", strings.Repeat("x", 2<<20))}, ssehub.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Append(t.Context(), tc.events...); !errors.Is(err, tc.want) {
				t.Fatalf("Append = %v, want %v", err, tc.want)
			}
		})
	}
	if _, last, _ := l.Bounds(t.Context()); last != 0 {
		t.Fatalf("refused appends stored events up to %d", last)
	}
}

// TestCloseDeletesConsumers checks that a Log leaves no consumer behind.
func TestCloseDeletesConsumers(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{})
	appendN(t, l, "x", 1)
	got := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- l.Tail(context.Background(), 0, func([]*ssehub.Event) error {
			select {
			case got <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	<-got
	s, err := rawJS(t, url).Stream(t.Context(), l.name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil || info.State.Consumers != 1 {
		t.Fatalf("consumers while tailing = %d, %v; want 1", info.State.Consumers, err)
	}
	l.Close()
	if err := <-done; !errors.Is(err, ssehub.ErrClosed) {
		t.Fatalf("Tail returned %v, want ErrClosed", err)
	}
	info, err = s.Info(t.Context())
	if err != nil || info.State.Consumers != 0 {
		t.Fatalf("consumers after Close = %d, %v; want 0", info.State.Consumers, err)
	}
}

// TestTailRecoversLostConsumer deletes a running Tail's consumer behind its
// back: the Tail recreates it and goes on with no gap or duplicate.
func TestTailRecoversLostConsumer(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{})
	tl := logtest.StartTail(t, l, 0, 15*time.Second)
	appendN(t, l, "a", 3)
	got := tl.Next(t, 3)
	js := rawJS(t, url)
	for name := range l.liveConsumers() {
		if err := js.DeleteConsumer(t.Context(), l.name, name); err != nil {
			t.Fatal(err)
		}
	}
	appendN(t, l, "b", 3)
	got = append(got, tl.Next(t, 3)...)
	for i, e := range got {
		want := fmt.Sprint([]string{"a", "b"}[i/3], i%3)
		if e.Data != want {
			t.Fatalf("event %d is %q, want %q", i, e.Data, want)
		}
	}
}

func (l *Log) liveConsumers() map[string]struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]struct{}{}
	for k := range l.consumers {
		m[k] = struct{}{}
	}
	return m
}

// TestUnavailable kills the test's own nats-server: every call fails with
// ErrUnavailable naming the server, and works again once it is back, with
// positions continuing.
func TestUnavailable(t *testing.T) {
	srv := startServer(t)
	l := open(t, srv.url(), Options{Timeout: time.Second})
	logtest.Unavailable(t, logtest.Down{
		Log: l, Server: srv.url(),
		Kill: func() {
			srv.Kill()
			servicetest.WaitFor(t, 15*time.Second, "the client to notice", func() bool { return !l.nc.IsConnected() })
		},
		Restart: func() {
			srv.Start()
			servicetest.WaitFor(t, 15*time.Second, "the client to reconnect", l.nc.IsConnected)
		},
	})
}

// TestUnansweredConnectTimesOut points Open at a server that accepts
// connections and never answers: it gives up with ErrUnavailable.
func TestUnansweredConnectTimesOut(t *testing.T) {
	logtest.SilentServer(t, func(ctx context.Context, addr string) error {
		_, err := Open(ctx, "nats://"+addr, Options{Timeout: 200 * time.Millisecond})
		return err
	})
}

// TestTailSurvivesOutage kills and restarts the test's own nats-server
// while a Tail runs (logtest.TailOutage).
func TestTailSurvivesOutage(t *testing.T) {
	srv := startServer(t)
	var logs servicetest.LogBuffer
	tailer := open(t, srv.url(), Options{Timeout: time.Second, Logger: logs.Logger()})
	appender := open(t, srv.url(), Options{Stream: tailer.name, Timeout: time.Second})
	logtest.TailOutage(t, logtest.Outage{
		Tailer: tailer, Appender: appender, Logs: &logs,
		Kill: srv.Kill,
		Restart: func() {
			srv.Start()
			servicetest.WaitFor(t, 15*time.Second, "the appender to reconnect", appender.nc.IsConnected)
		},
		Down: "nats unreachable",
	})
}

// TestStalledServer stops the test's own nats-server (SIGSTOP) so that it
// answers nothing: Append gives up after Options.Timeout with
// ErrUnavailable, and works again once it continues.
func TestStalledServer(t *testing.T) {
	srv := startServer(t)
	l := open(t, srv.url(), Options{Timeout: 300 * time.Millisecond})
	logtest.Stalled(t, logtest.Down{Log: l, Stop: srv.Stop, Cont: srv.Cont, Timeout: 300 * time.Millisecond})
}
