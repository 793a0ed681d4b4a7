package topic

import (
	"errors"
	"strings"
	"testing"
)

// The URL Pattern standard's cases live with its implementation, in
// internal/urlpattern; these check what topic adds: the Selector's kind and
// text, the wildcard, the Set and the Cache.
var urlPatternCases = []struct {
	name, pattern, topic string
	want                 bool
}{
	{"intro category", "https://example.com/:category/*", "https://example.com/products/", true},
	{"intro other scheme", "https://example.com/:category/*", "http://example.com/products/", false},
	{"relative", "/books/:id", "/books/1", true},
	{"relative and absolute", "/books/:id", "https://example.com/books/1", false},
	{"not a URL", "https://example.com/*", "no url", false},
}

func TestURLPatternMatch(t *testing.T) {
	for _, tc := range urlPatternCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := CompileURLPattern(tc.pattern)
			if err != nil {
				t.Fatalf("CompileURLPattern(%q): %v", tc.pattern, err)
			}
			if s.Kind() != KindURLPattern || s.String() != tc.pattern {
				t.Fatalf("kind %v, text %q", s.Kind(), s.String())
			}
			if got := s.Match(tc.topic); got != tc.want {
				t.Errorf("%q matches %q: %v, want %v", tc.pattern, tc.topic, got, tc.want)
			}
			if got := NewSet(s).Match(tc.topic); got != tc.want {
				t.Errorf("in a Set: %v, want %v", got, tc.want)
			}
		})
	}
}

func TestURLPatternWildcard(t *testing.T) {
	s, err := CompileURLPattern("*")
	if err != nil || s.Kind() != KindAll || !s.Match("anything") {
		t.Fatalf("CompileURLPattern(*) = %v %v", s.Kind(), err)
	}
}

func TestURLPatternErrors(t *testing.T) {
	for _, p := range []string{"", "books/:id", "https://example.com/" + strings.Repeat("a", MaxURLPatternLen)} {
		if s, err := CompileURLPattern(p); !errors.Is(err, ErrURLPattern) || s.Kind() != 0 {
			t.Errorf("CompileURLPattern(%q) = %v %v, want ErrURLPattern", p, s.Kind(), err)
		}
	}
}

func TestURLPatternCache(t *testing.T) {
	c := NewCache(8)
	a, err := c.CompileURLPattern("/books/{id}")
	if err != nil || a.Kind() != KindURLPattern {
		t.Fatalf("%v %v", a.Kind(), err)
	}
	// The same text as a template is another selector.
	b, err := c.Compile("/books/{id}")
	if err != nil || b.Kind() != KindTemplate {
		t.Fatalf("%v %v", b.Kind(), err)
	}
	again, _ := c.CompileURLPattern("/books/{id}")
	if again.url != a.url {
		t.Error("the URL pattern was compiled twice")
	}
	if _, err := c.CompileURLPattern("books"); !errors.Is(err, ErrURLPattern) {
		t.Fatalf("error %v", err)
	}
}

// TestURLPatternMatchDoesNotAllocate guards the path the hub takes for every
// published event: a Selector matching a canonical topic.
func TestURLPatternMatchDoesNotAllocate(t *testing.T) {
	s := MustCompileURLPattern(t, "https://example.com/users/:user/books/:id")
	allocs := testing.AllocsPerRun(100, func() {
		if !s.Match("https://example.com/users/alice/books/42") {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per match of a canonical topic", allocs)
	}
}

func MustCompileURLPattern(t testing.TB, p string) Selector {
	t.Helper()
	s, err := CompileURLPattern(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func BenchmarkURLPatternMatch(b *testing.B) {
	s := MustCompileURLPattern(b, "https://example.com/users/:user/books/:id(\\d+)")
	b.ReportAllocs()
	for b.Loop() {
		s.Match("https://example.com/users/alice/books/42")
	}
}

// FuzzURLPattern compiles arbitrary patterns and matches arbitrary topics:
// errors wrap ErrURLPattern, and a Set agrees with the selector.
func FuzzURLPattern(f *testing.F) {
	for _, tc := range urlPatternCases {
		f.Add(tc.pattern, tc.topic)
	}
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		s, err := CompileURLPattern(pattern)
		if err != nil {
			if !errors.Is(err, ErrURLPattern) {
				t.Fatalf("error %v does not wrap ErrURLPattern", err)
			}
			return
		}
		if s.Match(topic) != NewSet(s).Match(topic) {
			t.Fatalf("a Set disagrees with %q on %q", pattern, topic)
		}
	})
}
