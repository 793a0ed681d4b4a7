// Package httpapi serves the Mercure protocol over HTTP on top of a hub:
// subscribe (GET /.well-known/mercure, text/event-stream), publish (POST
// /.well-known/mercure, form-encoded), CORS, and the health endpoints. Both
// forms of the protocol are served at once: the 0.x form (topic= selectors,
// the mercure claim) and the draft-08 form (match= and match_urlpattern=,
// at+jwt tokens with authorization_details); see draft08.go. With
// Config.Subscriptions it also serves the subscriptions API, whose state
// package presence keeps on the log (subscriptions.go is its HTTP face). docs/mercure.md lists what is
// supported and every difference from Mercure.
//
// New returns an http.Handler: mount it in your own mux or serve it with
// net/http. Errors are mapped to HTTP status codes in one table (errors.go)
// and every 4xx answer carries a plain-text message that says what to fix.
// The limits here are the protocol's own (Limits); the operational side
// that the API shares with other handlers, metrics and connection limits,
// is package ops's (Config.Metrics, Config.Connections).
package httpapi
