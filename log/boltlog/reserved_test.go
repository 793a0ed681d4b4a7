package boltlog_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/boltlog"
)

// The reserved class (Options.MaxReserved) beyond what logtest's
// Reserved/* subtests see: files of the previous version, a log reopened
// without the option, age, kill -9, and the window between a commit and
// the bounds readers see.

// presence returns a reserved event (a Mercure subscription event).
func presence(i int) *ssehub.Event {
	return &ssehub.Event{Topics: []string{fmt.Sprintf("/.well-known/mercure/subscriptions/t/s%d", i)}, Data: "s" + strconv.Itoa(i), Private: true}
}

// application returns an application event.
func application(i int) *ssehub.Event {
	return &ssehub.Event{Topics: []string{"https://example.com/books/1"}, Data: "a" + strconv.Itoa(i), ID: "urn:app:" + strconv.Itoa(i)}
}

func appendAll(t testing.TB, l *boltlog.Log, events ...*ssehub.Event) {
	t.Helper()
	for _, e := range events {
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
}

func reservedRemoved(t testing.TB, l *boltlog.Log) uint64 {
	t.Helper()
	removed, err := l.ReservedRemoved(t.Context())
	if err != nil {
		t.Fatalf("ReservedRemoved: %v", err)
	}
	return removed
}

// datas returns the Data of events, for messages.
func datas(events []*ssehub.Event) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString(e.Data)
		b.WriteByte(' ')
	}
	return b.String()
}

// The fixture of the version before the reserved class (no reserved
// bucket) opens with MaxReserved, loses nothing, and its application
// events are not pushed out by a flood of reserved ones afterwards, also
// after a restart.
func TestReservedOpensAPreviousVersionFile(t *testing.T) {
	dir := fixtureDir(t)
	opts := boltlog.Options{NoSync: true, MaxEvents: fixtureEvents, MaxReserved: 20, CacheEvents: 100}
	l := open(t, dir, opts)
	defer func() { l.Close() }()
	all := readEverything(t, l)
	if len(all) != fixtureEvents {
		t.Fatalf("%d events readable, want %d", len(all), fixtureEvents)
	}
	for range 2 {
		for i := range 500 {
			appendAll(t, l, presence(i))
		}
		got := readEverything(t, l)
		if len(got) != fixtureEvents+20 {
			t.Fatalf("%d events retained, want the %d of the old history and the newest 20 reserved ones", len(got), fixtureEvents)
		}
		for n, e := range got[:fixtureEvents] {
			if e.Pos != all[n].Pos || e.Data != fmt.Sprintf(`{"n":%d}`, n) {
				t.Fatalf("event %d after the flood: %+v", n, e)
			}
		}
		if first, _, _ := l.Bounds(t.Context()); first != all[0].Pos {
			t.Fatalf("Bounds first = %d, want the oldest event %d", first, all[0].Pos)
		}
		if removed := reservedRemoved(t, l); removed <= all[len(all)-1].Pos || removed >= got[fixtureEvents].Pos {
			t.Fatalf("ReservedRemoved = %d, want a position of the flood before the retained %d", removed, got[fixtureEvents].Pos)
		}
		checkTopicReads(t, l, all, fixtureTopicSets)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = open(t, dir, opts)
	}
}

// dropReservedBucket makes the file in dir look like one of the version
// before the reserved class: it has no reserved bucket.
func dropReservedBucket(t *testing.T, dir string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, boltlog.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("ssehub.reserved")) }); err != nil {
		t.Fatal(err)
	}
}

// Reserved events a previous version wrote among the application events
// stay there and count as application events (they age out with them);
// nothing is lost, and new reserved events go on their own budget.
func TestReservedEventsOfAPreviousVersionCountAsApplication(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true})
	var old []*ssehub.Event
	for i := range 6 {
		old = append(old, application(i), presence(i))
	}
	appendAll(t, l, old...)
	l.Close()
	dropReservedBucket(t, dir)

	l = open(t, dir, boltlog.Options{NoSync: true, MaxEvents: 12, MaxReserved: 3})
	defer l.Close()
	got := readEverything(t, l)
	if len(got) != len(old) {
		t.Fatalf("after the upgrade %d events: %s; want %d", len(got), datas(got), len(old))
	}
	for i := range 10 {
		appendAll(t, l, presence(100+i))
	}
	got = readEverything(t, l)
	if len(got) != len(old)+3 || got[0].Pos != old[0].Pos || got[len(old)].Data != "s107" {
		t.Fatalf("after new reserved events: %s; want the 12 old events (one budget) and the newest 3 reserved", datas(got))
	}
	// The old reserved events are application events of that budget: two
	// new application events push out the two oldest old events.
	appendAll(t, l, application(100), application(101))
	got = readEverything(t, l)
	if len(got) != 12+3 || got[0].Pos != old[2].Pos {
		t.Fatalf("after two application events: %s", datas(got))
	}
}

// A history kept with MaxReserved and reopened without it loses nothing:
// its reserved events join the application events (one budget, as
// before the option), in position order, with their id and topic entries;
// ReservedRemoved still says what was removed.
func TestReservedReopenedWithoutMaxReserved(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true, MaxReserved: 4})
	var app, res []*ssehub.Event
	for i := range 10 {
		a, r := application(i), presence(i)
		r.ID = "urn:res:" + strconv.Itoa(i)
		appendAll(t, l, a, r)
		app, res = append(app, a), append(res, r)
	}
	removed := reservedRemoved(t, l)
	if removed != res[5].Pos {
		t.Fatalf("ReservedRemoved = %d, want %d", removed, res[5].Pos)
	}
	want := readEverything(t, l)
	l.Close()

	l = open(t, dir, boltlog.Options{NoSync: true, CacheEvents: -1})
	got := readEverything(t, l)
	if datas(got) != datas(want) {
		t.Fatalf("reopened without MaxReserved: %s; want %s", datas(got), datas(want))
	}
	if r := reservedRemoved(t, l); r != removed {
		t.Fatalf("ReservedRemoved = %d after the reopen, want %d", r, removed)
	}
	for _, e := range want {
		if pos, found, err := l.LookupID(t.Context(), e.ID); err != nil || !found || pos != e.Pos {
			t.Fatalf("LookupID(%q) = %d, %v, %v; want %d", e.ID, pos, found, err, e.Pos)
		}
	}
	checkTopicReads(t, l, want, [][]string{{res[9].Topics[0]}, {app[0].Topics[0]}, {res[7].Topics[0], app[0].Topics[0]}})
	l.Close()

	// One budget: the oldest events go first, whatever their class.
	l = open(t, dir, boltlog.Options{NoSync: true, MaxEvents: 5})
	defer l.Close()
	appendAll(t, l, application(10))
	got = readEverything(t, l)
	if datas(got) != datas(want[len(want)-4:])+"a10 " {
		t.Fatalf("with MaxEvents 5: %s", datas(got))
	}
}

// MaxAge applies to reserved events too, also when they are all the log
// holds (the committer's timer wakes for them).
func TestReservedRetentionAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := open(t, t.TempDir(), boltlog.Options{NoSync: true, MaxAge: time.Minute, MaxReserved: 100})
		defer l.Close()
		res := []*ssehub.Event{presence(0), presence(1)}
		appendAll(t, l, res...)
		time.Sleep(62 * time.Second)
		synctest.Wait()
		if got, _ := l.Read(t.Context(), 0, 10); len(got) != 0 {
			t.Fatalf("Read after expiry: %s", datas(got))
		}
		if removed := reservedRemoved(t, l); removed != res[1].Pos {
			t.Fatalf("ReservedRemoved = %d, want %d", removed, res[1].Pos)
		}
		if first, _, _ := l.Bounds(t.Context()); first != 0 {
			t.Fatalf("Bounds first = %d with nothing retained", first)
		}
		// Both classes, of different ages.
		a := application(0)
		appendAll(t, l, a)
		time.Sleep(30 * time.Second)
		r := presence(2)
		appendAll(t, l, r)
		time.Sleep(32 * time.Second)
		synctest.Wait()
		if got, _ := l.Read(t.Context(), 0, 10); len(got) != 1 || got[0].Pos != r.Pos {
			t.Fatalf("Read after the application event expired: %s", datas(got))
		}
		if first, _, _ := l.Bounds(t.Context()); first != a.Pos+1 {
			t.Fatalf("Bounds first = %d, want %d", first, a.Pos+1)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if removed := reservedRemoved(t, l); removed != r.Pos {
			t.Fatalf("ReservedRemoved = %d, want %d", removed, r.Pos)
		}
	})
}

// A commit that trims reserved events is visible to readers' transactions
// before the committer publishes it: ReservedRemoved read after such a
// read must already cover what the read did not find (the application
// class's TestBoundsAfterAReadCoverWhatRetentionRemoved).
func TestReservedRemovedAfterAReadCoversWhatRetentionRemoved(t *testing.T) {
	l := open(t, t.TempDir(), boltlog.Options{NoSync: true, CacheEvents: -1, MaxReserved: 2})
	defer l.Close()
	a := application(0)
	appendAll(t, l, a, presence(0), presence(1), presence(2)) // presence 0 is trimmed
	all := readEverything(t, l)
	committed, release := make(chan struct{}), make(chan struct{})
	defer boltlog.SetAfterCommit(func() { close(committed); <-release })()
	appended := make(chan error, 1)
	go func() { appended <- l.Append(context.Background(), presence(3)) }() // trims presence 1
	<-committed
	page, err := l.Read(t.Context(), a.Pos, 10)
	if err != nil {
		t.Fatal(err)
	}
	missing := all[1].Pos // presence 1
	if (len(page) == 0 || page[0].Pos > missing) && reservedRemoved(t, l) < missing {
		t.Errorf("Read after %d returned %s without reserved event %d, but ReservedRemoved says only %d was removed", a.Pos, datas(page), missing, reservedRemoved(t, l))
	}
	close(release)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
}

// A Tail that runs while reserved events flood and are trimmed (through a
// small cache, from disk and memory) receives every application event,
// in order, each once.
func TestReservedTailDuringTrimming(t *testing.T) {
	l := open(t, t.TempDir(), boltlog.Options{NoSync: true, CacheEvents: 50, MaxEvents: 1000, MaxReserved: 10})
	defer l.Close()
	const apps = 300
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got, tailed := make(chan []*ssehub.Event, 1), make(chan struct{})
	defer func() { cancel(); <-tailed }()
	go func() {
		defer close(tailed)
		var seen []*ssehub.Event
		var last uint64
		l.Tail(ctx, 0, func(events []*ssehub.Event) error {
			for _, e := range events {
				if e.Pos <= last {
					t.Errorf("Tail gave %d after %d", e.Pos, last)
				}
				last = e.Pos
				if !e.Reserved() {
					seen = append(seen, e)
				}
			}
			if len(seen) == apps {
				got <- seen
				return errors.New("done")
			}
			return nil
		})
	}()
	done := make(chan struct{})
	go func() { // the flood
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			if err := l.Append(ctx, presence(i), presence(i+1)); err != nil && ctx.Err() == nil {
				t.Errorf("Append: %v", err)
				return
			}
		}
	}()
	var app []*ssehub.Event
	for i := range apps {
		a := application(i)
		appendAll(t, l, a)
		app = append(app, a)
	}
	var seen []*ssehub.Event
	select {
	case seen = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the Tail did not receive every application event")
	}
	cancel()
	<-done
	for i, e := range seen {
		if e.Pos != app[i].Pos || e.Data != app[i].Data {
			t.Fatalf("application event %d: %d %s, want %d %s", i, e.Pos, e.Data, app[i].Pos, app[i].Data)
		}
	}
	if all := readEverything(t, l); len(all) != apps+10 {
		t.Fatalf("%d events retained, want %d application and 10 reserved", len(all), apps)
	}
}

// A damaged record in the reserved bucket is reported like one among the
// application events: reads stop before it, report it, and go on after.
func TestReservedDamagedRecord(t *testing.T) {
	dir := t.TempDir()
	opts := boltlog.Options{NoSync: true, CacheEvents: -1, MaxReserved: 100}
	l := open(t, dir, opts)
	var all []*ssehub.Event
	for i := range 5 {
		all = append(all, application(i), presence(i))
	}
	appendAll(t, l, all...)
	l.Close()
	bad := all[5].Pos // presence 2
	db, err := bolt.Open(filepath.Join(dir, boltlog.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("ssehub.reserved"))
		k := binary.BigEndian.AppendUint64(nil, bad)
		v := append([]byte(nil), b.Get(k)...)
		v[len(v)-1] ^= 0x20
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	l = open(t, dir, opts)
	defer l.Close()
	page, err := l.Read(t.Context(), 0, 100)
	if err != nil || len(page) != 5 {
		t.Fatalf("Read from the start: %s, %v; want the 5 events before the damaged one", datas(page), err)
	}
	var d *ssehub.DamagedError
	if _, err := l.Read(t.Context(), page[4].Pos, 100); !errors.As(err, &d) || d.Pos != bad {
		t.Fatalf("Read at the damaged event: %v, want a *ssehub.DamagedError at %d", err, bad)
	}
	if page, err := l.Read(t.Context(), bad, 100); err != nil || len(page) != 4 {
		t.Fatalf("Read after the damaged event: %s, %v", datas(page), err)
	}
}

// The kill test of the reserved class: a child appends application and
// reserved events (MaxReserved 50) and reports each acknowledged event
// and, after each round, ReservedRemoved; after SIGKILL every acknowledged
// application event is there, every acknowledged reserved event after
// ReservedRemoved is, ReservedRemoved did not go back, and the topic index
// (rebuilt at Open for the keys that were in memory) finds them.
const killReservedEnv = "BOLTLOG_KILL_RESERVED"

var killReservedOpts = boltlog.Options{MaxReserved: 50, IndexEvery: 1000}

func TestReservedKillDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+dir, killReservedEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{}
	var removed uint64
	sc := bufio.NewScanner(stdout)
	for len(acked) < 800 && sc.Scan() {
		var pos uint64
		var data string
		if _, err := fmt.Sscan(sc.Text(), &data, &pos); err == nil && data == "removed" {
			removed = pos
			continue
		}
		if _, err := fmt.Sscan(sc.Text(), &pos, &data); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q", sc.Text())
		}
		acked[pos] = data
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(acked) < 800 || removed == 0 {
		t.Fatalf("child acknowledged only %d events, reported removed %d", len(acked), removed)
	}
	opts := killReservedOpts
	opts.NoSync = true
	l := open(t, dir, opts)
	defer l.Close()
	after := reservedRemoved(t, l)
	if after < removed {
		t.Fatalf("ReservedRemoved = %d after kill, the child had reported %d", after, removed)
	}
	all := readEverything(t, l)
	byPos := make(map[uint64]*ssehub.Event, len(all))
	for _, e := range all {
		byPos[e.Pos] = e
	}
	reserved := 0
	for pos, data := range acked {
		isReserved := strings.HasSuffix(data, ".1") || strings.HasSuffix(data, ".3") || strings.HasSuffix(data, ".5") || strings.HasSuffix(data, ".7")
		e := byPos[pos]
		switch {
		case e != nil && e.Data != data:
			t.Fatalf("event %d: %q, want %q", pos, e.Data, data)
		case e == nil && (!isReserved || pos > after):
			t.Fatalf("acknowledged event %d (%s) is missing after kill (ReservedRemoved %d)", pos, data, after)
		case e != nil && isReserved:
			reserved++
		}
	}
	if reserved > 50 || reserved == 0 {
		t.Fatalf("%d acknowledged reserved events retained, budget 50", reserved)
	}
	indexed := readTopicsAll(t, l, 1000, "kill")
	if len(indexed) != len(all) {
		t.Fatalf("the topic index finds %d events after kill, Read %d", len(indexed), len(all))
	}
}

// Reserved events trimmed while their topic index keys wait in memory
// (Options.IndexEvery) leave no keys in the file: the index holds the keys
// of the retained events only.
func TestReservedTopicIndexKeysTrimmed(t *testing.T) {
	l := open(t, t.TempDir(), boltlog.Options{NoSync: true, MaxReserved: 5, IndexEvery: 100})
	defer l.Close()
	for i := range 100 { // the 100th commit writes the keys
		appendAll(t, l, presence(i))
	}
	appendAll(t, l, application(0))
	keys, _, err := boltlog.TopicKeys(l)
	if err != nil {
		t.Fatal(err)
	}
	if keys != 5 {
		t.Fatalf("the topic index holds %d keys, want the 5 of the retained reserved events", keys)
	}
	if got := readEverything(t, l); len(got) != 6 {
		t.Fatalf("%d events retained: %s", len(got), datas(got))
	}
}
