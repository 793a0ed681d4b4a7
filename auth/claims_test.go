package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/ssehub/ssehub/topic"
)

func TestCanPublish(t *testing.T) {
	tests := []struct {
		name     string
		publish  []string
		topics   []string
		wantErr  bool
		contains string
	}{
		{"wildcard", []string{"*"}, []string{"a", "b"}, false, ""},
		{"exact", []string{"https://example.com/a"}, []string{"https://example.com/a"}, false, ""},
		{"template", []string{"https://example.com/books/{id}"}, []string{"https://example.com/books/1", "https://example.com/books/2"}, false, ""},
		{"every topic must match", []string{"https://example.com/books/{id}"}, []string{"https://example.com/books/1", "https://example.com/users/1"}, true, `topic "https://example.com/users/1" not allowed`},
		{"exact refuses others", []string{"https://example.com/a"}, []string{"https://example.com/b"}, true, `topic "https://example.com/b" not allowed`},
		{"no publish claim", nil, []string{"a"}, true, "grants no publish rights"},
		{"malformed template matches itself only", []string{"https://example.com/{id"}, []string{"https://example.com/{id"}, false, ""},
		{"malformed template matches nothing else", []string{"https://example.com/{id"}, []string{"https://example.com/1"}, true, "not allowed"},
	}
	cache := topic.NewCache(16)
	v := hsVerifier(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verified, err := v.Verify(sign(t, TokenSpec{Publish: tt.publish}))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				kind   string
				claims *Claims
			}{{"verified", verified}, {"hand-made", &Claims{Publish: tt.publish}}} {
				err := c.claims.CanPublish(tt.topics, cache)
				if (err != nil) != tt.wantErr {
					t.Fatalf("%s: CanPublish(%q) = %v, want error %v", c.kind, tt.topics, err, tt.wantErr)
				}
				if err != nil && (!errors.Is(err, ErrTopicNotAllowed) || !strings.Contains(err.Error(), tt.contains)) {
					t.Errorf("%s: error %q, want ErrTopicNotAllowed containing %q", c.kind, err, tt.contains)
				}
			}
		})
	}
	t.Run("no claims", func(t *testing.T) {
		var c *Claims
		if err := c.CanPublish([]string{"a"}, nil); !errors.Is(err, ErrMissing) {
			t.Errorf("nil Claims: %v, want ErrMissing", err)
		}
	})
}

func TestCanReceive(t *testing.T) {
	tests := []struct {
		name      string
		claims    *Claims
		topics    []string
		wantAllow bool
	}{
		{"anonymous", nil, []string{"a"}, false},
		{"no subscribe claim", &Claims{}, []string{"a"}, false},
		{"wildcard", &Claims{Subscribe: []string{"*"}}, []string{"a"}, true},
		{"one topic of several", &Claims{Subscribe: []string{"https://example.com/users/42"}}, []string{"https://example.com/books/1", "https://example.com/users/42"}, true},
		{"template", &Claims{Subscribe: []string{"https://example.com/users/{id}/inbox"}}, []string{"https://example.com/users/42/inbox"}, true},
		{"template other user path", &Claims{Subscribe: []string{"https://example.com/users/{id}/inbox"}}, []string{"https://example.com/users/42/outbox"}, false},
		{"exact with braces", &Claims{SubscribeExact: []string{"https://example.com/users/{id}"}}, []string{"https://example.com/users/42"}, false},
		{"exact with braces itself", &Claims{SubscribeExact: []string{"https://example.com/users/{id}"}}, []string{"https://example.com/users/{id}"}, true},
		{"publish does not grant receive", &Claims{Publish: []string{"*"}}, []string{"a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.claims.CanReceive(tt.topics); got != tt.wantAllow {
				t.Errorf("CanReceive(%q) = %v, want %v", tt.topics, got, tt.wantAllow)
			}
		})
	}
}

func TestVerifiedClaimsAreCompiledOnce(t *testing.T) {
	c, err := hsVerifier(t).Verify(sign(t, TokenSpec{Subscribe: []string{"https://example.com/{id}"}, Publish: []string{"*"}}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SubscribeSet(nil) != c.SubscribeSet(nil) || c.PublishSet(nil) != c.PublishSet(nil) {
		t.Error("verified claims compile their selectors at each call")
	}
}
