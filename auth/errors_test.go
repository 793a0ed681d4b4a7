package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("boom"), "other"},
		{newError(ErrMissing, "x"), "missing"},
		{newError(ErrBadRequest, "x"), "malformed"},
		{newError(ErrMalformed, "x"), "malformed"},
		{newError(ErrSignature, "x"), "signature"},
		{newError(ErrExpired, "x"), "expired"},
		{newError(ErrNotYetValid, "x"), "not_yet_valid"},
		{newError(ErrAlgorithm, "x"), "algorithm"},
		{newError(ErrType, "x"), "type"},
		{newError(ErrIssuer, "x"), "issuer"},
		{newError(ErrAudience, "x"), "audience"},
		{newError(ErrTopicNotAllowed, "x"), "topic"},
		{newError(ErrKey, "x"), "key"},
		{fmt.Errorf("publisher: %w", newError(ErrExpired, "x")), "expired"},
	}
	for _, tt := range tests {
		name := tt.want
		if name == "" {
			name = "nil"
		}
		t.Run(name, func(t *testing.T) {
			if got := Reason(tt.err); got != tt.want {
				t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestWWWAuthenticate(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, `Bearer`},
		{"missing has no error code", newError(ErrMissing, "auth: no token"), `Bearer error_description="auth: no token"`},
		{"bad request", newError(ErrBadRequest, "auth: bad header"), `Bearer error="invalid_request", error_description="auth: bad header"`},
		{"expired", newError(ErrExpired, "auth: token expired at 2026-03-01T09:01:00Z"), `Bearer error="invalid_token", error_description="auth: token expired at 2026-03-01T09:01:00Z"`},
		{"signature", ErrSignature, `Bearer error="invalid_token", error_description="auth: signature invalid (signed with a different key?)"`},
		{"topic", newError(ErrTopicNotAllowed, "auth: topic \"a\" not allowed"), `Bearer error="insufficient_scope", error_description="auth: topic 'a' not allowed"`},
		{"quoting", newError(ErrMalformed, "a\"b\\c\td\u00e9"), `Bearer error="invalid_token", error_description="a'b/c?d??"`},
		{"foreign error", errors.New("boom"), `Bearer error="invalid_token", error_description="boom"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WWWAuthenticate(tt.err); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("long message is cut", func(t *testing.T) {
		got := WWWAuthenticate(newError(ErrTopicNotAllowed, "auth: topic %q not allowed", strings.Repeat("x", 1000)))
		if len(got) > maxDescription+60 || !strings.HasSuffix(got, `..."`) {
			t.Errorf("got %d bytes: %s", len(got), got)
		}
	})
}

// TestErrorsNeverContainKeys checks the messages of every failure against
// the key material in use.
func TestErrorsNeverContainKeys(t *testing.T) {
	v := hsVerifier(t)
	tokens := []string{
		sign(t, TokenSpec{Key: otherSecret}),
		sign(t, TokenSpec{TTL: time.Minute, Now: now.Add(-time.Hour)}),
		sign(t, TokenSpec{Alg: "HS512"}),
		rawToken(`{"alg":"HS256"}`, `{"mercure":"x"}`, secret),
		"garbage",
	}
	for _, tok := range tokens {
		_, err := v.Verify(tok)
		if err == nil {
			t.Fatalf("token %q verified", tok)
		}
		for _, s := range []string{err.Error(), WWWAuthenticate(err)} {
			if strings.Contains(s, secret) || strings.Contains(s, otherSecret) {
				t.Errorf("%q contains a key", s)
			}
		}
	}
}
