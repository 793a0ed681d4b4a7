package topic

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestCacheMemoizes(t *testing.T) {
	c := NewCache(10)
	a, err := c.Compile("https://example.com/{id}")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Compile("https://example.com/{id}")
	if a.tmpl != b.tmpl {
		t.Error("second Compile compiled again instead of using the cache")
	}
	if c.Len() != 1 {
		t.Errorf("Len() = %d, want 1", c.Len())
	}
	// Exact and wildcard selectors are not stored.
	for _, s := range []string{"exact", "*"} {
		if _, err := c.Compile(s); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 1 {
		t.Errorf("Len() = %d after exact selectors, want 1", c.Len())
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := NewCache(2)
	first, _ := c.Compile("{a}")
	c.Compile("{b}")
	c.Compile("{a}") // a is now the most recently used
	c.Compile("{c}") // evicts b
	if c.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", c.Len())
	}
	again, _ := c.Compile("{a}")
	if again.tmpl != first.tmpl {
		t.Error("{a} was evicted although it was used more recently than {b}")
	}
	c.mu.Lock()
	_, hasB := c.items[cacheKey{src: "{b}"}]
	c.mu.Unlock()
	if hasB {
		t.Error("{b} is still cached; it was the least recently used")
	}
}

func TestCacheRemembersErrors(t *testing.T) {
	c := NewCache(0)
	_, err1 := c.Compile("bad/{")
	_, err2 := c.Compile("bad/{")
	if err1 == nil || !errors.Is(err2, ErrTemplate) {
		t.Fatalf("errors = %v, %v; want ErrTemplate", err1, err2)
	}
	if err1 != err2 {
		t.Error("the error was not cached")
	}
}

func TestNilCacheCompiles(t *testing.T) {
	var c *Cache
	s, err := c.Compile("x/{id}")
	if err != nil || !s.Match("x/1") {
		t.Errorf("nil Cache Compile = %v, %v", s, err)
	}
	if c.Len() != 0 {
		t.Error("nil Cache has a length")
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := NewCache(8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				sel := fmt.Sprintf("https://example.com/%d/{id}", (g+i)%16)
				s, err := c.Compile(sel)
				if err != nil {
					t.Error(err)
					return
				}
				if !s.Match(fmt.Sprintf("https://example.com/%d/x", (g+i)%16)) {
					t.Errorf("%s does not match", sel)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 8 {
		t.Errorf("Len() = %d, over the bound 8", c.Len())
	}
}
