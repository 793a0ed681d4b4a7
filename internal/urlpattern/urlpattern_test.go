package urlpattern

import (
	"errors"
	"strings"
	"testing"
)

// cases are checked against the URL Pattern standard's own
// examples and, for the rest, against Chromium's URLPattern.
var cases = []struct {
	name, pattern, topic string
	want                 bool
}{
	// The standard's introduction.
	{"intro category", "https://example.com/:category/*", "https://example.com/products/", true},
	{"intro category deep", "https://example.com/:category/*", "https://example.com/blog/our-greatest-product-ever", true},
	{"intro category root", "https://example.com/:category/*", "https://example.com/", false},
	{"intro other scheme", "https://example.com/:category/*", "http://example.com/products/", false},
	{"intro other port", "https://example.com/:category/*", "https://example.com:8443/blog/our-greatest-product-ever", false},
	{"intro shop", "http{s}?://{:subdomain.}?shop.example/products/:id([0-9]+)#reviews", "https://shop.example/products/74205#reviews", true},
	{"intro shop user", "http{s}?://{:subdomain.}?shop.example/products/:id([0-9]+)#reviews", "https://kathryn@voyager.shop.example/products/74656#reviews", true},
	{"intro shop http", "http{s}?://{:subdomain.}?shop.example/products/:id([0-9]+)#reviews", "http://insecure.shop.example/products/1701#reviews", true},
	{"intro shop no hash", "http{s}?://{:subdomain.}?shop.example/products/:id([0-9]+)#reviews", "https://shop.example/products/2000", false},
	{"intro shop port", "http{s}?://{:subdomain.}?shop.example/products/:id([0-9]+)#reviews", "http://shop.example:8080/products/0#reviews", false},
	{"intro shop search", "http{s}?://{:subdomain.}?shop.example/products/:id([0-9]+)#reviews", "https://nx.shop.example/products/01?speed=5#reviews", false},
	{"intro shop not digits", "http{s}?://{:subdomain.}?shop.example/products/:id([0-9]+)#reviews", "https://shop.example/products/chair#reviews", false},

	// Named groups match one segment.
	{"named", "https://example.com/books/:id", "https://example.com/books/1", true},
	{"named any search", "https://example.com/books/:id", "https://example.com/books/1?x=y#z", true},
	{"named not two segments", "https://example.com/books/:id", "https://example.com/books/1/2", false},
	{"named not empty", "https://example.com/books/:id", "https://example.com/books/", false},
	{"named encoded slash", "https://example.com/books/:id", "https://example.com/books/a%2Fb", true},
	{"two named", "https://example.com/users/:user/books/:id", "https://example.com/users/a/books/7", true},
	{"named and suffix", "https://example.com/files/:name.json", "https://example.com/files/report.json", true},
	{"named and suffix missing", "https://example.com/files/:name.json", "https://example.com/files/report.xml", false},

	// Wildcards.
	{"wildcard", "https://example.com/books/*", "https://example.com/books/1/2/3", true},
	{"wildcard empty", "https://example.com/books/*", "https://example.com/books/", true},
	{"wildcard not parent", "https://example.com/books/*", "https://example.com/books", false},
	{"wildcard host", "https://*.example.com/*", "https://api.example.com/x", true},
	{"wildcard host not apex", "https://*.example.com/*", "https://example.com/x", false},

	// Regexp groups and modifiers.
	{"regexp digits", "https://example.com/books/(\\d+)", "https://example.com/books/42", true},
	{"regexp digits refused word", "https://example.com/books/(\\d+)", "https://example.com/books/abc", false},
	{"regexp alternation", "https://example.com/feed/:type(news|alerts)", "https://example.com/feed/alerts", true},
	{"regexp alternation other", "https://example.com/feed/:type(news|alerts)", "https://example.com/feed/sports", false},
	{"optional group absent", "https://example.com/products/:id?", "https://example.com/products", true},
	{"optional group present", "https://example.com/products/:id?", "https://example.com/products/2", true},
	{"optional group not trailing slash", "https://example.com/products/:id?", "https://example.com/products/", false},
	{"optional segment", "https://example.com/items{/:tail}?", "https://example.com/items", true},
	{"optional segment present", "https://example.com/items{/:tail}?", "https://example.com/items/x", true},
	{"one or more", "https://example.com/a/:p+", "https://example.com/a/x/y/z", true},
	{"one or more none", "https://example.com/a/:p+", "https://example.com/a", false},
	{"zero or more", "https://example.com/a/:p*", "https://example.com/a", true},
	{"escaped colon", "https://example.com/a\\:b", "https://example.com/a:b", true},

	// Canonical forms of topics.
	{"host case", "https://example.com/books/:id", "https://EXAMPLE.com/books/1", true},
	{"scheme case", "https://example.com/books/:id", "HTTPS://example.com/books/1", true},
	{"path case sensitive", "https://example.com/books/:id", "https://example.com/Books/1", false},
	{"default port", "https://example.com/books/:id", "https://example.com:443/books/1", true},
	{"explicit default port in pattern", "https://example.com:443/books/:id", "https://example.com/books/1", true},
	{"dot segments", "https://example.com/books/:id", "https://example.com/a/../books/1", true},
	{"space encoded", "https://example.com/books/a%20b", "https://example.com/books/a b", true},
	{"non-ASCII path", "https://example.com/livres/caf%C3%A9", "https://example.com/livres/café", true},
	{"non-ASCII in pattern", "https://example.com/livres/café", "https://example.com/livres/caf%C3%A9", true},
	{"any port", "https://example.com:*/x", "https://example.com:8443/x", true},
	{"no port by default", "https://example.com/x", "https://example.com:8443/x", false},
	{"search fixed", "https://example.com/x?page=:n", "https://example.com/x?page=2", true},
	{"search fixed other", "https://example.com/x?page=:n", "https://example.com/x?size=2", false},

	// Relative patterns and topics (resolved against URLPatternBase).
	{"subscription events", "/.well-known/mercure/subscriptions/:type/:match/:subscriber", "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fa/urn%3Auuid%3A1", true},
	{"subscription events 0.x topic", "/.well-known/mercure/subscriptions/:type/:match/:subscriber", "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fa/urn%3Auuid%3A1", false},
	{"relative pattern absolute topic", "/books/:id", "https://example.com/books/1", false},
	{"absolute pattern relative topic", "https://example.com/books/:id", "/books/1", false},

	// Non-special schemes.
	{"urn escaped", "urn\\:uuid\\:*", "urn:uuid:bb3de268", true}, // an escaped ":" still ends the protocol
	{"urn scheme", "urn:*", "urn:uuid:bb3de268", true},
	{"urn other scheme", "urn:*", "did:example:1", false},
	{"not a URL", "https://example.com/*", "chat-room-1234", false},

	// Unlike a template, a URL pattern does not match its own text.
	{"own text", "https://example.com/books/(\\d+)", "https://example.com/books/(\\d+)", false},
	{"same scheme as the base, no slashes", "https://example.com/x", "https:example.com/x", false},
	{"userinfo", "https://example.com/x", "https://user:pass@example.com/x", true},
	{"IPv6 host", "http://\\[\\:\\:1\\]/x", "http://[::1]/x", true},
	{"opaque path", "mailto\\:*", "mailto:a@b", true},
	{"non-special host case", "foo://bar/:id", "foo://BAR/1", false},
	{"non-special port kept", "foo://bar/x", "foo://bar:80/x", false},
	{"all schemes", "*://*/*", "http://a/b", true},
	{"any scheme not opaque", "*://*/*", "urn:x", false},
}

func TestMatch(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.pattern)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tc.pattern, err)
			}
			if got := p.Match(tc.topic); got != tc.want {
				t.Errorf("%q matches %q: %v, want %v", tc.pattern, tc.topic, got, tc.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, pattern, says string
	}{
		{"empty", "", "empty"},
		{"too long", "https://example.com/" + strings.Repeat("a", MaxLen), "more than"},
		{"invalid UTF-8", "https://example.com/\xff", "UTF-8"},
		{"relative path", "books/:id", `must start with "/"`},
		{"lookahead", "https://example.com/(a(?=b))", "RE2"},
		{"regexp starting with ?", "https://example.com/p?x=(?a)", `starts with "?"`},
		{"backreference", "https://example.com/(a)\\1/(b\\1)", "RE2"},
		{"unclosed regexp", "https://example.com/(a", "not closed"},
		{"capturing nested group", "https://example.com/(a(b))", "non-capturing"},
		{"empty regexp", "https://example.com/()", "empty"},
		{"duplicate name", "https://example.com/:id/:id", "used twice"},
		{"unclosed group", "https://example.com/{a", "not closed"},
		{"lone modifier", "https://example.com/?x", ""}, // "?" starts the search: valid
		{"non-ASCII host", "https://exämple.com/x", "punycode"},
		{"bad port", "https://example.com:99999/x", "port"},
		{"dot segment", "https://example.com/a/../b", `".."`},
		{"too complex", "https://example.com/(\\w{1000})/(\\w{1000})/(\\w{1000})/(\\w{1000})/(\\w{1000})/(\\w{1000})", "too complex"},
		{"nested repetition", "https://example.com/((?:\\w{1000}){100})", "repetitions up to 1000"},
		{"bad scheme", "1http://example.com/", "scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.pattern)
			if tc.says == "" {
				if err != nil {
					t.Fatalf("Compile(%q): %v", tc.pattern, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Compile(%q) = %v, want ErrInvalid saying %q", tc.pattern, err, tc.says)
			}
		})
	}
}

// FuzzCompile compiles arbitrary patterns and matches arbitrary topics:
// nothing may panic and errors wrap ErrInvalid.
func FuzzCompile(f *testing.F) {
	for _, tc := range cases {
		f.Add(tc.pattern, tc.topic)
	}
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		p, err := Compile(pattern)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		p.Match(topic)
		p.Match(pattern)
	})
}
