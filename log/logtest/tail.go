package logtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

// The Tail helper and the tail subtests.

// Tail runs a log's Tail on a goroutine and hands the batches it gets to
// the test. Start one with StartTail.
type Tail struct {
	batches chan []*ssehub.Event
	errc    chan error
	cancel  context.CancelFunc
	timeout time.Duration // for each wait
	last    uint64        // last position received
}

// StartTail runs l.Tail(after) until the test ends (or Cancel); Next and
// Wait give up after timeout.
func StartTail(t *testing.T, l ssehub.Log, after uint64, timeout time.Duration) *Tail {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	tl := &Tail{batches: make(chan []*ssehub.Event), errc: make(chan error, 1), cancel: cancel, timeout: timeout, last: after}
	go func() {
		tl.errc <- l.Tail(ctx, after, func(events []*ssehub.Event) error {
			select {
			case tl.batches <- slices.Clone(events):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-tl.errc // wait, so no goroutine outlives the test
	})
	return tl
}

func (s *suite) startTail(t *testing.T, l ssehub.Log, after uint64) *Tail {
	t.Helper()
	return StartTail(t, l, after, s.timeout)
}

// Cancel cancels the Tail's context; Wait then returns what it returned.
func (tl *Tail) Cancel() { tl.cancel() }

// Running fails the test if Tail has returned.
func (tl *Tail) Running(t *testing.T) {
	t.Helper()
	select {
	case err := <-tl.errc:
		tl.errc <- err
		t.Fatalf("Tail returned %v; it should still be running", err)
	default:
	}
}

// Next returns the next n events the tail delivers, checking that each
// batch is non-empty and that positions only increase (so no event comes
// twice).
func (tl *Tail) Next(t *testing.T, n int) []*ssehub.Event {
	t.Helper()
	var got []*ssehub.Event
	timer := time.NewTimer(tl.timeout)
	defer timer.Stop()
	for len(got) < n {
		select {
		case batch := <-tl.batches:
			if len(batch) == 0 {
				t.Fatal("Tail called fn with an empty batch")
			}
			for _, e := range batch {
				if e.Pos <= tl.last {
					t.Fatalf("Tail delivered position %d after %d: out of order or twice", e.Pos, tl.last)
				}
				tl.last = e.Pos
			}
			got = append(got, batch...)
		case err := <-tl.errc:
			t.Fatalf("Tail returned %v after delivering %d of %d events", err, len(got), n)
		case <-timer.C:
			t.Fatalf("Tail delivered %d of %d events within %v: %v", len(got), n, tl.timeout, positions(got))
		}
	}
	if len(got) > n {
		t.Fatalf("Tail delivered %d events, want %d: %v", len(got), n, positions(got))
	}
	return got
}

// Wait returns what Tail returned.
func (tl *Tail) Wait(t *testing.T) error {
	t.Helper()
	timer := time.NewTimer(tl.timeout)
	defer timer.Stop()
	for {
		select {
		case err := <-tl.errc:
			tl.errc <- err // for the cleanup
			return err
		case batch := <-tl.batches:
			t.Fatalf("Tail delivered unexpected events %v", positions(batch))
		case <-timer.C:
			t.Fatalf("Tail did not return within %v", tl.timeout)
		}
	}
}

// checkQuiet appends a marker event and checks it is the next thing tl
// delivers: nothing was left over or duplicated before it.
func (tl *Tail) checkQuiet(t *testing.T, l ssehub.Log) {
	t.Helper()
	marker := &ssehub.Event{Topics: []string{"marker"}, Data: "marker"}
	if err := l.Append(t.Context(), marker); err != nil {
		t.Fatalf("Append marker: %v", err)
	}
	got := tl.Next(t, 1)
	if got[0].Pos != marker.Pos || got[0].Data != "marker" {
		t.Fatalf("Tail delivered %d (%q) where the marker %d was expected", got[0].Pos, got[0].Data, marker.Pos)
	}
}

func (s *suite) testTailFromStart(t *testing.T) {
	l := s.open(t)
	existing := appendN(t, l, 0, 5)
	tl := s.startTail(t, l, 0)
	checkEqual(t, "Tail (existing events)", tl.Next(t, 5), existing)
	later := appendN(t, l, 5, 3)
	batch := []*ssehub.Event{sample(8), sample(9)}
	if err := l.Append(t.Context(), batch...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	later = append(later, clone(batch[0]), clone(batch[1]))
	checkEqual(t, "Tail (later events)", tl.Next(t, 5), later)
	tl.checkQuiet(t, l)
}

func (s *suite) testTailFromMiddle(t *testing.T) {
	l := s.open(t)
	existing := appendN(t, l, 0, 6)
	tl := s.startTail(t, l, existing[2].Pos)
	checkEqual(t, "Tail (existing events)", tl.Next(t, 3), existing[3:])
	later := appendN(t, l, 6, 4)
	checkEqual(t, "Tail (later events)", tl.Next(t, 4), later)
	tl.checkQuiet(t, l)
}

func (s *suite) testTailFromLast(t *testing.T) {
	l := s.open(t)
	existing := appendN(t, l, 0, 3)
	tl := s.startTail(t, l, existing[2].Pos)
	later := appendN(t, l, 3, 2)
	checkEqual(t, "Tail", tl.Next(t, 2), later)
	tl.checkQuiet(t, l)
}

func (s *suite) testTwoTails(t *testing.T) {
	l := s.open(t)
	existing := appendN(t, l, 0, 4)
	a := s.startTail(t, l, 0)
	b := s.startTail(t, l, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				e := writerSample(w, i)
				e.Data = fmt.Sprintf("writer %d event %d", w, i)
				if err := l.Append(t.Context(), e); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	gotA := a.Next(t, 44)
	gotB := b.Next(t, 44)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	checkEqual(t, "first events of tail A", gotA[:4], existing)
	checkEqual(t, "tail B compared with tail A", gotB, gotA)
	a.checkQuiet(t, l)
	b.Next(t, 1)
}

func (s *suite) testTailConcurrentAppends(t *testing.T) {
	l := s.open(t)
	tl := s.startTail(t, l, 0)
	const writers, perWriter = 8, 50
	var mu sync.Mutex
	acked := map[uint64]*ssehub.Event{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				e := writerSample(w, i)
				e.Data = fmt.Sprintf("writer %d event %d", w, i)
				if err := l.Append(t.Context(), e); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				acked[e.Pos] = clone(e)
				mu.Unlock()
			}
		})
	}
	// The tail must see every event exactly once and in position order, even
	// though appends commit concurrently: a later position must never become
	// visible before an earlier one.
	got := tl.Next(t, writers*perWriter)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	checkAcked(t, "Tail delivered", got, acked)
	checkEqual(t, "Read compared with Tail", readAll(t, l, 0), got)
	tl.checkQuiet(t, l)
}

func (s *suite) testTailCancel(t *testing.T) {
	t.Run("while waiting", func(t *testing.T) {
		l := s.open(t)
		appendN(t, l, 0, 2)
		tl := s.startTail(t, l, 0)
		tl.Next(t, 2)
		tl.Cancel()
		if err := tl.Wait(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("Tail after cancel returned %v, want context.Canceled", err)
		}
	})
	t.Run("already canceled", func(t *testing.T) {
		l := s.open(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := l.Tail(ctx, 0, func([]*ssehub.Event) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Fatalf("Tail with a canceled context returned %v, want context.Canceled", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		l := s.open(t)
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		defer cancel()
		if err := l.Tail(ctx, 0, func([]*ssehub.Event) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Tail past its deadline returned %v, want context.DeadlineExceeded", err)
		}
	})
}

func (s *suite) testTailClose(t *testing.T) {
	l := s.open(t)
	appendN(t, l, 0, 1)
	tl := s.startTail(t, l, 0)
	tl.Next(t, 1) // the tail runs and waits
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tl.Wait(t); !errors.Is(err, ssehub.ErrClosed) {
		t.Fatalf("Tail after Close returned %v, want ssehub.ErrClosed", err)
	}
	if err := l.Tail(t.Context(), 0, func([]*ssehub.Event) error { return nil }); !errors.Is(err, ssehub.ErrClosed) {
		t.Fatalf("Tail on a closed log returned %v, want ssehub.ErrClosed", err)
	}
}

func (s *suite) testTailFnError(t *testing.T) {
	l := s.open(t)
	appendN(t, l, 0, 3)
	errStop := errors.New("stop here")
	calls := 0
	err := l.Tail(t.Context(), 0, func([]*ssehub.Event) error {
		calls++
		return errStop
	})
	if err != errStop {
		t.Fatalf("Tail returned %v, want fn's error as is", err)
	}
	if calls != 1 {
		t.Fatalf("fn called %d times after returning an error, want 1", calls)
	}
}
