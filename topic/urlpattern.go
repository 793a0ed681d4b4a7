package topic

import "github.com/ssehub/ssehub/internal/urlpattern"

// ErrURLPattern is wrapped by every error CompileURLPattern returns; the
// wrapping message names the pattern and says what is wrong.
var ErrURLPattern = urlpattern.ErrInvalid

// URLPatternBase is the URL that relative URL patterns
// ("/.well-known/mercure/subscriptions/:type/:match/:subscriber") and
// relative topics are resolved against. It is a fixed placeholder rather
// than the hub's public URL: a relative pattern matches relative topics,
// and an absolute pattern absolute topics.
const URLPatternBase = urlpattern.Base

// MaxURLPatternLen is the longest URL pattern CompileURLPattern accepts, in
// bytes.
const MaxURLPatternLen = urlpattern.MaxLen

// CompileURLPattern compiles a draft-08 "urlpattern" matcher: a WHATWG URL
// pattern such as "https://example.com/books/:id",
// "https://example.com/feed/:type(news|alerts)" or "/books/*" (relative to
// URLPatternBase). The reserved "*" matches every topic. Errors wrap
// ErrURLPattern and say what is wrong.
//
// The returned Selector matches a topic when the topic, parsed as a URL
// (relative to URLPatternBase), matches every component of the pattern.
// Matching runs in time linear in the topic's length.
// CompileURLPattern may be called concurrently.
//
// The standard itself is implemented in internal/urlpattern.
func CompileURLPattern(pattern string) (Selector, error) {
	if pattern == Wildcard {
		return Selector{src: pattern, kind: KindAll}, nil
	}
	p, err := urlpattern.Compile(pattern)
	if err != nil {
		return Selector{}, err
	}
	return Selector{src: pattern, kind: KindURLPattern, url: p}, nil
}
