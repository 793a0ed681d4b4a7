package main

import (
	"context"
	"encoding/json"
	"errors"
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
	"strings"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/boltlog"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/log/natslog"
	"github.com/ssehub/ssehub/log/redislog"
	"github.com/ssehub/ssehub/web"
)

// serveConfig is everything `ssehub serve` can be told.
type serveConfig struct {
	Addr             string
	Data             string
	History          string
	LogURL           string
	LogName          string
	NoDashboard      bool
	HistorySize      int
	HistoryAge       time.Duration
	PublisherKey     string
	SubscriberKey    string
	Anonymous        bool
	Subscriptions    bool
	Heartbeat        time.Duration
	Retry            time.Duration
	CORSOrigins      listFlag
	MaxBody          int64
	WriteTimeout     time.Duration
	ShutdownTimeout  time.Duration
	LogLevel         string
	LogFormat        string
	NoSync           bool
	QueueEvents      int
	QueueBytes       int
	ReadHeaderTimout time.Duration
	opsConfig        // config file, metrics, TLS, limits (ops.go)
}

func serveFlags(stderr io.Writer) (*flag.FlagSet, *serveConfig) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("ssehub serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", "localhost:8080", "address to listen on (host:port; use :8080 for every interface)")
	fs.StringVar(&c.Data, "data", "ssehub-data", "directory for the durable history (bbolt) and generated keys")
	fs.StringVar(&c.History, "history", "bolt", "where history lives: bolt (durable, in --data) or memory (lost on restart)")
	fs.StringVar(&c.LogURL, "log", "", "shared log for a cluster of hubs: redis://host:6379/0 (Redis Streams) or nats://host:4222 (NATS JetStream); overrides --history")
	fs.StringVar(&c.LogName, "log-name", "ssehub", "with --log: the Redis key prefix or the JetStream stream name (upper-cased) that hubs of one deployment share")
	fs.BoolVar(&c.NoDashboard, "no-dashboard", false, "do not serve the dashboard page at /")
	fs.IntVar(&c.HistorySize, "history-size", 1_000_000, "keep at most this many events in history (0: no count limit)")
	fs.DurationVar(&c.HistoryAge, "history-age", 0, "drop history events older than this, e.g. 24h (0: no age limit)")
	fs.StringVar(&c.PublisherKey, "publisher-jwt-key", "", "HS256 secret that publisher tokens are signed with (default: generated and kept in --data)")
	fs.StringVar(&c.SubscriberKey, "subscriber-jwt-key", "", "HS256 secret that subscriber tokens are signed with (default: generated and kept in --data)")
	fs.BoolVar(&c.Anonymous, "anonymous", false, "let subscribers without a token receive public updates")
	fs.BoolVar(&c.Subscriptions, "subscriptions", false, "publish subscription events and serve the subscriptions API (presence) at /.well-known/mercure/subscriptions")
	fs.DurationVar(&c.Heartbeat, "heartbeat", 15*time.Second, "send a comment on idle streams this often, so proxies keep them open (0: never)")
	fs.DurationVar(&c.Retry, "retry", 3*time.Second, "reconnection time sent to clients at the start of each stream")
	fs.Var(&c.CORSOrigins, "cors-origins", "origins allowed to subscribe and publish from a browser page on another origin (comma-separated, * for any)")
	fs.Int64Var(&c.MaxBody, "max-body", 1<<20, "largest publish request body in bytes")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 10*time.Second, "disconnect a subscriber whose write takes longer than this")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM, wait at most this long for requests to finish")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&c.NoSync, "no-sync", false, "do not fsync history commits (faster, loses the last events on a power failure; not on a crash)")
	fs.IntVar(&c.QueueEvents, "queue-events", 4096, "a subscriber with more undelivered events than this is disconnected (it resumes from history)")
	fs.IntVar(&c.QueueBytes, "queue-bytes", 4<<20, "a subscriber with more undelivered bytes than this is disconnected (it resumes from history)")
	fs.DurationVar(&c.ReadHeaderTimout, "read-header-timeout", 10*time.Second, "time a client has to send its request headers")
	opsFlags(fs, &c.opsConfig)
	return fs, c
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, c := serveFlags(stderr)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "ssehub serve:", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ssehub serve: unexpected argument %q (flags start with --)\n", fs.Arg(0))
		return 2
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

// openLog opens the history the configuration asks for.
func openLog(ctx context.Context, c *serveConfig, logger *slog.Logger) (ssehub.Log, error) {
	if c.LogURL != "" {
		u, err := url.Parse(c.LogURL)
		if err != nil {
			return nil, fmt.Errorf("invalid --log %q: %v", c.LogURL, err)
		}
		switch u.Scheme {
		case "redis", "rediss":
			return redislog.Open(ctx, c.LogURL, redislog.Options{Prefix: c.LogName, MaxEvents: c.HistorySize, MaxAge: c.HistoryAge, Logger: logger})
		case "nats", "tls":
			return natslog.Open(ctx, c.LogURL, natslog.Options{Stream: strings.ToUpper(c.LogName), MaxEvents: c.HistorySize, MaxAge: c.HistoryAge, Logger: logger})
		}
		return nil, fmt.Errorf("invalid --log %q: use redis://host:port/db or nats://host:port", c.LogURL)
	}
	switch c.History {
	case "memory":
		return memlog.New(memlog.Options{MaxEvents: c.HistorySize, MaxAge: c.HistoryAge}), nil
	case "bolt", "bbolt":
		return boltlog.Open(c.Data, boltlog.Options{MaxEvents: c.HistorySize, MaxAge: c.HistoryAge, NoSync: c.NoSync, Logger: logger})
	}
	return nil, fmt.Errorf("invalid --history %q: use bolt or memory", c.History)
}

func serve(ctx context.Context, c *serveConfig, stdout io.Writer, logger *slog.Logger) error {
	ensureTwoProcs()
	if c.LogURL != "" && (c.PublisherKey == "" || c.SubscriberKey == "") {
		return errors.New("with --log, every hub of the deployment must verify the same tokens: set --publisher-jwt-key and --subscriber-jwt-key (or SSEHUB_PUBLISHER_JWT_KEY and SSEHUB_SUBSCRIBER_JWT_KEY)")
	}
	keys, err := loadKeys(c)
	if err != nil {
		return err
	}
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

	pubV, err := newVerifier(keys.Publisher)
	if err != nil {
		return fmt.Errorf("--publisher-jwt-key: %w", err)
	}
	subV, err := newVerifier(keys.Subscriber)
	if err != nil {
		return fmt.Errorf("--subscriber-jwt-key: %w", err)
	}
	api, err := httpapi.New(httpapi.Config{
		Hub:            h,
		Publishers:     pubV,
		Subscribers:    subV,
		Anonymous:      c.Anonymous,
		CORSOrigins:    c.CORSOrigins,
		Retry:          c.Retry,
		MaxBodyBytes:   c.MaxBody,
		WriteTimeout:   c.WriteTimeout,
		MaxTopics:      c.MaxTopics,
		MaxStreamInput: c.MaxStreamInput,
		Limits:         c.limits(),
		Metrics:        metrics,
		Logger:         logger,

		Subscriptions: c.Subscriptions,
	})
	if err != nil {
		return err
	}
	if !c.NoDashboard {
		api.Handle("/", web.Handler())
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on --addr %s: %w", c.Addr, err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: c.ReadHeaderTimout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	cert, err := c.configureServer(srv) // TLS, HTTP/2, h2c
	if err != nil {
		ln.Close()
		return err
	}
	o, err := startOps(ctx, c, api, metrics, cert, logger) // metrics, SIGHUP
	if err != nil {
		ln.Close()
		return err
	}
	defer o.stop()
	printWelcome(stdout, c, ln.Addr().String(), keys)
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
	api.Close(c.ShutdownTimeout)               // lets parked streams write that, then stops
	if err := <-shut; err != nil {
		logger.Warn("shutdown timed out; closing remaining connections", "err", err)
		srv.Close()
	}
	<-served
	return nil // deferred: the hub, then the log (after every publish handler returned)
}

// newVerifier returns a verifier of HS256 tokens signed with secret.
func newVerifier(secret string) (*auth.Verifier, error) {
	k, err := auth.ParseKey("HS256", secret)
	if err != nil {
		return nil, err
	}
	return auth.NewVerifier(auth.Config{Keys: auth.Keys{k}})
}

// hubKeys are the HS256 secrets of a hub.
type hubKeys struct {
	Publisher  string `json:"publisher"`
	Subscriber string `json:"subscriber"`
	Generated  bool   `json:"-"`
}

// loadKeys returns the configured keys, generating the missing ones. With
// durable history they are kept in the data directory so tokens stay valid
// across restarts.
func loadKeys(c *serveConfig) (hubKeys, error) {
	k := hubKeys{Publisher: c.PublisherKey, Subscriber: c.SubscriberKey}
	if k.Publisher != "" && k.Subscriber != "" {
		return k, nil
	}
	var stored hubKeys
	path := filepath.Join(c.Data, "keys.json")
	durable := c.History != "memory"
	if durable {
		if b, err := os.ReadFile(path); err == nil {
			if err := json.Unmarshal(b, &stored); err != nil {
				return k, fmt.Errorf("%s is corrupt (%v): fix or delete it to generate new keys", path, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return k, fmt.Errorf("reading generated keys: %w", err)
		}
	}
	changed := false
	for _, p := range []struct{ dst, stored *string }{{&k.Publisher, &stored.Publisher}, {&k.Subscriber, &stored.Subscriber}} {
		if *p.dst != "" {
			continue
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

// welcomeTokenTTL is the lifetime of the tokens printed at start.
const welcomeTokenTTL = 30 * 24 * time.Hour

// printWelcome tells a new user how to use the hub that just started.
func printWelcome(w io.Writer, c *serveConfig, addr string, keys hubKeys) {
	host := addr
	if h, p, err := net.SplitHostPort(addr); err == nil && (h == "::" || h == "0.0.0.0" || h == "") {
		host = net.JoinHostPort("localhost", p)
	}
	base := c.scheme() + "://" + host + httpapi.Path
	pub, _ := auth.NewToken(keys.Publisher, "HS256", []string{"*"}, nil, welcomeTokenTTL)
	sub, _ := auth.NewToken(keys.Subscriber, "HS256", nil, []string{"*"}, welcomeTokenTTL)
	subURL := base + "?topic=" + url.QueryEscape("*")
	if !c.Anonymous {
		subURL += "&authorization=" + sub
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ssehub %s is running on %s://%s\n\n", version(), c.scheme(), host)
	if !c.NoDashboard {
		fmt.Fprintf(&b, "Dashboard:\n  %s://%s/\n\n", c.scheme(), host)
	}
	fmt.Fprintf(&b, "Subscribe (every topic):\n  curl -N '%s'\n\n", subURL)
	fmt.Fprintf(&b, "Publish:\n  curl -d topic=greetings -d data=hello -H 'Authorization: Bearer %s' %s\n\n", pub, base)
	fmt.Fprintf(&b, "In a browser page:\n  new EventSource('%s').onmessage = e => console.log(e.data)\n\n", subURL)
	if keys.Generated {
		where := "in " + filepath.Join(c.Data, "keys.json")
		if c.History == "memory" {
			where = "for this run only (--history memory)"
		}
		fmt.Fprintf(&b, "The JWT keys were generated %s; the tokens above are valid for 30 days.\n", where)
		fmt.Fprintf(&b, "Make more with: ssehub token --key \"$(jq -r .publisher %s)\" --publish '*'\n\n", filepath.Join(c.Data, "keys.json"))
	}
	io.WriteString(w, b.String())
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
