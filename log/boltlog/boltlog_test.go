package boltlog_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/boltlog"
	"github.com/ssehub/ssehub/log/logtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(killHelperEnv) != "" {
		killHelper() // never returns
	}
	goleak.VerifyTestMain(m)
}

func open(t testing.TB, dir string, opts boltlog.Options) *boltlog.Log {
	t.Helper()
	l, err := boltlog.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cache      int
		indexEvery int
	}{
		{"default cache", 0, 0},
		{"small cache", 3, 0},                   // reads mix disk and memory
		{"no cache", -1, 0},                     // every read goes to disk
		{"index written every 7 events", -1, 7}, // topic reads mix the file's index and the pending one
		{"index written at every commit", -1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := boltlog.Options{NoSync: true, CacheEvents: tc.cache, IndexEvery: tc.indexEvery}
			var budgets sync.Map // data directory -> the Options it was opened with, for Reopen
			logtest.Run(t, logtest.Harness{
				Open: func(t *testing.T) ssehub.Log { return open(t, t.TempDir(), opts) },
				OpenRetained: func(t *testing.T, maxEvents int) ssehub.Log {
					o := opts
					o.MaxEvents = maxEvents
					return open(t, t.TempDir(), o)
				},
				OpenReserved: func(t *testing.T, maxEvents, maxReserved int) ssehub.Log {
					o := opts
					o.MaxEvents, o.MaxReserved = maxEvents, maxReserved
					dir := t.TempDir()
					budgets.Store(dir, o)
					return open(t, dir, o)
				},
				Reopen: func(t *testing.T, l ssehub.Log) ssehub.Log {
					dir := l.(*boltlog.Log).Dir()
					if err := l.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
					o := opts
					if b, ok := budgets.Load(dir); ok {
						o = b.(boltlog.Options)
					}
					return open(t, dir, o)
				},
			})
		})
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "data")
	l := open(t, dir, boltlog.Options{NoSync: true})
	defer l.Close()
	if l.Path() != filepath.Join(dir, boltlog.FileName) {
		t.Fatalf("Path = %s", l.Path())
	}
	if _, err := os.Stat(l.Path()); err != nil {
		t.Fatalf("data file: %v", err)
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true})
	_, err := boltlog.Open(dir, boltlog.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, boltlog.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("data directory %s is in use by another ssehub process", dir)
	t.Log(err)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := open(t, dir, boltlog.Options{NoSync: true, LockTimeout: 50 * time.Millisecond})
	l2.Close()
}

func TestOpenCorrupt(t *testing.T) {
	validDB := func(t *testing.T, path string) {
		l := open(t, filepath.Dir(path), boltlog.Options{NoSync: true})
		for i := range 100 {
			if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, Data: strings.Repeat("x", i*10)}); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
	}
	tests := []struct {
		name  string
		write func(t *testing.T, path string)
	}{
		{"text", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("this is not a database\n"), 0o600)
		}},
		{"random bytes", func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(i*7 + i/251)
			}
			os.WriteFile(path, b, 0o600)
		}},
		{"zeros", func(t *testing.T, path string) {
			os.WriteFile(path, make([]byte, 32<<10), 0o600)
		}},
		{"truncated", func(t *testing.T, path string) {
			validDB(t, path)
			os.Truncate(path, 100)
		}},
		{"meta pages overwritten", func(t *testing.T, path string) {
			validDB(t, path)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt(make([]byte, 8192), 0)
			f.Close()
		}},
		{"bbolt file of another program", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err })
			db.Close()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, boltlog.FileName)
			tc.write(t, path)
			l, err := boltlog.Open(dir, boltlog.Options{NoSync: true})
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded on a corrupt file")
			}
			if !errors.Is(err, boltlog.ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
				t.Fatalf("error %q does not name the file and say it is corrupt", err)
			}
		})
	}
}

func TestEmptyFileIsNew(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, boltlog.FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l := open(t, dir, boltlog.Options{NoSync: true})
	defer l.Close()
	if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
}

func TestPositionsAndTimes(t *testing.T) {
	before := uint64(time.Now().UnixMicro())
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true})
	events := make([]*ssehub.Event, 100)
	for i := range events {
		events[i] = &ssehub.Event{Topics: []string{"a"}}
	}
	if err := l.Append(t.Context(), events...); err != nil {
		t.Fatal(err)
	}
	after := uint64(time.Now().UnixMicro())
	if p := events[0].Pos; p < before || p > after {
		t.Fatalf("first position of a new file %d, want the Unix time in µs (%d to %d)", p, before, after)
	}
	for i := 1; i < len(events); i++ {
		if events[i].Pos != events[i-1].Pos+1 {
			t.Fatalf("positions %d then %d: not consecutive", events[i-1].Pos, events[i].Pos)
		}
		if !events[i].Time.After(events[i-1].Time) {
			t.Fatalf("times %v then %v: not strictly increasing", events[i-1].Time, events[i].Time)
		}
	}
	l.Close()
	// After a restart, times keep increasing too, even if the clock did not
	// move (same batch, same now); positions go on from the clock, which
	// is past every position given before (a commit lost by bbolt must not
	// have its acknowledged positions given again:
	// TestReopenedLogNeverReissuesPositions).
	reopened := uint64(time.Now().UnixMicro())
	l = open(t, dir, boltlog.Options{NoSync: true})
	defer l.Close()
	e := &ssehub.Event{Topics: []string{"a"}}
	if err := l.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; e.Pos <= last.Pos || e.Pos < reopened || !e.Time.After(last.Time) {
		t.Fatalf("after reopen: pos %d time %v; previous pos %d time %v; want a position past it and past the clock at reopen (%d)", e.Pos, e.Time, last.Pos, last.Time, reopened)
	}
	e2 := &ssehub.Event{Topics: []string{"a"}}
	if err := l.Append(t.Context(), e2); err != nil || e2.Pos != e.Pos+1 {
		t.Fatalf("the next position %d (%v), want %d: consecutive again after the first commit", e2.Pos, err, e.Pos+1)
	}
}

func TestRetentionAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		l := open(t, dir, boltlog.Options{NoSync: true, MaxAge: time.Minute})
		defer l.Close()
		appendN := func(n int) (out []*ssehub.Event) {
			for range n {
				e := &ssehub.Event{Topics: []string{"a"}}
				if err := l.Append(t.Context(), e); err != nil {
					t.Fatal(err)
				}
				out = append(out, e)
			}
			return out
		}
		bounds := func() (uint64, uint64) {
			synctest.Wait() // let the committer finish what its timer started
			first, last, err := l.Bounds(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return first, last
		}
		old := appendN(2)
		time.Sleep(40 * time.Second)
		recent := appendN(3)
		if first, _ := bounds(); first != old[0].Pos {
			t.Fatalf("after 40s first = %d, want %d (nothing expired)", first, old[0].Pos)
		}
		// Nothing is appended now: the committer's timer must delete the two
		// old events once they are older than a minute (plus at most 1s).
		time.Sleep(22 * time.Second)
		if first, last := bounds(); first != recent[0].Pos || last != recent[2].Pos {
			t.Fatalf("after 62s Bounds = %d, %d; want %d, %d", first, last, recent[0].Pos, recent[2].Pos)
		}
		for _, after := range []uint64{0, old[0].Pos, old[1].Pos} {
			if got, _ := l.Read(t.Context(), after, 10); len(got) != 3 || got[0].Pos != recent[0].Pos {
				t.Fatalf("Read(after %d) after expiry returned %d events", after, len(got))
			}
		}
		time.Sleep(time.Minute)
		if first, last := bounds(); first != 0 || last != recent[2].Pos {
			t.Fatalf("after everything expired Bounds = %d, %d; want 0, %d", first, last, recent[2].Pos)
		}
		if got, _ := l.Read(t.Context(), 0, 10); len(got) != 0 {
			t.Fatalf("Read after everything expired returned %d events", len(got))
		}
		// Positions keep increasing after the log emptied.
		if e := appendN(1)[0]; e.Pos != recent[2].Pos+1 {
			t.Fatalf("next position %d, want %d", e.Pos, recent[2].Pos+1)
		}
	})
}

func TestRetentionShrunkOnReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		l := open(t, dir, boltlog.Options{NoSync: true})
		defer boltlog.SetMaxTrimPerTx(300)()
		events := make([]*ssehub.Event, 2000) // more than one trim transaction deletes
		for i := range events {
			events[i] = &ssehub.Event{Topics: []string{"a"}, Data: strconv.Itoa(i)}
		}
		if err := l.Append(t.Context(), events...); err != nil {
			t.Fatal(err)
		}
		l.Close()
		l = open(t, dir, boltlog.Options{NoSync: true, MaxEvents: 10})
		defer l.Close()
		synctest.Wait() // the committer trims while idle
		first, last, err := l.Bounds(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if want := events[len(events)-10].Pos; first != want || last != events[len(events)-1].Pos {
			t.Fatalf("Bounds = %d, %d; want %d, %d", first, last, want, events[len(events)-1].Pos)
		}
		got, err := l.Read(t.Context(), 0, 100)
		if err != nil || len(got) != 10 || got[0].Data != "1990" {
			t.Fatalf("Read = %d events, %v", len(got), err)
		}
	})
}

// Positions jump to the clock at the first commit after a restart (see
// TestReopenedLogNeverReissuesPositions): MaxEvents counts events, not
// positions, or that commit would delete the whole history before it.
func TestRetentionCountsEventsAcrossTheJumpOfARestart(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true, MaxEvents: 5})
	old := make([]*ssehub.Event, 5)
	for i := range old {
		old[i] = &ssehub.Event{Topics: []string{"a"}, Data: strconv.Itoa(i)}
	}
	if err := l.Append(t.Context(), old...); err != nil {
		t.Fatal(err)
	}
	l.Close()
	time.Sleep(2 * time.Millisecond) // the clock moves past the old positions
	l = open(t, dir, boltlog.Options{NoSync: true, MaxEvents: 5})
	defer l.Close()
	e := &ssehub.Event{Topics: []string{"a"}, Data: "new"}
	if err := l.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if e.Pos <= old[4].Pos+1 {
		t.Fatalf("new position %d right after %d: the test shows nothing", e.Pos, old[4].Pos)
	}
	first, last, err := l.Bounds(t.Context())
	if err != nil || first != old[1].Pos || last != e.Pos {
		t.Fatalf("Bounds = %d, %d, %v; want %d, %d: the newest 5 events", first, last, err, old[1].Pos, e.Pos)
	}
	got, err := l.Read(t.Context(), 0, 10)
	if err != nil || len(got) != 5 || got[0].Data != "1" || got[4].Data != "new" {
		t.Fatalf("Read = %d events, %v", len(got), err)
	}
}

// The positions between the last one given before a restart and the
// jump to the clock after it were never given to events: once retention
// has deleted every event before the jump, Bounds must not report them as
// removed (first at the first new event), or the hub would tell a client
// that had everything of a gap ("expired"), and send every live
// subscriber away thinking its tail fell behind.
func TestBoundsAfterTheJumpOfARestart(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true, MaxEvents: 1})
	old := &ssehub.Event{Topics: []string{"a"}, Data: "old"}
	if err := l.Append(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	l.Close()
	time.Sleep(2 * time.Millisecond) // the clock moves past the old position
	for i := range 2 {               // and again after a second restart
		l = open(t, dir, boltlog.Options{NoSync: true, MaxEvents: 1})
		e := &ssehub.Event{Topics: []string{"a"}, Data: "new"}
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		first, last, err := l.Bounds(t.Context())
		if err != nil || first > old.Pos+1 || last != e.Pos {
			t.Fatalf("restart %d: Bounds = %d, %d, %v; want first at most %d (nothing was removed after the old event) and last %d", i, first, last, err, old.Pos+1, e.Pos)
		}
		got, err := l.Read(t.Context(), old.Pos, 10)
		if err != nil || len(got) != 1 || got[0].Pos != e.Pos {
			t.Fatalf("restart %d: Read after the old event = %d events, %v", i, len(got), err)
		}
		l.Close()
		old = e
		time.Sleep(2 * time.Millisecond)
	}
}

func TestCorruptEventOnRead(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true})
	e := &ssehub.Event{Topics: []string{"a"}, Data: "ok"}
	if err := l.Append(t.Context(), e, &ssehub.Event{Topics: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	db, err := bolt.Open(filepath.Join(dir, boltlog.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("ssehub.events"))
		k, _ := b.Cursor().First()
		return b.Put(k, []byte{99, 1, 2, 3})
	})
	db.Close()
	l, err = boltlog.Open(dir, boltlog.Options{NoSync: true, CacheEvents: -1})
	if !errors.Is(err, boltlog.ErrCorrupt) {
		if err == nil {
			l.Close()
		}
		t.Fatalf("Open with a damaged first event = %v, want ErrCorrupt", err)
	}
}

// The kill test runs this test binary again as a child that appends and
// reports each acknowledged event, kills the child with SIGKILL mid-stream,
// and checks that every acknowledged event is in the history.
const killHelperEnv = "BOLTLOG_KILL_HELPER_DIR"

func killHelper() {
	var opts boltlog.Options
	if os.Getenv(killReservedEnv) != "" {
		opts = killReservedOpts
	}
	l, err := boltlog.Open(os.Getenv(killHelperEnv), opts)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	appendUntilKilled(l, os.Getenv(killReservedEnv) != "")
}

// appendUntilKilled appends rounds of 8 concurrent events (several
// appenders share commits, as in the server) and prints each acknowledged
// one as "pos data"; with reserved, every other one is a reserved event
// and each round ends with "removed <ReservedRemoved>". It never returns.
func appendUntilKilled(l *boltlog.Log, reserved bool) {
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		done := make(chan *ssehub.Event, 8)
		for j := range 8 {
			go func() {
				e := &ssehub.Event{Topics: []string{"kill"}, Data: fmt.Sprintf("%d.%d", i, j)}
				if reserved && j%2 == 1 {
					e.Topics = []string{"/.well-known/mercure/subscriptions/kill", "kill"}
				}
				if err := l.Append(context.Background(), e); err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				done <- e
			}()
		}
		for range 8 {
			e := <-done
			fmt.Fprintf(out, "%d %s\n", e.Pos, e.Data)
		}
		if reserved {
			removed, _ := l.ReservedRemoved(context.Background())
			fmt.Fprintf(out, "removed %d\n", removed)
		}
		out.Flush()
	}
}

func TestKillDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{}
	sc := bufio.NewScanner(stdout)
	for len(acked) < 400 && sc.Scan() {
		var pos uint64
		var data string
		if _, err := fmt.Sscan(sc.Text(), &pos, &data); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q", sc.Text())
		}
		acked[pos] = data
	}
	cmd.Process.Kill() // SIGKILL while it keeps appending
	cmd.Wait()
	if len(acked) < 400 {
		t.Fatalf("child acknowledged only %d events", len(acked))
	}
	l := open(t, dir, boltlog.Options{})
	defer l.Close()
	var maxAcked uint64
	for pos, data := range acked {
		maxAcked = max(maxAcked, pos)
		got, err := l.Read(t.Context(), pos-1, 1)
		if err != nil || len(got) != 1 || got[0].Pos != pos || got[0].Data != data {
			t.Fatalf("acknowledged event %d (%s) after kill: got %v, %v", pos, data, got, err)
		}
	}
	// The topic index of the events whose keys were still in memory is
	// rebuilt by Open: a topic read finds every acknowledged event.
	var indexed []*ssehub.Event
	for q := (ssehub.TopicQuery{Topics: []string{"kill"}, Limit: 1000}); ; {
		page, through, err := l.ReadTopics(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		indexed = append(indexed, page...)
		if _, last, _ := l.Bounds(t.Context()); through >= last {
			break
		}
		q.After = through
	}
	found := make(map[uint64]bool, len(indexed))
	for _, e := range indexed {
		found[e.Pos] = true
	}
	for pos := range acked {
		if !found[pos] {
			t.Fatalf("acknowledged event %d is missing from the topic index after kill", pos)
		}
	}
	first, last, _ := l.Bounds(t.Context())
	e := &ssehub.Event{Topics: []string{"kill"}}
	if err := l.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if e.Pos <= last || e.Pos <= maxAcked {
		t.Fatalf("position after kill %d, last %d, max acknowledged %d", e.Pos, last, maxAcked)
	}
	t.Logf("%d events acknowledged before SIGKILL, all present; the log holds %d", len(acked), last-first+1)
}
