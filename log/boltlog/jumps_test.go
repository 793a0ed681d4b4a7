package boltlog_test

import (
	"context"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/boltlog"
)

// Positions jump to the clock at each restart; LastN counts the positions
// that held events across those jumps, also after the file is reopened.
func TestLastNCountsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var pos []uint64
	appendN := func(l *boltlog.Log, n int) {
		for range n {
			ev := &ssehub.Event{Topics: []string{"a"}, Data: "x"}
			if err := l.Append(ctx, ev); err != nil {
				t.Fatal(err)
			}
			pos = append(pos, ev.Pos)
		}
	}
	for range 3 { // three runs of three events
		l, err := boltlog.Open(dir, boltlog.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		appendN(l, 3)
		l.Close()
		time.Sleep(2 * time.Millisecond)
	}
	if pos[3]-pos[2] < 1000 || pos[6]-pos[5] < 1000 {
		t.Fatalf("positions %v: want a jump at each restart", pos)
	}
	l, err := boltlog.Open(dir, boltlog.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	last := pos[len(pos)-1]
	for n := 1; n <= len(pos); n++ {
		want := pos[len(pos)-n] - 1 // the n newest events lie after it
		if n < len(pos) {
			want = pos[len(pos)-n-1] // ... and so does the one before them
		}
		got, err := l.LastN(ctx, last, uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		// Any position from the event before the n newest up to (not
		// including) the oldest of them is right; LastN gives the highest,
		// so that the jump itself is never counted.
		if got < want || got >= pos[len(pos)-n] {
			t.Fatalf("LastN(%d, %d) = %d, want in [%d, %d) (positions %v)", last, n, got, want, pos[len(pos)-n], pos)
		}
	}
	if got, _ := l.LastN(ctx, last, 100); got >= pos[0] {
		t.Fatalf("LastN(%d, 100) = %d: more than all events, want below the first (%d)", last, got, pos[0])
	}
	if got, _ := l.LastN(ctx, pos[4], 2); got < pos[2] || got >= pos[3] {
		t.Fatalf("LastN through an older position: %d, want in [%d, %d)", got, pos[2], pos[3])
	}
}

// A jump is kept only while history reaches back to it: one a restart
// would otherwise pile up without end.
func TestOldJumpsAreDropped(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var pos []uint64
	open := func() *boltlog.Log {
		l, err := boltlog.Open(dir, boltlog.Options{NoSync: true, MaxEvents: 4})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for range 2 { // two runs of three events; the first run's first is trimmed
		l := open()
		for range 3 {
			ev := &ssehub.Event{Topics: []string{"a"}, Data: "x"}
			if err := l.Append(ctx, ev); err != nil {
				t.Fatal(err)
			}
			pos = append(pos, ev.Pos)
		}
		l.Close()
		time.Sleep(2 * time.Millisecond)
	}
	for range 2 { // and again: what is dropped stays dropped
		l := open()
		if n := l.Jumps(); n != 1 {
			t.Fatalf("%d jumps kept, want 1: the second run's (the first run's jump is before the oldest retained event)", n)
		}
		if got, _ := l.LastN(ctx, pos[5], 4); got < pos[1] || got >= pos[2] {
			t.Fatalf("LastN(%d, 4) = %d, want in [%d, %d) (positions %v)", pos[5], got, pos[1], pos[2], pos)
		}
		l.Close()
	}
}
