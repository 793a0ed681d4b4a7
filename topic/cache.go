package topic

import (
	"container/list"
	"sync"
)

// DefaultCacheSize is the number of templates a Cache made with
// NewCache(0) keeps.
const DefaultCacheSize = 4096

// Cache memoizes compiled templates and URL patterns, keeping the most
// recently used ones up to a fixed number. Exact and "*" selectors cost nothing to compile and are
// not stored. Malformed templates are remembered too, so a client repeating
// one does not cost a compilation each time.
//
// A Cache is safe for concurrent use. A nil *Cache is valid: it compiles
// every time.
type Cache struct {
	max int

	mu    sync.Mutex
	items map[cacheKey]*list.Element // of *cacheEntry
	lru   list.List                  // front = most recently used
}

// cacheKey tells templates and URL patterns with the same text apart.
type cacheKey struct {
	src string
	url bool
}

type cacheEntry struct {
	key cacheKey
	sel Selector
	err error
}

// NewCache returns a Cache that keeps up to max templates; max <= 0 means
// DefaultCacheSize.
func NewCache(max int) *Cache {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &Cache{max: max, items: make(map[cacheKey]*list.Element)}
}

// Compile returns Compile(selector), from the cache when it is there.
func (c *Cache) Compile(selector string) (Selector, error) {
	if c == nil || IsExact(selector) || selector == Wildcard {
		return Compile(selector)
	}
	return c.get(cacheKey{selector, false}, Compile)
}

// CompileURLPattern returns CompileURLPattern(pattern), from the cache when
// it is there.
func (c *Cache) CompileURLPattern(pattern string) (Selector, error) {
	if c == nil || pattern == Wildcard {
		return CompileURLPattern(pattern)
	}
	return c.get(cacheKey{pattern, true}, CompileURLPattern)
}

func (c *Cache) get(key cacheKey, compile func(string) (Selector, error)) (Selector, error) {
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		c.lru.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		c.mu.Unlock()
		return e.sel, e.err
	}
	c.mu.Unlock()

	// Compile without holding the lock; two goroutines may compile the same
	// selector at once, and the second store is dropped.
	sel, err := compile(key.src)

	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; !ok {
		c.items[key] = c.lru.PushFront(&cacheEntry{key: key, sel: sel, err: err})
		for c.lru.Len() > c.max {
			old := c.lru.Back()
			c.lru.Remove(old)
			delete(c.items, old.Value.(*cacheEntry).key)
		}
	}
	return sel, err
}

// Len returns the number of templates in the cache.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
