package httpapi

import (
	"net/http"

	"github.com/ssehub/ssehub/topic"
)

// selectors reads the topic selectors of a subscribe request, in both
// protocol forms (see matchers in draft08.go). Errors are request errors
// (400) that say what to fix.
func (a *API) selectors(r *http.Request) ([]topic.Selector, error) {
	ms, err := a.matchers(r.URL.Query())
	if err != nil {
		return nil, err
	}
	sels := make([]topic.Selector, len(ms))
	for i, m := range ms {
		sels[i] = m.sel
	}
	return sels, nil
}
