package boltlog_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
	"github.com/ssehub/ssehub/log/boltlog"
)

// testdata/prev-version.events.db.gz is a history written by the version
// before the topic index (commit e8d5901, by a throwaway test in a worktree
// of it): 3,000 events in batches of 50; event n (from 0) has the topic
// https://example.com/books/{n%37}, "shelf" when n%5 == 0, and
// https://example.com/authors/{n%7} plus its first topic again when
// n%11 == 0; it is private when n%7 == 0, has the id urn:uuid:fixture-{n}
// when n%3 == 0, the type "update" when n%13 == 0, and the data {"n":n}.
const fixtureEvents = 3000

// fixtureDir returns a data directory holding a copy of the old history.
func fixtureDir(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "prev-version.events.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, err := os.OpenFile(filepath.Join(dir, boltlog.FileName), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, z); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fixtureTopicKeys is the number of index keys the fixture's events need:
// one per distinct topic.
func fixtureTopicKeys() int {
	n := 0
	for i := range fixtureEvents {
		n++
		if i%5 == 0 {
			n++
		}
		if i%11 == 0 {
			n++
		}
	}
	return n
}

// infoLog returns a logger at Info level writing to the returned buffer.
func infoLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), &buf
}

// readEverything reads every retained event with Read.
func readEverything(t *testing.T, l *boltlog.Log) []*ssehub.Event {
	t.Helper()
	var out []*ssehub.Event
	for after := uint64(0); ; {
		page, err := l.Read(t.Context(), after, 1000)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Pos
	}
}

// readTopicsAll pages through ReadTopics for topics until the newest
// position, following through.
func readTopicsAll(t *testing.T, l *boltlog.Log, limit int, topics ...string) []*ssehub.Event {
	t.Helper()
	_, last, err := l.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*ssehub.Event
	for after := uint64(0); after < last; {
		page, through, err := l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: topics, After: after, Limit: limit})
		if err != nil {
			t.Fatalf("ReadTopics(%q after %d): %v", topics, after, err)
		}
		if through <= after && len(page) == 0 {
			t.Fatalf("ReadTopics(%q after %d) does not advance", topics, after)
		}
		out = append(out, page...)
		after = through
	}
	return out
}

// checkTopicReads compares ReadTopics with a filtered full read for each
// set of topics.
func checkTopicReads(t *testing.T, l *boltlog.Log, all []*ssehub.Event, topicSets [][]string) {
	t.Helper()
	for _, topics := range topicSets {
		var want []*ssehub.Event
		for _, e := range all {
			if eventlog.Selects(topics, e) {
				want = append(want, e)
			}
		}
		got := readTopicsAll(t, l, 100, topics...)
		if len(got) != len(want) {
			t.Fatalf("ReadTopics(%q): %d events, want %d", topics, len(got), len(want))
		}
		for i := range got {
			if got[i].Pos != want[i].Pos || got[i].Data != want[i].Data || !slices.Equal(got[i].Topics, want[i].Topics) {
				t.Fatalf("ReadTopics(%q) event %d: %+v, want %+v", topics, i, got[i], want[i])
			}
		}
	}
}

// fixtureTopicSets are the queries checked against the fixture.
var fixtureTopicSets = [][]string{
	{"https://example.com/books/0"},
	{"https://example.com/books/36"},
	{"shelf"},
	{"https://example.com/authors/3"},
	{"https://example.com/authors/3", "shelf", "https://example.com/books/5"},
	{"https://example.com/books/1", "https://example.com/books/1"},
}

// checkTopicKeys checks that the index holds want keys and is complete
// through the newest position.
func checkTopicKeys(t *testing.T, l *boltlog.Log, want int) {
	t.Helper()
	keys, through, err := boltlog.TopicKeys(l)
	if err != nil {
		t.Fatal(err)
	}
	_, last, _ := l.Bounds(t.Context())
	if keys != want || through != last {
		t.Fatalf("the topic index holds %d keys, complete through %d; want %d keys, through %d", keys, through, want, last)
	}
}

// A history written by the version before the topic index opens, gets
// indexed, and loses nothing.
func TestTopicIndexBuiltForAnOldHistory(t *testing.T) {
	dir := fixtureDir(t)
	logger, logged := infoLog()
	opened := uint64(time.Now().UnixMicro())
	l := open(t, dir, boltlog.Options{NoSync: true, CacheEvents: 100, IndexEvery: 1, Logger: logger})
	defer func() { l.Close() }()
	if !strings.Contains(logged.String(), "indexed the topics") || !strings.Contains(logged.String(), fmt.Sprintf("events=%d", fixtureEvents)) {
		t.Fatalf("Open did not log the indexing of %d events: %q", fixtureEvents, logged)
	}
	all := readEverything(t, l)
	if len(all) != fixtureEvents {
		t.Fatalf("%d events readable, want %d", len(all), fixtureEvents)
	}
	for n, e := range all {
		private, hasID := n%7 == 0, n%3 == 0
		if e.Data != fmt.Sprintf(`{"n":%d}`, n) || e.Private != private || (e.ID != "") != hasID || (e.Type == "update") != (n%13 == 0) {
			t.Fatalf("event %d: %+v", n, e)
		}
		if n > 0 && e.Pos != all[n-1].Pos+1 {
			t.Fatalf("event %d at position %d after %d", n, e.Pos, all[n-1].Pos)
		}
		if hasID {
			pos, found, err := l.LookupID(t.Context(), e.ID)
			if err != nil || !found || pos != e.Pos {
				t.Fatalf("LookupID(%q) = %d, %v, %v; want %d", e.ID, pos, found, err, e.Pos)
			}
		}
	}
	checkTopicReads(t, l, all, fixtureTopicSets)
	checkTopicKeys(t, l, fixtureTopicKeys())

	// Appends continue after the old positions (from the clock at Open,
	// which is past them), indexed as they commit.
	more := []*ssehub.Event{
		{Topics: []string{"shelf", "https://example.com/books/0"}, Data: "new 1"},
		{Topics: []string{"https://example.com/authors/3"}, Data: "new 2", ID: "urn:uuid:new"},
	}
	if err := l.Append(t.Context(), more...); err != nil {
		t.Fatal(err)
	}
	if more[0].Pos <= all[len(all)-1].Pos || more[0].Pos < opened || more[1].Pos != more[0].Pos+1 {
		t.Fatalf("new positions %d, %d; want consecutive ones past the old %d and the clock at Open (%d)", more[0].Pos, more[1].Pos, all[len(all)-1].Pos, opened)
	}
	if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, ID: "urn:uuid:fixture-3"}); !errors.Is(err, ssehub.ErrDuplicateID) {
		t.Fatalf("Append reusing an old id: %v", err)
	}
	all = append(all, more...)
	checkTopicReads(t, l, all, fixtureTopicSets)
	checkTopicKeys(t, l, fixtureTopicKeys()+3)

	// Indexed once: a second Open has nothing to do.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	logged.Reset()
	l = open(t, dir, boltlog.Options{NoSync: true, Logger: logger})
	if strings.Contains(logged.String(), "indexed") {
		t.Fatalf("the second Open indexed again: %q", logged)
	}
	checkTopicReads(t, l, all, fixtureTopicSets)
}

// An indexing interrupted between two chunks (a crash, a kill) resumes at
// the next Open where it stopped, and ends with the complete index.
func TestTopicIndexBuildInterrupted(t *testing.T) {
	dir := fixtureDir(t)
	errCrash := errors.New("simulated crash")
	var chunks []uint64
	restore := boltlog.SetIndexChunk(700, func(through uint64) error {
		chunks = append(chunks, through)
		if len(chunks) == 2 {
			return errCrash
		}
		return nil
	})
	defer restore()
	if l, err := boltlog.Open(dir, boltlog.Options{NoSync: true}); !errors.Is(err, errCrash) {
		if err == nil {
			l.Close()
		}
		t.Fatalf("Open = %v, want the simulated crash", err)
	}
	if len(chunks) != 2 || chunks[1]-chunks[0] != 700 {
		t.Fatalf("chunks complete through %v, want two of 700 events", chunks)
	}
	restore()
	logger, logged := infoLog()
	l := open(t, dir, boltlog.Options{NoSync: true, Logger: logger})
	defer l.Close()
	if !strings.Contains(logged.String(), fmt.Sprintf("events=%d", fixtureEvents-1400)) {
		t.Fatalf("the second Open did not resume after the 1,400 events indexed: %q", logged)
	}
	all := readEverything(t, l)
	if len(all) != fixtureEvents {
		t.Fatalf("%d events readable, want %d", len(all), fixtureEvents)
	}
	checkTopicReads(t, l, all, fixtureTopicSets)
	checkTopicKeys(t, l, fixtureTopicKeys())
}

// Retention by age, in a transaction of its own, deletes the index keys of
// the events it deletes: the index holds exactly the retained events' keys.
func TestTopicIndexTrimmedByAge(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		l := open(t, dir, boltlog.Options{NoSync: true, MaxAge: time.Minute, IndexEvery: 1})
		defer l.Close()
		add := func(n int) {
			for i := range n {
				topics := []string{"a", fmt.Sprintf("t/%d", i%3)}
				if i%2 == 0 {
					topics = append(topics, "b", "a") // three distinct topics
				}
				if err := l.Append(t.Context(), &ssehub.Event{Topics: topics}); err != nil {
					t.Fatal(err)
				}
			}
		}
		add(10) // 5×3 + 5×2 keys
		time.Sleep(40 * time.Second)
		add(3) // 2×3 + 1×2 keys
		synctest.Wait()
		checkTopicKeys(t, l, 25+8)
		time.Sleep(22 * time.Second) // the first ten expire
		synctest.Wait()
		first, _, _ := l.Bounds(t.Context())
		if got := readEverything(t, l); len(got) != 3 || got[0].Pos != first {
			t.Fatalf("%d events retained, want 3", len(got))
		}
		checkTopicKeys(t, l, 8)
		checkTopicReads(t, l, readEverything(t, l), [][]string{{"a"}, {"b"}, {"t/0", "t/2"}})
		time.Sleep(time.Minute) // all expire
		synctest.Wait()
		checkTopicKeys(t, l, 0)
	})
}

// Retention by count deletes index keys too, in several transactions when
// it has much to delete.
func TestTopicIndexTrimmedByCount(t *testing.T) {
	defer boltlog.SetMaxTrimPerTx(300)()
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true, IndexEvery: 1})
	events := make([]*ssehub.Event, 1000)
	for i := range events {
		events[i] = &ssehub.Event{Topics: []string{fmt.Sprintf("t/%d", i%10), "all"}}
	}
	if err := l.Append(t.Context(), events...); err != nil {
		t.Fatal(err)
	}
	checkTopicKeys(t, l, 2000)
	l.Close()
	synctest.Test(t, func(t *testing.T) {
		l := open(t, dir, boltlog.Options{NoSync: true, MaxEvents: 10, IndexEvery: 1})
		defer l.Close()
		synctest.Wait() // the committer trims while idle
		checkTopicKeys(t, l, 20)
		checkTopicReads(t, l, readEverything(t, l), [][]string{{"all"}, {"t/3"}})
	})
}

// A key of the index that names an event without the topic (as a hash
// collision does) or an event that is gone is skipped.
func TestTopicIndexCollisionsAndStaleKeys(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true, CacheEvents: -1})
	events := []*ssehub.Event{{Topics: []string{"a"}}, {Topics: []string{"b"}}, {Topics: []string{"a"}}}
	if err := l.Append(t.Context(), events...); err != nil {
		t.Fatal(err)
	}
	l.Close()
	key := func(topic string, pos uint64) []byte {
		return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, eventlog.TopicHash(topic)), pos)
	}
	updateTopicIndex(t, dir, func(b *bolt.Bucket) error {
		if err := b.Put(key("a", events[1].Pos), []byte{}); err != nil { // "b"'s event under "a"
			return err
		}
		return b.Put(key("a", events[0].Pos-1), []byte{}) // no such event
	})
	l = open(t, dir, boltlog.Options{NoSync: true, CacheEvents: -1})
	defer l.Close()
	got, through, err := l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: []string{"a"}, Limit: 10})
	if err != nil || len(got) != 2 || got[0].Pos != events[0].Pos || got[1].Pos != events[2].Pos || through != events[2].Pos {
		t.Fatalf("ReadTopics(a) = %d events, through %d, %v; want %d and %d, through %d", len(got), through, err, events[0].Pos, events[2].Pos, events[2].Pos)
	}
}

// A damaged index key is reported as ErrCorrupt, not skipped or panicked on.
func TestTopicIndexDamagedKey(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true, CacheEvents: -1})
	if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	updateTopicIndex(t, dir, func(b *bolt.Bucket) error {
		k := binary.BigEndian.AppendUint64(nil, eventlog.TopicHash("a"))
		return b.Put(append(k, 0xff), []byte{}) // 9 bytes, after the real key
	})
	l = open(t, dir, boltlog.Options{NoSync: true, CacheEvents: -1})
	defer l.Close()
	if _, _, err := l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: []string{"a"}, Limit: 10}); !errors.Is(err, boltlog.ErrCorrupt) {
		t.Fatalf("ReadTopics over a damaged key: %v, want ErrCorrupt", err)
	}
}

// updateTopicIndex changes the topic index of the closed history in dir.
func updateTopicIndex(t *testing.T, dir string, fn func(*bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, boltlog.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte("ssehub.topics"))) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Events committed while a read runs are left for the next read: every
// event returned is within through, also when a commit lands between the
// read's look at the newest position and its transaction.
func TestTopicReadDuringAppends(t *testing.T) {
	for _, topics := range [][]string{{"a"}, nil} {
		t.Run(fmt.Sprintf("topics %q", topics), func(t *testing.T) {
			l := open(t, t.TempDir(), boltlog.Options{NoSync: true, CacheEvents: -1})
			defer l.Close()
			if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}}); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			defer func() { close(stop); <-done }()
			for range 2000 {
				_, last, err := l.Bounds(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				q := ssehub.TopicQuery{Topics: topics, After: last - min(last, 20), Limit: 1 << 20} // the newest few
				events, through, err := l.ReadTopics(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				if n := len(events); n > 0 && events[n-1].Pos > through {
					t.Fatalf("ReadTopics returned event %d beyond through %d", events[n-1].Pos, through)
				}
			}
		})
	}
}

// The keys of committed events are written to the file every IndexEvery
// events; meanwhile reads find those events in memory, and after a restart
// (Close writes nothing more, as a crash) Open indexes them again.
func TestTopicIndexWrittenInBatches(t *testing.T) {
	dir := t.TempDir()
	for _, cache := range []int{0, -1} {
		l := open(t, dir, boltlog.Options{NoSync: true, IndexEvery: 100, CacheEvents: cache, MaxEvents: 1000})
		var keys int
		for i := range 250 {
			topics := []string{fmt.Sprintf("t/%d", i%7)}
			if i%5 == 0 {
				topics = append(topics, "five")
			}
			if err := l.Append(t.Context(), &ssehub.Event{Topics: topics, Data: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
			if i < 200 {
				keys += len(topics)
			}
		}
		all := readEverything(t, l)
		n, through, err := boltlog.TopicKeys(l)
		if err != nil {
			t.Fatal(err)
		}
		if n < keys || through < all[199].Pos || through >= all[len(all)-1].Pos {
			t.Fatalf("cache %d: the file's index holds %d keys through %d after %d events; want the keys of whole batches of 100 (at least %d keys), not the last 50", cache, n, through, len(all), keys)
		}
		checkTopicReads(t, l, all, [][]string{{"t/3"}, {"five"}, {"five", "t/0"}})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = open(t, dir, boltlog.Options{NoSync: true, IndexEvery: 100, CacheEvents: cache, MaxEvents: 1000})
		checkTopicReads(t, l, all, [][]string{{"t/3"}, {"five"}, {"five", "t/0"}})
		_, last, _ := l.Bounds(t.Context())
		if _, through, _ := boltlog.TopicKeys(l); through != last {
			t.Fatalf("after Open the file's index is complete through %d, want %d", through, last)
		}
		l.Close()
	}
}

// A commit that trims is visible to readers' transactions before the
// committer updates the bounds. Bounds read after a read must still say
// that what the read did not find is gone (ssehub.TopicIndex: callers
// compare with Bounds after the read to detect gaps), or a replay skips
// trimmed events without a gap.
func TestBoundsAfterAReadCoverWhatRetentionRemoved(t *testing.T) {
	l := open(t, t.TempDir(), boltlog.Options{NoSync: true, CacheEvents: -1, MaxEvents: 2})
	defer l.Close()
	for _, d := range []string{"A", "B", "C"} { // A is trimmed
		if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, Data: d}); err != nil {
			t.Fatal(err)
		}
	}
	all := readEverything(t, l)
	committed, release := make(chan struct{}), make(chan struct{})
	defer boltlog.SetAfterCommit(func() { close(committed); <-release })()
	appended := make(chan error, 1)
	go func() { appended <- l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, Data: "D"}) }() // trims B
	<-committed
	for _, topics := range [][]string{nil, {"a"}} {
		after := all[0].Pos - 1 // the client has A, and B is the oldest retained
		evs, through, err := l.ReadTopics(t.Context(), ssehub.TopicQuery{Topics: topics, After: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		first, _, err := l.Bounds(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if (len(evs) == 0 || evs[0].Pos > after+1) && through > after && first <= after+1 {
			t.Errorf("topics %q: ReadTopics after %d returned %d events from %v through %d without event %d, but Bounds says the oldest retained is %d", topics, after, len(evs), evs, through, after+1, first)
		}
		page, err := l.Read(t.Context(), after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if first, _, _ = l.Bounds(t.Context()); (len(page) == 0 || page[0].Pos > after+1) && first <= after+1 {
			t.Errorf("Read after %d returned %d events without event %d, but Bounds says the oldest retained is %d", after, len(page), after+1, first)
		}
	}
	close(release)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
}
