// Package urlpattern implements the WHATWG URL Pattern standard
// (https://urlpattern.spec.whatwg.org) for the Mercure draft-08
// "urlpattern" matcher type: the constructor string parser, the pattern
// string tokenizer and parser, and the conversion of each component's part
// list into a regular expression, following the standard's algorithms. The
// regular expressions are compiled with Go's regexp package (RE2), so
// matching takes time linear in the length of the topic whatever the
// pattern, as the Mercure protocol requires; the size of a pattern's
// regular expressions is bounded too (maxPatternInsts), so the factor is.
//
// Where this implementation is narrower than the standard, it refuses the
// pattern with an error rather than guess:
//
//   - regexp groups use RE2 syntax, which is close to JavaScript's but has
//     no lookaround, no backreferences and no \u escapes;
//   - hostnames must be ASCII (no IDNA), and fixed path text must not hold
//     "." or ".." segments;
//   - relative patterns must start with "/", "?" or "#".
//
// Topics are split into URL components with a small parser that follows the
// WHATWG URL parser for the cases topics use (absolute URLs, URNs, paths
// relative to the hub): scheme and host lowercased, default ports dropped,
// dot segments removed from special URLs' paths, and the characters the URL
// parser percent-encodes encoded the same way. It does not apply IDNA or
// IPv4 number normalization. A topic that is not a URL matches no pattern.
//
// Package topic is its one user: topic.CompileURLPattern wraps a Pattern in
// a Selector, and topic.ErrURLPattern, topic.URLPatternBase and
// topic.MaxLen are this package's ErrInvalid, Base and MaxLen.
package urlpattern

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every error Compile returns; the wrapping
// message names the pattern and says what is wrong. Its text names package
// topic, which hands it on as topic.ErrURLPattern.
var ErrInvalid = errors.New("topic: invalid URL pattern")

// Base is the URL that relative URL patterns
// ("/.well-known/mercure/subscriptions/:type/:match/:subscriber") and
// relative topics are resolved against. It is a fixed placeholder rather
// than the hub's public URL: a relative pattern matches relative topics,
// and an absolute pattern absolute topics.
const Base = "https://" + baseHost + baseDir + "mercure"

// The parts of Base, which relative patterns and topics take theirs from.
const (
	baseHost = "hub.invalid"
	baseDir  = "/.well-known/"
	basePath = baseDir + "mercure"
)

// MaxLen is the longest URL pattern Compile accepts, in bytes.
const MaxLen = 2048

// maxPatternInsts bounds the size of a URL pattern's compiled regular
// expressions, in RE2 instructions, all components together. Matching
// costs up to the program size per topic byte, so this bounds the work a
// hostile pattern can cause; realistic patterns need a few hundred.
const maxPatternInsts = 5000

// The components of a URL, in the order of the standard.
const (
	cProtocol = iota
	cUsername
	cPassword
	cHostname
	cPort
	cPathname
	cSearch
	cHash
	numComponents
)

var componentNames = [numComponents]string{"protocol", "username", "password", "hostname", "port", "pathname", "search", "hash"}

// Pattern is a compiled URL pattern. It is safe for concurrent use.
type Pattern struct {
	comps [numComponents]compMatcher
	cost  int // RE2 instructions of all components
}

// compMatcher matches one component: anything, one fixed string, or a
// regular expression.
type compMatcher struct {
	any   bool
	fixed string
	re    *regexp.Regexp
	insts int // size of re's program
}

func (c *compMatcher) match(s string) bool {
	switch {
	case c.any:
		return true
	case c.re == nil:
		return s == c.fixed
	}
	return c.re.MatchString(s)
}

// Match reports whether topic, parsed as a URL (relative to Base), matches
// every component. It runs in time linear in the topic's length.
func (p *Pattern) Match(topic string) bool {
	u, ok := splitURL(topic)
	if !ok {
		return false
	}
	for i := range p.comps {
		if !p.comps[i].match(u[i]) {
			return false
		}
	}
	return true
}

func patternError(src, format string, args ...any) error {
	const max = 200
	if len(src) > max {
		src = strings.ToValidUTF8(src[:max], "") + "..."
	}
	return fmt.Errorf("%w %q: %s", ErrInvalid, src, fmt.Sprintf(format, args...))
}

// Cost is the size of the pattern's compiled regular expressions, in RE2
// instructions, all components together: roughly the work of matching one
// topic byte.
func (p *Pattern) Cost() int { return p.cost }

// Compile compiles a WHATWG URL pattern such as
// "https://example.com/books/:id", "https://example.com/feed/:type(news|alerts)"
// or "/books/*" (relative to Base). Errors wrap ErrInvalid and say what is
// wrong. Compile may be called concurrently.
func Compile(src string) (*Pattern, error) {
	switch {
	case src == "":
		return nil, patternError(src, "the pattern is empty")
	case len(src) > MaxLen:
		return nil, patternError(src, "the pattern is %d bytes long, more than the %d accepted", len(src), MaxLen)
	case !utf8.ValidString(src):
		return nil, patternError(src, "the pattern is not valid UTF-8")
	}
	init, err := parseConstructorString([]rune(src))
	if err != nil {
		return nil, patternError(src, "%v", err)
	}
	if !init.set[cProtocol] {
		// A relative pattern: per "process a URLPatternInit", components
		// less specific than the first one given come from the base URL.
		first := cHash
		for _, c := range []int{cPathname, cSearch, cHash} {
			if init.set[c] {
				first = c
				break
			}
		}
		if first == cPathname && !strings.HasPrefix(init.val[cPathname], "/") && !strings.HasPrefix(init.val[cPathname], "{/") {
			return nil, patternError(src, "a relative pattern must start with \"/\" (it is resolved against the hub's URL); write an absolute pattern such as https://example.com/books/:id, or /books/:id")
		}
		base := [numComponents]string{cProtocol: "https", cHostname: baseHost, cPathname: basePath}
		for _, c := range []int{cProtocol, cHostname, cPort, cPathname, cSearch, cHash} {
			if c >= first {
				break
			}
			init.val[c], init.set[c] = escapePatternString(base[c]), true
		}
	}
	for c := range init.val {
		if !init.set[c] {
			init.val[c], init.set[c] = "*", true
		}
	}
	if dp, ok := defaultPorts[init.val[cProtocol]]; ok && init.val[cPort] == dp {
		init.val[cPort] = ""
	}
	p := &Pattern{}
	budget := maxPatternInsts
	for c := range p.comps {
		var (
			enc  = encoders[c]
			opts = defaultOptions
		)
		switch c {
		case cHostname:
			opts = hostnameOptions
			if isIPv6Pattern(init.val[c]) {
				enc = canonicalizeIPv6
			}
		case cPathname:
			if p.comps[cProtocol].matchesSpecialScheme() {
				opts = pathnameOptions
			} else {
				enc = canonicalizeOpaquePathname
			}
		}
		m, err := compileComponent(init.val[c], enc, opts)
		if err != nil {
			return nil, patternError(src, "%s component %q: %v", componentNames[c], init.val[c], err)
		}
		if budget -= m.insts; budget < 0 {
			return nil, patternError(src, "the pattern is too complex (its regular expressions exceed %d instructions); use simpler groups or fewer repetitions", maxPatternInsts)
		}
		p.comps[c] = m
	}
	p.cost = maxPatternInsts - budget
	return p, nil
}

// matchesSpecialScheme reports whether a protocol component matches one of
// the special schemes.
func (c *compMatcher) matchesSpecialScheme() bool {
	for s := range defaultPorts {
		if c.match(s) {
			return true
		}
	}
	return false
}

// defaultPorts are the special schemes and their default ports ("" for
// file, which has none).
var defaultPorts = map[string]string{"ftp": "21", "file": "", "http": "80", "https": "443", "ws": "80", "wss": "443"}

func isIPv6Pattern(s string) bool {
	return len(s) >= 2 && (s[0] == '[' || (s[0] == '{' || s[0] == '\\') && s[1] == '[')
}

// ---- Tokenizing ----

type tokenType uint8

const (
	tokInvalidChar tokenType = iota
	tokOpen
	tokClose
	tokRegexp
	tokName
	tokChar
	tokEscapedChar
	tokOtherModifier
	tokAsterisk
	tokEnd
)

type token struct {
	typ   tokenType
	index int // code point index of the token in the input
	value string
}

// tokenize splits a pattern string into tokens. In strict mode an invalid
// sequence is an error; in lenient mode it becomes an invalid-char token.
func tokenize(in []rune, strict bool) ([]token, error) {
	var (
		toks []token
		i    int
	)
	add := func(typ tokenType, next, valuePos, valueLen int) {
		toks = append(toks, token{typ: typ, index: i, value: string(in[valuePos : valuePos+valueLen])})
		i = next
	}
	fail := func(next, valuePos int, what string) error {
		if strict {
			return fmt.Errorf("%s at character %d", what, valuePos+1)
		}
		add(tokInvalidChar, next, valuePos, next-valuePos)
		return nil
	}
	for i < len(in) {
		c, next := in[i], i+1
		switch c {
		case '*':
			add(tokAsterisk, next, i, 1)
			continue
		case '+', '?':
			add(tokOtherModifier, next, i, 1)
			continue
		case '\\':
			if i == len(in)-1 {
				if err := fail(next, i, "a backslash escapes nothing"); err != nil {
					return nil, err
				}
				continue
			}
			add(tokEscapedChar, i+2, i+1, 1)
			continue
		case '{':
			add(tokOpen, next, i, 1)
			continue
		case '}':
			add(tokClose, next, i, 1)
			continue
		case ':':
			start, pos := next, next
			for pos < len(in) && isNameCodePoint(in[pos], pos == start) {
				pos++
			}
			if pos <= start {
				if err := fail(start, i, `":" is not followed by a group name (escape it as "\\:" to match a colon)`); err != nil {
					return nil, err
				}
				continue
			}
			add(tokName, pos, start, pos-start)
			continue
		case '(':
			end, err := scanRegexp(in, i)
			if err != "" {
				if e := fail(i+1, i, err); e != nil {
					return nil, e
				}
				continue
			}
			add(tokRegexp, end, i+1, end-i-2)
			continue
		}
		add(tokChar, next, i, 1)
	}
	toks = append(toks, token{typ: tokEnd, index: i})
	return toks, nil
}

// scanRegexp scans the regexp group opening at in[open]; it returns the
// index just after its closing ")" or why it is invalid.
func scanRegexp(in []rune, open int) (end int, err string) {
	depth, start := 1, open+1
	pos := start
	for pos < len(in) {
		c := in[pos]
		next := pos + 1
		if c > unicode.MaxASCII {
			return 0, "a regexp group holds a non-ASCII character"
		}
		if pos == start && c == '?' {
			return 0, `a regexp group starts with "?"`
		}
		if c == '\\' {
			if pos == len(in)-1 {
				return 0, "a regexp group ends with a backslash"
			}
			if in[next] > unicode.MaxASCII {
				return 0, "a regexp group holds a non-ASCII character"
			}
			pos = next + 1
			continue
		}
		if c == ')' {
			depth--
			if depth == 0 {
				pos = next
				break
			}
		} else if c == '(' {
			depth++
			if pos == len(in)-1 {
				return 0, "a regexp group is not closed"
			}
			if in[next] != '?' {
				return 0, `a group nested in a regexp group must be non-capturing: "(?:…)"`
			}
		}
		pos = next
	}
	if depth != 0 {
		return 0, "a regexp group is not closed"
	}
	if pos-start-1 == 0 {
		return 0, "a regexp group is empty"
	}
	return pos, ""
}

// isNameCodePoint reports whether r may appear in a group name: the
// JavaScript IdentifierStart (first) or IdentifierPart sets.
func isNameCodePoint(r rune, first bool) bool {
	if r == '$' || r == '_' || unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_ID_Start, r) {
		return true
	}
	if first {
		return false
	}
	return r == '\u200c' || r == '\u200d' || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Mn, r) ||
		unicode.Is(unicode.Mc, r) || unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Other_ID_Continue, r)
}

// ---- Constructor string parsing ----

type parserState uint8

const (
	stInit parserState = iota
	stProtocol
	stAuthority
	stUsername
	stPassword
	stHostname
	stPort
	stPathname
	stSearch
	stHash
	stDone
)

// component returns the component a state parses, or -1.
func (s parserState) component() int {
	switch s {
	case stProtocol:
		return cProtocol
	case stUsername:
		return cUsername
	case stPassword:
		return cPassword
	case stHostname:
		return cHostname
	case stPort:
		return cPort
	case stPathname:
		return cPathname
	case stSearch:
		return cSearch
	case stHash:
		return cHash
	}
	return -1
}

// patternInit is the URLPatternInit of the standard: a pattern string per
// component, each possibly absent.
type patternInit struct {
	val [numComponents]string
	set [numComponents]bool
}

func (p *patternInit) put(c int, v string) { p.val[c], p.set[c] = v, true }

type constructorParser struct {
	in             []rune
	toks           []token
	result         patternInit
	componentStart int
	index          int
	increment      int
	groupDepth     int
	ipv6Depth      int
	special        bool
	state          parserState
}

func parseConstructorString(in []rune) (patternInit, error) {
	toks, _ := tokenize(in, false) // lenient: never fails
	p := &constructorParser{in: in, toks: toks}
	for p.index < len(p.toks) {
		p.increment = 1
		if p.toks[p.index].typ == tokEnd {
			if p.state == stInit {
				p.rewind()
				switch {
				case p.isHashPrefix():
					p.changeState(stHash, 1)
				case p.isSearchPrefix():
					p.changeState(stSearch, 1)
				default:
					p.changeState(stPathname, 0)
				}
				p.index += p.increment
				continue
			}
			if p.state == stAuthority {
				p.rewindAndSetState(stHostname)
				p.index += p.increment
				continue
			}
			p.changeState(stDone, 0)
			break
		}
		if p.toks[p.index].typ == tokOpen {
			p.groupDepth++
			p.index += p.increment
			continue
		}
		if p.groupDepth > 0 {
			if p.toks[p.index].typ == tokClose {
				p.groupDepth--
			} else {
				p.index += p.increment
				continue
			}
		}
		switch p.state {
		case stInit:
			if p.isProtocolSuffix() {
				p.rewindAndSetState(stProtocol)
			}
		case stProtocol:
			if p.isProtocolSuffix() {
				if err := p.computeSpecial(); err != nil {
					return patternInit{}, err
				}
				next, skip := stPathname, 1
				if p.nextIsAuthoritySlashes() {
					next, skip = stAuthority, 3
				} else if p.special {
					next = stAuthority
				}
				p.changeState(next, skip)
			}
		case stAuthority:
			switch {
			case p.isChar(p.index, "@"):
				p.rewindAndSetState(stUsername)
			case p.isChar(p.index, "/"), p.isSearchPrefix(), p.isHashPrefix():
				p.rewindAndSetState(stHostname)
			}
		case stUsername:
			switch {
			case p.isChar(p.index, ":"):
				p.changeState(stPassword, 1)
			case p.isChar(p.index, "@"):
				p.changeState(stHostname, 1)
			}
		case stPassword:
			if p.isChar(p.index, "@") {
				p.changeState(stHostname, 1)
			}
		case stHostname:
			switch {
			case p.isChar(p.index, "["):
				p.ipv6Depth++
			case p.isChar(p.index, "]"):
				p.ipv6Depth--
			case p.isChar(p.index, ":") && p.ipv6Depth == 0:
				p.changeState(stPort, 1)
			case p.isChar(p.index, "/"):
				p.changeState(stPathname, 0)
			case p.isSearchPrefix():
				p.changeState(stSearch, 1)
			case p.isHashPrefix():
				p.changeState(stHash, 1)
			}
		case stPort:
			switch {
			case p.isChar(p.index, "/"):
				p.changeState(stPathname, 0)
			case p.isSearchPrefix():
				p.changeState(stSearch, 1)
			case p.isHashPrefix():
				p.changeState(stHash, 1)
			}
		case stPathname:
			switch {
			case p.isSearchPrefix():
				p.changeState(stSearch, 1)
			case p.isHashPrefix():
				p.changeState(stHash, 1)
			}
		case stSearch:
			if p.isHashPrefix() {
				p.changeState(stHash, 1)
			}
		}
		p.index += p.increment
	}
	if p.result.set[cHostname] && !p.result.set[cPort] {
		p.result.put(cPort, "")
	}
	return p.result, nil
}

func (p *constructorParser) changeState(next parserState, skip int) {
	if c := p.state.component(); c >= 0 {
		p.result.put(c, p.makeComponentString())
	}
	if p.state != stInit && next != stDone {
		if p.state <= stPassword && (next == stPort || next == stPathname || next == stSearch || next == stHash) && !p.result.set[cHostname] {
			p.result.put(cHostname, "")
		}
		if p.state <= stPort && (next == stSearch || next == stHash) && !p.result.set[cPathname] {
			if p.special {
				p.result.put(cPathname, "/")
			} else {
				p.result.put(cPathname, "")
			}
		}
		if p.state <= stPathname && next == stHash && !p.result.set[cSearch] {
			p.result.put(cSearch, "")
		}
	}
	p.state = next
	p.index += skip
	p.componentStart = p.index
	p.increment = 0
}

func (p *constructorParser) rewind() {
	p.index = p.componentStart
	p.increment = 0
}

func (p *constructorParser) rewindAndSetState(s parserState) {
	p.rewind()
	p.state = s
}

func (p *constructorParser) safeToken(i int) token {
	if i < len(p.toks) {
		return p.toks[i]
	}
	return p.toks[len(p.toks)-1]
}

// isChar is "is a non-special pattern char".
func (p *constructorParser) isChar(i int, v string) bool {
	t := p.safeToken(i)
	return t.value == v && (t.typ == tokChar || t.typ == tokEscapedChar || t.typ == tokInvalidChar)
}

func (p *constructorParser) isProtocolSuffix() bool { return p.isChar(p.index, ":") }

func (p *constructorParser) nextIsAuthoritySlashes() bool {
	return p.isChar(p.index+1, "/") && p.isChar(p.index+2, "/")
}

func (p *constructorParser) isHashPrefix() bool { return p.isChar(p.index, "#") }

func (p *constructorParser) isSearchPrefix() bool {
	if p.isChar(p.index, "?") {
		return true
	}
	if p.toks[p.index].value != "?" {
		return false
	}
	if p.index == 0 {
		return true
	}
	switch p.safeToken(p.index - 1).typ {
	case tokName, tokRegexp, tokClose, tokAsterisk:
		return false
	}
	return true
}

func (p *constructorParser) makeComponentString() string {
	end := p.toks[p.index].index
	start := p.safeToken(p.componentStart).index
	return string(p.in[start:end])
}

func (p *constructorParser) computeSpecial() error {
	m, err := compileComponent(p.makeComponentString(), canonicalizeProtocol, defaultOptions)
	if err != nil {
		return fmt.Errorf("protocol component: %w", err)
	}
	p.special = m.matchesSpecialScheme()
	return nil
}

// ---- Pattern strings ----

type options struct {
	delimiter, prefix string
}

var (
	defaultOptions  = options{}
	hostnameOptions = options{delimiter: "."}
	pathnameOptions = options{delimiter: "/", prefix: "/"}
)

type partType uint8

const (
	partFixed partType = iota
	partRegexp
	partSegmentWildcard
	partFullWildcard
)

type modifier uint8

const (
	modNone modifier = iota
	modOptional
	modZeroOrMore
	modOneOrMore
)

func (m modifier) String() string {
	switch m {
	case modOptional:
		return "?"
	case modZeroOrMore:
		return "*"
	case modOneOrMore:
		return "+"
	}
	return ""
}

type part struct {
	typ            partType
	value          string
	mod            modifier
	name           string
	prefix, suffix string
}

// encoder validates and canonicalizes fixed text of one component.
type encoder func(string) (string, error)

const fullWildcard = ".*"

type patternParser struct {
	toks        []token
	enc         encoder
	segWildcard string
	parts       []part
	pending     string
	index       int
	nextNumeric int
}

func segmentWildcard(o options) string { return "[^" + escapeRegexpString(o.delimiter) + "]+?" }

func parsePatternString(input string, o options, enc encoder) ([]part, error) {
	toks, err := tokenize([]rune(input), true)
	if err != nil {
		return nil, err
	}
	p := &patternParser{toks: toks, enc: enc, segWildcard: segmentWildcard(o)}
	for p.index < len(p.toks) {
		charTok := p.try(tokChar)
		nameTok := p.try(tokName)
		rwTok := p.tryRegexpOrWildcard(nameTok)
		if nameTok != nil || rwTok != nil {
			prefix := ""
			if charTok != nil {
				prefix = charTok.value
			}
			if prefix != "" && prefix != o.prefix {
				p.pending += prefix
				prefix = ""
			}
			if err := p.flushPending(); err != nil {
				return nil, err
			}
			if err := p.addPart(prefix, nameTok, rwTok, "", p.tryModifier()); err != nil {
				return nil, err
			}
			continue
		}
		fixed := charTok
		if fixed == nil {
			fixed = p.try(tokEscapedChar)
		}
		if fixed != nil {
			p.pending += fixed.value
			continue
		}
		if p.try(tokOpen) != nil {
			prefix := p.consumeText()
			nameTok = p.try(tokName)
			rwTok = p.tryRegexpOrWildcard(nameTok)
			suffix := p.consumeText()
			if err := p.require(tokClose, `a "{" group is not closed with "}"`); err != nil {
				return nil, err
			}
			if err := p.addPart(prefix, nameTok, rwTok, suffix, p.tryModifier()); err != nil {
				return nil, err
			}
			continue
		}
		if err := p.flushPending(); err != nil {
			return nil, err
		}
		if err := p.require(tokEnd, "unexpected "+strconv.Quote(p.toks[p.index].value)); err != nil {
			return nil, err
		}
	}
	return p.parts, nil
}

func (p *patternParser) try(typ tokenType) *token {
	if p.index >= len(p.toks) || p.toks[p.index].typ != typ {
		return nil
	}
	p.index++
	return &p.toks[p.index-1]
}

func (p *patternParser) tryModifier() *token {
	if t := p.try(tokOtherModifier); t != nil {
		return t
	}
	return p.try(tokAsterisk)
}

func (p *patternParser) tryRegexpOrWildcard(name *token) *token {
	t := p.try(tokRegexp)
	if name == nil && t == nil {
		t = p.try(tokAsterisk)
	}
	return t
}

func (p *patternParser) require(typ tokenType, what string) error {
	if p.try(typ) == nil {
		at := 0
		if p.index < len(p.toks) {
			at = p.toks[p.index].index
		}
		return fmt.Errorf("%s at character %d", what, at+1)
	}
	return nil
}

func (p *patternParser) consumeText() string {
	var b strings.Builder
	for {
		t := p.try(tokChar)
		if t == nil {
			t = p.try(tokEscapedChar)
		}
		if t == nil {
			return b.String()
		}
		b.WriteString(t.value)
	}
}

func (p *patternParser) flushPending() error {
	if p.pending == "" {
		return nil
	}
	v, err := p.enc(p.pending)
	if err != nil {
		return err
	}
	p.pending = ""
	p.parts = append(p.parts, part{typ: partFixed, value: v})
	return nil
}

func (p *patternParser) addPart(prefix string, nameTok, rwTok *token, suffix string, modTok *token) error {
	mod := modNone
	if modTok != nil {
		switch modTok.value {
		case "?":
			mod = modOptional
		case "*":
			mod = modZeroOrMore
		case "+":
			mod = modOneOrMore
		}
	}
	if nameTok == nil && rwTok == nil && mod == modNone {
		p.pending += prefix
		return nil
	}
	if err := p.flushPending(); err != nil {
		return err
	}
	if nameTok == nil && rwTok == nil {
		if prefix == "" {
			return nil
		}
		v, err := p.enc(prefix)
		if err != nil {
			return err
		}
		p.parts = append(p.parts, part{typ: partFixed, value: v, mod: mod})
		return nil
	}
	var value string
	switch {
	case rwTok == nil:
		value = p.segWildcard
	case rwTok.typ == tokAsterisk:
		value = fullWildcard
	default:
		value = rwTok.value
	}
	typ := partRegexp
	switch value {
	case p.segWildcard:
		typ, value = partSegmentWildcard, ""
	case fullWildcard:
		typ, value = partFullWildcard, ""
	}
	var name string
	if nameTok != nil {
		name = nameTok.value
	} else {
		name = strconv.Itoa(p.nextNumeric)
		p.nextNumeric++
	}
	for _, q := range p.parts {
		if q.name == name {
			return fmt.Errorf("the group name %q is used twice", name)
		}
	}
	encPrefix, err := p.enc(prefix)
	if err != nil {
		return err
	}
	encSuffix, err := p.enc(suffix)
	if err != nil {
		return err
	}
	p.parts = append(p.parts, part{typ: typ, value: value, mod: mod, name: name, prefix: encPrefix, suffix: encSuffix})
	return nil
}

// generateRegexp is "generate a regular expression and name list".
func generateRegexp(parts []part, o options) string {
	var b strings.Builder
	b.WriteString("^")
	for _, p := range parts {
		if p.typ == partFixed {
			if p.mod == modNone {
				b.WriteString(escapeRegexpString(p.value))
			} else {
				b.WriteString("(?:" + escapeRegexpString(p.value) + ")" + p.mod.String())
			}
			continue
		}
		value := p.value
		switch p.typ {
		case partSegmentWildcard:
			value = segmentWildcard(o)
			if o.delimiter == "" {
				value = `(?s:.)+?` // JavaScript's [^]+? in RE2 syntax
			}
		case partFullWildcard:
			value = fullWildcard
		}
		if p.prefix == "" && p.suffix == "" {
			if p.mod == modNone || p.mod == modOptional {
				b.WriteString("(" + value + ")" + p.mod.String())
			} else {
				b.WriteString("((?:" + value + ")" + p.mod.String() + ")")
			}
			continue
		}
		prefix, suffix := escapeRegexpString(p.prefix), escapeRegexpString(p.suffix)
		if p.mod == modNone || p.mod == modOptional {
			b.WriteString("(?:" + prefix + "(" + value + ")" + suffix + ")" + p.mod.String())
			continue
		}
		b.WriteString("(?:" + prefix + "((?:" + value + ")(?:" + suffix + prefix + "(?:" + value + "))*)" + suffix + ")")
		if p.mod == modZeroOrMore {
			b.WriteString("?")
		}
	}
	b.WriteString("$")
	return b.String()
}

func escapeRegexpString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '.', '+', '*', '?', '^', '$', '{', '}', '(', ')', '[', ']', '|', '/', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// escapePatternString escapes the pattern syntax in s (base URL values).
func escapePatternString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+', '*', '?', ':', '{', '}', '(', ')', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// compileComponent is "compile a component", with shortcuts for the
// components that need no regular expression: "*" and fixed text.
func compileComponent(input string, enc encoder, o options) (compMatcher, error) {
	parts, err := parsePatternString(input, o, enc)
	if err != nil {
		return compMatcher{}, err
	}
	switch {
	case len(parts) == 0:
		return compMatcher{}, nil
	case len(parts) == 1 && parts[0].typ == partFixed && parts[0].mod == modNone:
		return compMatcher{fixed: parts[0].value}, nil
	case len(parts) == 1 && parts[0].typ == partFullWildcard && parts[0].mod == modNone && parts[0].prefix == "" && parts[0].suffix == "":
		return compMatcher{any: true}, nil
	}
	src := generateRegexp(parts, o)
	parsed, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return compMatcher{}, fmt.Errorf("unsupported regular expression (this hub uses RE2 syntax: no lookaround, no backreferences, repetitions up to 1000): %v", err)
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return compMatcher{}, fmt.Errorf("unsupported regular expression: %v", err)
	}
	if len(prog.Inst) > maxPatternInsts {
		return compMatcher{}, fmt.Errorf("the regular expression is too complex (%d instructions, at most %d); use simpler groups or fewer repetitions", len(prog.Inst), maxPatternInsts)
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return compMatcher{}, fmt.Errorf("unsupported regular expression (this hub uses RE2 syntax): %v", err)
	}
	return compMatcher{re: re, insts: len(prog.Inst)}, nil
}

// ---- Canonicalization of fixed text ----

var encoders = [numComponents]encoder{
	cProtocol: canonicalizeProtocol,
	cUsername: func(s string) (string, error) { return percentEncode(s, userinfoSet), nil },
	cPassword: func(s string) (string, error) { return percentEncode(s, userinfoSet), nil },
	cHostname: canonicalizeHostname,
	cPort:     canonicalizePort,
	cPathname: canonicalizePathname,
	cSearch:   func(s string) (string, error) { return percentEncode(s, querySet), nil },
	cHash:     func(s string) (string, error) { return percentEncode(s, fragmentSet), nil },
}

func canonicalizeProtocol(s string) (string, error) {
	if s == "" {
		return s, nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && (i == 0 || !isDigit(c) && c != '+' && c != '-' && c != '.') {
			return "", fmt.Errorf("%q is not a valid scheme", s)
		}
	}
	return strings.ToLower(s), nil
}

func canonicalizeHostname(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return "", fmt.Errorf("hostname %q is not ASCII; write it in its punycode form (xn--…)", s)
		case c <= ' ' || strings.IndexByte("#%/:<>?@[\\]^|", c) >= 0:
			return "", fmt.Errorf("hostname %q holds the character %q, which is not allowed in a host", s, c)
		}
	}
	return strings.ToLower(s), nil
}

func canonicalizeIPv6(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isHex(c) && c != '[' && c != ']' && c != ':' {
			return "", fmt.Errorf("IPv6 hostname %q holds %q", s, c)
		}
	}
	return strings.ToLower(s), nil
}

func canonicalizePort(s string) (string, error) {
	if s == "" {
		return s, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || !isDigits(s) {
		return "", fmt.Errorf("port %q is not a number from 0 to 65535", s)
	}
	return strconv.FormatUint(n, 10), nil
}

func canonicalizePathname(s string) (string, error) {
	if strings.Contains(s, "/./") || strings.Contains(s, "/../") || strings.HasSuffix(s, "/.") || strings.HasSuffix(s, "/..") {
		return "", fmt.Errorf(`"." and ".." path segments are not supported in patterns`)
	}
	return percentEncode(s, pathSet), nil
}

func canonicalizeOpaquePathname(s string) (string, error) {
	return percentEncode(s, controlSet), nil
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// Percent-encode sets of the URL standard, as sets of ASCII bytes; bytes
// of non-ASCII characters and C0 controls are always encoded.
type encodeSet [128]bool

func newEncodeSet(base *encodeSet, chars string) *encodeSet {
	var s encodeSet
	if base != nil {
		s = *base
	}
	for i := 0; i < 0x20; i++ {
		s[i] = true
	}
	s[0x7f] = true
	for i := 0; i < len(chars); i++ {
		s[chars[i]] = true
	}
	return &s
}

var (
	controlSet      = newEncodeSet(nil, "")
	fragmentSet     = newEncodeSet(controlSet, " \"<>`")
	querySet        = newEncodeSet(controlSet, " \"#<>")
	specialQuerySet = newEncodeSet(querySet, "'")
	pathSet         = newEncodeSet(querySet, "?^`{}")
	userinfoSet     = newEncodeSet(pathSet, "/:;=@[\\]|")
)

func (s *encodeSet) has(c byte) bool { return c >= utf8.RuneSelf || s[c] }

// percentEncode encodes the bytes of s in set; it returns s itself (no
// allocation) when there is none.
func percentEncode(s string, set *encodeSet) string {
	i := 0
	for i < len(s) && !set.has(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if c := s[i]; set.has(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

// ---- Splitting topics into URL components ----

// splitURL parses topic as a URL (relative to Base) and returns
// its components as a URL pattern matches them. It reports false when the
// topic is not a URL. It allocates only for topics that are not in
// canonical form.
func splitURL(topic string) (u [numComponents]string, ok bool) {
	s := strings.Trim(topic, " ")
	scheme, rest, hasScheme := cutScheme(s)
	if !hasScheme {
		return resolveRelative(s)
	}
	u[cProtocol] = lowerASCII(scheme)
	_, special := defaultPorts[u[cProtocol]]
	if u[cProtocol] == "https" && !strings.HasPrefix(rest, "//") && !strings.HasPrefix(rest, "\\\\") {
		// The base's scheme without "//": a relative reference.
		return resolveRelative(rest)
	}
	if special && u[cProtocol] != "file" {
		rest = strings.TrimLeft(rest, "/\\")
		return splitHierarchical(u, rest, true)
	}
	if strings.HasPrefix(rest, "//") {
		return splitHierarchical(u, rest[2:], special)
	}
	// An opaque path (urn:, mailto:, …).
	path, query, frag := splitTail(rest)
	u[cPathname] = percentEncode(path, controlSet)
	u[cSearch] = percentEncode(query, querySet)
	u[cHash] = percentEncode(frag, fragmentSet)
	return u, true
}

// cutScheme splits "scheme:rest" when s starts with a valid scheme.
func cutScheme(s string) (scheme, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c):
		case i > 0 && (isDigit(c) || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return s[:i], s[i+1:], true
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// splitTail splits what follows the path start into path, query and
// fragment.
func splitTail(s string) (path, query, frag string) {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s, frag = s[:i], s[i+1:]
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s, query = s[:i], s[i+1:]
	}
	return s, query, frag
}

// splitHierarchical splits "authority/path?query#fragment".
func splitHierarchical(u [numComponents]string, s string, special bool) ([numComponents]string, bool) {
	end := strings.IndexAny(s, "/?#")
	if special {
		end = strings.IndexAny(s, "/?#\\")
	}
	authority := s
	if end >= 0 {
		authority, s = s[:end], s[end:]
	} else {
		s = ""
	}
	if !splitAuthority(&u, authority, special) {
		return u, false
	}
	path, query, frag := splitTail(s)
	u[cPathname] = canonicalPath(path, special)
	if special {
		u[cSearch] = percentEncode(query, specialQuerySet)
	} else {
		u[cSearch] = percentEncode(query, querySet)
	}
	u[cHash] = percentEncode(frag, fragmentSet)
	return u, true
}

func splitAuthority(u *[numComponents]string, a string, special bool) bool {
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		userinfo := a[:i]
		a = a[i+1:]
		user, pass, _ := strings.Cut(userinfo, ":")
		u[cUsername] = percentEncode(user, userinfoSet)
		u[cPassword] = percentEncode(pass, userinfoSet)
	}
	host, port := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return false
		}
		host, port = a[:end+1], a[end+1:]
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
		}
	} else if i := strings.LastIndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || !isDigits(port) {
			return false
		}
		port = strconv.FormatUint(n, 10)
		if port == defaultPorts[u[cProtocol]] {
			port = ""
		}
	}
	if special {
		if host == "" && u[cProtocol] != "file" {
			return false
		}
		host = lowerASCII(host)
	}
	u[cHostname], u[cPort] = host, port
	return true
}

// canonicalPath returns the path as the URL parser serializes it: "/" for
// an empty special path, backslashes as slashes, dot segments removed,
// and the path percent-encode set encoded.
func canonicalPath(p string, special bool) string {
	if special {
		if p == "" {
			return "/"
		}
		if strings.IndexByte(p, '\\') >= 0 {
			p = strings.ReplaceAll(p, "\\", "/")
		}
	}
	if hasDotSegment(p) {
		p = removeDotSegments(p)
	}
	return percentEncode(p, pathSet)
}

func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '.' || (i > 0 && p[i-1] != '/') {
			continue
		}
		j := i + 1
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
	}
	return false
}

// removeDotSegments resolves "." and ".." segments (RFC 3986 5.2.4).
func removeDotSegments(p string) string {
	var out []string
	segs := strings.Split(p, "/")
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	r := strings.Join(out, "/")
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(r, "/") {
		r = "/" + r
	}
	return r
}

// resolveRelative resolves a relative topic against Base.
func resolveRelative(s string) (u [numComponents]string, ok bool) {
	u[cProtocol], u[cHostname] = "https", baseHost
	switch {
	case strings.HasPrefix(s, "//") || strings.HasPrefix(s, "\\\\"):
		return splitHierarchical(u, s[2:], true)
	case strings.HasPrefix(s, "/") || strings.HasPrefix(s, "\\"):
		return splitHierarchical(u, baseHost+s, true)
	case strings.HasPrefix(s, "?"):
		return splitHierarchical(u, baseHost+basePath+s, true)
	case strings.HasPrefix(s, "#"):
		return splitHierarchical(u, baseHost+basePath+s, true)
	}
	return splitHierarchical(u, baseHost+baseDir+s, true)
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
