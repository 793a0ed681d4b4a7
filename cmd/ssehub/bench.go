package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ssehub/ssehub/internal/bench"
)

// runBench implements `ssehub bench`: a load generator for a hub (or any
// SSE endpoint). It prints a progress line per second on stderr, then a
// summary (or JSON) on stdout. Exit status: 0 after a complete run, 1 when
// the run stopped early or no subscriber connected or no publish was
// acknowledged, 2 for bad flags, 3 with --fail-on-loss when an event was
// lost, duplicated or reordered or a connection failed or ended.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ssehub bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: ssehub bench [flags] [URL]

Opens --subscribers SSE connections to URL, publishes --rate events/s for
--duration over --topics topics, and reports connections, losses,
duplicates, reordering, latency, and the hub's RSS and CPU (--hub-pid).

Examples:
  ssehub bench --subscribers 2000 --rate 10 --key SECRET --hub-pid $(pgrep -n ssehub)
  ssehub bench --mode plain --url 'http://127.0.0.1/sub/{topic}' \
      --publish-url 'http://127.0.0.1/pub?id={topic}' --topic-prefix bench- --subscribers 1000

Reconnect storm (--storm): 1,000 clients, each on its own topic, miss 10
events that sit behind 200,000 others and come back at once, while 1,000
control subscribers get 50 events/s; the report gives the catch-up times
from the reconnect moment, the hub's CPU meanwhile and the control group's
latency:
  ssehub bench --key SECRET --subscribers 1000 --topics 100 --rate 50 --duration 60s \
      --storm 1000 --storm-missed 10 --storm-behind 200000 --concurrency 64 --fail-on-loss

Hub restart (--reconnect): subscribers come back with Last-Event-ID after
their stream ends; publishes refused meanwhile are errors, not losses.

Durable Streams (--mode durable-streams): token streaming. Creates --topics
streams (PUT, text/plain) under the base URL, one SSE reader per stream
(GET ?offset=-1&live=sse, resuming from the last control event's offset
when a response ends), then appends --payload-byte chunks (POST) at --rate
appends/s over all streams, each stream's one after the other, over
--concurrency keep-alive connections. 1,000 streams x 25 appends/s:
  ssehub bench --mode durable-streams --url http://127.0.0.1:8080/v1/stream/ \
      --topics 1000 --rate 25000 --payload 20 --concurrency 200 --duration 30s

Flags:
`)
		fs.PrintDefaults()
	}
	var c bench.Config
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080/.well-known/mercure", "subscribe URL (plain mode: \"{topic}\" is replaced by the topic; durable-streams mode: the streams' base URL, default http://127.0.0.1:8080/v1/stream/)")
	fs.StringVar(&c.Mode, "mode", bench.ModeSSEHub, "ssehub (Mercure: ?topic= and form publishes to the same URL), plain (URL templates, e.g. nginx+nchan) or durable-streams (a stream per topic: appends and SSE reads)")
	fs.StringVar(&c.PublishURL, "publish-url", "", "publish URL (default: --url in ssehub mode); \"{topic}\" is replaced by the topic")
	fs.StringVar(&c.PublishFormat, "publish-format", "", "publish body: form (fields topic and data; default in ssehub mode) or raw (the data as body; default in plain mode)")
	fs.IntVar(&c.Subscribers, "subscribers", 100, "subscriber connections (durable-streams mode: default one per stream)")
	fs.IntVar(&c.Topics, "topics", 1, "topics (durable-streams mode: streams); subscriber i is on topic i mod topics")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", "", "topic names are this prefix followed by 0, 1, … (default bench/; durable-streams mode: bench-<start time>/, new streams every run)")
	fs.BoolVar(&c.SubscribeAll, "all", false, "every subscriber subscribes to every topic (topic=* in ssehub mode)")
	fs.Float64Var(&c.Rate, "rate", 10, "publishes (appends) per second, over all topics")
	fs.IntVar(&c.Payload, "payload", 100, "bytes of data per event or append (at least its ~20-byte header)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "length of the publish phase")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "publish requests in flight at most (a topic's publishes are sequential)")
	fs.DurationVar(&c.PublishTimeout, "publish-timeout", 10*time.Second, "timeout of one publish request")
	fs.Float64Var(&c.ConnectRate, "connect-rate", 2000, "new subscriber connections per second")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 10*time.Second, "timeout of one connection's dial and response header")
	fs.StringVar(&c.SourceAddrs, "source-addrs", "auto", "local addresses of subscribers: auto (one per 20,000 from 127.0.0.2 when the hub is on loopback), none, a count, or a comma-separated list")
	fs.DurationVar(&c.Settle, "settle", 2*time.Second, "pause after connecting, before the idle RSS is read and publishing starts")
	fs.DurationVar(&c.Drain, "drain", 5*time.Second, "longest wait for the last deliveries after publishing")
	fs.IntVar(&c.HubPID, "hub-pid", 0, "the hub's process id, to report its RSS and CPU time from /proc")
	fs.StringVar(&c.Token, "token", "", "publisher JWT (Authorization: Bearer)")
	key := fs.String("key", "", "publisher JWT key: sign an HS256 token with {\"mercure\":{\"publish\":[\"*\"]}} (instead of --token)")
	fs.StringVar(&c.SubscriberToken, "sub-token", "", "subscriber JWT (Authorization: Bearer), when the hub does not allow anonymous subscribers")
	subKey := fs.String("sub-key", "", "subscriber JWT key: sign an HS256 token with {\"mercure\":{\"subscribe\":[\"*\"]}} (instead of --sub-token)")
	fs.IntVar(&c.ResumeMissed, "resume-missed", 0, "resume scenario: one extra subscriber misses this many events and reconnects with Last-Event-ID (0: off)")
	fs.DurationVar(&c.ResumeTimeout, "resume-timeout", 10*time.Second, "bound of each wait of the resume scenario")
	fs.IntVar(&c.Storm, "storm", 0, "reconnect storm: this many extra subscribers get a Last-Event-ID, miss the fill, and reconnect all at once one second into the publish phase (0: off)")
	fs.IntVar(&c.StormTopics, "storm-topics", 0, "exact topics of the storm's subscribers (default: one each)")
	fs.IntVar(&c.StormMissed, "storm-missed", 0, "events each storm topic gets while its subscribers are away (default 10)")
	fs.IntVar(&c.StormBehind, "storm-behind", 0, "events published on other topics before the missed ones, so that the missed ones sit behind them in the history")
	fs.IntVar(&c.StormBehindTopics, "storm-behind-topics", 0, "topics of the --storm-behind events, which nobody subscribes to (default 1000)")
	fs.DurationVar(&c.StormTimeout, "storm-timeout", 60*time.Second, "bound of the wait for the storm's markers, and for every storm subscriber to catch up")
	fs.BoolVar(&c.Reconnect, "reconnect", false, "subscribers whose stream ends reconnect with Last-Event-ID like a browser (retry: field, then backoff with jitter): the run survives a hub restart")
	fs.DurationVar(&c.ReconnectMaxBackoff, "reconnect-max-backoff", 5*time.Second, "with --reconnect: longest wait between failed reconnection attempts")
	fs.DurationVar(&c.MaxTime, "max-time", 0, "bound of the whole run (default: the sum of the phases' bounds plus 30s)")
	progress := fs.Duration("progress", time.Second, "interval of the progress lines on stderr (0: none)")
	jsonOnly := fs.Bool("json", false, "print only the JSON report on stdout")
	jsonOut := fs.String("json-out", "", "also write the JSON report to this file")
	failOnLoss := fs.Bool("fail-on-loss", false, "exit 3 when an event was missing, duplicated or out of order, a connection failed or ended, or a storm subscriber did not catch up")
	positional, code, ok := parseCommand(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if c.Settle == 0 {
		c.Settle = time.Nanosecond // bench.Config takes 0 for its 2s default
	}
	if c.Mode == bench.ModeDurableStreams {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if !given["url"] {
			c.URL = "http://127.0.0.1:8080/v1/stream/"
		}
		if !given["subscribers"] {
			c.Subscribers = c.Topics
		}
	}
	switch len(positional) {
	case 0:
	case 1:
		c.URL = positional[0]
	default:
		fmt.Fprintln(stderr, "ssehub bench: at most one URL")
		return 2
	}
	if *key != "" {
		if c.Token != "" {
			fmt.Fprintln(stderr, "ssehub bench: give --token or --key, not both")
			return 2
		}
		tok, err := bench.SignToken([]byte(*key), []string{"*"}, nil)
		if err != nil {
			fmt.Fprintln(stderr, "ssehub bench:", err)
			return 2
		}
		c.Token = tok
	}
	if *subKey != "" {
		if c.SubscriberToken != "" {
			fmt.Fprintln(stderr, "ssehub bench: give --sub-token or --sub-key, not both")
			return 2
		}
		tok, err := bench.SignToken([]byte(*subKey), nil, []string{"*"})
		if err != nil {
			fmt.Fprintln(stderr, "ssehub bench:", err)
			return 2
		}
		c.SubscriberToken = tok
	}
	if *progress > 0 {
		c.Progress, c.ProgressInterval = stderr, *progress
	}
	if _, err := bench.RaiseFileLimit(); err != nil {
		fmt.Fprintln(stderr, "ssehub bench: raising the open file limit:", err)
	}

	rep, err := bench.Run(ctx, c)
	if rep == nil {
		fmt.Fprintln(stderr, "ssehub", err) // "ssehub bench: …"
		return 2
	}
	js, jerr := json.MarshalIndent(rep, "", "  ")
	if jerr != nil {
		fmt.Fprintln(stderr, "ssehub bench:", jerr)
		return 1
	}
	js = append(js, '\n')
	if *jsonOut != "" {
		if werr := os.WriteFile(*jsonOut, js, 0o644); werr != nil {
			fmt.Fprintln(stderr, "ssehub bench:", werr)
			return 1
		}
	}
	if *jsonOnly {
		stdout.Write(js)
	} else {
		rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "ssehub", err)
		return 1
	}
	if rep.Connections.Attempted > 0 && rep.Connections.Established == 0 {
		fmt.Fprintln(stderr, "ssehub bench: no subscriber could connect")
		return 1
	}
	if rep.Publish.Scheduled > 0 && rep.Publish.Acked == 0 {
		fmt.Fprintln(stderr, "ssehub bench: no publish was acknowledged")
		return 1
	}
	if *failOnLoss {
		d, cn := rep.Delivery, rep.Connections
		if d.Missing+d.Duplicated+d.OutOfOrder+cn.Failed+cn.EndedEarly > 0 {
			return 3
		}
		if st := rep.Storm; st != nil && (st.Missing+st.Duplicated+st.OutOfOrder > 0 || st.Error != "" ||
			st.Primed < int64(st.Subscribers) || st.CaughtUp < st.Primed) {
			return 3
		}
		if rc := rep.Reconnect; rc != nil && rc.NotCaughtUp > 0 {
			return 3
		}
	}
	return 0
}
