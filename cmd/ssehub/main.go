// Command ssehub is a real-time push server built on Server-Sent Events,
// speaking the Mercure protocol. Subcommands:
//
//	ssehub serve       run a hub
//	ssehub publish     publish an event
//	ssehub subscribe   print the events of a stream (the curl -N of SSE)
//	ssehub token       make a JWT for publishers or subscribers
//	ssehub bench       load-test a hub
//
// Run "ssehub <command> -h" for the flags of each. Every flag can also be
// set with an environment variable: serve's --history-size is
// SSEHUB_HISTORY_SIZE; the other commands have their name in the prefix
// (publish --token is SSEHUB_PUBLISH_TOKEN), so a hub's environment never
// configures them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `ssehub — a real-time push server built on Server-Sent Events (Mercure protocol)

Usage:
  ssehub serve     [flags]           run a hub (no flags needed to try it)
  ssehub publish   [flags] URL       publish an event (form POST with a token)
  ssehub subscribe [flags] URL       print the events of an SSE stream
  ssehub token     [flags]           make a JWT for publishers or subscribers
  ssehub bench     [flags] [URL]     load-test a hub (or any SSE server)
  ssehub version

Run "ssehub <command> -h" for a command's flags. Every flag may also be given
as an environment variable: serve --history-size is SSEHUB_HISTORY_SIZE,
publish --token is SSEHUB_PUBLISH_TOKEN (each command has its own prefix).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "subscribe":
		return runSubscribe(ctx, args[1:], stdout, stderr)
	case "publish":
		return runPublish(ctx, args[1:], stdout, stderr)
	case "token":
		return runToken(args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "ssehub", version())
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ssehub: unknown command %q\n\n%s", args[0], usage)
	return 2
}
