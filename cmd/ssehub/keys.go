package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/ssehub/ssehub/auth"
)

// roleConfig says how the tokens of one role (publisher or subscriber)
// are verified: with a key and its algorithm, or with a JWKS.
type roleConfig struct {
	Key     string // HS* secret or PEM public key; "@path" reads a file
	Alg     string // "" means HS256, or any asymmetric algorithm with JWKSURL
	JWKSURL string
}

// authConfig is the token verification part of serveConfig.
type authConfig struct {
	Publisher          roleConfig
	Subscriber         roleConfig
	Issuers            listFlag
	Audience           string
	RequireAccessToken bool
}

// authFlags adds the key and token flags to fs.
func authFlags(fs *flag.FlagSet, c *authConfig) {
	for _, r := range []struct {
		role string
		rc   *roleConfig
	}{{"publisher", &c.Publisher}, {"subscriber", &c.Subscriber}} {
		fs.StringVar(&r.rc.Key, r.role+"-jwt-key", "", "key that "+r.role+" tokens are verified with: the HS* secret, or for RS*, PS*, ES* and EdDSA the PEM public key itself; @path reads it from a file (default: an HS256 secret generated and kept in --data)")
		fs.StringVar(&r.rc.Alg, r.role+"-jwt-alg", "", "algorithm of --"+r.role+"-jwt-key: HS256 (default), HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA; with --"+r.role+"-jwks-url it restricts the accepted algorithm")
		fs.StringVar(&r.rc.JWKSURL, r.role+"-jwks-url", "", "verify "+r.role+" tokens with the keys of this JWKS (e.g. an OpenID Connect issuer's jwks_uri), selected by kid and refreshed in the background and on an unknown kid; instead of --"+r.role+"-jwt-key")
	}
	fs.Var(&c.Issuers, "issuer", "accept only tokens whose iss claim is one of these (comma-separated; default: any)")
	fs.StringVar(&c.Audience, "audience", "", "accept only tokens whose aud claim contains this, e.g. the hub's public URL (default: any)")
	fs.BoolVar(&c.RequireAccessToken, "require-access-token", false, `accept only RFC 9068 access tokens (JWT header typ "at+jwt"), as Mercure 1.0 (draft-08) asks`)
}

// mercureEnv are the environment variables of Mercure's own images that
// serve honours when its own SSEHUB_* variable is not set, so that a
// Mercure container's environment starts a hub with the same keys.
var mercureEnv = map[string]string{
	"publisher-jwt-key":  "MERCURE_PUBLISHER_JWT_KEY",
	"publisher-jwt-alg":  "MERCURE_PUBLISHER_JWT_ALG",
	"subscriber-jwt-key": "MERCURE_SUBSCRIBER_JWT_KEY",
	"subscriber-jwt-alg": "MERCURE_SUBSCRIBER_JWT_ALG",
}

// readKeyFlag returns the value of a key flag, or with "@path" the content
// of that file (one trailing line ending removed, as editors and echo add
// it).
func readKeyFlag(flagName, v string) (string, error) {
	path, ok := strings.CutPrefix(v, "@")
	if !ok {
		return v, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: cannot read the key file: %w", flagName, err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// keyHint adds to err, when the key flag's value v names an existing file
// instead of holding a PEM key, how to make ssehub read the file.
func keyHint(flagName, v string, err error) error {
	if !errors.Is(err, auth.ErrKey) || strings.HasPrefix(v, "@") || strings.Contains(v, "-----BEGIN") {
		return err
	}
	if st, serr := os.Stat(v); serr == nil && st.Mode().IsRegular() {
		return fmt.Errorf("%w (%s is a file: give %s @%s to read it)", err, v, flagName, v)
	}
	return err
}

func isHMAC(alg string) bool { return alg == "" || strings.HasPrefix(alg, "HS") }

// keyring is the verifiers of both roles, what they were made from, and
// the JWKS sources they use (stopped by close).
type keyring struct {
	pub, sub       *auth.Verifier
	pubSecret      string // the publisher's HS* secret, "" for other keys
	subSecret      string // the subscriber's HS* secret, "" for other keys
	generated      bool   // a secret was generated (see loadSecrets)
	jwks           []*auth.JWKS
	pubAlg, subAlg string
}

// newKeyring builds the verifiers that c asks for, generating the HS256
// secrets of roles given no key (see loadSecrets).
func newKeyring(c *serveConfig, logger *slog.Logger) (*keyring, error) {
	if c.LogURL != "" {
		for _, r := range []struct {
			role string
			rc   roleConfig
		}{{"publisher", c.Publisher}, {"subscriber", c.Subscriber}} {
			if r.rc.Key == "" && r.rc.JWKSURL == "" {
				return nil, fmt.Errorf("with --log, every hub of the deployment must verify the same tokens: set --%[1]s-jwt-key (or SSEHUB_%[2]s_JWT_KEY) or --%[1]s-jwks-url", r.role, strings.ToUpper(r.role))
			}
		}
	}
	secrets, err := loadSecrets(c)
	if err != nil {
		return nil, err
	}
	kr := &keyring{generated: secrets.Generated, pubAlg: c.Publisher.Alg, subAlg: c.Subscriber.Alg}
	if kr.pub, kr.pubSecret, err = kr.verifier(c, "publisher", c.Publisher, secrets.Publisher, logger); err == nil {
		kr.sub, kr.subSecret, err = kr.verifier(c, "subscriber", c.Subscriber, secrets.Subscriber, logger)
	}
	if err != nil {
		kr.close()
		return nil, err
	}
	return kr, nil
}

// verifier returns the verifier of one role and, for HS* keys, the secret.
func (kr *keyring) verifier(c *serveConfig, role string, rc roleConfig, key string, logger *slog.Logger) (*auth.Verifier, string, error) {
	var (
		src    auth.KeySource
		secret string
	)
	if rc.JWKSURL != "" {
		if rc.Key != "" {
			return nil, "", fmt.Errorf("--%[1]s-jwt-key and --%[1]s-jwks-url both set: give one of them", role)
		}
		var algs []string
		if rc.Alg != "" {
			algs = []string{rc.Alg}
		}
		j, err := auth.NewJWKS(auth.JWKSOptions{URL: rc.JWKSURL, Algorithms: algs, Logger: logger.With("role", role)})
		if err != nil {
			return nil, "", fmt.Errorf("--%s-jwks-url: %w", role, err)
		}
		kr.jwks = append(kr.jwks, j)
		src = j
	} else {
		alg := rc.Alg
		if alg == "" {
			alg = "HS256"
		}
		material, err := readKeyFlag("--"+role+"-jwt-key", key)
		if err != nil {
			return nil, "", err
		}
		k, err := auth.ParseKey(alg, material)
		if err != nil {
			return nil, "", fmt.Errorf("--%s-jwt-key: %w", role, keyHint("--"+role+"-jwt-key", key, err))
		}
		if isHMAC(alg) {
			secret = material
		}
		src = auth.Keys{k}
	}
	v, err := auth.NewVerifier(auth.Config{Keys: src, Issuers: c.Issuers, Audience: c.Audience, RequireAccessToken: c.RequireAccessToken})
	if err != nil {
		return nil, "", fmt.Errorf("--%s-jwt-key: %w", role, err)
	}
	return v, secret, nil
}

// close stops the JWKS refreshes. The verifiers stay usable with the keys
// they have.
func (kr *keyring) close() {
	for _, j := range kr.jwks {
		j.Close()
	}
}

// hubKeys are the key flags of both roles, with generated HS256 secrets
// for those not given; the JSON form is the keys.json file.
type hubKeys struct {
	Publisher  string `json:"publisher"`
	Subscriber string `json:"subscriber"`
	Generated  bool   `json:"-"`
}

// loadSecrets returns the configured keys, generating an HS256 secret for
// every role that has no key, no JWKS and an HS* algorithm. With durable
// history generated secrets are kept in the data directory (keys.json) so
// tokens stay valid across restarts.
func loadSecrets(c *serveConfig) (hubKeys, error) {
	k := hubKeys{Publisher: c.Publisher.Key, Subscriber: c.Subscriber.Key}
	var stored hubKeys
	path := filepath.Join(c.Data, "keys.json")
	durable := c.History != "memory"
	loaded, changed := false, false
	for _, p := range []struct {
		role        string
		rc          roleConfig
		dst, stored *string
	}{{"publisher", c.Publisher, &k.Publisher, &stored.Publisher}, {"subscriber", c.Subscriber, &k.Subscriber, &stored.Subscriber}} {
		if p.rc.Key != "" || p.rc.JWKSURL != "" {
			continue
		}
		if !isHMAC(p.rc.Alg) {
			return k, fmt.Errorf("--%[1]s-jwt-alg %[2]s needs a public key: set --%[1]s-jwt-key to the PEM public key (or @path/to/key.pem), or --%[1]s-jwks-url", p.role, p.rc.Alg)
		}
		if durable && !loaded {
			loaded = true
			if b, err := os.ReadFile(path); err == nil {
				if err := json.Unmarshal(b, &stored); err != nil {
					return k, fmt.Errorf("%s is corrupt (%v): fix or delete it to generate new keys", path, err)
				}
			} else if !errors.Is(err, os.ErrNotExist) {
				return k, fmt.Errorf("reading generated keys: %w", err)
			}
		}
		if *p.stored == "" {
			*p.stored = auth.NewSecret()
			changed = true
		}
		*p.dst = *p.stored
		k.Generated = true
	}
	if durable && changed {
		if err := os.MkdirAll(c.Data, 0o700); err != nil {
			return k, fmt.Errorf("creating --data directory: %w", err)
		}
		b, _ := json.MarshalIndent(stored, "", "  ")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return k, fmt.Errorf("saving generated keys: %w", err)
		}
	}
	return k, nil
}
