package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ssehub/ssehub/auth"
)

const tokenUsage = `Usage: ssehub token (--key KEY | --keys FILE) [--alg ALG] [--publish SELECTOR]... [--subscribe SELECTOR]... [flags]

Prints a JWT the hub accepts. --key is the hub's HS* secret, or for RS*, PS*,
ES* and EdDSA the PEM private key whose public key the hub has (--key
@path/to/private.pem reads a file). --keys reads the keys.json that
"ssehub serve" generates in its --data directory: the publisher secret, or
the subscriber secret when only --subscribe is given.

Examples:
  ssehub token --keys ssehub-data/keys.json --publish '*'
  ssehub token --alg RS256 --key @private.pem --kid 2026-01 --subscribe 'https://example.com/books/{id}'

Flags:
`

// runToken implements `ssehub token`: print a signed JWT.
func runToken(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ssehub token", tokenUsage)
	var (
		publish, subscribe, audience listFlag
		spec                         auth.TokenSpec
	)
	key := fs.String("key", "", "HS* secret, or PEM private key for RS*, PS*, ES* and EdDSA; @path reads it from a file")
	keys := fs.String("keys", "", "keys.json of \"ssehub serve\" (in its --data directory) to take the HS256 secret from, instead of --key")
	fs.StringVar(&spec.Alg, "alg", "HS256", "signing algorithm: HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA")
	fs.Var(&publish, "publish", "topic selector the token may publish to (repeatable; * for all)")
	fs.Var(&subscribe, "subscribe", "topic selector of the private updates the token may receive (repeatable)")
	fs.DurationVar(&spec.TTL, "ttl", 24*time.Hour, "lifetime of the token (0: never expires)")
	fs.StringVar(&spec.KeyID, "kid", "", "key id written in the token's header (the kid of the key in the hub's JWKS)")
	fs.StringVar(&spec.Issuer, "iss", "", "issuer claim (iss), for hubs started with --issuer")
	fs.Var(&audience, "aud", "audience claim (aud), for hubs started with --audience (repeatable)")
	fs.BoolVar(&spec.AccessToken, "access-token", false, `make an RFC 9068 access token (typ "at+jwt", authorization_details), for hubs started with --require-access-token`)
	if code, ok := parseFlagsOnly(fs, args, stdout, stderr); !ok {
		return code
	}
	if len(publish) == 0 && len(subscribe) == 0 {
		fmt.Fprintln(stderr, "ssehub token: give at least one --publish or --subscribe selector")
		return 2
	}
	switch {
	case *key != "" && *keys != "":
		fmt.Fprintln(stderr, "ssehub token: give --key or --keys, not both")
		return 2
	case *keys != "":
		b, err := os.ReadFile(*keys)
		if err != nil {
			fmt.Fprintln(stderr, "ssehub token: --keys:", err)
			return 1
		}
		var hk hubKeys
		if err := json.Unmarshal(b, &hk); err != nil || hk.Publisher == "" || hk.Subscriber == "" {
			fmt.Fprintf(stderr, "ssehub token: --keys %s is not the keys.json of \"ssehub serve\" ({\"publisher\": …, \"subscriber\": …})\n", *keys)
			return 1
		}
		spec.Key = hk.Publisher
		if len(publish) == 0 {
			spec.Key = hk.Subscriber
		}
	case *key != "":
		material, err := readKeyFlag("--key", *key)
		if err != nil {
			fmt.Fprintln(stderr, "ssehub token:", err)
			return 1
		}
		spec.Key = material
	default:
		fmt.Fprintln(stderr, "ssehub token: --key is required (the hub's publisher or subscriber key; @path reads a file), or --keys ssehub-data/keys.json")
		return 2
	}
	spec.Publish, spec.Subscribe, spec.Audience = publish, subscribe, audience
	tok, err := spec.Sign()
	if err != nil {
		fmt.Fprintln(stderr, "ssehub token:", keyHint("--key", *key, err))
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
