package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error of this package wraps exactly one of them
// (test with errors.Is) and says more in its message.
var (
	// ErrMissing: the request carries no token.
	ErrMissing = errors.New("auth: no token")
	// ErrBadRequest: the request carries credentials in a form the hub
	// cannot read, such as an Authorization header that is not "Bearer".
	ErrBadRequest = errors.New("auth: malformed credentials")
	// ErrMalformed: the token is not a well-formed JWT, or its claims are
	// not what the Mercure protocol defines.
	ErrMalformed = errors.New("auth: malformed token")
	// ErrSignature: the signature does not verify with any configured key.
	ErrSignature = errors.New("auth: signature invalid (signed with a different key?)")
	// ErrExpired: the token's exp time has passed.
	ErrExpired = errors.New("auth: token expired")
	// ErrNotYetValid: the token's nbf time has not come yet.
	ErrNotYetValid = errors.New("auth: token not valid yet")
	// ErrAlgorithm: the token is signed with an algorithm the hub does not
	// accept (including "none").
	ErrAlgorithm = errors.New("auth: algorithm not allowed")
	// ErrType: the token's typ header is not one the hub accepts.
	ErrType = errors.New("auth: token type not accepted")
	// ErrIssuer: the token's iss claim is not a configured issuer.
	ErrIssuer = errors.New("auth: issuer not accepted")
	// ErrAudience: the token's aud claim does not name this hub.
	ErrAudience = errors.New("auth: audience not accepted")
	// ErrTopicNotAllowed: the token does not grant the action on a topic.
	ErrTopicNotAllowed = errors.New("auth: topic not allowed")
	// ErrKey: a key given to ParseKey or ParseSigningKey is unusable.
	ErrKey = errors.New("auth: invalid key")
)

// authError is an error with its own message that wraps a sentinel.
type authError struct {
	kind error
	msg  string
}

// Error returns the full message.
func (e *authError) Error() string { return e.msg }

// Unwrap returns the sentinel, for errors.Is.
func (e *authError) Unwrap() error { return e.kind }

// newError returns an error wrapping kind with the formatted message.
func newError(kind error, format string, args ...any) error {
	return &authError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// reasons maps sentinels to their Reason labels, in the order Reason tests
// them.
var reasons = []struct {
	err    error
	reason string
}{
	{ErrMissing, "missing"},
	{ErrBadRequest, "malformed"},
	{ErrMalformed, "malformed"},
	{ErrSignature, "signature"},
	{ErrExpired, "expired"},
	{ErrNotYetValid, "not_yet_valid"},
	{ErrAlgorithm, "algorithm"},
	{ErrType, "type"},
	{ErrIssuer, "issuer"},
	{ErrAudience, "audience"},
	{ErrTopicNotAllowed, "topic"},
	{ErrKey, "key"},
}

// Reason returns a short, stable label for why err happened, for metrics
// labels and logs: "missing", "malformed", "signature", "expired",
// "not_yet_valid", "algorithm", "type", "issuer", "audience", "topic" or
// "key"; "" for nil and "other" for errors not from this package. Safe for
// concurrent use.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}

// maxDescription bounds the error_description of a challenge.
const maxDescription = 300

// WWWAuthenticate returns the value of the WWW-Authenticate header to send
// with a 401 or 403 answer for err (RFC 6750 section 3):
//
//	Bearer error="invalid_token", error_description="auth: token expired at …"
//
// A missing token gets no error code, only the description (RFC 6750 asks
// for no code when no credentials were sent); ErrBadRequest gets
// "invalid_request" and ErrTopicNotAllowed "insufficient_scope". The
// description is err's message with the characters RFC 6750 forbids in it
// replaced (" becomes ', \ becomes /, others ?) and cut to 300 bytes. Our
// messages never contain key material; do not pass errors that might. Safe
// for concurrent use.
func WWWAuthenticate(err error) string {
	if err == nil {
		return "Bearer"
	}
	var code string
	switch {
	case errors.Is(err, ErrMissing):
	case errors.Is(err, ErrBadRequest):
		code = "invalid_request"
	case errors.Is(err, ErrTopicNotAllowed):
		code = "insufficient_scope"
	default:
		code = "invalid_token"
	}
	var b strings.Builder
	b.WriteString("Bearer ")
	if code != "" {
		b.WriteString(`error="` + code + `", `)
	}
	b.WriteString(`error_description="`)
	b.WriteString(quotable(err.Error()))
	b.WriteString(`"`)
	return b.String()
}

// quotable returns s with only the characters RFC 6750 allows in
// error_description (%x20-21 / %x23-5B / %x5D-7E), cut to maxDescription.
func quotable(s string) string {
	if len(s) > maxDescription {
		s = s[:maxDescription-3] + "..."
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == '"':
			b[i] = '\''
		case c == '\\':
			b[i] = '/'
		case c < 0x20 || c > 0x7e:
			b[i] = '?'
		}
	}
	return string(b)
}
