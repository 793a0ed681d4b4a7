package httpapi

import "github.com/ssehub/ssehub/topic"

// selectorsOf returns the parsed selectors of a subscribe request's
// matchers (see matchers in draft08.go), which presence also announces:
// the query is parsed once.
func selectorsOf(ms []matcher) []topic.Selector {
	sels := make([]topic.Selector, len(ms))
	for i, m := range ms {
		sels[i] = m.sel
	}
	return sels
}
