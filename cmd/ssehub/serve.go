package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/h1"
	"github.com/ssehub/ssehub/log/boltlog"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/log/natslog"
	"github.com/ssehub/ssehub/log/redislog"
	"github.com/ssehub/ssehub/presence"
	"github.com/ssehub/ssehub/streams"
	"github.com/ssehub/ssehub/web"
)

// serveConfig is everything `ssehub serve` can be told.
type serveConfig struct {
	Addr              string
	Data              string
	History           string
	LogURL            string
	LogName           string
	NoDashboard       bool
	HistorySize       int
	HistoryAge        time.Duration
	Anonymous         bool
	AnonymousWrites   bool
	StreamsMaxBody    int64
	StreamsPoll       time.Duration
	StreamsMaxMsgs    int
	Subscriptions     bool
	SubscriptionsRate float64
	SubscriptionsHist int
	SubscriptionsMax  int
	Heartbeat         time.Duration
	Retry             time.Duration
	CORSOrigins       listFlag
	MaxBody           int64
	WriteTimeout      time.Duration
	ShutdownTimeout   time.Duration
	LogLevel          string
	LogFormat         string
	NoSync            bool
	CommitDelay       time.Duration
	QueueEvents       int
	QueueBytes        int
	ReadHeaderTimeout time.Duration
	LeanHTTP          bool
	opsConfig         // config file, metrics, TLS, limits (ops.go)
	authConfig        // keys, issuer, audience (keys.go)
}

func serveFlags(stderr io.Writer) (*flag.FlagSet, *serveConfig) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("ssehub serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printServeUsage(fs) }
	fs.StringVar(&c.Addr, "addr", "localhost:8080", "address to listen on (host:port; use :8080 for every interface)")
	fs.StringVar(&c.Data, "data", "ssehub-data", "directory for the durable history (bbolt) and generated keys")
	fs.StringVar(&c.History, "history", "bolt", "where history lives: bolt (durable, in --data) or memory (lost on restart)")
	fs.StringVar(&c.LogURL, "log", "", "shared log for a cluster of hubs: redis://host:6379/0 (Redis Streams) or nats://host:4222 (NATS JetStream); overrides --history")
	fs.StringVar(&c.LogName, "log-name", "ssehub", "with --log: the Redis key prefix or the JetStream stream name (upper-cased) that hubs of one deployment share")
	fs.BoolVar(&c.NoDashboard, "no-dashboard", false, "do not serve the dashboard page at /")
	fs.IntVar(&c.HistorySize, "history-size", 1_000_000, "keep at most this many events in history (0: no count limit)")
	fs.DurationVar(&c.HistoryAge, "history-age", 0, "drop history events older than this, e.g. 24h (0: no age limit)")
	fs.BoolVar(&c.Anonymous, "anonymous", false, "let subscribers without a token receive public updates")
	fs.BoolVar(&c.AnonymousWrites, "anonymous-writes", false, "let anyone without a token create, append to, close and delete Durable Streams at /v1/stream/ (development and conformance tests only)")
	fs.Int64Var(&c.StreamsMaxBody, "streams-max-body", 8<<20, "largest Durable Streams create or append request body in bytes")
	fs.IntVar(&c.StreamsMaxMsgs, "streams-max-messages", 10_000, "most messages one Durable Streams append to an application/json stream may carry (each is an event the history's retention counts)")
	fs.DurationVar(&c.StreamsPoll, "streams-poll-timeout", 20*time.Second, "a Durable Streams long-poll read with no new data answers 204 after this")
	fs.BoolVar(&c.Subscriptions, "subscriptions", false, "publish subscription events and serve the subscriptions API (presence) at /.well-known/mercure/subscriptions")
	fs.IntVar(&c.SubscriptionsHist, "subscriptions-history", 100_000, "with --subscriptions, keep at most this many of the hub's own events (subscription events, heartbeats) in history, apart from --history-size, which then counts application events only (0: one budget for both, as before)")
	fs.Float64Var(&c.SubscriptionsRate, "subscriptions-rate", presence.DefaultRate, "with --subscriptions, most subscription start events written to the log per second (more wait; one that ends while waiting writes nothing; negative: no limit)")
	fs.IntVar(&c.SubscriptionsMax, "subscriptions-max-selectors", presence.DefaultMaxSelectors, "with --subscriptions, most selectors of one subscribe request announced (the rest are not listed; negative: no limit)")
	fs.DurationVar(&c.Heartbeat, "heartbeat", 15*time.Second, "send a comment on idle streams this often, so proxies keep them open (0: never)")
	fs.DurationVar(&c.Retry, "retry", 3*time.Second, "reconnection time sent to clients at the start of each stream")
	fs.Var(&c.CORSOrigins, "cors-origins", "origins allowed to subscribe and publish from a browser page on another origin (comma-separated, * for any)")
	fs.Int64Var(&c.MaxBody, "max-body", 1<<20, "largest publish request body in bytes")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 10*time.Second, "disconnect a subscriber whose write takes longer than this")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM, wait at most this long for requests to finish")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&c.CommitDelay, "commit-delay", 0, "with bolt history, let each group commit wait up to this long (e.g. 2ms) for more publishes to share its fsync: less CPU per publish when they come paced, at the price of that much latency (0: commit at once)")
	fs.BoolVar(&c.NoSync, "no-sync", false, "do not fsync history commits (faster, loses the last events on a power failure; not on a crash)")
	fs.IntVar(&c.QueueEvents, "queue-events", 4096, "a subscriber with more undelivered events than this is disconnected (it resumes from history)")
	fs.IntVar(&c.QueueBytes, "queue-bytes", 4<<20, "a subscriber with more undelivered bytes than this is disconnected (it resumes from history)")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time a client has to send its request headers")
	fs.BoolVar(&c.LeanHTTP, "lean-http", true, "serve the POSTs (publishes, Durable Streams appends) of plain HTTP/1.1 keep-alive connections with ssehub's own request loop instead of net/http's: less CPU per request; false: net/http serves everything")
	authFlags(fs, &c.authConfig)
	opsFlags(fs, &c.opsConfig)
	return fs, c
}

// serveGroups orders the flags of "serve -h" by purpose. Every flag is in
// one group (a test checks).
var serveGroups = []struct {
	title string
	flags []string
}{
	{"Network and protocol", []string{"addr", "tls-cert", "tls-key", "h2c", "lean-http", "cors-origins", "anonymous", "anonymous-writes", "streams-poll-timeout", "subscriptions", "subscriptions-history", "subscriptions-rate", "subscriptions-max-selectors", "heartbeat", "retry", "no-dashboard"}},
	{"Storage and history", []string{"data", "history", "history-size", "history-age", "no-sync", "commit-delay", "log", "log-name"}},
	{"Auth (keys and tokens)", []string{"publisher-jwt-key", "publisher-jwt-alg", "publisher-jwks-url", "subscriber-jwt-key", "subscriber-jwt-alg", "subscriber-jwks-url", "issuer", "audience", "require-access-token"}},
	{"Limits and timeouts", []string{"max-connections", "max-connections-per-ip", "max-topics", "max-selector-cost", "max-publish-topics", "max-body", "streams-max-body", "streams-max-messages", "max-event-bytes", "max-header-bytes", "max-stream-input", "publish-rate", "publish-burst", "queue-events", "queue-bytes", "replay-limit", "replay-concurrency", "replay-bytes", "read-header-timeout", "read-timeout", "write-timeout", "idle-timeout"}},
	{"Operations", []string{"config", "print-config", "log-level", "log-format", "metrics-addr", "shutdown-timeout"}},
}

const serveUsage = `Usage: ssehub serve [flags]

Runs a hub; no flag is needed to try it. Every flag may also be set in the
environment (--history-size is SSEHUB_HISTORY_SIZE; the Mercure names
MERCURE_PUBLISHER_JWT_KEY, MERCURE_PUBLISHER_JWT_ALG, MERCURE_SUBSCRIBER_JWT_KEY
and MERCURE_SUBSCRIBER_JWT_ALG work too) or in a --config file. Flags win
over the environment, which wins over the file.
`

// printServeUsage prints the usage and the flags of fs by serveGroups;
// flags in no group come last, under "Other".
func printServeUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, serveUsage)
	printed := make(map[string]bool)
	group := func(title string, names []string) {
		one := flag.NewFlagSet("", flag.ContinueOnError)
		one.SetOutput(w)
		for _, n := range names {
			if f := fs.Lookup(n); f != nil && !printed[n] {
				printed[n] = true
				one.Var(f.Value, f.Name, f.Usage)
				one.Lookup(n).DefValue = f.DefValue
			}
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		one.PrintDefaults()
	}
	for _, g := range serveGroups {
		group(g.title, g.flags)
	}
	var other []string
	fs.VisitAll(func(f *flag.Flag) {
		if !printed[f.Name] {
			other = append(other, f.Name)
		}
	})
	if len(other) > 0 {
		group("Other", other)
	}
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, c := serveFlags(stderr)
	if code, ok := parseFlagsOnly(fs, args, stdout, stderr); !ok {
		return code
	}
	c.start(fs, args)
	if c.PrintConfig {
		if err := printConfig(stdout, fs, args); err != nil {
			fmt.Fprintln(stderr, "ssehub serve:", err)
			return 2
		}
		return 0
	}
	logger, err := newLogger(stderr, c.LogLevel, c.LogFormat)
	if err != nil {
		fmt.Fprintln(stderr, "ssehub serve:", err)
		return 2
	}
	if err := serve(ctx, c, stdout, logger); err != nil {
		fmt.Fprintln(stderr, "ssehub serve:", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: use text or json", format)
}

// reservedHistory is the engines' MaxReserved: the hub's own events get a
// budget of their own only when it writes them.
func (c *serveConfig) reservedHistory() int {
	if !c.Subscriptions || c.SubscriptionsHist < 0 {
		return 0
	}
	return c.SubscriptionsHist
}

// openLog opens the history the configuration asks for.
func openLog(ctx context.Context, c *serveConfig, logger *slog.Logger) (ssehub.Log, error) {
	if c.LogURL != "" {
		u, err := url.Parse(c.LogURL)
		if err != nil {
			return nil, fmt.Errorf("invalid --log %q: %v", c.LogURL, err)
		}
		switch u.Scheme {
		case "redis", "rediss":
			return redislog.Open(ctx, c.LogURL, redislog.Options{Prefix: c.LogName, MaxEvents: c.HistorySize, MaxReserved: c.reservedHistory(), MaxAge: c.HistoryAge, Logger: logger})
		case "nats", "tls":
			return natslog.Open(ctx, c.LogURL, natslog.Options{Stream: strings.ToUpper(c.LogName), MaxEvents: c.HistorySize, MaxReserved: c.reservedHistory(), MaxAge: c.HistoryAge, Logger: logger})
		}
		return nil, fmt.Errorf("invalid --log %q: use redis://host:port/db or nats://host:port", c.LogURL)
	}
	switch c.History {
	case "memory":
		return memlog.New(memlog.Options{MaxEvents: c.HistorySize, MaxAge: c.HistoryAge, MaxReserved: c.reservedHistory()}), nil
	case "bolt", "bbolt":
		return boltlog.Open(c.Data, boltlog.Options{MaxEvents: c.HistorySize, MaxReserved: c.reservedHistory(), MaxAge: c.HistoryAge, NoSync: c.NoSync, CommitDelay: c.CommitDelay, Logger: logger})
	}
	return nil, fmt.Errorf("invalid --history %q: use bolt or memory", c.History)
}

func serve(ctx context.Context, c *serveConfig, stdout io.Writer, logger *slog.Logger) error {
	ensureTwoProcs()
	keys, err := newKeyring(c, logger)
	if err != nil {
		return err
	}
	defer func() { keys.close() }() // reloads replace keys
	l, err := openLog(ctx, c, logger)
	if err != nil {
		return err
	}
	defer l.Close()

	h, err := hub.New(l, hub.Options{
		Heartbeat:         c.Heartbeat,
		QueueEvents:       c.QueueEvents,
		QueueBytes:        c.QueueBytes,
		ReplayLimit:       c.ReplayLimit,
		ReplayConcurrency: c.ReplayConcurrency,
		ReplayBytes:       c.ReplayBytes,
		Logger:            logger,
	})
	if err != nil {
		return err
	}
	defer h.Close()
	metrics := c.newMetrics(h) // nil with --metrics-addr off
	conns := c.connLimiter(metrics, logger)

	api, err := httpapi.New(httpapi.Config{
		Hub:            h,
		Publishers:     keys.pub,
		Subscribers:    keys.sub,
		Anonymous:      c.Anonymous,
		CORSOrigins:    c.CORSOrigins,
		Retry:          c.Retry,
		MaxBodyBytes:   c.MaxBody,
		WriteTimeout:   c.WriteTimeout,
		MaxTopics:      c.MaxTopics,
		MaxStreamInput: c.MaxStreamInput,
		Limits:         c.limits(),
		Connections:    conns,
		Metrics:        metrics,
		Logger:         logger,

		Subscriptions:             c.Subscriptions,
		SubscriptionsRate:         c.SubscriptionsRate,
		SubscriptionsMaxSelectors: c.SubscriptionsMax,
		Hints:                     flagHints,
	})
	if err != nil {
		return err
	}
	ds, err := streams.New(streams.Config{
		Hub:             h,
		Publishers:      keys.pub,
		Subscribers:     keys.sub,
		Anonymous:       c.Anonymous,
		AnonymousWrites: c.AnonymousWrites,
		MaxBodyBytes:    c.StreamsMaxBody,
		PollTimeout:     c.StreamsPoll,
		MaxMessages:     c.StreamsMaxMsgs,
		WriteTimeout:    c.WriteTimeout,
		CrossSite:       api.CrossSite,
		Logger:          logger,
		OnLimit:         metrics.Limited,
		AdmitLive:       conns.Admit,
	})
	if err != nil {
		return err
	}
	api.Handle(streams.Prefix, ds)
	if c.AnonymousWrites {
		logger.Warn("--anonymous-writes: anyone who can reach this hub can create, append to, close and delete Durable Streams at " + streams.Prefix + "; use it for development and conformance tests only")
	}
	if !c.NoDashboard {
		api.Handle("/", web.Handler())
	}
	warnCORSWildcard(c.CORSOrigins, logger)

	tcp, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on --addr %s: %w", c.Addr, err)
	}
	// Publishers' and producers' keep-alive connections are served by a
	// lean loop of internal/h1 from their first POST on; everything else
	// stays with net/http.
	var ln net.Listener = tcp
	var handler http.Handler = api
	var lean *h1.Server
	if c.LeanHTTP {
		hl := h1.NewListener(tcp)
		lean = h1.New(hl, api, h1.Options{IdleTimeout: c.IdleTimeout, HeaderTimeout: c.ReadHeaderTimeout, WriteTimeout: c.WriteTimeout, MaxHeaderBytes: c.MaxHeaderBytes, Logger: logger})
		metrics.WatchLeanHTTP(lean.Taken)
		ln, handler = hl, lean
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	cert, err := c.configureServer(srv) // TLS, HTTP/2, h2c
	if err != nil {
		ln.Close()
		return err
	}
	started := keys                                                   // reloads replace keys
	o, err := startOps(ctx, c, api, ds, metrics, cert, &keys, logger) // metrics, SIGHUP
	if err != nil {
		ln.Close()
		return err
	}
	defer o.stop()
	printWelcome(stdout, c, ln.Addr().String(), started)
	logger.Info("ssehub listening", "addr", ln.Addr().String(), "history", c.History, "version", version())

	served := make(chan error, 1)
	go func() { served <- c.serveOn(srv, ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: ending streams and finishing requests", "timeout", c.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }() // stops accepting; waits for handlers
	h.Close()                                  // ends every stream with a jittered retry
	if lean != nil {                           // finishes the requests of the connections it took over
		if cut := lean.Close(c.ShutdownTimeout); cut > 0 {
			logger.Warn("shutdown timed out; closing remaining connections", "publishers", cut)
		}
	}
	api.Close(c.ShutdownTimeout) // lets parked streams write that, then stops
	ds.Close(c.ShutdownTimeout)  // the same for Durable Streams' SSE readers
	if err := <-shut; err != nil {
		logger.Warn("shutdown timed out; closing remaining connections", "err", err)
		srv.Close()
	}
	<-served
	return nil // deferred: the hub, then the log (after every publish handler returned)
}

// warnCORSWildcard tells the operator what --cors-origins '*' does not
// allow, at start and after a reload: pages of unlisted origins get no
// credentials, so their cookie tokens (and withCredentials) do not work.
func warnCORSWildcard(origins []string, logger *slog.Logger) {
	if slices.Contains(origins, "*") {
		logger.Warn("--cors-origins * allows no credentials: pages of origins not listed by name may subscribe and publish with a bearer token, but never with a cookie or withCredentials; list the origins that need them by name")
	}
}

// welcomeTokenTTL is the lifetime of the tokens printed at start.
const welcomeTokenTTL = 30 * 24 * time.Hour

// printWelcome tells a new user how to use the hub that just started.
// Its commands work as printed: no tool beyond curl, and ssehub named the
// way it was started (see selfCommand).
func printWelcome(w io.Writer, c *serveConfig, addr string, keys *keyring) {
	host := addr
	if h, p, err := net.SplitHostPort(addr); err == nil {
		if ch, _, err := net.SplitHostPort(c.Addr); err == nil && (ch == "localhost" || ch == "") || h == "::" || h == "0.0.0.0" || h == "" {
			host = net.JoinHostPort("localhost", p)
		}
	}
	base := c.scheme() + "://" + host + httpapi.Path
	self := selfCommand()
	subURL := base + "?topic=" + url.QueryEscape("*")
	if !c.Anonymous {
		sub := "<subscriber token>"
		if keys.subSecret != "" {
			sub, _ = auth.NewToken(keys.subSecret, keys.subAlg, nil, []string{"*"}, welcomeTokenTTL)
		}
		subURL += "&authorization=" + sub
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ssehub %s is running on %s://%s\n\n", version(), c.scheme(), host)
	if !c.NoDashboard {
		fmt.Fprintf(&b, "Dashboard:\n  %s://%s/\n\n", c.scheme(), host)
	}
	fmt.Fprintf(&b, "Subscribe (every topic):\n  curl -N '%s'\n\n", subURL)
	if keys.pubSecret != "" {
		pub, _ := auth.NewToken(keys.pubSecret, keys.pubAlg, []string{"*"}, nil, welcomeTokenTTL)
		fmt.Fprintf(&b, "Publish:\n  curl -d topic=greetings -d data=hello -H 'Authorization: Bearer %s' %s\n\n", pub, base)
	} else {
		fmt.Fprintf(&b, "Publish (with a token signed by your issuer, or made with the private key):\n  %s publish --topic greetings --data hello --token \"$(%s token --alg %s --key @private.pem --publish '*')\" %s\n\n",
			self, self, cmp.Or(keys.pubAlg, "HS256"), base)
	}
	fmt.Fprintf(&b, "In a browser page:\n  new EventSource('%s').onmessage = e => console.log(e.data)\n\n", subURL)
	dsURL := c.scheme() + "://" + host + streams.Prefix + "demo"
	if c.AnonymousWrites {
		fmt.Fprintf(&b, "Durable Streams (docs/durable-streams.md; --anonymous-writes: no token needed):\n  curl -X PUT -H 'Content-Type: text/plain' %s && curl -d 'a token' -H 'Content-Type: text/plain' %s\n  curl -N '%s?offset=-1&live=sse'\n\n", dsURL, dsURL, dsURL)
	} else {
		fmt.Fprintf(&b, "Durable Streams at %s%s<name> (docs/durable-streams.md): writes take the publisher token above, reads the subscriber token.\n\n", c.scheme()+"://"+host, streams.Prefix)
	}
	if keys.generated {
		if c.History == "memory" {
			b.WriteString("The JWT keys were generated for this run only (--history memory); the tokens above are valid for 30 days.\n\n")
		} else {
			file := filepath.Join(c.Data, "keys.json")
			algFlag := func(alg string) string {
				if alg == "" || alg == "HS256" {
					return ""
				}
				return " --alg " + alg
			}
			fmt.Fprintf(&b, "The JWT keys were generated and are kept in %s (keep it out of version control);\nthe tokens above are valid for 30 days. Make more with:\n  %s token --keys %s%s --publish '*'\n  %s token --keys %s%s --subscribe '*'\n\n",
				file, self, file, algFlag(keys.pubAlg), self, file, algFlag(keys.subAlg))
		}
	}
	io.WriteString(w, b.String())
}

// selfCommand is how to run this program again: "go run ./cmd/ssehub"
// after go run (whose binary is gone when it exits), else the name it was
// started with (from the PATH, or a path such as ./ssehub).
func selfCommand() string {
	exe := os.Args[0]
	if !strings.Contains(filepath.ToSlash(exe), "/go-build") {
		return exe
	}
	if _, err := os.Stat(filepath.Join("cmd", "ssehub", "main.go")); err == nil {
		return "go run ./cmd/ssehub"
	}
	return "go run github.com/ssehub/ssehub/cmd/ssehub@latest"
}

// ensureTwoProcs runs Go code on at least two threads at once, also when
// the hub is confined to one CPU (GOMAXPROCS then defaults to 1), unless
// GOMAXPROCS is set explicitly. The history's group commit blocks its
// thread in fdatasync; with one P, every request waited for that fsync
// too (measured: 3,100 acknowledged publishes/s and p99 200 ms on one
// core, 11,700/s and p99 21 ms with a second P).
func ensureTwoProcs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}

// flagHints name, in the errors httpapi and the connection limits give
// clients, the flag of this binary behind each setting that refused them
// (keyed as httpapi.Config.Hints and ops.ConnLimits.Hints are).
var flagHints = map[string]string{
	"Anonymous":               "start it with --anonymous to allow them",
	"CORSOrigins":             "add it to --cors-origins",
	"MaxConnections":          "--max-connections",
	"MaxConnectionsPerIP":     "--max-connections-per-ip",
	"Limits.PublishRate":      "--publish-rate, --publish-burst",
	"Limits.ReadTimeout":      "--read-timeout",
	"Limits.MaxSelectorCost":  "--max-selector-cost",
	"Limits.MaxPublishTopics": "--max-publish-topics",
	"Limits.MaxEventBytes":    "--max-event-bytes",
	"Subscriptions":           "start it with --subscriptions",
}
