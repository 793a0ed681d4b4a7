package topic

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// This file turns an RFC 6570 URI template into an RE2 regular expression
// that matches every possible expansion of the template. Go's regexp runs
// in time linear in the input, so matching is safe against hostile
// templates; compile-time size is bounded by the limits below and by
// regexp's own program-size limit.
//
// How an expression {op var1,var2,...} expands (RFC 6570 section 3.2 and
// appendix A): the defined variables are expanded and joined with the
// operator's separator, and the result is preceded by the operator's
// "first" string; undefined variables are skipped and an expression whose
// variables are all undefined expands to nothing. A value may be a string,
// a list or an associative array; list items are joined with "," (or the
// separator when exploded), pairs as "k,v" (or "k=v" when exploded). Named
// operators (; ? &) write "name=value". Characters outside the allowed set
// are percent-encoded.
//
// The generated pattern accepts, for each variable, any value made of
// allowed characters and percent-encoded triplets. Non-ASCII characters
// are accepted as they are (topics are often IRIs, not URIs). A prefix
// modifier {var:n} bounds the value to n characters (a triplet counts as
// one). Variables of one expression must appear in template order, each at
// most once, when the expression has at most maxOrderedVars variables;
// beyond that the order is not checked.

const (
	// maxBoundedPrefix is the largest prefix length {var:n} turned into a
	// bounded repetition; larger prefixes match like an unbounded value,
	// which keeps compiled patterns small.
	maxBoundedPrefix = 100
	// maxOrderedVars is the largest number of variables in one expression
	// for which the pattern checks their order (the check costs a pattern
	// quadratic in the number of variables).
	maxOrderedVars = 8
	// maxCost bounds the size of a template's compiled pattern, in rough
	// regexp instructions (classCost per character class, one per literal
	// byte between expressions). Matching costs up to the pattern size per
	// topic byte, so this bounds the work a hostile selector can cause.
	// Realistic templates cost a few hundred at most.
	maxCost   = 5000
	classCost = 12
)

// Character classes of expanded values: unreserved characters (U) and, for
// the + and # operators, unreserved plus reserved characters (U+R); both
// with percent-encoded triplets and any non-ASCII character.
const (
	unreservedClass = `(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2}|[^\x00-\x7F])`
	reservedClass   = `(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2}|[^\x00-\x7F])`
)

type operator struct {
	first, sep string
	named      bool // ; ? & write name=value
	reserved   bool // + # allow reserved characters in values
}

var operators = [128]*operator{
	0:   {first: "", sep: ","},
	'+': {first: "", sep: ",", reserved: true},
	'#': {first: "#", sep: ",", reserved: true},
	'.': {first: ".", sep: "."},
	'/': {first: "/", sep: "/"},
	';': {first: ";", sep: ";", named: true},
	'?': {first: "?", sep: "&", named: true},
	'&': {first: "&", sep: "&", named: true},
}

// template is a compiled URI template.
type template struct {
	prefix, suffix string         // literal text before the first / after the last expression
	re             *regexp.Regexp // matches what lies between prefix and suffix
	// simple templates (see matchSimple) are matched without the regexp:
	// inner holds the literals between their expressions.
	simple bool
	inner  []string
	cost   int // estimated size of the pattern (see maxCost)
}

// match reports whether topic is an expansion of the template.
func (t *template) match(topic string) bool {
	if len(topic) < len(t.prefix)+len(t.suffix) ||
		!strings.HasPrefix(topic, t.prefix) || !strings.HasSuffix(topic, t.suffix) {
		return false
	}
	middle := topic[len(t.prefix) : len(topic)-len(t.suffix)]
	if t.simple {
		return t.matchSimple(middle)
	}
	return t.re.MatchString(middle)
}

// matchSimple matches templates whose expressions are all plain {var} or
// {var1,var2} (no operator, no modifier) and whose inner literals are not
// empty and start with a byte that cannot start a value (like "/" in
// "https://example.com/users/{user}/books/{id}"): most templates in
// practice. A value then runs exactly up to the first byte that cannot
// belong to it, so one greedy left-to-right scan decides, with the same
// result as the regexp.
func (t *template) matchSimple(s string) bool {
	i := 0
	for _, lit := range t.inner {
		i = scanValue(s, i)
		if !strings.HasPrefix(s[i:], lit) {
			return false
		}
		i += len(lit)
	}
	return scanValue(s, i) == len(s)
}

// scanValue returns the end of the longest run of value characters of a
// plain expression starting at s[i]: unreserved characters, ",", any
// non-ASCII byte and percent-encoded triplets.
func scanValue(s string, i int) int {
	for i < len(s) {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf || plainValueByte(c):
			i++
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			i += 3
		default:
			return i
		}
	}
	return i
}

// plainValueByte reports whether the ASCII byte c is an unreserved
// character or ",".
func plainValueByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == ','
}

// startsValue reports whether a value of a plain expression can start with
// the byte c.
func startsValue(c byte) bool {
	return c >= utf8.RuneSelf || c == '%' || plainValueByte(c)
}

func templateError(src, format string, args ...any) error {
	const max = 200
	if len(src) > max {
		src = strings.ToValidUTF8(src[:max], "") + "..."
	}
	return fmt.Errorf("%w %q: %s", ErrTemplate, src, fmt.Sprintf(format, args...))
}

func compileTemplate(src string) (*template, error) {
	var (
		t      = &template{simple: true}
		b      strings.Builder
		first  = -1 // byte offset of the first "{"
		last   = -1 // byte offset just after the last "}"
		inExpr bool // the previous piece was an expression
		cost   int  // estimated size of the pattern
	)
	// The pattern covers src[first:last] only: a topic must start with the
	// literal prefix and end with the literal suffix, which Match checks
	// with plain string comparisons before running the (slower) regexp on
	// what lies between them.
	b.WriteString("^")
	for i := 0; i < len(src); {
		switch src[i] {
		case '{':
			end := i + 1
			for end < len(src) && src[end] != '}' {
				if src[end] == '{' {
					return nil, templateError(src, "expression opened at byte %d is not closed before the next \"{\" at byte %d", i, end)
				}
				end++
			}
			if end == len(src) {
				return nil, templateError(src, "expression opened at byte %d is never closed with \"}\"", i)
			}
			plain, units, err := writeExpression(&b, src, i)
			if err != nil {
				return nil, err
			}
			if cost += units * classCost; cost > maxCost {
				return nil, tooComplex(src)
			}
			if !plain || inExpr {
				t.simple = false
			}
			if first < 0 {
				first = i
			}
			i, last, inExpr = end+1, end+1, true
		case '}':
			return nil, templateError(src, "\"}\" at byte %d closes no expression", i)
		default:
			end := i
			for end < len(src) && src[end] != '{' && src[end] != '}' {
				end++
			}
			if err := checkLiteral(src, i, end); err != nil {
				return nil, err
			}
			if first >= 0 && end < len(src) { // not the prefix nor the suffix
				lit := src[i:end]
				b.WriteString(regexp.QuoteMeta(lit))
				t.inner = append(t.inner, lit)
				if cost += len(lit); cost > maxCost {
					return nil, tooComplex(src)
				}
				if startsValue(lit[0]) {
					t.simple = false
				}
			}
			i, inExpr = end, false
		}
	}
	t.prefix, t.suffix = src[:first], src[last:]
	t.cost = cost
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		// Only size limits can fail here: everything else was validated.
		return nil, templateError(src, "too large to compile (%v)", err)
	}
	t.re = re
	if !t.simple {
		t.inner = nil
	}
	return t, nil
}

func tooComplex(src string) error {
	return templateError(src, "too complex to match efficiently; use fewer variables per expression, smaller prefix modifiers or a shorter template")
}

// checkLiteral validates the literal characters src[from:to] (RFC 6570
// section 2.1): characters that may not appear in a URI must be
// percent-encoded.
func checkLiteral(src string, from, to int) error {
	for i := from; i < to; {
		c := src[i]
		switch {
		case c == '%':
			if i+2 >= len(src) || !isHex(src[i+1]) || !isHex(src[i+2]) {
				return templateError(src, "\"%%\" at byte %d is not followed by two hexadecimal digits", i)
			}
			i += 3
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(src[i:to])
			if r == utf8.RuneError && size == 1 {
				return templateError(src, "invalid UTF-8 at byte %d", i)
			}
			i += size
		case literalOK(c):
			i++
		default:
			return templateError(src, "character %q at byte %d is not allowed in a URI template; percent-encode it", rune(c), i)
		}
	}
	return nil
}

// literalOK reports whether the ASCII byte c may appear as is in a template
// literal: not a control character, space, or one of "'%<>\^`{|}.
func literalOK(c byte) bool {
	if c <= ' ' || c == 0x7f {
		return false
	}
	return !strings.ContainsRune("\"'%<>\\^`{|}", rune(c))
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// writeExpression appends the pattern of the expression that starts with
// "{" at src[at]. It reports whether the expression is plain (no operator
// and no modifier) and how many character classes the pattern repeats
// (its cost).
func writeExpression(b *strings.Builder, src string, at int) (plain bool, units int, err error) {
	end := at + strings.IndexByte(src[at:], '}')
	body := src[at+1 : end]
	if body == "" {
		return false, 0, templateError(src, "empty expression \"{}\" at byte %d", at)
	}
	op := operators[0]
	plain = true
	switch c := body[0]; c {
	case '+', '#', '.', '/', ';', '?', '&':
		op = operators[c]
		body = body[1:]
		plain = false
	case '=', ',', '!', '@', '|':
		return false, 0, templateError(src, "operator %q at byte %d is reserved by RFC 6570 for future extensions", rune(c), at+1)
	}
	if body == "" {
		return false, 0, templateError(src, "expression at byte %d has no variable", at)
	}
	var (
		vars    []string
		weights []int
	)
	for spec := range strings.SplitSeq(body, ",") {
		p, w, err := varPattern(src, at, op, spec)
		if err != nil {
			return false, 0, err
		}
		weights = append(weights, w)
		if strings.ContainsAny(spec, ":*") {
			plain = false
		}
		vars = append(vars, p)
	}

	sep := regexp.QuoteMeta(op.sep)
	b.WriteString("(?:")
	b.WriteString(regexp.QuoteMeta(op.first))
	switch {
	case len(vars) == 1:
		b.WriteString(vars[0])
		units = weights[0]
	case len(vars) <= maxOrderedVars:
		// The first defined variable has no separator before it; every
		// later one is optional and preceded by the separator.
		b.WriteString("(?:")
		for i := range vars {
			if i > 0 {
				b.WriteString("|")
			}
			b.WriteString(vars[i])
			units += weights[i]
			for j, v := range vars[i+1:] {
				b.WriteString("(?:" + sep + v + ")?")
				units += weights[i+1+j]
			}
		}
		b.WriteString(")")
	default:
		anyVar := "(?:" + strings.Join(vars, "|") + ")"
		b.WriteString(anyVar + "(?:" + sep + anyVar + ")*")
		for _, w := range weights {
			units += 2 * w
		}
	}
	b.WriteString(")?")
	return plain, units, nil
}

// varPattern returns the pattern of one variable's expansion, name included
// for named operators, and its cost in character classes.
func varPattern(src string, at int, op *operator, spec string) (pattern string, units int, err error) {
	pattern, err = varRegexp(src, at, op, spec)
	if err != nil {
		return "", 0, err
	}
	units = strings.Count(pattern, unreservedClass) + strings.Count(pattern, reservedClass)
	if i := strings.Index(pattern, "{0,"); i >= 0 { // a bounded prefix: n copies
		n := 0
		for _, d := range []byte(pattern[i+3:]) {
			if d < '0' || d > '9' {
				break
			}
			n = n*10 + int(d-'0')
		}
		units += n - 1
	}
	return pattern, units, nil
}

// varRegexp returns the pattern of one variable's expansion.
func varRegexp(src string, at int, op *operator, spec string) (string, error) {
	name, explode, prefix := spec, false, 0
	if i := strings.IndexByte(spec, ':'); i >= 0 {
		name = spec[:i]
		digits := spec[i+1:]
		if strings.HasSuffix(digits, "*") {
			return "", templateError(src, "variable %q in the expression at byte %d has both a prefix and an explode modifier", name, at)
		}
		if len(digits) == 0 || len(digits) > 4 || digits[0] == '0' {
			return "", templateError(src, "prefix modifier %q in the expression at byte %d must be a number from 1 to 9999", ":"+digits, at)
		}
		for _, d := range []byte(digits) {
			if d < '0' || d > '9' {
				return "", templateError(src, "prefix modifier %q in the expression at byte %d must be a number from 1 to 9999", ":"+digits, at)
			}
			prefix = prefix*10 + int(d-'0')
		}
	} else if n, ok := strings.CutSuffix(spec, "*"); ok {
		name, explode = n, true
	}
	if err := checkVarName(src, at, name); err != nil {
		return "", err
	}

	class := unreservedClass
	if op.reserved {
		class = reservedClass
	}
	anyValue := class + "*"

	var value string
	switch {
	case prefix > 0 && prefix <= maxBoundedPrefix:
		value = fmt.Sprintf("%s{0,%d}", class, prefix)
	case prefix > 0:
		value = anyValue
	case explode && op.named:
		// Each item is name=value (lists) or key=value (associative
		// arrays, any key), joined with the separator; ";" omits "=" for
		// empty values.
		item := anyValue + "=" + anyValue
		if op.first == ";" {
			item = anyValue + "(?:=" + anyValue + ")?"
		}
		return item + "(?:" + regexp.QuoteMeta(op.sep) + item + ")*", nil
	case explode:
		// List items or key=value pairs joined with the separator.
		item := anyValue
		if !op.reserved {
			item += "(?:=" + anyValue + ")?"
		}
		if op.reserved { // "=" and the separator "," are in the class
			return item, nil
		}
		return item + "(?:" + regexp.QuoteMeta(op.sep) + item + ")*", nil
	default:
		// A string, or list items / key,value pairs joined with ",".
		value = anyValue
		if !op.reserved {
			value += "(?:," + anyValue + ")*"
		}
	}
	if !op.named {
		return value, nil
	}
	n := regexp.QuoteMeta(name)
	if op.first == ";" {
		return n + "(?:=" + value + ")?", nil
	}
	return n + "=" + value, nil
}

// checkVarName validates a variable name (RFC 6570 section 2.3): letters,
// digits, "_" and percent-encoded triplets, with single dots between them.
func checkVarName(src string, at int, name string) error {
	if name == "" {
		return templateError(src, "expression at byte %d has an empty variable name", at)
	}
	if name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return templateError(src, "variable name %q in the expression at byte %d has a misplaced \".\"", name, at)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.':
		case c == '%' && i+2 < len(name) && isHex(name[i+1]) && isHex(name[i+2]):
			i += 2
		default:
			r, _ := utf8.DecodeRuneInString(name[i:])
			return templateError(src, "character %q is not allowed in variable name %q (expression at byte %d); use letters, digits, \"_\" and \".\"", r, name, at)
		}
	}
	return nil
}
