package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/ssehub/ssehub/auth"
)

func ExampleVerifier() {
	key, err := auth.ParseKey("HS256", "!ChangeThisMercureHubJWTSecretKey!")
	if err != nil {
		panic(err)
	}
	publishers, err := auth.NewVerifier(auth.Config{Keys: auth.Keys{key}})
	if err != nil {
		panic(err)
	}

	token, err := auth.NewToken("!ChangeThisMercureHubJWTSecretKey!", "HS256",
		[]string{"https://example.com/books/{id}"}, nil, time.Hour)
	if err != nil {
		panic(err)
	}
	claims, err := publishers.Verify(token)
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Publish)
	fmt.Println(claims.CanPublish([]string{"https://example.com/books/1"}, nil))
	fmt.Println(claims.CanPublish([]string{"https://example.com/users/1"}, nil))
	// Output:
	// [https://example.com/books/{id}]
	// <nil>
	// auth: topic "https://example.com/users/1" not allowed: no selector of the token's publish claim matches it
}

func ExampleVerifier_expired() {
	key, _ := auth.ParseKey("HS256", "!ChangeThisMercureHubJWTSecretKey!")
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	v, _ := auth.NewVerifier(auth.Config{Keys: auth.Keys{key}, Now: func() time.Time { return now }})

	token, _ := auth.TokenSpec{
		Key:       "!ChangeThisMercureHubJWTSecretKey!",
		Subscribe: []string{"*"},
		TTL:       time.Minute,
		Now:       now.Add(-time.Hour),
	}.Sign()
	_, err := v.Verify(token)
	fmt.Println(err)
	fmt.Println(auth.Reason(err))
	fmt.Println(auth.WWWAuthenticate(err))
	// Output:
	// auth: token expired at 2026-03-01T09:01:00Z (it is now 2026-03-01T10:00:00Z)
	// expired
	// Bearer error="invalid_token", error_description="auth: token expired at 2026-03-01T09:01:00Z (it is now 2026-03-01T10:00:00Z)"
}

func ExampleTokenFromRequest() {
	r := httptest.NewRequest("GET", "/.well-known/mercure?topic=a&authorization=from.the.query", nil)
	r.Header.Set("Authorization", "Bearer from.the.header")
	token, source, err := auth.TokenFromRequest(r, "")
	fmt.Println(token, source, err)

	r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	_, _, err = auth.TokenFromRequest(r, "")
	fmt.Println(err)
	// Output:
	// from.the.header header <nil>
	// auth: the Authorization header uses the "Basic" scheme; send "Authorization: Bearer <token>"
}

func ExampleClaims_CanReceive() {
	key, _ := auth.ParseKey("HS256", "!ChangeThisMercureHubJWTSecretKey!")
	subscribers, _ := auth.NewVerifier(auth.Config{Keys: auth.Keys{key}})
	token, _ := auth.NewToken("!ChangeThisMercureHubJWTSecretKey!", "", nil,
		[]string{"https://example.com/users/42/{+rest}"}, time.Hour)
	claims, _ := subscribers.Verify(token)

	// Private updates go only to subscribers whose claim matches a topic.
	fmt.Println(claims.CanReceive([]string{"https://example.com/users/42/inbox/7"}))
	fmt.Println(claims.CanReceive([]string{"https://example.com/users/43/inbox/7"}))
	// Output:
	// true
	// false
}

func ExampleNewJWKS() {
	// An issuer's JWKS endpoint (Keycloak, Auth0, …); here a local one with
	// one Ed25519 key whose kid is "2026-03".
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	jwk, _ := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "2026-03", USE: jwkset.UseSig}})
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	}))
	defer issuer.Close()

	keys, err := auth.NewJWKS(auth.JWKSOptions{URL: issuer.URL})
	if err != nil {
		panic(err)
	}
	defer keys.Close()
	publishers, _ := auth.NewVerifier(auth.Config{Keys: keys})

	p8, _ := x509.MarshalPKCS8PrivateKey(priv)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}))
	for _, kid := range []string{"2026-03", "made-up"} {
		token, _ := auth.TokenSpec{Alg: "EdDSA", Key: privPEM, KeyID: kid, Publish: []string{"*"}}.Sign()
		if _, err := publishers.Verify(token); err != nil {
			fmt.Printf("kid %s: refused (%s)\n", kid, auth.Reason(err))
		} else {
			fmt.Printf("kid %s: accepted\n", kid)
		}
	}
	// Output:
	// kid 2026-03: accepted
	// kid made-up: refused (signature)
}
