package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"sync"
	"testing"
	"time"
)

// now is the fixed clock of the tests.
var now = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return now }

const (
	secret      = "test-secret-that-is-long-enough-for-hs256"
	otherSecret = "another-secret-that-is-long-enough-for-hs256"
)

// pemPair is a private key and its public key, PEM-encoded.
type pemPair struct{ private, public string }

func encodePair(t testing.TB, priv any, pub any) pemPair {
	t.Helper()
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemPair{
		private: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
		public:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})),
	}
}

// Keys are generated once per test binary: RSA 2048 takes a while.
var (
	rsaOnce  sync.Once
	rsaKey   *rsa.PrivateKey
	ecOnce   sync.Once
	ec256    *ecdsa.PrivateKey
	ec256b   *ecdsa.PrivateKey
	ec384    *ecdsa.PrivateKey
	edPublic ed25519.PublicKey
	edKey    ed25519.PrivateKey
)

func rsaPEM(t testing.TB) pemPair {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return encodePair(t, rsaKey, &rsaKey.PublicKey)
}

func genEC() {
	ecOnce.Do(func() {
		var err error
		if ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if ec256b, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		if edPublic, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

func ec256PEM(t testing.TB) pemPair  { genEC(); return encodePair(t, ec256, &ec256.PublicKey) }
func ec256bPEM(t testing.TB) pemPair { genEC(); return encodePair(t, ec256b, &ec256b.PublicKey) }
func ec384PEM(t testing.TB) pemPair  { genEC(); return encodePair(t, ec384, &ec384.PublicKey) }
func edPEM(t testing.TB) pemPair     { genEC(); return encodePair(t, edKey, edPublic) }

// mustKey is ParseKey that fails the test on error.
func mustKey(t testing.TB, alg, material string) Key {
	t.Helper()
	k, err := ParseKey(alg, material)
	if err != nil {
		t.Fatalf("ParseKey(%s): %v", alg, err)
	}
	return k
}

// newVerifier returns a Verifier with the fixed clock.
func newVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// hsVerifier accepts HS256 tokens signed with secret.
func hsVerifier(t testing.TB) *Verifier {
	return newVerifier(t, Config{Keys: Keys{mustKey(t, "HS256", secret)}})
}

// sign signs spec, with the fixed clock unless spec.Now is set.
func sign(t testing.TB, spec TokenSpec) string {
	t.Helper()
	if spec.Now.IsZero() {
		spec.Now = now
	}
	if spec.Key == "" {
		spec.Key = secret
	}
	tok, err := spec.Sign()
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

// rawToken builds an HS256-signed token from literal header and claims
// JSON, to test what TokenSpec cannot produce.
func rawToken(header, claims, key string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}
