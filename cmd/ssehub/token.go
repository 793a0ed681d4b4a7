package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ssehub/ssehub/auth"
)

// runToken implements `ssehub token`: print a signed JWT.
func runToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ssehub token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ssehub token --key SECRET [--publish SELECTOR]... [--subscribe SELECTOR]... [--ttl 24h]")
		fs.PrintDefaults()
	}
	var publish, subscribe listFlag
	key := fs.String("key", "", "HS256 secret, or a PEM private key (or @file to read it from a file) for RS256/ES256")
	alg := fs.String("alg", "HS256", "signing algorithm: HS256, RS256 or ES256")
	fs.Var(&publish, "publish", "topic selector the token may publish to (repeatable; * for all)")
	fs.Var(&subscribe, "subscribe", "topic selector of the private updates the token may receive (repeatable)")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token (0: never expires)")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *key == "" {
		fmt.Fprintln(stderr, "ssehub token: --key is required (the hub's publisher or subscriber key)")
		return 2
	}
	if len(publish) == 0 && len(subscribe) == 0 {
		fmt.Fprintln(stderr, "ssehub token: give at least one --publish or --subscribe selector")
		return 2
	}
	material := *key
	if len(material) > 1 && material[0] == '@' {
		b, err := os.ReadFile(material[1:])
		if err != nil {
			fmt.Fprintln(stderr, "ssehub token:", err)
			return 1
		}
		material = string(b)
	}
	tok, err := auth.NewToken(material, *alg, publish, subscribe, *ttl)
	if err != nil {
		fmt.Fprintln(stderr, "ssehub token:", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
