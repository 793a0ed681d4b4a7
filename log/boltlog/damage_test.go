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

// TestTruncatedFile cuts a valid history short, as a partial copy or restore
// would: Open must report ErrCorrupt when pages are missing (reading them
// through the memory map used to end the process with SIGBUS), or, when
// only unused space was cut, serve every event.
func TestTruncatedFile(t *testing.T) {
	src := t.TempDir()
	l := open(t, src, boltlog.Options{NoSync: true, CacheEvents: -1})
	for range 30 {
		batch := make([]*ssehub.Event, 100)
		for i := range batch {
			batch[i] = &ssehub.Event{Topics: []string{"a"}, Data: strings.Repeat("x", 200)}
		}
		if err := l.Append(t.Context(), batch...); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	orig, err := os.ReadFile(filepath.Join(src, boltlog.FileName))
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, keep := range []int{3, 5, 10, 20, 40, 60, 80} { // percent of the file
		size := len(orig) * keep / 100 / 4096 * 4096
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, boltlog.FileName), orig[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := boltlog.Open(dir, boltlog.Options{NoSync: true, CacheEvents: -1})
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
