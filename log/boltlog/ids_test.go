package boltlog_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/boltlog"
)

// A history written before the id index existed gets it at Open: resuming
// from publisher ids and refusing duplicates work for its old events too.
func TestIDIndexBuiltForAnOldHistory(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, boltlog.Options{NoSync: true})
	events := []*ssehub.Event{
		{Topics: []string{"a"}, ID: "urn:a"},
		{Topics: []string{"a"}},
		{Topics: []string{"a"}, ID: "urn:b"},
	}
	for _, e := range events {
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Make it an old file: drop the index bucket.
	db, err := bolt.Open(dir+"/"+boltlog.FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("ssehub.ids")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	l = open(t, dir, boltlog.Options{NoSync: true})
	defer l.Close()
	for _, e := range []*ssehub.Event{events[0], events[2]} {
		pos, found, err := l.LookupID(t.Context(), e.ID)
		if err != nil || !found || pos != e.Pos {
			t.Fatalf("LookupID(%q) = %d, %v, %v; want %d", e.ID, pos, found, err, e.Pos)
		}
	}
	if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, ID: "urn:b"}); !errors.Is(err, ssehub.ErrDuplicateID) {
		t.Fatalf("Append of an old id: %v", err)
	}
}

// Retention in a transaction of its own (by age, with nothing appended)
// frees ids too.
func TestIDIndexTrimmedByAge(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		l := open(t, dir, boltlog.Options{NoSync: true, MaxAge: time.Minute})
		defer l.Close()
		if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, ID: "urn:short-lived"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(62 * time.Second)
		synctest.Wait() // let the committer finish what its timer started
		if _, found, err := l.LookupID(t.Context(), "urn:short-lived"); err != nil || found {
			t.Fatalf("LookupID of an expired event = %v, %v; want not found", found, err)
		}
		if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, ID: "urn:short-lived"}); err != nil {
			t.Fatalf("Append reusing the id of an expired event: %v", err)
		}
	})
}
