package eventlog

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

func TestUsable(t *testing.T) {
	open, closed := context.Background(), canceled()
	for _, tc := range []struct {
		name         string
		ctx, closing context.Context
		want         error
	}{
		{"open", open, open, nil},
		{"context done", canceled(), open, context.Canceled},
		{"closed", open, closed, ssehub.ErrClosed},
		{"closed wins over the context", canceled(), closed, ssehub.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Usable(tc.ctx, tc.closing); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Usable = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTailContextEnds(t *testing.T) {
	t.Run("with the caller's context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		tctx, release := TailContext(ctx, context.Background())
		defer release()
		cancel()
		<-tctx.Done()
		if err := TailEnd(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("TailEnd = %v, want context.Canceled", err)
		}
	})
	t.Run("with Close", func(t *testing.T) {
		ctx := context.Background()
		closing, close := context.WithCancel(context.Background())
		tctx, release := TailContext(ctx, closing)
		defer release()
		close()
		<-tctx.Done()
		if err := TailEnd(ctx); !errors.Is(err, ssehub.ErrClosed) {
			t.Fatalf("TailEnd = %v, want ErrClosed", err)
		}
	})
}

func TestTailBackoff(t *testing.T) {
	var b TailBackoff
	for i, hi := range []int64{1, 2, 4, 8, 16, 32, 50, 50} { // in units of MinTailBackoff
		d := MinTailBackoff * time.Duration(hi)
		if w := b.Next(); w < d/2 || w > d {
			t.Fatalf("wait %d = %v, want within [%v, %v]", i, w, d/2, d)
		}
	}
	b.Reset()
	if w := b.Next(); w > MinTailBackoff {
		t.Fatalf("after Reset the wait is %v, want at most %v", w, MinTailBackoff)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
