package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ssehub/ssehub/client"
	"github.com/ssehub/ssehub/sse"
)

const subscribeUsage = `Usage: ssehub subscribe [flags] URL

Prints the events of a Server-Sent Events stream as they arrive and
reconnects like a browser's EventSource (honouring retry: and sending
Last-Event-ID), with backoff after repeated failures.

Output: one block per event, the type and id then the data lines indented;
with --json exactly one JSON object per line: {"type","data","id"}, where id
is the last event id when the event was dispatched ("" if none).
Connection changes are reported on stderr.

Exit status: 0 after --count events, after --timeout, when the server
answers 204 No Content, or when interrupted; 1 when the server refuses the
stream (a status other than 200, a content type other than
text/event-stream: the reason is printed); 2 for a usage error.

Flags:
`

// headerFlag collects repeated --header 'Key: Value' flags.
type headerFlag [][2]string

func (h *headerFlag) String() string {
	var parts []string
	for _, kv := range *h {
		parts = append(parts, kv[0]+": "+kv[1])
	}
	return strings.Join(parts, ", ")
}

func (h *headerFlag) Set(v string) error {
	key, value, ok := strings.Cut(v, ":")
	key = strings.TrimSpace(key)
	if !ok || key == "" || strings.ContainsAny(key, " \t") {
		return fmt.Errorf("want 'Key: Value', got %q", v)
	}
	*h = append(*h, [2]string{key, strings.TrimSpace(value)})
	return nil
}

// jsonEvent is one line of --json output; the field order is the
// documented one.
type jsonEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// runSubscribe implements "ssehub subscribe" and returns the exit status.
// It stops when ctx is done (exit 0).
func runSubscribe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ssehub subscribe", subscribeUsage)
	asJSON := fs.Bool("json", false, "print one JSON object per event per line: {\"type\",\"data\",\"id\"}")
	count := fs.Int("count", 0, "exit after `N` events (0: no limit)")
	timeout := fs.Duration("timeout", 0, "stop after `D`, e.g. 30s (0: no limit)")
	lastID := fs.String("last-event-id", "", "resume after event `ID` (sent as Last-Event-ID)")
	var headers headerFlag
	fs.Var(&headers, "header", "add a request header `'Key: Value'` (repeatable), e.g. 'Authorization: Bearer …'")

	// Flags may come before or after the URL.
	positional, code, ok := parseCommand(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "ssehub subscribe: "+format+"\n", a...)
		fmt.Fprintln(stderr, `Run "ssehub subscribe -h" for usage.`)
		return 2
	}
	switch {
	case len(positional) == 0:
		return usageErr("the stream URL is missing")
	case len(positional) > 1:
		return usageErr("one URL expected, got %d: %q", len(positional), positional)
	case *count < 0:
		return usageErr("--count must not be negative")
	case *timeout < 0:
		return usageErr("--timeout must not be negative")
	}
	rawURL := positional[0]

	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	where := shortURL(rawURL)
	opts := []client.Option{
		client.WithLastEventID(*lastID),
		client.WithOnState(func(sc client.StateChange) {
			switch sc.State {
			case client.Open:
				fmt.Fprintf(stderr, "ssehub subscribe: connected to %s\n", where)
			case client.Reconnecting:
				reason := "the server ended the stream"
				if sc.Err != nil && sc.Err != io.EOF {
					reason = sc.Err.Error()
				}
				fmt.Fprintf(stderr, "ssehub subscribe: %s; reconnecting in %v\n", reason, sc.Delay.Round(time.Millisecond))
			}
		}),
	}
	for _, kv := range headers {
		opts = append(opts, client.WithHeader(kv[0], kv[1]))
	}
	c, err := client.New(rawURL, opts...)
	if err != nil {
		return usageErr("%v", err)
	}

	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	var buf []byte
	n := 0
	for ev, err := range c.Events(ctx) {
		if err != nil {
			if ctx.Err() != nil {
				return 0 // --timeout, or interrupted
			}
			fmt.Fprintf(stderr, "ssehub subscribe: %v\n", err)
			return 1
		}
		if *asJSON {
			err = enc.Encode(jsonEvent{Type: ev.Type, Data: ev.Data, ID: ev.ID})
		} else {
			buf = appendHuman(buf[:0], ev)
			_, err = stdout.Write(buf)
		}
		if err != nil {
			fmt.Fprintf(stderr, "ssehub subscribe: writing output: %v\n", err)
			return 1
		}
		if n++; *count > 0 && n >= *count {
			return 0
		}
	}
	if ctx.Err() == nil {
		fmt.Fprintln(stderr, "ssehub subscribe: the server answered 204 No Content: done")
	}
	return 0
}

// appendHuman formats an event for people: the type and id on one line,
// then each data line indented by two spaces. Control characters (a
// hostile stream could send terminal escapes) are shown escaped.
//
//	update id=42
//	  first line
//	  second line
func appendHuman(b []byte, ev sse.Event) []byte {
	b = appendPrintable(b, ev.Type)
	if ev.ID != "" {
		b = append(b, " id="...)
		b = appendPrintable(b, ev.ID)
	}
	b = append(b, '\n')
	if ev.Data == "" {
		return b
	}
	for line := range strings.SplitSeq(ev.Data, "\n") {
		b = append(b, "  "...)
		b = appendPrintable(b, line)
		b = append(b, '\n')
	}
	return b
}

// appendPrintable appends s with control characters other than tab
// escaped as in Go strings (\x1b, \u0085).
func appendPrintable(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r == '\t' || !unicode.IsControl(r):
			b = utf8.AppendRune(b, r)
		case r < 0x80:
			b = fmt.Appendf(b, `\x%02x`, r)
		default:
			b = fmt.Appendf(b, `\u%04x`, r)
		}
	}
	return b
}

// shortURL is the URL without its query (which may carry a token) for
// messages.
func shortURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}
