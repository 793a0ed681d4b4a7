package ops

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ConnLimits configure a ConnLimiter. The zero value limits nothing (a
// ConnLimiter still counts).
type ConnLimits struct {
	// MaxConnections bounds the long-lived requests (subscriptions, stats
	// streams, live reads) admitted at once; beyond it a request for one
	// gets 503 with Retry-After. 0: no limit.
	MaxConnections int
	// MaxConnectionsPerIP bounds the long-lived requests admitted at once
	// from one client IP address (the TCP peer: behind a proxy, every
	// client shares the proxy's address); beyond it 429 with Retry-After.
	// 0: no limit.
	MaxConnectionsPerIP int
	// RetryAfter is the base Retry-After of a refusal; each answer adds a
	// random share of it so refused clients do not all return at once.
	// Default 5s.
	RetryAfter time.Duration
	// Hints tells clients how the operator changes a limit that refused
	// them, in the embedding program's own terms (a flag, a config key):
	// Hints["MaxConnections"] and Hints["MaxConnectionsPerIP"] are added in
	// parentheses to the refusals of those limits. Nil: refusals say what
	// was refused and why, and name no setting.
	Hints map[string]string
	// Metrics, when not nil, counts refusals in
	// ssehub_limit_rejections_total{limit="connections"} and
	// {limit="connections_per_ip"}.
	Metrics *Metrics
	// Logger receives a debug line for each refusal. Default
	// slog.Default().
	Logger *slog.Logger
}

// Errors of the connection limits, in the refusals' messages.
var (
	// ErrTooManyConnections: the limiter holds ConnLimits.MaxConnections
	// connections (503).
	ErrTooManyConnections = errors.New("ops: too many connections")
	// ErrTooManyConnectionsFromIP: the client's address holds
	// ConnLimits.MaxConnectionsPerIP connections (429).
	ErrTooManyConnectionsFromIP = errors.New("ops: too many connections from this address")
)

// Label values of ssehub_limit_rejections_total for the connection limits.
const (
	limitConnections      = "connections"
	limitConnectionsPerIP = "connections_per_ip"
)

// ConnLimiter counts the long-lived requests it admits (subscriptions,
// stats streams, live reads), in total and per client address, and refuses
// those past its ConnLimits. Every handler of long-lived requests of one
// server shares one limiter (httpapi.Config.Connections, the Durable
// Streams server's Config.AdmitLive), so that they count together. Create
// it with NewConnLimiter; a nil *ConnLimiter admits everything. Safe for
// concurrent use.
type ConnLimiter struct {
	lim                ConnLimits
	maxHint, perIPHint string // " (Hints[…])" or ""

	total atomic.Int64
	mu    sync.Mutex     // guards byIP
	byIP  map[string]int // only when MaxConnectionsPerIP > 0; entries at 0 are deleted
}

// NewConnLimiter returns a limiter of lim.
func NewConnLimiter(lim ConnLimits) *ConnLimiter {
	if lim.RetryAfter <= 0 {
		lim.RetryAfter = 5 * time.Second
	}
	if lim.Logger == nil {
		lim.Logger = slog.Default()
	}
	return &ConnLimiter{lim: lim, maxHint: hint(lim.Hints, "MaxConnections"), perIPHint: hint(lim.Hints, "MaxConnectionsPerIP")}
}

// hint returns " (hints[setting])", or "" when the program gave none.
func hint(hints map[string]string, setting string) string {
	if h := hints[setting]; h != "" {
		return " (" + h + ")"
	}
	return ""
}

// Limit wraps a handler of long-lived requests: each request counts in the
// limits while it runs, and one past a limit is refused (503 or 429 with
// Retry-After, counted in the metrics). httpapi's stats stream uses it.
func (l *ConnLimiter) Limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, ok := l.Admit(w, r)
		if !ok {
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// noRelease is the release of a nil ConnLimiter.
func noRelease() {}

// Admit takes a slot for the long-lived request r (as Limit does) and
// returns the function that gives it back, which the caller calls when the
// connection is done, also after the handler returned (a stream handed to
// a poller); calls after the first do nothing. A request past a limit is
// answered (503 or 429 with Retry-After, counted) and ok is false.
func (l *ConnLimiter) Admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if l == nil {
		return noRelease, true
	}
	ip := clientIP(r)
	err := l.acquire(ip)
	if err == nil {
		var once sync.Once
		return func() { once.Do(func() { l.release(ip) }) }, true
	}
	limit := limitConnections
	if errors.Is(err, ErrTooManyConnectionsFromIP) {
		limit = limitConnectionsPerIP
	}
	l.lim.Metrics.Limited(limit)
	l.lim.Logger.Debug("ops: connection refused", "limit", limit, "remote", r.RemoteAddr, "path", r.URL.Path)
	status := http.StatusServiceUnavailable
	if limit == limitConnectionsPerIP {
		status = http.StatusTooManyRequests
	}
	Refuse(w, status, err.Error(), jitter(l.lim.RetryAfter))
	return nil, false
}

// acquire takes a slot for a connection from ip; release gives it back.
func (l *ConnLimiter) acquire(ip string) error {
	most, perIP := l.lim.MaxConnections, l.lim.MaxConnectionsPerIP
	if n := l.total.Add(1); most > 0 && n > int64(most) {
		l.total.Add(-1)
		return fmt.Errorf("%w: the hub holds its maximum of %d subscriptions%s; retry later or connect to another hub", ErrTooManyConnections, most, l.maxHint)
	}
	if perIP <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byIP == nil {
		l.byIP = make(map[string]int)
	}
	if l.byIP[ip] >= perIP {
		l.total.Add(-1)
		return fmt.Errorf("%w: %s already holds %d subscriptions, the most one address may%s; close some, or subscribe to several topics on one connection", ErrTooManyConnectionsFromIP, ip, perIP, l.perIPHint)
	}
	l.byIP[ip]++
	return nil
}

func (l *ConnLimiter) release(ip string) {
	l.total.Add(-1)
	if l.lim.MaxConnectionsPerIP <= 0 {
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

// Refuse answers a request refused by a limit: status, a Retry-After of
// retry (rounded up to whole seconds, at least 1) and msg, which says what
// to do, as plain text.
func Refuse(w http.ResponseWriter, status int, msg string, retry time.Duration) {
	secs := max(1, int64(math.Ceil(retry.Seconds())))
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}

// jitter returns d plus a random share of d.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + rand.N(d)
}
