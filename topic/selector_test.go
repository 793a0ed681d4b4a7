package topic

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCompileKind(t *testing.T) {
	tests := []struct {
		name, selector string
		want           Kind
	}{
		{"wildcard", "*", KindAll},
		{"url", "https://example.com/books/1", KindExact},
		{"plain word", "news", KindExact},
		{"star inside", "https://example.com/*", KindExact},
		{"closing brace only", "/id*}", KindExact},
		{"empty", "", KindExact},
		{"template", "https://example.com/books/{id}", KindTemplate},
		{"only expression", "{topic}", KindTemplate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile(tt.selector)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.selector, err)
			}
			if s.Kind() != tt.want {
				t.Errorf("Compile(%q).Kind() = %v, want %v", tt.selector, s.Kind(), tt.want)
			}
			if s.String() != tt.selector {
				t.Errorf("String() = %q, want %q", s.String(), tt.selector)
			}
			if IsExact(tt.selector) != (tt.want == KindExact) {
				t.Errorf("IsExact(%q) = %v, disagrees with Compile", tt.selector, IsExact(tt.selector))
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name, selector, topic string
		want                  bool
	}{
		{"exact equal", "https://example.com/books/1", "https://example.com/books/1", true},
		{"exact differs", "https://example.com/books/1", "https://example.com/books/2", false},
		{"exact is case sensitive", "https://example.com/Books", "https://example.com/books", false},
		{"exact is not a prefix", "https://example.com/books", "https://example.com/books/1", false},
		{"exact star is literal", "https://example.com/*", "https://example.com/books", false},
		{"wildcard", "*", "anything at all", true},
		{"wildcard empty topic", "*", "", true},

		{"template id", "https://example.com/books/{id}", "https://example.com/books/1", true},
		{"template id word", "https://example.com/books/{id}", "https://example.com/books/war-and-peace", true},
		{"template id encoded slash", "https://example.com/books/{id}", "https://example.com/books/a%2Fb", true},
		{"template id non-ASCII", "https://example.com/books/{id}", "https://example.com/books/café", true},
		{"template id empty value", "https://example.com/books/{id}", "https://example.com/books/", true},
		{"template id no slash in value", "https://example.com/books/{id}", "https://example.com/books/1/reviews", false},
		{"template id no query in value", "https://example.com/books/{id}", "https://example.com/books/1?x=y", false},
		{"template id bare percent", "https://example.com/books/{id}", "https://example.com/books/100%", false},
		{"template prefix differs", "https://example.com/books/{id}", "https://example.org/books/1", false},
		{"template matches itself", "https://example.com/books/{id}", "https://example.com/books/{id}", true},
		{"template two vars", "https://example.com/users/{user}/books/{id}", "https://example.com/users/kévin/books/42", true},
		{"template two vars missing segment", "https://example.com/users/{user}/books/{id}", "https://example.com/users/42", false},
		{"template suffix", "https://example.com/{id}.json", "https://example.com/1.json", true},
		{"template suffix missing", "https://example.com/{id}.json", "https://example.com/1.xml", false},
		{"reserved keeps slashes", "https://example.com/{+path}", "https://example.com/a/b/c?d=e", true},
		{"fragment", "https://example.com/page{#section}", "https://example.com/page#intro", true},
		{"fragment absent", "https://example.com/page{#section}", "https://example.com/page", true},
		{"path segments exploded", "https://example.com{/segments*}", "https://example.com/a/b/c", true},
		{"path segment not exploded", "https://example.com{/segment}", "https://example.com/a/b", false},
		{"query", "https://example.com/search{?q,lang}", "https://example.com/search?q=go&lang=fr", true},
		{"query second only", "https://example.com/search{?q,lang}", "https://example.com/search?lang=fr", true},
		{"query out of order", "https://example.com/search{?q,lang}", "https://example.com/search?lang=fr&q=go", false},
		{"query unknown name", "https://example.com/search{?q,lang}", "https://example.com/search?page=2", false},
		{"query repeated", "https://example.com/search{?q}", "https://example.com/search?q=a&q=b", false},
		{"query exploded", "https://example.com/search{?params*}", "https://example.com/search?a=1&b=2", true},
		{"query continuation", "https://example.com/search?fixed=1{&page}", "https://example.com/search?fixed=1&page=3", true},
		{"matrix", "https://example.com/map{;x,y}", "https://example.com/map;x=1;y=2", true},
		{"label", "https://example.com/file{.ext}", "https://example.com/file.tar.gz", true},
		{"prefix bound", "https://example.com/{id:3}", "https://example.com/abc", true},
		{"prefix too long", "https://example.com/{id:3}", "https://example.com/abcd", false},
		{"prefix triplet counts once", "https://example.com/{id:2}", "https://example.com/%C3x", true},
		{"relative template", "/.well-known/mercure/subscriptions{/topic}{/subscriber}", "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fa/urn%3Auuid%3A1", true},
		{"relative template too many segments", "/.well-known/mercure/subscriptions{/topic}{/subscriber}", "/.well-known/mercure/subscriptions/a/b/c", false},
		{"many vars unordered form", "{/a,b,c,d,e,f,g,h,i}", "/1/2/3/4/5/6/7/8/9", true},
		{"many vars unordered form wrong char", "{/a,b,c,d,e,f,g,h,i}", "/1/2/3?", false},
		{"large prefix is unbounded", "x{v:500}", "x" + strings.Repeat("a", 600), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile(tt.selector)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.selector, err)
			}
			if got := s.Match(tt.topic); got != tt.want {
				t.Errorf("Compile(%q).Match(%q) = %v, want %v", tt.selector, tt.topic, got, tt.want)
			}
		})
	}
}

// TestTemplateMatchesRFCExpansions checks that every template matches its
// expansion as given by RFC 6570's examples (sections 1.2 and 3.2, as
// collected by the uritemplate-test suite) and a few extended cases.
func TestTemplateMatchesRFCExpansions(t *testing.T) {
	tests := []struct{ template, expansion string }{
		// Level 1
		{"{var}", "value"},
		{"{hello}", "Hello%20World%21"},
		// Level 2
		{"{+var}", "value"},
		{"{+hello}", "Hello%20World!"},
		{"{+path}/here", "/foo/bar/here"},
		{"here?ref={+path}", "here?ref=/foo/bar"},
		{"X{#var}", "X#value"},
		{"X{#hello}", "X#Hello%20World!"},
		// Level 3
		{"map?{x,y}", "map?1024,768"},
		{"{x,hello,y}", "1024,Hello%20World%21,768"},
		{"{+x,hello,y}", "1024,Hello%20World!,768"},
		{"{+path,x}/here", "/foo/bar,1024/here"},
		{"{#x,hello,y}", "#1024,Hello%20World!,768"},
		{"{#path,x}/here", "#/foo/bar,1024/here"},
		{"X{.var}", "X.value"},
		{"X{.x,y}", "X.1024.768"},
		{"{/var}", "/value"},
		{"{/var,x}/here", "/value/1024/here"},
		{"{;x,y}", ";x=1024;y=768"},
		{"{;x,y,empty}", ";x=1024;y=768;empty"},
		{"{?x,y}", "?x=1024&y=768"},
		{"{?x,y,empty}", "?x=1024&y=768&empty="},
		{"?fixed=yes{&x}", "?fixed=yes&x=1024"},
		{"{&x,y,empty}", "&x=1024&y=768&empty="},
		// Level 4
		{"{var:3}", "val"},
		{"{var:30}", "value"},
		{"{list}", "red,green,blue"},
		{"{list*}", "red,green,blue"},
		{"{keys}", "semi,%3B,dot,.,comma,%2C"},
		{"{keys*}", "semi=%3B,dot=.,comma=%2C"},
		{"{+path:6}/here", "/foo/b/here"},
		{"{+list}", "red,green,blue"},
		{"{+list*}", "red,green,blue"},
		{"{+keys}", "semi,;,dot,.,comma,,"},
		{"{+keys*}", "semi=;,dot=.,comma=,"},
		{"{#path:6}/here", "#/foo/b/here"},
		{"{#list}", "#red,green,blue"},
		{"{#list*}", "#red,green,blue"},
		{"{#keys}", "#semi,;,dot,.,comma,,"},
		{"{#keys*}", "#semi=;,dot=.,comma=,"},
		{"X{.var:3}", "X.val"},
		{"X{.list}", "X.red,green,blue"},
		{"X{.list*}", "X.red.green.blue"},
		{"X{.keys}", "X.semi,%3B,dot,.,comma,%2C"},
		{"X{.keys*}", "X.semi=%3B.dot=..comma=%2C"},
		{"{/var:1,var}", "/v/value"},
		{"{/list}", "/red,green,blue"},
		{"{/list*}", "/red/green/blue"},
		{"{/list*,path:4}", "/red/green/blue/%2Ffoo"},
		{"{/keys}", "/semi,%3B,dot,.,comma,%2C"},
		{"{/keys*}", "/semi=%3B/dot=./comma=%2C"},
		{"{;hello:5}", ";hello=Hello"},
		{"{;list}", ";list=red,green,blue"},
		{"{;list*}", ";list=red;list=green;list=blue"},
		{"{;keys}", ";keys=semi,%3B,dot,.,comma,%2C"},
		{"{;keys*}", ";semi=%3B;dot=.;comma=%2C"},
		{"{?var:3}", "?var=val"},
		{"{?list}", "?list=red,green,blue"},
		{"{?list*}", "?list=red&list=green&list=blue"},
		{"{?keys}", "?keys=semi,%3B,dot,.,comma,%2C"},
		{"{?keys*}", "?semi=%3B&dot=.&comma=%2C"},
		{"{&var:3}", "&var=val"},
		{"{&list}", "&list=red,green,blue"},
		{"{&list*}", "&list=red&list=green&list=blue"},
		{"{&keys}", "&keys=semi,%3B,dot,.,comma,%2C"},
		{"{&keys*}", "&semi=%3B&dot=.&comma=%2C"},
		// Undefined variables expand to nothing.
		{"{undef}", ""},
		{"X{.undef}", "X"},
		{"{?undef}", ""},
		{"{/undef,var}", "/value"},
		// Extended cases.
		{"{/id*}{?fields,first_name,last.name,token}", "/person?fields=id,name,picture&first_name=John&last.name=Doe&token=12345"},
		{"/search.{format}{?q,geocode,lang,locale,page,result_type}", "/search.json?q=URI%20Templates&geocode=37.76,-122.427&lang=en&page=5"},
		{"/test{/Some%20Thing}", "/test/foo"},
		{"/lookup{?Stra%C3%9Fe}", "/lookup?Stra%C3%9Fe=Gr%C3%BCner%20Weg"},
		{"{/id*}{?fields,token}", "/person?token=12345"},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			s, err := Compile(tt.template)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.template, err)
			}
			if !s.Match(tt.expansion) {
				t.Errorf("Compile(%q).Match(%q) = false, want true", tt.template, tt.expansion)
			}
		})
	}
}

func TestCompileTemplateErrors(t *testing.T) {
	tests := []struct {
		name, template, wantMsg string
	}{
		{"unclosed", "{/id*", "never closed"},
		{"unopened", "/{id}*}", "closes no expression"},
		{"nested", "https://x/{a{b}}", "is not closed before the next"},
		{"empty expression", "https://x/{}", "empty expression"},
		{"operator only", "https://x/{+}", "has no variable"},
		{"two operators", "{/?id}", "not allowed in variable name"},
		{"prefix not a number", "{var:prefix}", "number from 1 to 9999"},
		{"prefix zero", "{var:0}", "number from 1 to 9999"},
		{"prefix leading zero", "{var:01}", "number from 1 to 9999"},
		{"prefix too long", "{var:10000}", "number from 1 to 9999"},
		{"prefix and explode", "{hello:2*}", "both a prefix and an explode"},
		{"double question", "{??hello}", "not allowed in variable name"},
		{"reserved bang", "{!hello}", "reserved by RFC 6570"},
		{"reserved equals", "{=path}", "reserved by RFC 6570"},
		{"reserved pipe", "{|var*}", "reserved by RFC 6570"},
		{"reserved comma", "{,var}", "reserved by RFC 6570"},
		{"reserved at", "{@var}", "reserved by RFC 6570"},
		{"dollar", "{$var}", "not allowed in variable name"},
		{"star first", "{*keys?}", "not allowed in variable name"},
		{"default value", "{?empty=default,var}", "not allowed in variable name"},
		{"old syntax", "{var}{-prefix|/-/|var}", "not allowed in variable name"},
		{"suffix question", "?q={searchTerms}&c={example:color?}", "number from 1 to 9999"},
		{"plus suffix", "/h{#hello+}", "not allowed in variable name"},
		{"tilde name", "/people/{~thing}", "not allowed in variable name"},
		{"paren", "/sparql{?query){&default-graph-uri*}", "is not closed before the next"},
		{"paren closed", "/sparql{?query)}", "not allowed in variable name"},
		{"space in expression", "/resolution{?x, y}", "not allowed in variable name"},
		{"empty var in list", "{x,}", "empty variable name"},
		{"leading dot", "{.}", "has no variable"},
		{"misplaced dot", "{a..b}", "misplaced"},
		{"trailing dot", "{a.}", "misplaced"},
		{"space literal", "https://x/a b/{id}", "not allowed in a URI template"},
		{"quote literal", "https://x/\"{id}", "not allowed in a URI template"},
		{"control literal", "https://x/\t{id}", "not allowed in a URI template"},
		{"bad percent literal", "https://x/100%/{id}", "two hexadecimal digits"},
		{"percent at end", "{id}%4", "two hexadecimal digits"},
		{"invalid UTF-8 literal", "https://x/\xff/{id}", "invalid UTF-8"},
		{"non-ASCII var name", "{café}", "not allowed in variable name"},
		{"too complex expression", "{a:100,b:100,c:100,d:100,e:100,f:100,g:100,h:100}", "too complex"},
		{"too many expressions", strings.Repeat("{a:99}/", 10), "too complex"},
		{"too long between expressions", "{a}" + strings.Repeat("x", maxCost) + "{b}", "too complex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.template)
			if err == nil {
				t.Fatalf("Compile(%q) succeeded, want an error", tt.template)
			}
			if !errors.Is(err, ErrTemplate) {
				t.Errorf("error %v does not wrap ErrTemplate", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if name := fmt.Sprintf("%q", tt.template); !strings.Contains(err.Error(), name[:min(len(name), 40)]) {
				t.Errorf("error %q does not name the template", err)
			}
		})
	}
}

func TestCompileTemplateValid(t *testing.T) {
	for _, tmpl := range []string{
		"{var}", "{a.b}", "{a_b}", "{A1}", "{Some%20Thing}", "{var:9999}", "{var:1}",
		"https://example.com/é/{id}", "{a,b,c}", "https://x/%7B{id}",
		"{?a,b,c,d,e,f,g,h}", "{/id*}{?fields,first_name,last.name,token}", "{a:100,b:100}",
		"https://example.com/" + strings.Repeat("long/", 2000) + "{id}", // long literal prefix costs nothing
	} {
		t.Run(tmpl, func(t *testing.T) {
			if _, err := Compile(tmpl); err != nil {
				t.Errorf("Compile(%q): %v", tmpl, err)
			}
		})
	}
}

func TestMustCompilePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustCompile of a malformed template did not panic")
		}
	}()
	MustCompile("{")
}

func TestCompileExact(t *testing.T) {
	tests := []struct {
		name, pattern, topic string
		want                 bool
	}{
		{"equal", "https://example.com/a", "https://example.com/a", true},
		{"differs", "https://example.com/a", "https://example.com/b", false},
		{"braces are literal", "https://example.com/{id}", "https://example.com/1", false},
		{"braces match themselves", "https://example.com/{id}", "https://example.com/{id}", true},
		{"wildcard", "*", "https://example.com/a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CompileExact(tt.pattern).Match(tt.topic); got != tt.want {
				t.Errorf("CompileExact(%q).Match(%q) = %v, want %v", tt.pattern, tt.topic, got, tt.want)
			}
		})
	}
}

func TestZeroSelectorMatchesNothing(t *testing.T) {
	var s Selector
	if s.Match("") || s.Match("x") {
		t.Error("zero Selector matched")
	}
	if s.Kind().String() != "none" {
		t.Errorf("zero Kind = %q", s.Kind())
	}
}

// TestSimpleTemplateFastPath checks which templates take the fast path and
// that it agrees with the regexp on tricky topics.
func TestSimpleTemplateFastPath(t *testing.T) {
	tests := []struct {
		template   string
		wantSimple bool
	}{
		{"https://example.com/books/{id}", true},
		{"https://example.com/users/{user}/books/{id}", true},
		{"https://example.com/{a,b}/x", true},
		{"https://example.com/{id}.json", true}, // the suffix may start with a value byte
		{"https://example.com/{a}-{b}", false},  // "-" can be part of a value
		{"https://example.com/{a}{b}", false},   // adjacent expressions
		{"https://example.com/{a}%2F{b}", false},
		{"https://example.com/{a}é{b}", false},
		{"https://example.com/{+path}", false},
		{"https://example.com/{id:3}", false},
		{"https://example.com/{ids*}", false},
	}
	topics := []string{
		"https://example.com/books/1", "https://example.com/users/a/books/b", "https://example.com/users//books/",
		"https://example.com/users/a%2Fb/books/%zz", "https://example.com/x,y/x", "https://example.com/1.json",
		"https://example.com/a-b-c", "https://example.com/ab", "https://example.com/a%2Fb", "https://example.com/aéb",
		"https://example.com/a/b", "https://example.com/abc", "https://example.com/a,b", "https://example.com/%",
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			s := MustCompile(tt.template)
			if s.tmpl.simple != tt.wantSimple {
				t.Errorf("simple = %v, want %v", s.tmpl.simple, tt.wantSimple)
			}
			if !s.tmpl.simple {
				return
			}
			for _, topic := range topics {
				tm := s.tmpl
				if len(topic) < len(tm.prefix)+len(tm.suffix) || !strings.HasPrefix(topic, tm.prefix) || !strings.HasSuffix(topic, tm.suffix) {
					continue
				}
				middle := topic[len(tm.prefix) : len(topic)-len(tm.suffix)]
				if fast, slow := tm.matchSimple(middle), tm.re.MatchString(middle); fast != slow {
					t.Errorf("on %q: fast path %v, regexp %v", topic, fast, slow)
				}
			}
		})
	}
}

// Cost is what a server bounds per subscription: nothing for exact topics
// and "*", more for templates and patterns that do more work.
func TestCost(t *testing.T) {
	for _, s := range []string{"https://example.com/books/1", "*"} {
		if c := MustCompile(s).Cost(); c != 0 {
			t.Errorf("Cost(%q) = %d, want 0", s, c)
		}
	}
	small := MustCompile("https://example.com/books/{id}").Cost()
	big := MustCompile("https://example.com/" + strings.Repeat("{v}/", 50)).Cost()
	if small <= 0 || big <= 10*small {
		t.Errorf("Cost of one expression %d, of 50 expressions %d: want positive and growing with the work", small, big)
	}
	p, err := CompileURLPattern("https://example.com/books/:id")
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Cost(); c <= 0 {
		t.Errorf("Cost of a URL pattern = %d, want positive", c)
	}
}
