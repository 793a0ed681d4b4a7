package httpapi

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/presence"
	"github.com/ssehub/ssehub/topic"
)

// This file holds the parts of the protocol where the Mercure 0.x form and
// the newer draft-08 form differ: the subscribe query parameters (topic=
// versus match= and match_urlpattern=) and the stricter publish rules of
// draft-08, which ssehub applies to both forms.

// Matcher types of draft-08, as they appear in subscription events and in
// the subscriptions API.
const (
	matchExact      = presence.MatchExact
	matchURLPattern = presence.MatchURLPattern
)

// matcherParams maps the subscribe query parameters that name a draft-08
// matcher type to it: the snake-case names of Mercure 1.0 and the
// camel-case names of the latest protocol draft.
var matcherParams = map[string]string{
	"match":            matchExact,
	"match_exact":      matchExact,
	"matchExact":       matchExact,
	"match_urlpattern": matchURLPattern,
	"matchURLPattern":  matchURLPattern,
}

// maxMatcherLen bounds one topic selector or matcher, in bytes.
const maxMatcherLen = 4096

// matcher is one topic selector of a subscribe request.
type matcher struct {
	typ string // "" for a 0.x topic= selector, else matchExact or matchURLPattern
	src string
	sel topic.Selector
}

// matchers reads the topic selectors of a subscribe request, in both
// protocol forms: topic= (0.x: exact, "*" or URI template), match= and
// match_urlpattern= (draft-08). Identical selectors count once. Errors are
// request errors (400) that say what to fix.
func (a *API) matchers(q url.Values) ([]matcher, error) {
	names := make([]string, 0, len(q))
	n := 0
	for name, values := range q {
		if name == "topic" {
			names = append(names, name)
			n += len(values)
			continue
		}
		if !strings.HasPrefix(strings.ToLower(name), "match") {
			continue
		}
		if _, ok := matcherParams[name]; !ok {
			return nil, badRequest("unknown topic matcher parameter " + strconv.Quote(printable(name)) +
				": use match (exact topic) or match_urlpattern (URL pattern such as https://example.com/books/:id); parameter names starting with \"match\" are reserved")
		}
		names = append(names, name)
		n += len(values)
	}
	if n == 0 {
		return nil, badRequest("at least one topic selector is required: add ?topic=… (an exact topic, * for all, or a URI template such as https://example.com/books/{id}), or ?match=… (exact topic) or ?match_urlpattern=… (URL pattern such as https://example.com/books/:id)")
	}
	if n > a.cfg.MaxTopics {
		return nil, badRequest("too many topic selectors: " + strconv.Itoa(n) + " (at most " + strconv.Itoa(a.cfg.MaxTopics) + " per subscription)")
	}
	slices.Sort(names) // a stable order for subscription events
	out := make([]matcher, 0, n)
	for _, name := range names {
		for _, v := range q[name] {
			if err := checkMatcherValue(name, v); err != nil {
				return nil, err
			}
			m := matcher{typ: matcherParams[name], src: v}
			var err error
			switch m.typ {
			case "":
				m.sel, err = a.sels.Compile(v)
			case matchExact:
				m.sel = topic.CompileExact(v)
			case matchURLPattern:
				m.sel, err = a.sels.CompileURLPattern(v)
			}
			if err != nil {
				return nil, badRequest("invalid topic selector " + strconv.Quote(printable(v)) + " (" + name + "): " + err.Error())
			}
			if !slices.ContainsFunc(out, func(o matcher) bool { return o.typ == m.typ && o.src == m.src }) {
				out = append(out, m)
			}
		}
	}
	if err := a.checkSelectorCost(out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkMatcherValue applies the draft-08 rules to a selector: valid UTF-8,
// no control character, not empty, not too long.
func checkMatcherValue(name, v string) error {
	switch {
	case v == "":
		return badRequest("empty " + name + " parameter: give a topic or a pattern")
	case len(v) > maxMatcherLen:
		return badRequest(name + " value is " + strconv.Itoa(len(v)) + " bytes long, more than the " + strconv.Itoa(maxMatcherLen) + " accepted")
	}
	if err := ssehub.CheckText(name+" value", v); err != nil {
		return badRequest(err.Error())
	}
	return nil
}

// printable cuts client-supplied strings for error messages.
var printable = ssehub.Printable

// ReservedType is the event type the protocol reserves for events the hub
// itself generates; publishers may not use it.
const ReservedType = presence.ReservedType

// errReservedTopic: a publisher addressed a topic in the hub's own
// namespace (403).
var errReservedTopic = errors.New("httpapi: topic in the hub's reserved namespace")

// reservedPrefixes are the paths of topics the hub publishes itself (the
// subscription events).
var reservedPrefixes = []string{"/.well-known/mercure", "/.well-known/ssehub"}

// checkUpdate applies the rules the Mercure protocol adds to those every
// event follows (ssehub.Event.Validate, which ran before): no topic in the
// hub's reserved namespace (/.well-known/mercure/…), no id starting with
// "#", no type "mercure". Errors wrap ssehub.ErrInvalid (400) or
// errReservedTopic (403) and say what to fix.
func checkUpdate(ev *ssehub.Event) error {
	for _, t := range ev.Topics {
		if isReservedTopic(t) {
			return fmt.Errorf("%w: topic %q is in the hub's reserved namespace (/.well-known/mercure/…): only the hub publishes there (subscription events); publish to another topic", errReservedTopic, printable(t))
		}
	}
	if strings.HasPrefix(ev.ID, "#") {
		return fmt.Errorf("%w: id %q starts with \"#\", which the protocol reserves for hub-generated ids; use an IRI such as urn:uuid:…", ssehub.ErrInvalid, printable(ev.ID))
	}
	if ev.Type == ReservedType {
		return fmt.Errorf("%w: type %q is reserved for events the hub generates; pick another type", ssehub.ErrInvalid, ReservedType)
	}
	return nil
}

// spellsReserved reports whether t, with its valid percent-escapes decoded
// and in any case, contains one of the reserved paths.
func spellsReserved(t string) bool {
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		if t[i] == '%' && i+2 < len(t) && ishex(t[i+1]) && ishex(t[i+2]) {
			v, _ := strconv.ParseUint(t[i+1:i+3], 16, 8)
			b.WriteByte(byte(v))
			i += 2
			continue
		}
		b.WriteByte(t[i])
	}
	lower := strings.ToLower(b.String())
	for _, prefix := range reservedPrefixes {
		if strings.Contains(lower, prefix) {
			return true
		}
	}
	return false
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// reservedBase resolves relative topics for isReservedTopic, as URL
// patterns resolve them.
var reservedBase = func() *url.URL {
	u, err := url.Parse(topic.URLPatternBase)
	if err != nil {
		panic(err)
	}
	return u
}()

// isReservedTopic reports whether topic, resolved against the hub's URL,
// has a path in the hub's namespace, whatever its scheme and host (so an
// absolute topic naming the hub cannot forge subscription events either).
func isReservedTopic(t string) bool {
	if !strings.Contains(t, ".well-known") && !strings.Contains(t, "%") {
		return false // fast path: most topics
	}
	u, err := url.Parse(t)
	if err != nil {
		// Not a URL (a bad percent-escape, a bad host): it still must not
		// reach the namespace by what it spells. Decode what escapes are
		// valid, and refuse it if the hub's paths appear anywhere.
		return spellsReserved(t)
	}
	p := reservedBase.ResolveReference(u).Path
	for _, prefix := range reservedPrefixes {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}
