package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const publishUsage = `Usage: ssehub publish --token JWT --topic T [--topic T2] [--data D | --data -] [flags] URL

Publishes one update to a hub (a form POST, as Mercure publishers do) and
prints its id. Flags may also come after the URL. The environment sets flags
too, with this command's prefix: --token is SSEHUB_PUBLISH_TOKEN.

Flags:
`

// runPublish implements `ssehub publish`: one form POST to a hub.
func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ssehub publish", publishUsage)
	var topics listFlag
	fs.Var(&topics, "topic", "topic of the update (repeatable; the first is canonical)")
	data := fs.String("data", "", `the update's data ("-" reads it from standard input)`)
	id := fs.String("id", "", "the update's id (default: assigned by the hub)")
	typ := fs.String("type", "", "the update's event type")
	retry := fs.Int("retry", 0, "reconnection time in milliseconds sent with the update")
	private := fs.Bool("private", false, "deliver only to subscribers authorized for the topic")
	token := fs.String("token", "", "publisher JWT (sent as Authorization: Bearer)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	positional, code, ok := parseCommand(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(positional) != 1 {
		fmt.Fprintln(stderr, "ssehub publish: exactly one hub URL is required, e.g. http://localhost:8080/.well-known/mercure")
		return 2
	}
	if len(topics) == 0 {
		fmt.Fprintln(stderr, "ssehub publish: --topic is required")
		return 2
	}
	body := *data
	if body == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(stderr, "ssehub publish: reading standard input:", err)
			return 1
		}
		body = string(b)
	}
	form := url.Values{"topic": topics, "data": {body}}
	if *id != "" {
		form.Set("id", *id)
	}
	if *typ != "" {
		form.Set("type", *typ)
	}
	if *retry > 0 {
		form.Set("retry", fmt.Sprint(*retry))
	}
	if *private {
		form.Set("private", "on")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, positional[0], strings.NewReader(form.Encode()))
	if err != nil {
		fmt.Fprintln(stderr, "ssehub publish:", err)
		return 2
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "ssehub publish:", err)
		return 1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "ssehub publish: %s: %s\n", resp.Status, strings.TrimSpace(string(b)))
		return 1
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(b)))
	return 0
}
