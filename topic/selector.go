package topic

import (
	"errors"
	"strings"

	"github.com/ssehub/ssehub/internal/urlpattern"
)

// ErrTemplate is wrapped by every error Compile returns for a malformed URI
// template; the wrapping message names the template and what is wrong.
var ErrTemplate = errors.New("topic: invalid URI template")

// Wildcard is the selector that matches every topic.
const Wildcard = "*"

// Kind says how a Selector matches topics.
type Kind uint8

// The kinds of selector. The zero Kind belongs to the zero Selector, which
// matches nothing.
const (
	// KindExact selectors match one topic, byte for byte.
	KindExact Kind = iota + 1
	// KindAll is the "*" selector: it matches every topic.
	KindAll
	// KindTemplate selectors are RFC 6570 URI templates.
	KindTemplate
	// KindURLPattern selectors are WHATWG URL patterns (the draft-08
	// "urlpattern" matcher type; see CompileURLPattern).
	KindURLPattern
)

// String returns "exact", "all", "template", "urlpattern" or "none".
func (k Kind) String() string {
	switch k {
	case KindExact:
		return "exact"
	case KindAll:
		return "all"
	case KindTemplate:
		return "template"
	case KindURLPattern:
		return "urlpattern"
	}
	return "none"
}

// Selector is a compiled topic selector. It is a small value: copy it
// freely. Its methods may be called from any number of goroutines at once.
// The zero Selector matches no topic.
type Selector struct {
	src  string
	kind Kind
	tmpl *template           // for KindTemplate
	url  *urlpattern.Pattern // for KindURLPattern
}

// Compile compiles a selector in the Mercure 0.x syntax: "*" matches every
// topic, a string containing "{" is an RFC 6570 URI template (levels 1 to 4),
// anything else matches exactly itself. A malformed template returns an error
// wrapping ErrTemplate that says what is wrong and where.
//
// Compile may be called concurrently. Compiling a template costs a regexp
// compilation: share results through a Cache when the same selectors come
// back often.
func Compile(selector string) (Selector, error) {
	switch {
	case selector == Wildcard:
		return Selector{src: selector, kind: KindAll}, nil
	case !strings.Contains(selector, "{"):
		return Selector{src: selector, kind: KindExact}, nil
	}
	t, err := compileTemplate(selector)
	if err != nil {
		return Selector{}, err
	}
	return Selector{src: selector, kind: KindTemplate, tmpl: t}, nil
}

// MustCompile is like Compile but panics on error. It is meant for selectors
// written in the program's source.
func MustCompile(selector string) Selector {
	s, err := Compile(selector)
	if err != nil {
		panic(err)
	}
	return s
}

// CompileExact returns the selector for the draft-08 "exact" matcher type
// (the "match" query parameter and exact authorization_details matchers):
// the reserved "*" still matches every topic, any other pattern matches only
// itself, byte for byte, even when it contains "{". It never fails and may be
// called concurrently.
func CompileExact(pattern string) Selector {
	if pattern == Wildcard {
		return Selector{src: pattern, kind: KindAll}
	}
	return Selector{src: pattern, kind: KindExact}
}

// IsExact reports whether Compile turns selector into an exact selector:
// it is not "*" and contains no "{". Callers use it to index exact
// selectors in a map instead of compiling them. Safe for concurrent use.
func IsExact(selector string) bool {
	return selector != Wildcard && !strings.Contains(selector, "{")
}

// Match reports whether topic matches the selector. For a template, the
// template string itself also matches (a selector always matches its own
// text, as the Mercure 0.x protocol asks; draft-08 URL patterns have no
// such rule). Match does not allocate, except for a URL pattern matching a
// topic that is not in canonical URL form.
func (s Selector) Match(topic string) bool {
	switch s.kind {
	case KindAll:
		return true
	case KindExact:
		return topic == s.src
	case KindTemplate:
		return topic == s.src || s.tmpl.match(topic)
	case KindURLPattern:
		return s.url.Match(topic)
	}
	return false
}

// Cost estimates the work of matching one topic byte against the selector,
// in rough regexp instructions: 0 for an exact topic and for "*", the
// size of the compiled pattern of a template or URL pattern (at most a few
// thousand; realistic ones cost tens to a few hundred). A server bounds the
// sum over a subscription's selectors, because every published event is
// matched against them. Safe for concurrent use.
func (s Selector) Cost() int {
	switch s.kind {
	case KindTemplate:
		return s.tmpl.cost
	case KindURLPattern:
		return s.url.Cost()
	}
	return 0
}

// String returns the selector as it was written.
func (s Selector) String() string { return s.src }

// Kind returns how the selector matches.
func (s Selector) Kind() Kind { return s.kind }
