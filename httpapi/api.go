package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/park"
	"github.com/ssehub/ssehub/ops"
	"github.com/ssehub/ssehub/presence"
	"github.com/ssehub/ssehub/topic"
)

// Path is where the Mercure protocol is served.
const Path = "/.well-known/mercure"

// Config configures the HTTP API. Hub is required; every other field has a
// default.
type Config struct {
	// Hub is the engine to publish to and subscribe from.
	Hub *hub.Hub
	// Publishers verifies publisher tokens. nil: every publish is refused
	// with 401 (nobody can publish).
	Publishers *auth.Verifier
	// Subscribers verifies subscriber tokens. nil: subscriber tokens are
	// refused, so only anonymous subscribers (if allowed) can connect.
	Subscribers *auth.Verifier
	// Anonymous lets subscribers without a token receive public updates.
	Anonymous bool
	// CookieName is the cookie that may carry a token. Default
	// "mercureAuthorization".
	CookieName string
	// CORSOrigins are the origins allowed to make cross-origin requests.
	// An origin listed by name may send credentials (cookies,
	// withCredentials): it is echoed back with
	// Access-Control-Allow-Credentials. "*" allows every other origin
	// without credentials (Access-Control-Allow-Origin: *), and a cookie
	// token from such a page is refused: "*" never lets a site act with a
	// user's cookie.
	CORSOrigins []string
	// Retry is the reconnection time sent at the start of every stream.
	// Default 3s (browsers' own default); negative sends none.
	Retry time.Duration
	// MaxBodyBytes bounds a publish request body. Default 1 MiB.
	MaxBodyBytes int64
	// WriteTimeout is the deadline for each write to a stream; a client that
	// does not take the bytes in time is disconnected. Default 10s.
	WriteTimeout time.Duration
	// MaxStreamInput is how many bytes a subscriber may send on its
	// HTTP/1.x stream after the request; one that sends more is
	// disconnected. Default 4096.
	MaxStreamInput int
	// PollTimeout is the longest a long-poll request waits for an event
	// (clients may ask for less with ?timeout=ms). Default 25s.
	PollTimeout time.Duration
	// MaxTopics bounds the topic selectors of one subscription. Default 100.
	MaxTopics int
	// Subscriptions enables the subscriptions API (presence): subscription
	// events and GET /.well-known/mercure/subscriptions (subscriptions.go).
	Subscriptions bool
	// SubscriptionsHeartbeat is how often, with Subscriptions, the hub
	// announces in the log that it is alive; a hub silent for three periods
	// is dead and its subscriptions are ended by another. Default 30s.
	SubscriptionsHeartbeat time.Duration
	// SubscriptionsRate bounds, with Subscriptions, the subscription start
	// events this hub writes to the log per second, so that presence never
	// floods the history that application events share; starts beyond it
	// wait, and a subscription that ends before its start was written
	// writes neither event. Default 100 (presence.DefaultRate); negative:
	// no limit.
	SubscriptionsRate float64
	// SubscriptionsMaxSelectors bounds, with Subscriptions, how many
	// selectors of one subscribe request are announced (the first ones);
	// the others never appear in the subscriptions API. Default 20
	// (presence.DefaultMaxSelectors); negative: no limit.
	SubscriptionsMaxSelectors int
	// Limits bound publishes and selectors (limits.go).
	Limits Limits
	// Connections, when not nil, bounds the subscriptions and stats
	// streams open at once, in total and per client address. Share it with
	// the other handlers of long-lived requests of the server (the Durable
	// Streams server's live reads) so that they count together.
	Connections *ops.ConnLimiter
	// Metrics, when not nil, records the API's metrics (see
	// ops.NewMetrics).
	Metrics *ops.Metrics
	// NoPark keeps every stream on its own net/http goroutine. By default
	// (on Linux) idle HTTP/1.x streams are parked after their replay: held
	// by one epoll goroutine and a few writers instead, which costs a few KB
	// per connection instead of ~30 KB. See package internal/park.
	NoPark bool
	// Logger receives the API's logs. Default slog.Default().
	Logger *slog.Logger
	// Hints tells clients how the operator changes a setting that refused
	// them, in the embedding program's own terms (a flag, a config key):
	// Hints[setting] is added in parentheses to the error that setting
	// causes. The settings are named as the fields that hold them:
	// "Anonymous", "CORSOrigins", and "Limits.PublishRate",
	// "Limits.ReadTimeout", "Limits.MaxSelectorCost",
	// "Limits.MaxPublishTopics", "Limits.MaxEventBytes", "Subscriptions"
	// (the connection limits have their own: ops.ConnLimits.Hints). Nil
	// (the default): errors say what was refused and why, and name no
	// setting.
	Hints map[string]string
}

// hint returns " (Hints[setting])", or "" when the program gave none.
func (c *Config) hint(setting string) string {
	if h := c.Hints[setting]; h != "" {
		return " (" + h + ")"
	}
	return ""
}

// API is the HTTP handler of the Mercure protocol. Create it with New; it is
// safe for concurrent use.
type API struct {
	cfg    Config
	mux    *http.ServeMux
	sels   *topic.Cache
	cors   *liveCORS                    // swapped by Reload
	keys   atomic.Pointer[verifierPair] // set by Reload
	lim    Limits                       // with defaults
	rate   *ops.RateLimiter             // nil: publishes are not rate limited
	conns  *ops.ConnLimiter             // nil: no connection limits
	met    *ops.Metrics                 // nil: no metrics
	logger *slog.Logger
	parker *park.Parker       // nil: streams are not parked
	subs   *presence.Presence // nil: the subscriptions API is off
}

var _ http.Handler = (*API)(nil)

// New returns the API for cfg.
func New(cfg Config) (*API, error) {
	if cfg.Hub == nil {
		return nil, errors.New("httpapi: Config.Hub is required")
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "mercureAuthorization"
	}
	if cfg.Retry == 0 {
		cfg.Retry = 3 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 25 * time.Second
	}
	if cfg.MaxTopics <= 0 {
		cfg.MaxTopics = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{
		cfg:    cfg,
		mux:    http.NewServeMux(),
		sels:   topic.NewCache(4096),
		cors:   newLiveCORS(cfg.CORSOrigins),
		lim:    cfg.Limits,
		conns:  cfg.Connections,
		met:    cfg.Metrics,
		logger: cfg.Logger,
	}
	a.lim.setDefaults()
	if a.lim.PublishRate > 0 {
		a.rate = ops.NewRateLimiter(a.lim.PublishRate, a.lim.PublishBurst, a.lim.PublishRateKeys)
	}
	if !cfg.NoPark && park.Supported {
		p, err := park.New(park.Options{
			WriteTimeout:  cfg.WriteTimeout,
			Logger:        cfg.Logger,
			OnStall:       a.met.WriteTimedOut, // as on the handler's path
			MaxInput:      cfg.MaxStreamInput,
			OnExcessInput: func() { a.met.Limited("stream_input") },
		})
		if err != nil {
			return nil, fmt.Errorf("httpapi: %w", err)
		}
		a.parker = p
	}
	a.mux.Handle("GET "+Path, a.guardSubscribe(http.HandlerFunc(a.subscribe)))
	a.mux.Handle("POST "+Path, a.guardPublish(http.HandlerFunc(a.publish)))
	a.mux.HandleFunc("OPTIONS "+Path, a.preflight)
	a.initSubscriptions() // subscriptions.go
	a.mux.HandleFunc(Path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		httpError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+Path+": use GET to subscribe or POST to publish")
	})
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	a.mux.HandleFunc("GET /readyz", a.ready)
	a.mux.Handle("GET "+StatsPath, a.conns.Limit(http.HandlerFunc(a.stats)))
	a.mux.HandleFunc("POST "+ReconnectPath, a.reconnect)
	return a, nil
}

// Close waits up to timeout for parked streams to finish writing (the hub
// ends them when it closes: close the hub first), closes what is left and
// stops the API's goroutines. Call it after Hub.Close and before closing
// the log. Safe to call more than once.
func (a *API) Close(timeout time.Duration) {
	if a.parker != nil {
		a.parker.Close(timeout)
	}
	a.closeSubscriptions(timeout) // subscriptions.go
}

// Parked returns how many streams the poller holds now (see
// Config.NoPark). Safe for concurrent use.
func (a *API) Parked() int {
	if a.parker == nil {
		return 0
	}
	return a.parker.Len()
}

// Handle mounts an extra handler on the API's mux (the dashboard, metrics).
func (a *API) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// ServeHTTP serves the protocol.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.cors.apply(w, r)
	a.mux.ServeHTTP(w, r)
}

func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	select {
	case <-a.cfg.Hub.Closing():
		httpError(w, http.StatusServiceUnavailable, "not ready: shutting down")
		return
	default:
	}
	if p, ok := a.cfg.Hub.Log().(ssehub.Pinger); ok {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			a.met.PingFailed()
			httpError(w, http.StatusServiceUnavailable, "not ready: log backend unreachable: "+err.Error())
			return
		}
	}
	w.Write([]byte("ready\n"))
}

// publish handles POST /.well-known/mercure.
func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !isForm(ct) {
		httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/x-www-form-urlencoded (got "+strconv.Quote(ct)+"); send the update as an HTML form: topic=…&data=…")
		return
	}
	cred, err := a.authenticate(r, a.cfg.Publishers, "publisher")
	if err != nil {
		a.authError(w, r, err)
		return
	}
	if cred.claims == nil {
		a.authError(w, r, errMissingPublisherToken)
		return
	}
	if a.refuseCrossSite(w, r, cred, "publish") || a.checkPublishRate(w, cred) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "request body exceeds "+strconv.FormatInt(tooBig.Limit, 10)+" bytes; send a smaller update")
			return
		}
		httpError(w, http.StatusBadRequest, "malformed form body: "+err.Error())
		return
	}
	ev, err := parseUpdate(r)
	if err == nil {
		err = a.checkPublishTopics(ev)
	}
	if err == nil {
		err = a.checkEventSize(ev)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if err := cred.claims.CanPublish(ev.Topics, a.sels); err != nil {
		a.authError(w, r, err)
		return
	}
	if err := a.cfg.Hub.Publish(r.Context(), ev); err != nil {
		if statusOf(err) >= 500 {
			a.logger.Warn("httpapi: publish failed", "err", err)
		}
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(ev.WireID()))
}

// parseUpdate reads the form fields of a publish request.
func parseUpdate(r *http.Request) (*ssehub.Event, error) {
	f := r.PostForm
	ev := &ssehub.Event{
		Topics: f["topic"],
		Data:   f.Get("data"),
		ID:     f.Get("id"),
		Type:   f.Get("type"),
	}
	if len(ev.Topics) == 0 {
		return nil, badRequest("topic is required: add at least one topic=… field (the first is the canonical topic)")
	}
	if v := f.Get("retry"); v != "" {
		ms, ok := parseDigits(v)
		if !ok {
			return nil, badRequest("retry must be a number of milliseconds made of ASCII digits (got " + strconv.Quote(v) + ")")
		}
		ev.Retry = time.Duration(ms) * time.Millisecond
	}
	if v, ok := f["private"]; ok {
		// Any value makes the update private, except explicit "false"-like
		// values: over-restricting is the safe mistake.
		p := strings.ToLower(v[0])
		ev.Private = p != "false" && p != "0" && p != "off"
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	if err := checkUpdate(ev); err != nil { // draft08.go
		return nil, err
	}
	return ev, nil
}

func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 12 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func isForm(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}
