package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
)

// KeySource provides the keys a Verifier checks signatures with. Implement
// it to plug in other sources (a JWKS document refreshed in the background,
// a key store); Keys is the static implementation. Methods may be called
// from many goroutines at once.
type KeySource interface {
	// Algorithms returns the JWS algorithms ("HS256", "RS256", "ES256", …)
	// the source has keys for; tokens signed with any other algorithm are
	// refused with ErrAlgorithm before any key is looked up.
	Algorithms() []string
	// VerificationKeys returns the keys that may have signed a token whose
	// header has this alg and kid (kid may be empty): []byte for HMAC,
	// *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey. The choice
	// must depend only on alg and kid, never on other token content. No
	// key means the signature is invalid.
	VerificationKeys(alg, kid string) []any
}

// Key is one verification key and the algorithm it is used with.
type Key struct {
	// Alg is the JWS algorithm, e.g. "HS256", "RS256", "ES256", "EdDSA".
	Alg string
	// ID, when not empty, is the key id: a token whose header names
	// another kid is not checked with this key. Tokens without a kid are
	// checked with every key of their algorithm.
	ID string
	// Material is the key: the secret ([]byte) for HS*, *rsa.PublicKey for
	// RS* and PS*, *ecdsa.PublicKey for ES*, ed25519.PublicKey for EdDSA.
	Material any
}

// Keys is a static KeySource: a list of keys, tried in order (several keys
// of one algorithm allow rotation). It is safe for concurrent use as long as
// nobody modifies it.
type Keys []Key

var _ KeySource = Keys(nil)

// Algorithms returns the distinct algorithms of the keys, in order.
func (ks Keys) Algorithms() []string {
	var algs []string
	for _, k := range ks {
		if !slices.Contains(algs, k.Alg) {
			algs = append(algs, k.Alg)
		}
	}
	return algs
}

// VerificationKeys returns the material of the keys of algorithm alg whose
// ID is empty or equal to kid (any ID when kid is empty).
func (ks Keys) VerificationKeys(alg, kid string) []any {
	var out []any
	for _, k := range ks {
		if k.Alg == alg && (k.ID == "" || kid == "" || k.ID == kid) {
			out = append(out, k.Material)
		}
	}
	return out
}

// supported lists the algorithms ParseKey and ParseSigningKey understand.
var supported = []string{
	"HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// ParseKey returns the verification Key for algorithm alg from material:
// for HS256, HS384 and HS512 the shared secret itself; for the RS*, PS*, ES*
// and EdDSA algorithms a PEM-encoded public key ("PUBLIC KEY" or "RSA PUBLIC
// KEY"), certificate, or private key (its public half is used). Reading a
// file named on the command line is the caller's job. RSA keys must have at
// least 2048 bits and EC keys the curve of their algorithm. Errors wrap
// ErrKey. Safe for concurrent use.
func ParseKey(alg, material string) (Key, error) {
	if err := checkAlg(alg); err != nil {
		return Key{}, err
	}
	if material == "" {
		return Key{}, newError(ErrKey, "auth: invalid key: the %s key is empty", alg)
	}
	if isHMAC(alg) {
		if strings.Contains(material, "-----BEGIN ") {
			// A public key used as an HMAC secret lets anyone who has the
			// public key sign tokens.
			return Key{}, newError(ErrKey, "auth: invalid key: the %s secret looks like a PEM key; use RS256, ES256 or EdDSA for PEM keys", alg)
		}
		return Key{Alg: alg, Material: []byte(material)}, nil
	}
	pub, err := parsePublicPEM(alg, material)
	if err != nil {
		return Key{}, err
	}
	if err := checkKeyFits(alg, pub); err != nil {
		return Key{}, err
	}
	return Key{Alg: alg, Material: pub}, nil
}

// ParseSigningKey returns the key that signs tokens with algorithm alg:
// []byte(material) for HS*, otherwise the PEM-encoded private key (PKCS #8
// "PRIVATE KEY", PKCS #1 "RSA PRIVATE KEY" or SEC 1 "EC PRIVATE KEY").
// Errors wrap ErrKey. Safe for concurrent use.
func ParseSigningKey(alg, material string) (any, error) {
	if err := checkAlg(alg); err != nil {
		return nil, err
	}
	if material == "" {
		return nil, newError(ErrKey, "auth: invalid key: the %s key is empty", alg)
	}
	if isHMAC(alg) {
		return []byte(material), nil
	}
	block, _ := pem.Decode([]byte(material))
	if block == nil {
		return nil, newError(ErrKey, "auth: invalid key: %s needs a PEM-encoded private key (-----BEGIN PRIVATE KEY-----); pass the PEM text itself, not a file name", alg)
	}
	priv, err := parsePrivateBlock(block)
	if err != nil {
		return nil, newError(ErrKey, "auth: invalid key: cannot read the %s private key: %v", alg, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, newError(ErrKey, "auth: invalid key: unsupported private key type %T", priv)
	}
	if err := checkKeyFits(alg, signer.Public()); err != nil {
		return nil, err
	}
	return priv, nil
}

// NewSecret returns a new random HS256 secret: 32 bytes from crypto/rand,
// base64url-encoded. The hub uses it when no key is configured. Safe for
// concurrent use.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// check reports whether k can verify tokens: a supported algorithm and
// material of the right type for it.
func (k Key) check() error {
	if err := checkAlg(k.Alg); err != nil {
		return err
	}
	if isHMAC(k.Alg) {
		if b, ok := k.Material.([]byte); !ok || len(b) == 0 {
			return newError(ErrKey, "auth: invalid key: an %s key must be a non-empty []byte secret, not %T", k.Alg, k.Material)
		}
		return nil
	}
	return checkKeyFits(k.Alg, k.Material)
}

func checkAlg(alg string) error {
	if !slices.Contains(supported, alg) {
		return newError(ErrKey, "auth: invalid key: unsupported algorithm %q (use one of %s)", alg, strings.Join(supported, ", "))
	}
	return nil
}

func isHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

func parsePublicPEM(alg, material string) (any, error) {
	block, _ := pem.Decode([]byte(material))
	if block == nil {
		return nil, newError(ErrKey, "auth: invalid key: %s needs a PEM-encoded public key (-----BEGIN PUBLIC KEY-----); pass the PEM text itself, not a file name", alg)
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		var priv any
		if priv, err = parsePrivateBlock(block); err == nil {
			if s, ok := priv.(crypto.Signer); ok {
				pub = s.Public()
			}
		}
	}
	if err != nil {
		return nil, newError(ErrKey, "auth: invalid key: cannot read the %s PEM block %q: %v", alg, block.Type, err)
	}
	return pub, nil
}

func parsePrivateBlock(block *pem.Block) (any, error) {
	switch block.Type {
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	}
	return nil, fmt.Errorf("unsupported PEM block type %q", block.Type)
}

// checkKeyFits checks that the public key pub suits algorithm alg.
func checkKeyFits(alg string, pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
			break
		}
		if k.N.BitLen() < 2048 {
			return newError(ErrKey, "auth: invalid key: the RSA key has %d bits; %s needs at least 2048", k.N.BitLen(), alg)
		}
		return nil
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want == nil {
			break
		}
		if k.Curve != want {
			return newError(ErrKey, "auth: invalid key: %s needs an EC key on curve %s, not %s", alg, want.Params().Name, k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		if alg == "EdDSA" {
			return nil
		}
	}
	return newError(ErrKey, "auth: invalid key: a %s key cannot be used with %s", keyType(pub), alg)
}

func keyType(k any) string {
	switch k.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}
