package topic

import (
	"fmt"
	"testing"
)

func TestSet(t *testing.T) {
	many := make([]string, 0, indexThreshold+4)
	for i := range indexThreshold + 4 {
		many = append(many, fmt.Sprintf("https://example.com/t/%d", i))
	}
	tests := []struct {
		name      string
		selectors []string
		topic     string
		want      bool
	}{
		{"empty set", nil, "a", false},
		{"exact hit", []string{"a", "b"}, "b", true},
		{"exact miss", []string{"a", "b"}, "c", false},
		{"wildcard", []string{"a", "*"}, "z", true},
		{"template hit", []string{"a", "https://example.com/{id}"}, "https://example.com/1", true},
		{"template miss", []string{"a", "https://example.com/{id}"}, "https://example.com/1/2", false},
		{"indexed exact hit", many, "https://example.com/t/10", true},
		{"indexed exact miss", many, "https://example.com/t/99", false},
		{"indexed with template", append(many[:len(many):len(many)], "x/{id}"), "x/7", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := CompileSet(nil, tt.selectors...)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Match(tt.topic); got != tt.want {
				t.Errorf("Match(%q) = %v, want %v", tt.topic, got, tt.want)
			}
			if got := s.MatchAny([]string{"nothing-matches-this", tt.topic}); got != tt.want {
				t.Errorf("MatchAny(…, %q) = %v, want %v", tt.topic, got, tt.want)
			}
		})
	}
}

func TestSetMatchAll(t *testing.T) {
	s, err := CompileSet(nil, "https://example.com/books/{id}", "news")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		topics        []string
		wantOK        bool
		wantUnmatched string
	}{
		{"none", nil, true, ""},
		{"all match", []string{"news", "https://example.com/books/1"}, true, ""},
		{"second fails", []string{"news", "sports", "weather"}, false, "sports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, unmatched := s.MatchAll(tt.topics)
			if ok != tt.wantOK || unmatched != tt.wantUnmatched {
				t.Errorf("MatchAll(%q) = %v, %q; want %v, %q", tt.topics, ok, unmatched, tt.wantOK, tt.wantUnmatched)
			}
		})
	}
}

func TestSetDeduplicatesAndKeepsOrder(t *testing.T) {
	s := NewSet(MustCompile("b"), MustCompile("a/{x}"), MustCompile("b"), Selector{}, CompileExact("a/{x}"), MustCompile("a/{x}"))
	var got []string
	for _, sel := range s.Selectors() {
		got = append(got, sel.Kind().String()+":"+sel.String())
	}
	want := []string{"exact:b", "template:a/{x}", "exact:a/{x}"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Selectors() = %q, want %q", got, want)
	}
	if s.Len() != 3 {
		t.Errorf("Len() = %d, want 3", s.Len())
	}
	if s.MatchesAll() {
		t.Error("MatchesAll() = true without *")
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	if s.Match("a") || s.MatchAny([]string{"a"}) || s.MatchesAll() || s.Len() != 0 || s.Selectors() != nil {
		t.Error("nil Set is not empty")
	}
}

func TestCompileSetError(t *testing.T) {
	_, err := CompileSet(NewCache(0), "ok", "bad/{")
	if err == nil {
		t.Fatal("CompileSet with a malformed template succeeded")
	}
}
