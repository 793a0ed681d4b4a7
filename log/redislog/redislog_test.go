package redislog

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
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
			return open(t, url, Options{MaxEvents: maxEvents, MaxReserved: maxReserved})
		},
		// XADD MAXLEN ~ trims whole stream nodes: at most
		// stream-node-max-entries (100 by default) more remain.
		RetentionSlack: 100,
		Reopen: logtest.ReopenWith(func(ctx context.Context, old *Log) (*Log, error) {
			return Open(ctx, url, old.opts)
		}),
	})
}

func event(topic, data string) *ssehub.Event {
	return &ssehub.Event{Topics: []string{topic}, Data: data}
}

// TestStoredEntries checks the layout other tools and nodes rely on: entry
// ids "<pos>-0", one field "e" with the encoding that includes Pos, and the
// counter holding the newest position.
func TestStoredEntries(t *testing.T) {
	url := sharedURL(t)
	l := open(t, url, Options{})
	events := []*ssehub.Event{event("a", "one"), event("b", "two\nlines"), {ID: "pub-1", Topics: []string{"c", "d"}, Type: "t", Data: "three", Private: true, Retry: time.Second}}
	if err := l.Append(t.Context(), events[0]); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(t.Context(), events[1:]...); err != nil {
		t.Fatal(err)
	}
	c := rawClient(t, url)
	msgs, err := c.XRange(t.Context(), l.stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(events) {
		t.Fatalf("stream holds %d entries, want %d", len(msgs), len(events))
	}
	for i, m := range msgs {
		want := events[i]
		if m.ID != fmt.Sprintf("%d-0", want.Pos) {
			t.Errorf("entry %d: id %q, want %d-0", i, m.ID, want.Pos)
		}
		if len(m.Values) != 1 {
			t.Errorf("entry %d: fields %v, want only %q", i, m.Values, field)
		}
		var got ssehub.Event
		if err := got.UnmarshalBinary([]byte(m.Values[field].(string))); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if got.Pos != want.Pos || got.Data != want.Data || got.ID != want.ID || !got.Time.Equal(want.Time) {
			t.Errorf("entry %d decodes to %+v, want %+v", i, got, *want)
		}
	}
	if n, err := c.Get(t.Context(), l.counter).Uint64(); err != nil || n != events[2].Pos {
		t.Errorf("counter = %d, %v; want %d", n, err, events[2].Pos)
	}
	if events[1].Pos != events[0].Pos+1 || events[2].Pos != events[1].Pos+1 {
		t.Errorf("positions %d, %d, %d are not consecutive", events[0].Pos, events[1].Pos, events[2].Pos)
	}
}

// TestNodesShareOnePositionSpace runs three Logs on the same keys, as three
// hub nodes would, appending concurrently (logtest.SharedPositions).
func TestNodesShareOnePositionSpace(t *testing.T) {
	url := sharedURL(t)
	prefix := newPrefix(t, url)
	logtest.SharedPositions(t, open(t, url, Options{Prefix: prefix}), open(t, url, Options{Prefix: prefix}), open(t, url, Options{Prefix: prefix}))
}

// TestPositionsAfterDataLoss checks that positions never go back when Redis
// loses the counter, or everything.
func TestPositionsAfterDataLoss(t *testing.T) {
	tests := []struct {
		name    string
		lose    func(l *Log) []string // keys to delete
		nearNow bool                  // the next position restarts at the clock
	}{
		{"counter lost", func(l *Log) []string { return []string{l.counter} }, false},
		{"everything lost", func(l *Log) []string { return []string{l.counter, l.stream} }, true},
	}
	url := sharedURL(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := open(t, url, Options{})
			before := uint64(time.Now().Add(-time.Minute).UnixMicro())
			old := event("a", "old")
			if err := l.Append(t.Context(), event("a", "first"), old); err != nil {
				t.Fatal(err)
			}
			if old.Pos < before {
				t.Fatalf("first positions %d: want them to start at the clock in µs (about %d)", old.Pos, before)
			}
			if err := rawClient(t, url).Del(t.Context(), tc.lose(l)...).Err(); err != nil {
				t.Fatal(err)
			}
			next := event("a", "next")
			if err := l.Append(t.Context(), next); err != nil {
				t.Fatal(err)
			}
			if next.Pos <= old.Pos {
				t.Fatalf("after the loss the next position is %d, not after %d", next.Pos, old.Pos)
			}
			if !tc.nearNow && next.Pos != old.Pos+1 {
				t.Fatalf("after losing only the counter the next position is %d, want %d", next.Pos, old.Pos+1)
			}
			if _, last, err := l.Bounds(t.Context()); err != nil || last != next.Pos {
				t.Fatalf("Bounds last = %d, %v; want %d", last, err, next.Pos)
			}
		})
	}
}

func TestMaxAge(t *testing.T) {
	url := sharedURL(t)
	t.Run("trim", func(t *testing.T) {
		l := open(t, url, Options{MaxAge: time.Hour}) // the background trimmer will not run in time
		old := time.Now().Add(-2 * time.Hour)
		var events []*ssehub.Event
		for i := range 300 { // more than one XRANGE page of expired events
			events = append(events, &ssehub.Event{Topics: []string{"a"}, Data: fmt.Sprint(i), Time: old})
		}
		if err := l.Append(t.Context(), events...); err != nil {
			t.Fatal(err)
		}
		fresh := []*ssehub.Event{event("a", "fresh 1"), event("a", "fresh 2")}
		if err := l.Append(t.Context(), fresh...); err != nil {
			t.Fatal(err)
		}
		// An old Time after a fresh one stays: trimming is from the oldest end.
		late := &ssehub.Event{Topics: []string{"a"}, Data: "late", Time: old}
		if err := l.Append(t.Context(), late); err != nil {
			t.Fatal(err)
		}
		if err := l.trimAge(t.Context()); err != nil {
			t.Fatal(err)
		}
		first, last, err := l.Bounds(t.Context())
		if err != nil || first != fresh[0].Pos || last != late.Pos {
			t.Fatalf("Bounds after trim = %d, %d, %v; want %d, %d", first, last, err, fresh[0].Pos, late.Pos)
		}
		got, err := l.Read(t.Context(), 0, 10)
		if err != nil || len(got) != 3 {
			t.Fatalf("Read after trim = %d events, %v; want 3", len(got), err)
		}
	})
	t.Run("background", func(t *testing.T) {
		l := open(t, url, Options{MaxAge: 100 * time.Millisecond})
		expired := &ssehub.Event{Topics: []string{"a"}, Data: "expired", Time: time.Now().Add(-time.Hour)}
		if err := l.Append(t.Context(), expired); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			first, last, err := l.Bounds(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if first == 0 && last == expired.Pos {
				break // trimmed; the position is still known
			}
			if time.Now().After(deadline) {
				t.Fatalf("the expired event was not trimmed within 10s: Bounds %d, %d", first, last)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	url := sharedURL(t)
	logtest.OpenErrors(t, Open, []logtest.OpenError[Options]{
		{Name: "bad url", URL: "http://127.0.0.1:6379", Opts: Options{}, Want: ErrOptions},
		{Name: "negative MaxEvents", URL: url, Opts: Options{MaxEvents: -1}, Want: ErrOptions},
		{Name: "negative MaxAge", URL: url, Opts: Options{MaxAge: -time.Second}, Want: ErrOptions},
		{Name: "negative Timeout", URL: url, Opts: Options{Timeout: -time.Second}, Want: ErrOptions},
		{Name: "braces in prefix", URL: url, Opts: Options{Prefix: "a{b}"}, Want: ErrOptions},
		{Name: "nothing listening", URL: fmt.Sprintf("redis://127.0.0.1:%d/0", servicetest.FreePort(t)), Opts: Options{}, Want: ssehub.ErrUnavailable},
	})
}

func TestAppendNilEvent(t *testing.T) {
	l := open(t, sharedURL(t), Options{})
	if err := l.Append(t.Context(), event("a", "x"), nil); !errors.Is(err, ssehub.ErrInvalid) {
		t.Fatalf("Append(nil) = %v, want ErrInvalid", err)
	}
	if _, last, _ := l.Bounds(t.Context()); last != 0 {
		t.Fatalf("a refused batch stored events up to %d", last)
	}
}

// TestTailCancelUnblocks makes Tail's XREAD block for an hour: cancelling
// the context or closing the log must still end Tail, through CLIENT
// UNBLOCK or by closing the connection.
func TestTailCancelUnblocks(t *testing.T) {
	url := sharedURL(t)
	tests := []struct {
		name string
		stop func(cancel context.CancelFunc, l *Log)
		want error
	}{
		{"cancel", func(cancel context.CancelFunc, _ *Log) { cancel() }, context.Canceled},
		{"close", func(_ context.CancelFunc, l *Log) { l.Close() }, ssehub.ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := open(t, url, Options{})
			l.block = time.Hour
			if err := l.Append(t.Context(), event("a", "x")); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			got := make(chan struct{}, 1)
			done := make(chan error, 1)
			go func() {
				done <- l.Tail(ctx, 0, func([]*ssehub.Event) error { got <- struct{}{}; return nil })
			}()
			<-got // the next XREAD blocks
			tc.stop(cancel, l)
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Fatalf("Tail returned %v, want %v", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Tail did not return: its blocking XREAD was not interrupted")
			}
		})
	}
}

// TestUnavailable kills the test's own redis-server: every call fails with
// ErrUnavailable naming the server, and works again once it is back, with
// positions continuing.
func TestUnavailable(t *testing.T) {
	srv := startServer(t)
	logtest.Unavailable(t, logtest.Down{
		Log:    open(t, srv.url(), Options{Timeout: time.Second}),
		Server: fmt.Sprintf("127.0.0.1:%d", srv.Port),
		Kill:   srv.Kill, Restart: srv.Start,
	})
}

// TestUnansweredRequestTimesOut points a Log at a server that accepts
// connections and never answers: Append gives up after Options.Timeout
// with ErrUnavailable instead of hanging.
func TestUnansweredRequestTimesOut(t *testing.T) {
	logtest.SilentServer(t, func(ctx context.Context, addr string) error {
		_, err := Open(ctx, "redis://"+addr+"/0", Options{Timeout: 200 * time.Millisecond})
		return err
	})
}

// TestTailSurvivesOutage kills and restarts the test's own redis-server
// while a Tail runs (logtest.TailOutage).
func TestTailSurvivesOutage(t *testing.T) {
	srv := startServer(t)
	var logs servicetest.LogBuffer
	tailer := open(t, srv.url(), Options{Timeout: time.Second, Logger: logs.Logger()})
	appender := open(t, srv.url(), Options{Prefix: tailer.opts.Prefix, Timeout: time.Second})
	logtest.TailOutage(t, logtest.Outage{
		Tailer: tailer, Appender: appender, Logs: &logs,
		Kill: srv.Kill, Restart: srv.Start,
		Down: "redis unreachable",
	})
}

// TestStalledServer stops the test's own redis-server (SIGSTOP) so that it
// accepts nothing and answers nothing: Append gives up after
// Options.Timeout with ErrUnavailable, and works again once it continues.
func TestStalledServer(t *testing.T) {
	srv := startServer(t)
	l := open(t, srv.url(), Options{Timeout: 300 * time.Millisecond})
	logtest.Stalled(t, logtest.Down{Log: l, Stop: srv.Stop, Cont: srv.Cont, Timeout: 300 * time.Millisecond})
}
