package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestParseKey(t *testing.T) {
	rsaKeys := rsaPEM(t)
	genEC()
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hub"}, NotBefore: now, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ec256.PublicKey, ec256)
	if err != nil {
		t.Fatal(err)
	}
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPEM := encodePair(t, small, &small.PublicKey).public

	tests := []struct {
		name, alg, material string
		wantErr             string // "" for success
	}{
		{"HS256 secret", "HS256", secret, ""},
		{"RS256 PKIX", "RS256", rsaKeys.public, ""},
		{"RS256 PKCS1", "RS256", pkcs1, ""},
		{"RS256 from private key", "RS256", rsaKeys.private, ""},
		{"PS256 PKIX", "PS256", rsaKeys.public, ""},
		{"ES256 PKIX", "ES256", ec256PEM(t).public, ""},
		{"ES256 certificate", "ES256", cert, ""},
		{"ES384 PKIX", "ES384", ec384PEM(t).public, ""},
		{"EdDSA PKIX", "EdDSA", edPEM(t).public, ""},
		{"empty secret", "HS256", "", "the HS256 key is empty"},
		{"PEM as HMAC secret", "HS256", rsaKeys.public, "looks like a PEM key"},
		{"unsupported algorithm", "XX256", secret, `unsupported algorithm "XX256"`},
		{"none algorithm", "none", secret, `unsupported algorithm "none"`},
		{"file name instead of PEM", "RS256", "/etc/ssehub/public.pem", "pass the PEM text itself, not a file name"},
		{"broken PEM body", "RS256", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "cannot read the RS256 PEM block"},
		{"unknown PEM type", "RS256", "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", `unsupported PEM block type "FOO"`},
		{"RSA key too small", "RS256", smallPEM, "has 1024 bits; RS256 needs at least 2048"},
		{"EC key on the wrong curve", "ES256", ec384PEM(t).public, "ES256 needs an EC key on curve P-256, not P-384"},
		{"EC key for RS256", "RS256", ec256PEM(t).public, "a ECDSA key cannot be used with RS256"},
		{"Ed25519 key for ES256", "ES256", edPEM(t).public, "a Ed25519 key cannot be used with ES256"},
		{"RSA key for EdDSA", "EdDSA", rsaKeys.public, "a RSA key cannot be used with EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.alg, tt.material)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				if k.Alg != tt.alg || k.Material == nil {
					t.Errorf("key = %+v", k)
				}
				return
			}
			if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want ErrKey containing %q", err, tt.wantErr)
			}
			for _, line := range strings.Split(tt.material, "\n") {
				if len(line) > 8 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line) {
					t.Errorf("error %q leaks key material", err)
				}
			}
		})
	}
}

func TestParseSigningKey(t *testing.T) {
	rsaKeys := rsaPEM(t)
	tests := []struct {
		name, alg, material string
		wantErr             string
	}{
		{"HS256", "HS256", secret, ""},
		{"RS256 PKCS8", "RS256", rsaKeys.private, ""},
		{"RS256 PKCS1", "RS256", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})), ""},
		{"ES256 SEC1", "ES256", func() string {
			genEC()
			der, _ := x509.MarshalECPrivateKey(ec256)
			return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
		}(), ""},
		{"EdDSA", "EdDSA", edPEM(t).private, ""},
		{"public key", "RS256", rsaKeys.public, `unsupported PEM block type "PUBLIC KEY"`},
		{"not PEM", "ES256", "key.pem", "needs a PEM-encoded private key"},
		{"wrong curve", "ES256", ec384PEM(t).private, "needs an EC key on curve P-256"},
		{"empty", "RS256", "", "key is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSigningKey(tt.alg, tt.material)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSigningKey: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want ErrKey containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if a == b {
		t.Error("two secrets are equal")
	}
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil || len(raw) != 32 {
		t.Errorf("secret %q is not 32 base64url bytes (%v)", a, err)
	}
	// It works as an HS256 key end to end.
	tok, err := NewToken(a, "HS256", []string{"*"}, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Config{Keys: Keys{mustKey(t, "HS256", a)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Error(err)
	}
}

func TestKeysAlgorithms(t *testing.T) {
	ks := Keys{{Alg: "HS256"}, {Alg: "RS256"}, {Alg: "HS256", ID: "b"}}
	if got := strings.Join(ks.Algorithms(), ","); got != "HS256,RS256" {
		t.Errorf("Algorithms() = %s", got)
	}
}
