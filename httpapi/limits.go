package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/ops"
)

// Limits bound what clients may ask of the Mercure protocol. The zero
// value of a field means "no limit" unless said otherwise; every refusal
// answers with a status and a plain-text message that says what to do.
// (The connection limits, shared with other handlers of long-lived
// requests, are Config.Connections: an ops.ConnLimiter.)
type Limits struct {
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
}

// Errors of the limits, mapped to statuses in errors.go.
var (
	// ErrPublishRate: the publisher token exceeded Limits.PublishRate (429).
	ErrPublishRate = errors.New("httpapi: publish rate exceeded")
	// errBodyTimeout: a publish body took longer than Limits.ReadTimeout.
	errBodyTimeout = errors.New("httpapi: request body not received in time")
)

// Label values of the metrics of limits.
const (
	limitPublishRate   = "publish_rate"
	limitEventSize     = "event_size"
	limitReadTimeout   = "read_timeout"
	limitSelectorCost  = "selector_cost"
	limitPublishTopics = "publish_topics"
)

// guardSubscribe wraps the subscribe handler with the connection limits,
// the subscription metrics and the open/close debug log lines. A stream
// whose connection is taken over (parked) is counted until that connection
// closes, not until the handler returns (ops.Track).
func (a *API) guardSubscribe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, ok := a.conns.Admit(w, r)
		if !ok {
			return
		}
		t := &subTracker{a: a, release: release, remote: r.RemoteAddr, transport: ops.TransportStream, start: time.Now()}
		if wantsPoll(r) {
			t.transport = ops.TransportLongPoll
		}
		a.met.SubscriptionOpened(t.transport)
		if t.debug = a.logger.Enabled(r.Context(), slog.LevelDebug); t.debug {
			a.logger.Debug("httpapi: subscriber connected", "remote", t.remote, "transport", t.transport, "proto", r.Proto)
		}
		tw := ops.Track(w, t)
		next.ServeHTTP(tw, r)
		tw.HandlerDone()
	})
}

// subTracker follows one subscribe request from its start to the end of
// its connection's use (an ops.Tracker): it holds the connection-limit
// slot, the metrics gauge and the debug log lines.
type subTracker struct {
	a         *API
	release   func() // of the connection-limit slot
	remote    string
	transport string // ops.TransportStream or TransportLongPoll
	start     time.Time
	debug     bool
}

// Status counts an accepted subscription.
func (t *subTracker) Status(code int) {
	if code == http.StatusOK {
		t.a.met.SubscriptionAccepted(t.transport)
	}
}

// Done releases what the subscription held.
func (t *subTracker) Done(status int, writeTimedOut bool) {
	t.release()
	t.a.met.SubscriptionClosed(t.transport)
	if writeTimedOut {
		t.a.met.WriteTimedOut()
	}
	if t.debug {
		t.a.logger.Debug("httpapi: subscriber disconnected", "remote", t.remote, "transport", t.transport,
			"status", status, "duration", time.Since(t.start).Round(time.Millisecond), "write_timeout", writeTimedOut)
	}
}

// guardPublish wraps the publish handler with the body read timeout and
// the publish duration metric. (The publish rate is checked by the
// handler, once the token is verified: checkPublishRate.)
func (a *API) guardPublish(next http.Handler) http.Handler {
	next = a.met.TimePublishes(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := a.lim.ReadTimeout; d > 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, timeout: d, met: a.met, hint: a.cfg.hint("Limits.ReadTimeout")}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody is a publish body read under a deadline. Once it is read
// to the end, the deadline is lifted (so a slow append after it does not
// trip it); a read past the deadline fails with a message that says so.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	met     *ops.Metrics
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
		b.met.Limited(limitReadTimeout)
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
	if a.rate == nil {
		return false
	}
	wait, ok := a.rate.Allow(cred.signed, time.Now())
	if ok {
		return false
	}
	a.met.Limited(limitPublishRate)
	err := fmt.Errorf("%w: this token may publish %s times per second (burst %d)%s; slow down, batch data into fewer updates, or retry after the Retry-After delay",
		ErrPublishRate, strconv.FormatFloat(a.lim.PublishRate, 'g', -1, 64), a.lim.PublishBurst, a.cfg.hint("Limits.PublishRate"))
	ops.Refuse(w, statusOf(err), err.Error(), wait)
	return true
}

// checkSelectorCost refuses a subscription whose selectors together cost
// more matching work than Limits.MaxSelectorCost allows (400).
func (a *API) checkSelectorCost(ms []matcher) error {
	limit := a.lim.MaxSelectorCost
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
	a.met.Limited(limitSelectorCost)
	return badRequest(fmt.Sprintf("the topic selectors are too complex together: matching them costs %d, at most %d per subscription%s; use fewer or simpler URI templates or URL patterns, or exact topics (which cost nothing)", total, limit, a.cfg.hint("Limits.MaxSelectorCost")))
}

// checkPublishTopics refuses an update with more topics than
// Limits.MaxPublishTopics (400).
func (a *API) checkPublishTopics(ev *ssehub.Event) error {
	if limit := a.lim.MaxPublishTopics; limit >= 0 && len(ev.Topics) > limit {
		a.met.Limited(limitPublishTopics)
		return badRequest(fmt.Sprintf("the update has %d topics, at most %d are accepted%s; publish it to fewer topics, or several updates", len(ev.Topics), limit, a.cfg.hint("Limits.MaxPublishTopics")))
	}
	return nil
}

// checkEventSize refuses an event whose data exceeds Limits.MaxEventBytes.
// The error wraps ssehub.ErrTooLarge (413).
func (a *API) checkEventSize(ev *ssehub.Event) error {
	if m := a.lim.MaxEventBytes; m > 0 && len(ev.Data) > m {
		a.met.Limited(limitEventSize)
		return fmt.Errorf("%w: the event's data is %d bytes, more than the %d allowed%s; send less, or publish a reference (a URL) to the content instead",
			ssehub.ErrTooLarge, len(ev.Data), m, a.cfg.hint("Limits.MaxEventBytes"))
	}
	return nil
}
