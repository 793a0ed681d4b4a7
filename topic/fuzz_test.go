package topic

import (
	"regexp/syntax"
	"strings"
	"testing"
)

// FuzzCompileMatch compiles arbitrary selectors and matches them against
// arbitrary topics: nothing may panic, a compiled selector always matches
// its own text, the cache and a Set agree with the selector, an exact
// selector matches only itself, the fast path for simple templates agrees
// with the regexp, and a template's Cost bounds the size of its compiled
// program (the work of matching one topic byte), which is what servers
// bound per subscription. (A URL pattern's Cost is its program size.)
func FuzzCompileMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"*", "https://example.com/a"},
		{"https://example.com/books/{id}", "https://example.com/books/1"},
		{"https://example.com/books/{id}", "https://example.com/books/1/2"},
		{"{/list*,path:4}", "/red/green/blue/%2Ffoo"},
		{"{?x,y,empty}", "?x=1024&y=768&empty="},
		{"{;keys*}", ";semi=%3B;dot=.;comma=%2C"},
		{"X{.var:3}", "X.val"},
		{"{+path:6}/here", "/foo/b/here"},
		{"{a,b,c,d,e,f,g,h,i,j}", "1,2,3"},
		{"{var:9999}", "x"},
		{"bad{", "bad"},
		{"{=x}", ""},
		{"caf\xc3\xa9/{id}", "café/1"},
		{"\xff{id}", "\xff"},
		{"https://example.com/users/{user}/books/{id}.json", "https://example.com/users/a%2F,b/books/7.json"},
		{"{a}/{b}", "x%2/y"},
		{"{a}%2F{b}", "x%2Fy"},
		{"{a}-{b}", "x-y-z"},
		{"{a,b}/{c}", "1,2/\xe2\x82"},
	} {
		f.Add(seed[0], seed[1])
	}
	cache := NewCache(64)
	f.Fuzz(func(t *testing.T, selector, topic string) {
		s, err := Compile(selector)
		cached, cerr := cache.Compile(selector)
		if (err == nil) != (cerr == nil) {
			t.Fatalf("Compile and Cache.Compile disagree on %q: %v / %v", selector, err, cerr)
		}
		if err != nil {
			if s.Match(topic) {
				t.Fatalf("failed Compile(%q) returned a selector that matches", selector)
			}
			return
		}
		if !s.Match(selector) {
			t.Fatalf("Compile(%q) does not match its own text", selector)
		}
		got := s.Match(topic)
		if cached.Match(topic) != got {
			t.Fatalf("cached selector %q disagrees on %q", selector, topic)
		}
		if NewSet(s).Match(topic) != got {
			t.Fatalf("Set of %q disagrees on %q", selector, topic)
		}
		if s.Kind() == KindExact && got != (topic == selector) {
			t.Fatalf("exact selector %q matched %q", selector, topic)
		}
		if tm := s.tmpl; tm != nil {
			if n := progSize(t, tm.re.String()); n > 2*s.Cost()+32 {
				t.Fatalf("template %q costs %d but its program has %d instructions", selector, s.Cost(), n)
			}
		}
		if tm := s.tmpl; tm != nil && tm.simple && len(topic) >= len(tm.prefix)+len(tm.suffix) {
			// The fast path agrees with the regexp.
			middle := topic[len(tm.prefix) : len(topic)-len(tm.suffix)]
			if tm.matchSimple(middle) != tm.re.MatchString(middle) {
				t.Fatalf("template %q: fast path and regexp disagree on %q", selector, topic)
			}
		}
		if s.Kind() == KindTemplate && got && topic != selector {
			// A matching topic starts with the literal before the first
			// expression.
			if p := selector[:strings.IndexByte(selector, '{')]; !strings.HasPrefix(topic, p) {
				t.Fatalf("template %q matched %q without its literal prefix", selector, topic)
			}
		}
	})
}

// progSize is the number of instructions of the program regexp compiles
// re to.
func progSize(t *testing.T, re string) int {
	p, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := syntax.Compile(p.Simplify())
	if err != nil {
		t.Fatal(err)
	}
	return len(prog.Inst)
}
