package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// validHS256 reports whether sig is the base64url HS256 signature of
// signing with secret.
func validHS256(signing, sig string) bool {
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return hmac.Equal(got, mac.Sum(nil))
}

// FuzzVerify feeds arbitrary tokens to Verify: it must never panic, must
// return either claims or an error wrapping one of the package's
// sentinels, and may accept only tokens whose HS256 signature by secret is
// valid (checked here independently).
func FuzzVerify(f *testing.F) {
	f.Add(sign(f, TokenSpec{Publish: []string{"*"}, Subscribe: []string{"a/{id}"}, TTL: time.Hour}))
	f.Add(sign(f, TokenSpec{AccessToken: true, Subscribe: []string{"*"}, Payload: map[string]int{"a": 1}}))
	f.Add(rawToken(`{"alg":"HS256","typ":"at+jwt"}`, `{"authorization_details":[{"type":"mercure","actions":["subscribe"],"topics":[{"match":"x/{y}"}],"payload":{}}]}`, secret))
	f.Add(rawToken(`{"alg":"HS256"}`, `{"mercure":{"publish":[{"match":"*"}, "b"]},"exp":1e30,"nbf":-1}`, secret))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("")
	v := hsVerifier(f)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			if Reason(err) == "other" {
				t.Fatalf("error %q wraps no sentinel", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q contains the key", err)
			}
			return
		}
		head, sig, _ := strings.Cut(token[strings.IndexByte(token, '.')+1:], ".")
		signing := token[:strings.IndexByte(token, '.')+1] + head
		if !validHS256(signing, sig) {
			t.Fatalf("accepted token %q has no valid signature", token)
		}
		// Exercise the authorization helpers on whatever was accepted.
		c.CanReceive([]string{"a/1", token})
		c.CanPublish([]string{"a/1"}, nil)
		c.PayloadFor("a/1")
	})
}
