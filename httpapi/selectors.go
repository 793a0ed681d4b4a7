package httpapi

import (
	"net/http"
	"strconv"

	"github.com/ssehub/ssehub/topic"
)

// selectors reads the topic selectors of a subscribe request. Errors are
// request errors (400) that say what to fix.
func (a *API) selectors(r *http.Request) ([]topic.Selector, error) {
	raw := r.URL.Query()["topic"]
	if len(raw) == 0 {
		return nil, badRequest("at least one topic selector is required: add ?topic=… (an exact topic, * for all, or a URI template such as https://example.com/books/{id})")
	}
	if len(raw) > a.cfg.MaxTopics {
		return nil, badRequest("too many topic selectors: " + strconv.Itoa(len(raw)) + " (at most " + strconv.Itoa(a.cfg.MaxTopics) + " per subscription)")
	}
	sels := make([]topic.Selector, 0, len(raw))
	for _, s := range raw {
		sel, err := a.sels.Compile(s)
		if err != nil {
			return nil, badRequest("invalid topic selector " + strconv.Quote(s) + ": " + err.Error())
		}
		sels = append(sels, sel)
	}
	return sels, nil
}
