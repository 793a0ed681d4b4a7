// Package httpapi serves the Mercure protocol over HTTP on top of a hub:
// subscribe (GET /.well-known/mercure, text/event-stream), publish (POST
// /.well-known/mercure, form-encoded), CORS, and the health endpoints.
//
// New returns an http.Handler: mount it in your own mux or serve it with
// net/http. Errors are mapped to HTTP status codes in one table (errors.go)
// and every 4xx answer carries a plain-text message that says what to fix.
package httpapi
