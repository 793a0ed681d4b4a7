package boltlog_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/boltlog"
)

// TestDamagedPage overwrites one page of a valid history at a time with junk
// and checks that Open, Read and Append report ErrCorrupt (or, for a page
// that was free, work) but never panic: bbolt panics on damaged pages and
// boltlog turns those panics into errors.
func TestDamagedPage(t *testing.T) {
	const pageSize = 4096
	src := t.TempDir()
	l := open(t, src, boltlog.Options{NoSync: true, CacheEvents: -1})
	for i := range 200 {
		if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, Data: strings.Repeat("x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	orig, err := os.ReadFile(filepath.Join(src, boltlog.FileName))
	if err != nil {
		t.Fatal(err)
	}
	reported := 0
	for page := 2; (page+1)*pageSize <= len(orig); page++ { // 0 and 1 are the meta pages
		b := append([]byte(nil), orig...)
		for i := page * pageSize; i < (page+1)*pageSize; i++ {
			b[i] = byte(i*13 + page)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, boltlog.FileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := boltlog.Open(dir, boltlog.Options{NoSync: true, CacheEvents: -1})
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
