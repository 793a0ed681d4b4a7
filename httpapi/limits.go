package httpapi

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub"
)

// Limits bound what clients may ask of the API. The zero value of a field
// means "no limit" unless said otherwise; every refusal answers with a
// status and a plain-text message that says what to do.
type Limits struct {
	// MaxConnections bounds the subscriptions (streams and long polls) and
	// stats streams open at once; beyond it a request for one gets 503
	// with Retry-After.
	MaxConnections int
	// MaxConnectionsPerIP bounds the subscriptions and stats streams open
	// at once from one client IP address (the TCP peer: behind a proxy,
	// every client shares the proxy's address); beyond it 429 with
	// Retry-After.
	MaxConnectionsPerIP int
	// MaxEventBytes bounds the data of one published event, in bytes;
	// beyond it 413.
	MaxEventBytes int
	// MaxSelectorCost bounds the matching work of one subscription: the
	// sum of its selectors' topic.Selector.Cost (exact topics and "*" cost
	// nothing; a realistic URI template or URL pattern tens to a few
	// hundred). Every published event is matched against every selector,
	// so without it a few subscribers with many complex templates slow
	// delivery for everyone. Beyond it 400. Default 5000; negative: none.
	MaxSelectorCost int
	// MaxPublishTopics bounds the topics of one published update (the
	// dispatcher matches each against every template); beyond it 400.
	// Default 100; negative: none.
	MaxPublishTopics int
	// PublishRate bounds the publish requests per second of one publisher
	// token (a token bucket per token); beyond it 429 with Retry-After.
	PublishRate float64
	// PublishBurst is how many publishes a token may make at once after a
	// quiet period. Default: PublishRate rounded up (at least 1).
	PublishBurst int
	// PublishRateKeys bounds the memory of the publish rate limiter: at
	// most this many tokens are tracked; beyond it, idle ones are forgotten
	// first. Default 10000.
	PublishRateKeys int
	// ReadTimeout is how long a publish request may take to send its body;
	// a slower one gets 400 and its connection is released. Default 30s;
	// negative: no timeout. (Streams are not affected: subscribe requests
	// have no body.)
	ReadTimeout time.Duration
	// RetryAfter is the base Retry-After of a connection refusal; each
	// answer adds a random share of it so refused clients do not all
	// return at once. Default 5s.
	RetryAfter time.Duration
}

func (l *Limits) setDefaults() {
	if l.PublishBurst <= 0 {
		l.PublishBurst = max(1, int(math.Ceil(l.PublishRate)))
	}
	if l.PublishRateKeys <= 0 {
		l.PublishRateKeys = 10000
	}
	if l.MaxSelectorCost == 0 {
		l.MaxSelectorCost = 5000
	}
	if l.MaxPublishTopics == 0 {
		l.MaxPublishTopics = 100
	}
	if l.ReadTimeout == 0 {
		l.ReadTimeout = 30 * time.Second
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = 5 * time.Second
	}
}

// Errors of the limits, mapped to statuses in errors.go.
var (
	// ErrTooManyConnections: the hub holds Limits.MaxConnections
	// subscriptions (503).
	ErrTooManyConnections = errors.New("httpapi: too many connections")
	// ErrTooManyConnectionsFromIP: the client's address holds
	// Limits.MaxConnectionsPerIP subscriptions (429).
	ErrTooManyConnectionsFromIP = errors.New("httpapi: too many connections from this address")
	// ErrPublishRate: the publisher token exceeded Limits.PublishRate (429).
	ErrPublishRate = errors.New("httpapi: publish rate exceeded")
	// errBodyTimeout: a publish body took longer than Limits.ReadTimeout.
	errBodyTimeout = errors.New("httpapi: request body not received in time")
)

// operations is the operational side of an API, what docs/operations.md
// describes: the limits it enforces (connection counts, the publish rate),
// its metrics, and the verifiers Reload swaps in.
type operations struct {
	lim   Limits
	conns connLimiter
	rate  *rateLimiter // nil: publishes are not rate limited
	met   *Metrics     // nil: no metrics
	keys  atomic.Pointer[verifierPair]
}

func newOperations(cfg Config) *operations {
	lim := cfg.Limits
	lim.setDefaults()
	ops := &operations{lim: lim, met: cfg.Metrics}
	ops.conns.max, ops.conns.perIP = lim.MaxConnections, lim.MaxConnectionsPerIP
	ops.conns.maxHint, ops.conns.perIPHint = cfg.hint("Limits.MaxConnections"), cfg.hint("Limits.MaxConnectionsPerIP")
	if lim.PublishRate > 0 {
		ops.rate = newRateLimiter(lim.PublishRate, lim.PublishBurst, lim.PublishRateKeys)
	}
	return ops
}

// connLimiter counts open subscriptions, in total and per client address.
type connLimiter struct {
	max, perIP         int
	maxHint, perIPHint string // Config.hint of each

	total atomic.Int64
	mu    sync.Mutex     // guards byIP
	byIP  map[string]int // only when perIP > 0; entries at 0 are deleted
}

// acquire takes a slot for a subscription from ip; release gives it back.
func (l *connLimiter) acquire(ip string) error {
	if n := l.total.Add(1); l.max > 0 && n > int64(l.max) {
		l.total.Add(-1)
		return fmt.Errorf("%w: the hub holds its maximum of %d subscriptions%s; retry later or connect to another hub", ErrTooManyConnections, l.max, l.maxHint)
	}
	if l.perIP <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byIP == nil {
		l.byIP = make(map[string]int)
	}
	if l.byIP[ip] >= l.perIP {
		l.total.Add(-1)
		return fmt.Errorf("%w: %s already holds %d subscriptions, the most one address may%s; close some, or subscribe to several topics on one connection", ErrTooManyConnectionsFromIP, ip, l.perIP, l.perIPHint)
	}
	l.byIP[ip]++
	return nil
}

func (l *connLimiter) release(ip string) {
	l.total.Add(-1)
	if l.perIP <= 0 {
		return
	}
	l.mu.Lock()
	if n := l.byIP[ip]; n <= 1 {
		delete(l.byIP, ip)
	} else {
		l.byIP[ip] = n - 1
	}
	l.mu.Unlock()
}

// clientIP is the address a request came from, without the port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Label values of the metrics of limits.
const (
	limitConnections      = "connections"
	limitConnectionsPerIP = "connections_per_ip"
	limitPublishRate      = "publish_rate"
	limitEventSize        = "event_size"
	limitReadTimeout      = "read_timeout"
	limitSelectorCost     = "selector_cost"
	limitPublishTopics    = "publish_topics"
)

// guardSubscribe wraps the subscribe handler with the connection limits,
// the subscription metrics and the open/close debug log lines. A stream
// whose connection is taken over (parked) is counted until that connection
// closes, not until the handler returns.
func (a *API) guardSubscribe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, ok := a.admit(w, r)
		if !ok {
			return
		}
		t := a.track(w, r, ip)
		next.ServeHTTP(t.writer(), r)
		t.handlerDone()
	})
}

// LimitConnections wraps a handler of long-lived requests with the API's
// connection limits (Limits.MaxConnections, MaxConnectionsPerIP): each
// request counts like a subscription while it runs, and one past a limit is
// refused as a subscription would be (503 or 429 with Retry-After, counted
// in the limit metrics). The stats stream uses it. Safe for concurrent use.
func (a *API) LimitConnections(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, ok := a.AdmitConnection(w, r)
		if !ok {
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// AdmitConnection takes a slot of the API's connection limits for a
// long-lived request (as LimitConnections does) and returns the function
// that gives it back, which the caller calls once when the connection is
// done, also after the handler returned (a stream handed to a poller). A
// request past a limit is answered (503 or 429 with Retry-After, counted)
// and ok is false. For handlers mounted beside the API: the Durable Streams
// server's live reads. Safe for concurrent use.
func (a *API) AdmitConnection(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	ip, ok := a.admit(w, r)
	if !ok {
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { a.ops.conns.release(ip) }) }, true
}

// admit takes a connection slot for r's client address, or refuses r
// (503 or 429 with Retry-After, counted) and returns false. The caller
// releases the slot (ops.conns.release) when the connection ends.
func (a *API) admit(w http.ResponseWriter, r *http.Request) (ip string, ok bool) {
	ops := a.ops
	ip = clientIP(r)
	err := ops.conns.acquire(ip)
	if err == nil {
		return ip, true
	}
	limit := limitConnections
	if errors.Is(err, ErrTooManyConnectionsFromIP) {
		limit = limitConnectionsPerIP
	}
	ops.met.limited(limit)
	a.logger.Debug("httpapi: connection refused", "limit", limit, "remote", r.RemoteAddr, "path", r.URL.Path)
	refuse(w, err, jitter(ops.lim.RetryAfter))
	return "", false
}

// guardPublish wraps the publish handler with the body read timeout and
// the publish duration metric. (The publish rate is checked by the
// handler, once the token is verified: checkPublishRate.)
func (a *API) guardPublish(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ops := a.ops
		if d := ops.lim.ReadTimeout; d > 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, timeout: d, met: ops.met, hint: a.cfg.hint("Limits.ReadTimeout")}
			}
		}
		if ops.met == nil {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 || sw.status == http.StatusOK {
			ops.met.publishDuration.Observe(time.Since(start).Seconds())
		}
	})
}

// deadlineBody is a publish body read under a deadline. Once it is read
// to the end, the deadline is lifted (so a slow append after it does not
// trip it); a read past the deadline fails with a message that says so.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	met     *Metrics
	hint    string // Config.hint("Limits.ReadTimeout")
	done    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF && !b.done:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.met.limited(limitReadTimeout)
		err = fmt.Errorf("%w: the body was not received within %s%s; send it in one go", errBodyTimeout, b.timeout, b.hint)
	}
	return n, err
}

// checkPublishRate takes a publish from the bucket of the verified token
// cred, refusing it (429 with Retry-After, and true) when the token
// exceeds Limits.PublishRate. The bucket is the token's signed part, not
// its raw string: a signature has several spellings that verify, and each
// would otherwise have its own bucket. Verifying before counting costs
// little: the verifier caches the tokens it verified.
func (a *API) checkPublishRate(w http.ResponseWriter, cred credentials) bool {
	ops := a.ops
	if ops.rate == nil {
		return false
	}
	wait, ok := ops.rate.allow(cred.signed, time.Now())
	if ok {
		return false
	}
	ops.met.limited(limitPublishRate)
	refuse(w, fmt.Errorf("%w: this token may publish %s times per second (burst %d)%s; slow down, batch data into fewer updates, or retry after the Retry-After delay",
		ErrPublishRate, strconv.FormatFloat(ops.lim.PublishRate, 'g', -1, 64), ops.lim.PublishBurst, a.cfg.hint("Limits.PublishRate")), wait)
	return true
}

// checkSelectorCost refuses a subscription whose selectors together cost
// more matching work than Limits.MaxSelectorCost allows (400).
func (a *API) checkSelectorCost(ms []matcher) error {
	limit := a.ops.lim.MaxSelectorCost
	if limit < 0 {
		return nil
	}
	total := 0
	for _, m := range ms {
		total += m.sel.Cost()
	}
	if total <= limit {
		return nil
	}
	a.ops.met.limited(limitSelectorCost)
	return badRequest(fmt.Sprintf("the topic selectors are too complex together: matching them costs %d, at most %d per subscription%s; use fewer or simpler URI templates or URL patterns, or exact topics (which cost nothing)", total, limit, a.cfg.hint("Limits.MaxSelectorCost")))
}

// checkPublishTopics refuses an update with more topics than
// Limits.MaxPublishTopics (400).
func (a *API) checkPublishTopics(ev *ssehub.Event) error {
	if limit := a.ops.lim.MaxPublishTopics; limit >= 0 && len(ev.Topics) > limit {
		a.ops.met.limited(limitPublishTopics)
		return badRequest(fmt.Sprintf("the update has %d topics, at most %d are accepted%s; publish it to fewer topics, or several updates", len(ev.Topics), limit, a.cfg.hint("Limits.MaxPublishTopics")))
	}
	return nil
}

// checkEventSize refuses an event whose data exceeds Limits.MaxEventBytes.
// The error wraps ssehub.ErrTooLarge (413).
func (a *API) checkEventSize(ev *ssehub.Event) error {
	if m := a.ops.lim.MaxEventBytes; m > 0 && len(ev.Data) > m {
		a.ops.met.limited(limitEventSize)
		return fmt.Errorf("%w: the event's data is %d bytes, more than the %d allowed%s; send less, or publish a reference (a URL) to the content instead",
			ssehub.ErrTooLarge, len(ev.Data), m, a.cfg.hint("Limits.MaxEventBytes"))
	}
	return nil
}

// refuse answers err with its status (see statusTable) and a Retry-After
// of retry (rounded up to whole seconds, at least 1).
func refuse(w http.ResponseWriter, err error, retry time.Duration) {
	secs := max(1, int64(math.Ceil(retry.Seconds())))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	httpError(w, statusOf(err), err.Error())
}

// jitter returns d plus a random share of d.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + rand.N(d)
}
