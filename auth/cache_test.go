package auth

import (
	"errors"
	"testing"
	"time"
)

func TestVerifiedTokensAreCachedUntilTheyExpire(t *testing.T) {
	clock := now
	v := newVerifier(t, Config{Keys: Keys{mustKey(t, "HS256", secret)}, Now: func() time.Time { return clock }})
	tok := sign(t, TokenSpec{Publish: []string{"*"}, TTL: 90 * time.Second})

	first, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	clock = now.Add(30 * time.Second)
	if again, err := v.Verify(tok); err != nil || again != first {
		t.Fatalf("second Verify within the cache time: %p %v, want the cached %p", again, err, first)
	}
	clock = now.Add(70 * time.Second) // past the cache time: verified afresh
	if again, err := v.Verify(tok); err != nil || again == first {
		t.Fatalf("Verify after the cache time: %p %v, want fresh claims", again, err)
	}
	clock = now.Add(91 * time.Second) // past exp: never served from the cache
	if _, err := v.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("Verify after exp: %v, want ErrExpired", err)
	}
	// A failed verification is not cached: the same bad token fails again.
	bad := tok[:len(tok)-2] + "xx"
	for range 2 {
		if _, err := v.Verify(bad); !errors.Is(err, ErrSignature) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("tampered token: %v", err)
		}
	}
}
