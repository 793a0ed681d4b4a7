package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/topic"
)

// statusTable maps sentinel errors to HTTP status codes, first match wins.
// It is the one place where errors become statuses.
var statusTable = []struct {
	err    error
	status int
}{
	{errBadRequest, http.StatusBadRequest},
	{ssehub.ErrInvalid, http.StatusBadRequest},
	{ssehub.ErrDuplicateID, http.StatusConflict},
	{errReservedTopic, http.StatusForbidden},
	{topic.ErrURLPattern, http.StatusBadRequest},
	{topic.ErrTemplate, http.StatusBadRequest},
	{hub.ErrNoSelector, http.StatusBadRequest},
	{ssehub.ErrTooLarge, http.StatusRequestEntityTooLarge},
	{ErrPublishRate, http.StatusTooManyRequests},
	{auth.ErrTopicNotAllowed, http.StatusForbidden},
	{ssehub.ErrUnavailable, http.StatusServiceUnavailable},
	{ssehub.ErrClosed, http.StatusServiceUnavailable},
	{hub.ErrShutdown, http.StatusServiceUnavailable},
	{context.DeadlineExceeded, http.StatusServiceUnavailable},
}

// statusOf returns the HTTP status for err (500 when unknown).
func statusOf(err error) int {
	for _, e := range statusTable {
		if errors.Is(err, e.err) {
			return e.status
		}
	}
	return http.StatusInternalServerError
}

// errBadRequest marks request errors made in this package.
var errBadRequest = errors.New("httpapi: bad request")

type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return errBadRequest }

func badRequest(msg string) error { return &requestError{msg} }

// writeError answers err with its status and a message that says what to
// fix. Server-side errors get a generic message plus the cause.
func writeError(w http.ResponseWriter, err error) {
	status := statusOf(err)
	msg := err.Error()
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	httpError(w, status, msg)
}

// httpError writes a plain-text error answer.
func httpError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}
