package eventlog

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ev(pos uint64) *ssehub.Event { return &ssehub.Event{Pos: pos} }

func ringPositions(r *Ring) []uint64 {
	var p []uint64
	for i := range r.Len() {
		p = append(p, r.At(i).Pos)
	}
	return p
}

func TestRing(t *testing.T) {
	tests := []struct {
		name      string
		push, pop int // push positions 10, 11, …; then pop from the front
		want      []uint64
	}{
		{"empty", 0, 0, nil},
		{"one", 1, 0, []uint64{10}},
		{"pop all", 3, 3, nil},
		{"pop more than held", 2, 5, nil},
		{"grow past the first capacity", 40, 0, seq(10, 40)},
		{"wrap around and shrink", 100, 90, seq(100, 10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Ring
			for i := range tc.push {
				r.Push(ev(uint64(10 + i)))
			}
			for range tc.pop {
				r.PopFront()
			}
			if got := ringPositions(&r); !slices.Equal(got, tc.want) {
				t.Fatalf("ring holds %v, want %v", got, tc.want)
			}
			if len(tc.want) > 0 {
				if r.Front().Pos != tc.want[0] || r.Back().Pos != tc.want[len(tc.want)-1] {
					t.Fatalf("Front %d Back %d", r.Front().Pos, r.Back().Pos)
				}
			} else if r.Front() != nil || r.Back() != nil {
				t.Fatal("Front or Back of an empty ring is not nil")
			}
		})
	}
}

func seq(from uint64, n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = from + uint64(i)
	}
	return s
}

func TestRingWrapsWithoutGrowing(t *testing.T) {
	var r Ring
	next := uint64(1)
	for range 1000 { // hold 10 at a time: the buffer wraps many times
		r.Push(ev(next))
		next++
		if r.Len() > 10 {
			r.PopFront()
		}
	}
	if got := ringPositions(&r); !slices.Equal(got, seq(991, 10)) {
		t.Fatalf("ring holds %v", got)
	}
	if len(r.buf) != minRingCap {
		t.Fatalf("buffer grew to %d holding 10", len(r.buf))
	}
}

func TestRingAppendAfter(t *testing.T) {
	var r Ring
	for _, p := range []uint64{5, 6, 9, 12} { // sparse positions are fine
		r.Push(ev(p))
	}
	tests := []struct {
		name  string
		after uint64
		limit int
		want  []uint64
	}{
		{"from 0", 0, 10, []uint64{5, 6, 9, 12}},
		{"limit", 0, 2, []uint64{5, 6}},
		{"exact position", 6, 10, []uint64{9, 12}},
		{"in a hole", 7, 10, []uint64{9, 12}},
		{"last", 12, 10, nil},
		{"beyond", 100, 10, nil},
		{"zero limit", 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.AppendAfter(nil, tc.after, tc.limit)
			var p []uint64
			for _, e := range got {
				p = append(p, e.Pos)
			}
			if !slices.Equal(p, tc.want) {
				t.Fatalf("AppendAfter(%d, %d) = %v, want %v", tc.after, tc.limit, p, tc.want)
			}
		})
	}
}

func TestNotifier(t *testing.T) {
	var n Notifier
	a, b := n.C(), n.C()
	if a != b {
		t.Fatal("two waiters before a Notify got different channels")
	}
	n.Notify()
	for _, c := range []<-chan struct{}{a, b} {
		select {
		case <-c:
		default:
			t.Fatal("Notify did not close the channel")
		}
	}
	c := n.C()
	select {
	case <-c:
		t.Fatal("channel taken after Notify is already closed")
	default:
	}
	n.Notify()
	n.Notify() // nobody waiting: no panic
}

// Tail loop behaviour over a fake log, with synctest so "waits" are exact.
func TestTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			n      Notifier
			r      Ring
			closed = make(chan struct{})
		)
		read := func(ctx context.Context, after uint64, limit int) ([]*ssehub.Event, error) {
			return r.AppendAfter(nil, after, limit), nil
		}
		var got []uint64
		calls := 0
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		r.Push(ev(1))
		go func() {
			done <- Tail(ctx, 0, func(events []*ssehub.Event) error {
				calls++
				for _, e := range events {
					got = append(got, e.Pos)
				}
				return nil
			}, read, &n, closed)
		}()
		synctest.Wait() // delivered 1, now waiting
		if !slices.Equal(got, []uint64{1}) {
			t.Fatalf("got %v", got)
		}
		r.Push(ev(2))
		r.Push(ev(3))
		synctest.Wait()
		if len(got) != 1 {
			t.Fatal("Tail read without a notification: it polls")
		}
		n.Notify()
		synctest.Wait()
		if !slices.Equal(got, []uint64{1, 2, 3}) || calls != 2 {
			t.Fatalf("got %v in %d calls, want [1 2 3] in 2", got, calls)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Tail = %v after cancel", err)
		}
		go func() {
			done <- Tail(t.Context(), 3, func([]*ssehub.Event) error { return nil }, read, &n, closed)
		}()
		synctest.Wait()
		close(closed)
		if err := <-done; !errors.Is(err, ssehub.ErrClosed) {
			t.Fatalf("Tail = %v after close", err)
		}
	})
}
