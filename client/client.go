package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/ssehub/ssehub/internal/reconnect"
	"github.com/ssehub/ssehub/sse"
)

// Defaults.
const (
	// DefaultRetry is the reconnection time until the server sends one.
	DefaultRetry = 3 * time.Second
	// DefaultMaxBackoff caps the wait between failed attempts.
	DefaultMaxBackoff = 30 * time.Second
)

const (
	// healthyAfter is how long a connection must stay open, without any
	// event, to count as healthy and reset the backoff.
	healthyAfter = 10 * time.Second
	// errorBodyLimit is how much of a refused response's body an error
	// quotes.
	errorBodyLimit = 512
)

// Errors. A refused response is reported as a *ResponseError, which wraps
// ErrUnexpectedStatus or ErrNotEventStream; test with errors.Is.
var (
	// ErrUnexpectedStatus: the server answered with a status other than
	// 200 (or 204, which ends the iteration quietly).
	ErrUnexpectedStatus = errors.New("client: unexpected status")
	// ErrNotEventStream: the server answered 200 with a Content-Type other
	// than text/event-stream.
	ErrNotEventStream = errors.New("client: response is not an event stream")
	// ErrBusy: Events was called while another iteration over the same
	// Client is running.
	ErrBusy = errors.New("client: events are already being read from this client")
	// ErrInvalidURL: New was given a URL it cannot subscribe to.
	ErrInvalidURL = errors.New("client: invalid URL")
	// ErrInvalidHeader: WithHeader was given a name or value that cannot
	// be sent (every request would fail).
	ErrInvalidHeader = errors.New("client: invalid header")
)

// ResponseError is a permanent failure: the server answered, but not with an
// event stream. It is safe to read from any goroutine.
type ResponseError struct {
	// StatusCode and Status are the response's, e.g. 401 and
	// "401 Unauthorized".
	StatusCode int
	Status     string
	// ContentType is the response's Content-Type header ("" if none).
	ContentType string
	// Body is the start of the response body (at most 512 bytes), with
	// control characters replaced by spaces and surrounding space trimmed:
	// a server's explanation such as "token expired at …".
	Body string

	err error
}

// Error says what was received and what was expected.
func (e *ResponseError) Error() string {
	var b strings.Builder
	b.WriteString("client: server answered ")
	b.WriteString(e.Status)
	if e.StatusCode == http.StatusOK {
		if e.ContentType == "" {
			b.WriteString(" with no Content-Type")
		} else {
			fmt.Fprintf(&b, " with Content-Type %q", e.ContentType)
		}
		b.WriteString(", want text/event-stream")
	} else {
		b.WriteString(", want 200 with Content-Type text/event-stream")
	}
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	return b.String()
}

// Unwrap returns ErrUnexpectedStatus or ErrNotEventStream.
func (e *ResponseError) Unwrap() error { return e.err }

// State is the state of a Client's connection.
type State int

// The states, in the order they usually come.
const (
	// Connecting: a request is being sent.
	Connecting State = iota + 1
	// Open: the server accepted; events flow.
	Open
	// Reconnecting: the connection ended or the attempt failed; the client
	// waits before connecting again.
	Reconnecting
	// Closed: the iteration is over; the client will not reconnect.
	Closed
)

// String returns the state's name in lower case, e.g. "open".
func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Open:
		return "open"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// StateChange describes one state change, passed to the WithOnState
// callback.
type StateChange struct {
	State State
	// Err is, for Reconnecting, why the previous connection or attempt
	// ended (io.EOF when the server ended the stream cleanly); for Closed,
	// the error that ended the iteration (the one the iterator yielded), or
	// nil after a 204 or when the loop stopped early.
	Err error
	// Delay is, for Reconnecting, how long the client waits before its next
	// attempt.
	Delay time.Duration
	// Header is, for Open, the response's header.
	Header http.Header
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the http.Client used for requests (default
// http.DefaultClient). Its Timeout, if any, also cuts streams, which then
// reconnect; its CheckRedirect decides about redirects.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithHeader adds a header sent with every request, e.g.
// WithHeader("Authorization", "Bearer "+token). It may override the default
// Accept and Cache-Control headers; "Host" sets the request's host. New
// fails with ErrInvalidHeader for a name that is not an HTTP token or a value
// with control characters other than tab.
func WithHeader(key, value string) Option {
	return func(c *Client) {
		if !validHeaderName(key) || !validHeaderValue(value) {
			c.err = errors.Join(c.err, fmt.Errorf("%w: %q: %q", ErrInvalidHeader, key, value))
			return
		}
		if http.CanonicalHeaderKey(key) == "Host" {
			c.host = value
			return
		}
		if !c.userSet[http.CanonicalHeaderKey(key)] {
			c.header.Del(key)
			c.userSet[http.CanonicalHeaderKey(key)] = true
		}
		c.header.Add(key, value)
	}
}

// WithLastEventID sets the last event ID to start from: it is sent as
// Last-Event-ID on the first request, and events without an id carry it.
func WithLastEventID(id string) Option { return func(c *Client) { c.lastID = id } }

// WithRetry sets the reconnection time used until the server sends a
// "retry:" field (default DefaultRetry). Negative means 0.
func WithRetry(d time.Duration) Option { return func(c *Client) { c.retry = max(d, 0) } }

// WithMaxBackoff caps the wait after repeated failures (default
// DefaultMaxBackoff). The wait is never shorter than the reconnection time.
func WithMaxBackoff(d time.Duration) Option { return func(c *Client) { c.maxBackoff = d } }

// WithMaxEventSize sets the largest event (and line) accepted, in bytes
// (default sse.DefaultMaxEventSize); a larger one ends the iteration with an
// error wrapping sse.ErrEventTooLarge.
func WithMaxEventSize(n int) Option { return func(c *Client) { c.maxEvent = n } }

// WithOnState registers fn to be called on every state change. It is called
// synchronously from the goroutine ranging over Events, so it should return
// quickly; it must not call Events.
func WithOnState(fn func(StateChange)) Option { return func(c *Client) { c.onState = fn } }

// Client subscribes to one event-stream URL. Its configuration is fixed by
// New; its last event ID and reconnection time carry over from one call of
// Events to the next, so a later call resumes where an earlier one stopped.
//
// LastEventID and Retry may be called from any goroutine at any time; only
// one Events iteration may run at a time.
type Client struct {
	url        string
	hc         *http.Client
	header     http.Header
	userSet    map[string]bool
	host       string
	err        error // from options
	maxBackoff time.Duration
	maxEvent   int
	onState    func(StateChange)

	mu      sync.Mutex
	lastID  string
	retry   time.Duration
	running bool
}

// New returns a Client for rawURL, which must be an absolute http or https
// URL. The error wraps ErrInvalidURL.
func New(rawURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: scheme must be http or https, got %q", ErrInvalidURL, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: no host in %q", ErrInvalidURL, rawURL)
	}
	c := &Client{
		url:        rawURL,
		hc:         http.DefaultClient,
		header:     http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}},
		userSet:    map[string]bool{},
		maxBackoff: DefaultMaxBackoff,
		retry:      DefaultRetry,
	}
	for _, o := range opts {
		o(c)
	}
	if c.err != nil {
		return nil, c.err
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	return c, nil
}

// LastEventID returns the last event ID: the one to resume from.
func (c *Client) LastEventID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

// Retry returns the current reconnection time.
func (c *Client) Retry() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retry
}

// Events returns an iterator over the events of the stream. It connects when
// the iteration starts and reconnects as needed until one of these ends it:
//
//   - ctx is done: it yields ctx's error;
//   - a permanent failure: it yields a *ResponseError, an error wrapping
//     sse.ErrEventTooLarge, or ErrBusy;
//   - the server answers 204 No Content: it ends without an error;
//   - the loop body breaks.
//
// An error is yielded at most once, as the last value; temporary errors are
// not yielded but reported to the WithOnState callback. The iterator does
// its work in the calling goroutine and leaves no goroutine behind.
func (c *Client) Events(ctx context.Context) iter.Seq2[sse.Event, error] {
	return func(yield func(sse.Event, error) bool) {
		c.mu.Lock()
		if c.running {
			c.mu.Unlock()
			yield(sse.Event{}, ErrBusy)
			return
		}
		c.running = true
		c.mu.Unlock()
		var final error
		defer func() {
			c.mu.Lock()
			c.running = false
			c.mu.Unlock()
			c.emit(StateChange{State: Closed, Err: final})
		}()
		final = c.run(ctx, yield)
	}
}

// errStop means the loop body stopped the iteration.
var errStop = errors.New("client: stopped")

// run is the connect–read–wait loop. It returns the error to report with
// Closed, having yielded it already.
func (c *Client) run(ctx context.Context, yield func(sse.Event, error) bool) error {
	dec := sse.NewDecoder(nil)
	dec.SetMaxEventSize(c.maxEvent)
	dec.SetLastEventID(c.LastEventID())
	fail := func(err error) error {
		yield(sse.Event{}, err)
		return err
	}
	failures := 0
	for {
		c.emit(StateChange{State: Connecting})
		resp, err := c.connect(ctx)
		if ctx.Err() != nil {
			if resp != nil {
				resp.Body.Close()
			}
			return fail(ctx.Err())
		}
		healthy := false
		if err == nil {
			if resp.StatusCode == http.StatusNoContent {
				resp.Body.Close()
				return nil
			}
			if rerr := checkResponse(resp); rerr != nil {
				return fail(rerr)
			}
			c.emit(StateChange{State: Open, Header: resp.Header})
			opened := time.Now()
			err = c.read(dec, resp.Body, yield, &healthy)
			resp.Body.Close()
			if err == errStop {
				return nil
			}
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			if errors.Is(err, sse.ErrEventTooLarge) {
				return fail(err)
			}
			if time.Since(opened) >= healthyAfter {
				healthy = true
			}
		}
		if healthy {
			failures = 0
		}
		failures++
		delay := c.backoff(failures)
		c.emit(StateChange{State: Reconnecting, Err: err, Delay: delay})
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return fail(ctx.Err())
			case <-t.C:
			}
		}
	}
}

// connect sends one request.
func (c *Client) connect(ctx context.Context) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = c.header.Clone()
	if c.host != "" {
		req.Host = c.host
	}
	if id := c.LastEventID(); id != "" && validHeaderValue(id) {
		req.Header.Set("Last-Event-ID", id)
	}
	return c.hc.Do(req)
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether net/http would send v as a header value:
// an id with other control characters is not sent (every request would
// fail otherwise).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// read yields the events of one open stream until it ends, and returns why
// it ended (io.EOF for a clean end, errStop if the loop body stopped).
func (c *Client) read(dec *sse.Decoder, body io.Reader, yield func(sse.Event, error) bool, healthy *bool) error {
	dec.Reset(body)
	for {
		ev, err := dec.Next()
		c.sync(dec)
		if err != nil {
			return err
		}
		*healthy = true
		if !yield(ev, nil) {
			return errStop
		}
	}
}

// sync copies the decoder's last event ID and reconnection time.
func (c *Client) sync(dec *sse.Decoder) {
	id := dec.LastEventID()
	retry, ok := dec.Retry()
	c.mu.Lock()
	c.lastID = id
	if ok {
		c.retry = retry
	}
	c.mu.Unlock()
}

// backoff returns the wait before the next attempt after the given number of
// consecutive failures (1 = the first attempt after a healthy connection):
// see reconnect.Backoff.
func (c *Client) backoff(failures int) time.Duration {
	return reconnect.Backoff(c.Retry(), c.maxBackoff, failures)
}

func (c *Client) emit(sc StateChange) {
	if c.onState != nil {
		c.onState(sc)
	}
}

// checkResponse returns a *ResponseError unless resp opens a stream. It
// closes the body of a refused response.
func checkResponse(resp *http.Response) error {
	ct := resp.Header.Get("Content-Type")
	var sentinel error
	switch {
	case resp.StatusCode != http.StatusOK:
		sentinel = ErrUnexpectedStatus
	case !isEventStream(ct):
		sentinel = ErrNotEventStream
	default:
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	resp.Body.Close()
	return &ResponseError{
		StatusCode:  resp.StatusCode,
		Status:      resp.Status,
		ContentType: ct,
		Body:        cleanBody(body),
		err:         sentinel,
	}
}

// isEventStream reports whether a Content-Type value's media type is
// text/event-stream, ignoring case, surrounding space and parameters.
func isEventStream(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

func cleanBody(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
