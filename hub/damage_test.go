package hub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
)

// damagedLog is a memory log whose events with the data "BAD" are damaged
// on "disk": its reads and its tail behave as boltlog's do when they meet
// one (see ssehub.DamagedError): they stop before it, and report it when
// it comes first.
type damagedLog struct{ *memlog.Log }

func isBad(e *ssehub.Event) bool { return e.Data == "BAD" }

func damagedAt(pos uint64) error {
	return &ssehub.DamagedError{Pos: pos, Err: errors.New("test: checksum mismatch")}
}

func (d damagedLog) Read(ctx context.Context, after uint64, limit int) ([]*ssehub.Event, error) {
	evs, err := d.Log.Read(ctx, after, limit)
	for i, e := range evs {
		if isBad(e) {
			if i > 0 {
				return evs[:i], err
			}
			return nil, damagedAt(e.Pos)
		}
	}
	return evs, err
}

func (d damagedLog) ReadTopics(ctx context.Context, q ssehub.TopicQuery) ([]*ssehub.Event, uint64, error) {
	evs, through, err := d.Log.ReadTopics(ctx, q)
	for i, e := range evs {
		if isBad(e) {
			if e.Pos-1 > q.After {
				return evs[:i], e.Pos - 1, nil
			}
			return nil, 0, damagedAt(e.Pos)
		}
	}
	return evs, through, err
}

func (d damagedLog) Tail(ctx context.Context, after uint64, fn func([]*ssehub.Event) error) error {
	return d.Log.Tail(ctx, after, func(evs []*ssehub.Event) error {
		for i, e := range evs {
			if isBad(e) {
				if i > 0 {
					if err := fn(evs[:i]); err != nil {
						return err
					}
				}
				return damagedAt(e.Pos)
			}
		}
		return fn(evs)
	})
}

// plainDamagedLog hides the TopicIndex: replays read with Log.Read.
type plainDamagedLog struct{ damagedLog }

func (plainDamagedLog) ReadTopics() {}

// A damaged event met during a replay used to end the subscription with
// an error, at every reconnect (EventSource looped, long polling answered
// 500). It is a gap now: the replay sends what comes before it, a gap
// event with the reason "damaged" resuming after it, then what follows,
// and goes live.
func TestDamagedEventInReplayIsAGap(t *testing.T) {
	for _, tc := range []struct {
		name, sel string
		plain     bool
	}{
		{"topic index", "a", false},
		{"shared scan", "*", false},
		{"shared scan of a log without a topic index", "*", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l ssehub.Log = damagedLog{memlog.New(memlog.Options{})}
			if tc.plain {
				l = plainDamagedLog{l.(damagedLog)}
			}
			h := newCountingHub(t, hub.Options{}, l)
			var evs []*ssehub.Event
			for _, data := range []string{"A", "B", "BAD", "D", "E"} {
				ev := &ssehub.Event{Topics: []string{"a"}, Data: data}
				publish(t, h, ev)
				evs = append(evs, ev)
			}
			waitDispatched(t, h)
			gaps := h.Stats().Gaps
			s := subscribe(t, h, hub.Request{Selectors: sels(t, tc.sel), LastEventID: ssehub.FormatID(evs[0].Pos)})
			got := collect(t, s, 4)
			if d := datas(got); d[0] != "B" || got[1].Type != hub.GapType || d[2] != "D" || d[3] != "E" {
				t.Fatalf("replayed %q (types %q, %q), want B, a gap, D, E", d, got[0].Type, got[1].Type)
			}
			want := `"reason":"damaged"`
			if g := got[1]; !strings.Contains(g.Data, want) || !strings.Contains(g.Data, `"resumed_after":"`+ssehub.FormatID(evs[2].Pos)+`"`) || g.ID != ssehub.FormatID(evs[2].Pos) {
				t.Fatalf("gap event %+v, want %s resuming after %d", g, want, evs[2].Pos)
			}
			st := h.Stats()
			if st.Damaged == 0 || st.Gaps != gaps+1 {
				t.Fatalf("Stats: Damaged %d, Gaps %d (was %d); want the damaged event and the gap counted", st.Damaged, st.Gaps, gaps)
			}
			// The subscription goes on, live.
			publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: "F"})
			if d := datas(collect(t, s, 1)); d[0] != "F" {
				t.Fatalf("live after the replay: %q", d)
			}
		})
	}
}

// A damaged event met by the hub's tail cannot be fanned out: the tail
// goes on after it (it used to retry the same read for ever, and live
// delivery stopped), and live subscribers, who may have missed it,
// resume and learn of the gap from their replay.
func TestDamagedEventInTailResumesSubscribers(t *testing.T) {
	h := newCountingHub(t, hub.Options{}, damagedLog{memlog.New(memlog.Options{})})
	s := subscribe(t, h, hub.Request{Selectors: sels(t, "a")})
	var evs []*ssehub.Event
	for _, data := range []string{"A", "BAD", "C"} {
		ev := &ssehub.Event{Topics: []string{"a"}, Data: data}
		publish(t, h, ev)
		evs = append(evs, ev)
	}
	waitDispatched(t, h)
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for err == nil {
		var chunks [][]byte
		chunks, err = s.Next(ctx)
		for _, c := range chunks {
			got = append(got, string(c))
		}
	}
	if !errors.Is(err, hub.ErrDamaged) {
		t.Fatalf("the live subscriber ended with %v, want hub.ErrDamaged", err)
	}
	if all := strings.Join(got, ""); !strings.Contains(all, "data: A\n") || strings.Contains(all, "data: C\n") {
		t.Fatalf("the live subscriber got %q: want A, then the end before C", all)
	}
	// It resumes from A: the replay says what is missing, then C.
	r := subscribe(t, h, hub.Request{Selectors: sels(t, "a"), LastEventID: ssehub.FormatID(evs[0].Pos)})
	replayed := collect(t, r, 2)
	if replayed[0].Type != hub.GapType || !strings.Contains(replayed[0].Data, `"damaged"`) || replayed[1].Data != "C" {
		t.Fatalf("resumed with %+v, want a damaged gap then C", replayed)
	}
	// Live delivery goes on.
	publish(t, h, &ssehub.Event{Topics: []string{"a"}, Data: "D"})
	if d := datas(collect(t, r, 1)); d[0] != "D" {
		t.Fatalf("live after the damaged event: %q", d)
	}
}
