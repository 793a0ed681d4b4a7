//go:build !race

package topic

import "testing"

// The race detector makes sync.Pool drop items, which regexp relies on, so
// this runs without it.
func TestMatchDoesNotAllocate(t *testing.T) {
	set, err := CompileSet(nil, "a", "https://example.com/books/{id}", "https://example.com/search{?q,page}")
	if err != nil {
		t.Fatal(err)
	}
	topics := []string{"b", "https://example.com/books/1", "https://example.com/search?q=x&page=2", "https://example.com/books/1/2"}
	set.MatchAny(topics) // warm regexp's machine pool
	for _, tp := range topics {
		if n := testing.AllocsPerRun(100, func() { set.Match(tp) }); n != 0 {
			t.Errorf("Set.Match(%q) allocates %v times", tp, n)
		}
	}
}
