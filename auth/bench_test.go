package auth

import (
	"testing"
	"time"
)

func BenchmarkVerify(b *testing.B) {
	for _, bb := range []struct {
		alg  string
		keys func(testing.TB) pemPair
	}{{"HS256", nil}, {"ES256", ec256PEM}, {"RS256", rsaPEM}} {
		b.Run(bb.alg, func(b *testing.B) {
			signKey, verifyKey := secret, secret
			if bb.keys != nil {
				p := bb.keys(b)
				signKey, verifyKey = p.private, p.public
			}
			tok := sign(b, TokenSpec{Alg: bb.alg, Key: signKey, Subscribe: []string{"https://example.com/users/42/{+rest}"}, TTL: time.Hour})
			v := newVerifier(b, Config{Keys: Keys{mustKey(b, bb.alg, verifyKey)}})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCanReceive(b *testing.B) {
	c, err := hsVerifier(b).Verify(sign(b, TokenSpec{Subscribe: []string{"https://example.com/users/42", "https://example.com/groups/{id}"}}))
	if err != nil {
		b.Fatal(err)
	}
	topics := []string{"https://example.com/groups/7"}
	b.ReportAllocs()
	for b.Loop() {
		c.CanReceive(topics)
	}
}
