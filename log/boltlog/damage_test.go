package boltlog_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/boltlog"
)

// historyFile returns the bytes of the history file of a new log that fill
// wrote.
func historyFile(t *testing.T, fill func(l *boltlog.Log)) []byte {
	t.Helper()
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true, CacheEvents: -1})
	fill(l)
	l.Close()
	b, err := os.ReadFile(filepath.Join(dir, boltlog.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openFile opens a log on a new directory whose history file holds b.
func openFile(t *testing.T, b []byte) (*boltlog.Log, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, boltlog.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return boltlog.Open(dir, boltlog.Options{NoSync: true, CacheEvents: -1})
}

// TestDamagedPage overwrites one page of a valid history at a time with junk
// and checks that Open, Read and Append report ErrCorrupt (or, for a page
// that was free, work) but never panic: bbolt panics on damaged pages and
// boltlog turns those panics into errors.
func TestDamagedPage(t *testing.T) {
	const pageSize = 4096
	orig := historyFile(t, func(l *boltlog.Log) {
		for i := range 200 {
			if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, Data: strings.Repeat("x", i)}); err != nil {
				t.Fatal(err)
			}
		}
	})
	reported := 0
	for page := 2; (page+1)*pageSize <= len(orig); page++ { // 0 and 1 are the meta pages
		b := append([]byte(nil), orig...)
		for i := page * pageSize; i < (page+1)*pageSize; i++ {
			b[i] = byte(i*13 + page)
		}
		l, err := openFile(t, b)
		if err != nil {
			if !errors.Is(err, boltlog.ErrCorrupt) {
				t.Fatalf("page %d: Open = %v, want ErrCorrupt", page, err)
			}
			reported++
			continue
		}
		for after := uint64(0); ; {
			events, err := l.Read(t.Context(), after, 50)
			if err != nil {
				if !errors.Is(err, boltlog.ErrCorrupt) {
					t.Fatalf("page %d: Read = %v, want ErrCorrupt", page, err)
				}
				reported++
				break
			}
			if len(events) == 0 {
				break
			}
			after = events[len(events)-1].Pos
		}
		l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}}) // must not panic
		l.Close()
	}
	if reported == 0 {
		t.Fatal("no damaged page was reported: the test damaged nothing that is read")
	}
}

// TestTruncatedFile cuts a valid history short, as a partial copy or restore
// would: Open must report ErrCorrupt when pages are missing (reading them
// through the memory map used to end the process with SIGBUS), or, when
// only unused space was cut, serve every event.
func TestTruncatedFile(t *testing.T) {
	orig := historyFile(t, func(l *boltlog.Log) {
		for range 30 {
			batch := make([]*ssehub.Event, 100)
			for i := range batch {
				batch[i] = &ssehub.Event{Topics: []string{"a"}, Data: strings.Repeat("x", 200)}
			}
			if err := l.Append(t.Context(), batch...); err != nil {
				t.Fatal(err)
			}
		}
	})
	refused := 0
	for _, keep := range []int{3, 5, 10, 20, 40, 60, 80} { // percent of the file
		size := len(orig) * keep / 100 / 4096 * 4096
		l, err := openFile(t, orig[:size])
		if err != nil {
			if !errors.Is(err, boltlog.ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("kept %d of %d bytes: Open = %v, want ErrCorrupt saying it is truncated", size, len(orig), err)
			}
			refused++
			continue
		}
		n := 0
		for after := uint64(0); ; {
			events, err := l.Read(t.Context(), after, 1000)
			if err != nil {
				t.Fatalf("kept %d of %d bytes: Open succeeded but Read = %v", size, len(orig), err)
			}
			if len(events) == 0 {
				break
			}
			n += len(events)
			after = events[len(events)-1].Pos
		}
		l.Close()
		if n != 3000 {
			t.Fatalf("kept %d of %d bytes: Open succeeded but %d of 3000 events are there", size, len(orig), n)
		}
	}
	if refused == 0 {
		t.Fatal("no cut was refused: the test truncated nothing that is used")
	}
}

// damage writes n events with the data "w3-0" to "w3-<n-1>" and topic
// "w3" (and "odd" for odd ones) to a new history in dir, closes it, and
// changes one data byte on disk, as a flipped bit would: the last digit
// of "w3-<victim>" becomes "X". It returns the events as appended.
func damage(t *testing.T, dir string, n, victim int) []*ssehub.Event {
	t.Helper()
	l := open(t, dir, boltlog.Options{NoSync: true})
	var events []*ssehub.Event
	for i := range n {
		e := &ssehub.Event{Topics: []string{"w3"}, Data: fmt.Sprintf("w3-%d", i)}
		if i%2 == 1 {
			e.Topics = append(e.Topics, "odd")
		}
		events = append(events, e)
	}
	// One transaction: each record is written once (bbolt leaves the old
	// copies of pages a later commit rewrites in the file, unused).
	if err := l.Append(t.Context(), events...); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, boltlog.FileName)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(events[victim].Data)
	if c := bytes.Count(b, data); c != 1 {
		t.Fatalf("%q is %d times in the file, want once", data, c)
	}
	b[bytes.Index(b, data)+len(data)-1] = 'X'
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return events
}

// A flipped data byte in the history file was served silently ("w3-100"
// came back as "w3-1X0"). Every record now carries a checksum: the
// damaged event is never served, reads stop before it and then report it
// as a *ssehub.DamagedError naming its position, and reads after it go on.
func TestFlippedDataByteIsReportedNotServed(t *testing.T) {
	dir := t.TempDir()
	events := damage(t, dir, 200, 100)
	bad := events[100].Pos
	l := open(t, dir, boltlog.Options{NoSync: true, CacheEvents: -1})
	defer l.Close()

	checkDamaged := func(t *testing.T, err error) {
		t.Helper()
		var d *ssehub.DamagedError
		if !errors.As(err, &d) || d.Pos != bad || !errors.Is(err, ssehub.ErrDamaged) || !errors.Is(err, boltlog.ErrCorrupt) {
			t.Fatalf("err = %v, want a *ssehub.DamagedError at %d wrapping ErrDamaged and ErrCorrupt", err, bad)
		}
	}
	checkData := func(t *testing.T, got []*ssehub.Event, from int) {
		t.Helper()
		for i, e := range got {
			if want := events[from+i]; e.Pos != want.Pos || e.Data != want.Data {
				t.Fatalf("event %d: pos %d data %q, want pos %d data %q", from+i, e.Pos, e.Data, want.Pos, want.Data)
			}
		}
	}
	t.Run("Read", func(t *testing.T) {
		got, err := l.Read(t.Context(), 0, 1000)
		if err != nil || len(got) != 100 {
			t.Fatalf("Read from the start: %d events, %v; want the 100 before the damaged one", len(got), err)
		}
		checkData(t, got, 0)
		got, err = l.Read(t.Context(), events[99].Pos, 1000)
		if len(got) != 0 {
			t.Fatalf("Read at the damaged event returned %d events", len(got))
		}
		checkDamaged(t, err)
		got, err = l.Read(t.Context(), bad, 1000)
		if err != nil || len(got) != 99 {
			t.Fatalf("Read after the damaged event: %d events, %v; want 99", len(got), err)
		}
		checkData(t, got, 101)
	})
	for _, topics := range [][]string{nil, {"w3"}} {
		t.Run(fmt.Sprintf("ReadTopics %q", topics), func(t *testing.T) {
			q := ssehub.TopicQuery{Topics: topics, Limit: 1000}
			got, through, err := l.ReadTopics(t.Context(), q)
			if err != nil || len(got) != 100 || through != bad-1 {
				t.Fatalf("from the start: %d events through %d, %v; want 100 through %d", len(got), through, err, bad-1)
			}
			checkData(t, got, 0)
			q.After = through
			got, _, err = l.ReadTopics(t.Context(), q)
			if len(got) != 0 {
				t.Fatalf("at the damaged event: %d events", len(got))
			}
			checkDamaged(t, err)
			q.After = bad
			got, _, err = l.ReadTopics(t.Context(), q)
			if err != nil || len(got) != 99 {
				t.Fatalf("after the damaged event: %d events, %v; want 99", len(got), err)
			}
			checkData(t, got, 101)
		})
	}
	t.Run("ReadTopics of another topic", func(t *testing.T) {
		// The index (intact) says the damaged event is not odd: a reader
		// of odd events never meets it.
		got, _, err := l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: []string{"odd"}, Limit: 1000})
		if err != nil || len(got) != 100 {
			t.Fatalf("%d events, %v; want the 100 odd ones", len(got), err)
		}
	})
	// The log goes on.
	e := &ssehub.Event{Topics: []string{"w3"}, Data: "after"}
	if err := l.Append(t.Context(), e); err != nil || e.Pos <= events[199].Pos {
		t.Fatalf("Append after damage: pos %d, %v", e.Pos, err)
	}
}

// Damage at either end of the history does not keep it from opening, from
// taking appends, or from trimming: a damaged oldest event is deleted when
// retention reaches it, a damaged newest one is reported when read.
func TestDamagedEndsOpenAndTrim(t *testing.T) {
	for _, tc := range []struct {
		name   string
		victim int
		opts   boltlog.Options
	}{
		{"newest", 19, boltlog.Options{}},
		{"oldest, trimmed by count", 0, boltlog.Options{MaxEvents: 10}},
		{"oldest, trimmed by age", 0, boltlog.Options{MaxAge: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			events := damage(t, dir, 20, tc.victim)
			opts := tc.opts
			opts.NoSync, opts.CacheEvents = true, -1
			l := open(t, dir, opts)
			defer l.Close()
			e := &ssehub.Event{Topics: []string{"w3"}, Data: "after"}
			if err := l.Append(t.Context(), e); err != nil || e.Pos <= events[19].Pos {
				t.Fatalf("Append: pos %d, %v", e.Pos, err)
			}
			got, err := l.Read(t.Context(), events[19].Pos, 10)
			if err != nil || len(got) != 1 || got[0].Data != "after" {
				t.Fatalf("Read of the new event: %d events, %v", len(got), err)
			}
		})
	}
	t.Run("oldest, expired", func(t *testing.T) {
		dir := t.TempDir()
		damage(t, dir, 20, 0)
		// Retention by age decodes the oldest event to learn its time: a
		// damaged one must not stop every commit.
		l := open(t, dir, boltlog.Options{NoSync: true, CacheEvents: -1, MaxAge: time.Nanosecond})
		defer l.Close()
		for i := range 3 {
			if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"w3"}}); err != nil {
				t.Fatalf("Append %d: %v", i, err)
			}
		}
	})
}

// bbolt keeps two meta pages and falls back to the older one when the
// newer is damaged (a torn write): the last committed transaction is
// lost. Its events had been acknowledged, and clients may hold their ids:
// the reopened log must not give those positions to new events.
func TestReopenedLogNeverReissuesPositions(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true})
	var acked []*ssehub.Event
	for i := range 3 { // one transaction each
		e := &ssehub.Event{Topics: []string{"a"}, Data: fmt.Sprint(i)}
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, e)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	damageNewestMeta(t, filepath.Join(dir, boltlog.FileName))

	l = open(t, dir, boltlog.Options{NoSync: true})
	defer l.Close()
	_, last, err := l.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if last >= acked[2].Pos {
		t.Fatalf("Bounds last %d: the damaged meta page was not skipped, the test shows nothing", last)
	}
	e := &ssehub.Event{Topics: []string{"a"}, Data: "new"}
	if err := l.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	for _, a := range acked {
		if e.Pos <= a.Pos {
			t.Fatalf("new event at position %d, which was acknowledged to an earlier event (%d)", e.Pos, a.Pos)
		}
	}
}

// damageNewestMeta breaks the checksum of the bbolt meta page with the
// higher transaction id (pages 0 and 1; the meta starts after the 16-byte
// page header: magic, version, page size, flags, root bucket (16 bytes),
// freelist, pgid, txid, checksum).
func damageNewestMeta(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const hdr, txidAt, sumAt = 16, 16 + 48, 16 + 56
	pageSize := int(binary.LittleEndian.Uint32(b[hdr+8:]))
	txid := func(page int) uint64 { return binary.LittleEndian.Uint64(b[page*pageSize+txidAt:]) }
	newest := 0
	if txid(1) > txid(0) {
		newest = 1
	}
	b[newest*pageSize+sumAt] ^= 0xff
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
