package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/park"
	"github.com/ssehub/ssehub/topic"
)

// Prefix is where the Durable Streams protocol is served by default.
const Prefix = "/v1/stream/"

// Config configures a Server. Hub is required; every other field has a
// default.
type Config struct {
	// Hub is the engine streams are stored in and read from. Its log must
	// keep an index by topic (ssehub.TopicIndex; every log of this module
	// does).
	Hub *hub.Hub
	// Publishers verifies the tokens of writers (create, append, close,
	// delete): a token whose publish selectors match the stream's topic.
	Publishers *auth.Verifier
	// Subscribers verifies the tokens of readers (GET, HEAD): a token
	// whose subscribe selectors match the stream's topic.
	Subscribers *auth.Verifier
	// Anonymous lets readers without a token read every stream.
	Anonymous bool
	// AnonymousWrites lets anyone create, append to, close and delete
	// streams without a token (and read them). For development and the
	// protocol's conformance suite only.
	AnonymousWrites bool
	// CookieName is the cookie that may carry a token. Default
	// "mercureAuthorization".
	CookieName string
	// Prefix is the path streams live under; a stream's topic is its
	// path. Default Prefix ("/v1/stream/").
	Prefix string
	// MaxBodyBytes bounds a create or append request body. Default 8 MiB.
	MaxBodyBytes int64
	// MaxMessages bounds the messages one append of an application/json
	// stream may carry (a top-level array is flattened into as many
	// messages): each is an event in the log, which the history's
	// retention counts. Default 10,000.
	MaxMessages int
	// ReadBytes bounds the data of one catch-up or long-poll answer and of
	// one SSE data event. Default 1 MiB.
	ReadBytes int
	// PollTimeout is how long a long-poll read waits for data before it
	// answers 204. Default 20s.
	PollTimeout time.Duration
	// SSELifetime is how long an SSE read stays open before the server
	// ends it (the client resumes from the last offset; the protocol asks
	// for about a minute so that CDNs can collapse requests). Default 60s.
	SSELifetime time.Duration
	// WriteTimeout is the deadline of each write to an SSE reader; one that
	// does not take its bytes in time is disconnected. Default 10s.
	WriteTimeout time.Duration
	// MaxStreams is how many streams' state a hub keeps in memory; beyond
	// it, streams nobody is using are forgotten and read from the log again
	// when next used. Default 100,000.
	MaxStreams int
	// Logger receives warnings (failed appends). Default slog.Default().
	Logger *slog.Logger
	// AdmitLive, when set, admits each live read (long-poll and SSE),
	// which holds a connection: it answers and returns false for a read
	// past a limit, else the function that gives the slot back when the
	// connection is done. The binary passes the connection limits it
	// shares with the Mercure API (ops.ConnLimiter.Admit) so that they
	// count like subscriptions.
	AdmitLive func(w http.ResponseWriter, r *http.Request) (release func(), ok bool)
	// NoPark keeps every SSE reader on its own goroutine. By default, with
	// a local log (bbolt, memory) on Linux, an SSE reader that caught up
	// over HTTP/1.x is handed to a poller (internal/park) that holds idle
	// connections without a goroutine and buffers each, as Mercure's
	// streams are.
	NoPark bool
	// CrossSite, when set, reports whether a request comes from a page of
	// another origin that may not send credentials: a write authorized by
	// a cookie from such a page is refused (cross-site request forgery).
	// The binary passes the Mercure API's rule (its CORS origins). Default:
	// any Origin whose host is not the request's.
	CrossSite func(*http.Request) bool
	// OnLimit, when set, is called with the name of the limit a request
	// was refused by ("streams_body" for MaxBodyBytes), for metrics (the
	// binary passes ops.Metrics.Limited).
	OnLimit func(limit string)
}

// Server serves the Durable Streams protocol. Create it with New; it is
// an http.Handler for the paths under Config.Prefix. Safe for concurrent
// use.
type Server struct {
	forkMu sync.Mutex // serializes forks' creation and deletions; before any stream's lock
	cfg    Config
	parker *park.Parker         // nil: SSE readers are not parked
	keys   atomic.Pointer[keys] // set by Reload
	hub    *hub.Hub
	store  *store
	sels   *topic.Cache
	logger *slog.Logger
}

// New returns a Server on cfg.Hub.
func New(cfg Config) (*Server, error) {
	if cfg.Hub == nil {
		return nil, errors.New("streams: Config.Hub is required")
	}
	idx, ok := cfg.Hub.Log().(ssehub.TopicIndex)
	if !ok {
		return nil, fmt.Errorf("streams: the hub's log (%T) keeps no index by topic (ssehub.TopicIndex)", cfg.Hub.Log())
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "mercureAuthorization"
	}
	if cfg.Prefix == "" {
		cfg.Prefix = Prefix
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = 10_000
	}
	if cfg.ReadBytes <= 0 {
		cfg.ReadBytes = 1 << 20
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 20 * time.Second
	}
	if cfg.SSELifetime <= 0 {
		cfg.SSELifetime = 60 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 100_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, hub: cfg.Hub, store: newStore(idx, cfg.MaxStreams), sels: topic.NewCache(1024), logger: cfg.Logger}
	if !cfg.NoPark && park.Supported && s.store.local {
		p, err := park.New(park.Options{WriteTimeout: cfg.WriteTimeout, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("streams: %w", err)
		}
		s.parker = p
	}
	return s, nil
}

// keys are the verifiers installed by Reload.
type keys struct{ pub, sub *auth.Verifier }

// Reload replaces the verifiers of writers' and readers' tokens for every
// request that arrives after it returns (nil: no such token is accepted).
// Safe for concurrent use.
func (s *Server) Reload(publishers, subscribers *auth.Verifier) {
	s.keys.Store(&keys{publishers, subscribers})
}

// Close ends the SSE readers handed to the poller, after letting them
// write what is pending for up to timeout (the hub, closing first, ends
// them with the rest of its subscribers). Call it before closing the hub's
// log.
func (s *Server) Close(timeout time.Duration) {
	if s.parker != nil {
		s.parker.Close(timeout)
	}
}

// Parked returns how many SSE readers the poller holds now (see
// Config.NoPark). Safe for concurrent use.
func (s *Server) Parked() int {
	if s.parker == nil {
		return 0
	}
	return s.parker.Len()
}

// ServeHTTP serves one protocol request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AdmitLive == nil || r.Method != http.MethodGet || !r.URL.Query().Has("live") {
		s.serve(w, r)
		return
	}
	release, ok := s.cfg.AdmitLive(w, r)
	if !ok {
		return
	}
	slot := &liveSlot{release: release}
	s.serve(w, r.WithContext(context.WithValue(r.Context(), slotKey{}, slot)))
	if !slot.handedOff {
		release()
	}
}

// liveSlot is a live read's connection slot (Config.AdmitLive): released
// when the handler returns, or when the parked connection closes.
type liveSlot struct {
	release   func()
	handedOff bool
}

type slotKey struct{}

// untake takes back a slot takeSlot handed over (the poller declined).
func untake(r *http.Request) {
	if slot, ok := r.Context().Value(slotKey{}).(*liveSlot); ok {
		slot.handedOff = false
	}
}

// takeSlot hands the request's connection slot over to a parked
// connection, which releases it when it closes.
func takeSlot(r *http.Request) func() {
	if slot, ok := r.Context().Value(slotKey{}).(*liveSlot); ok {
		slot.handedOff = true
		return slot.release
	}
	return func() {}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if h.Get("Access-Control-Allow-Origin") != "" { // allowed by the CORS policy of the API we are mounted in
		h.Set("Access-Control-Expose-Headers", exposed)
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, POST, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", allowedHeaders)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, s.cfg.Prefix)
	if !ok || name == "" {
		fail(w, http.StatusNotFound, "no stream here: streams live at "+s.cfg.Prefix+"<name>")
		return
	}
	tp := r.URL.Path
	if err := ssehub.CheckText("stream path", tp); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	c, ok := s.authorized(w, r, tp, write)
	if !ok {
		return
	}
	if c != nil && r.Header.Get("Stream-Forked-From") != "" {
		r = r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)) // for mayFork
	}
	switch r.Method {
	case http.MethodPut:
		s.create(w, r, tp)
	case http.MethodPost:
		s.append(w, r, tp)
	case http.MethodDelete:
		s.delete(w, r, tp)
	case http.MethodHead:
		s.head(w, r, tp)
	case http.MethodGet:
		s.read(w, r, tp)
	default:
		h.Set("Allow", "GET, HEAD, PUT, POST, DELETE, OPTIONS")
		fail(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not part of the Durable Streams protocol; use PUT, POST, GET, HEAD or DELETE")
	}
}

const exposed = "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, Stream-Closed, Stream-TTL, Stream-Expires-At, Stream-Sse-Data-Encoding, Producer-Epoch, Producer-Seq, Producer-Expected-Seq, Producer-Received-Seq, ETag, Location, Content-Type"
const allowedHeaders = "Authorization, Content-Type, Stream-Seq, Stream-TTL, Stream-Expires-At, Stream-Closed, Stream-Forked-From, Stream-Fork-Offset, Stream-Fork-Sub-Offset, Producer-Id, Producer-Epoch, Producer-Seq, If-None-Match"

// authorized checks the request's token: writers need a publisher token
// whose publish selectors match the stream's topic, readers a subscriber
// token whose subscribe selectors do (or Anonymous).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, tp string, write bool) (*auth.Claims, bool) {
	if s.cfg.AnonymousWrites || (!write && s.cfg.Anonymous) {
		return nil, true
	}
	pub, sub := s.cfg.Publishers, s.cfg.Subscribers
	if k := s.keys.Load(); k != nil {
		pub, sub = k.pub, k.sub
	}
	role, v := "subscriber", sub
	if write {
		role, v = "publisher", pub
	}
	tok, source, err := auth.TokenFromRequest(r, s.cfg.CookieName)
	if errors.Is(err, auth.ErrMissing) {
		what := "reading a stream needs a subscriber JWT whose mercure.subscribe claim matches the stream's path"
		if write {
			what = "writing to a stream needs a publisher JWT whose mercure.publish claim matches the stream's path"
		}
		unauthorized(w, http.StatusUnauthorized, err, "auth: "+what+" ("+tp+"); send it as Authorization: Bearer <token>")
		return nil, false
	}
	if err != nil {
		unauthorized(w, http.StatusUnauthorized, err, err.Error())
		return nil, false
	}
	if v == nil {
		fail(w, http.StatusUnauthorized, "auth: this hub has no "+role+" key configured, so it cannot verify "+role+" tokens")
		return nil, false
	}
	c, err := v.Verify(tok)
	if err != nil {
		unauthorized(w, http.StatusUnauthorized, err, err.Error())
		return nil, false
	}
	if write && source == auth.SourceCookie && s.crossSite(r) {
		fail(w, http.StatusForbidden, "cross-site write refused: the request carries a cookie token but comes from a page of another origin; send the token in the Authorization header")
		return nil, false
	}
	if write {
		if err := c.CanPublish([]string{tp}, s.sels); err != nil {
			unauthorized(w, http.StatusForbidden, err, err.Error())
			return nil, false
		}
		return c, true
	}
	if !c.CanReceive([]string{tp}) {
		fail(w, http.StatusForbidden, "auth: the token's mercure.subscribe claim does not match "+tp)
		return nil, false
	}
	return c, true
}

// claimsKey carries a writer's verified claims to mayFork.
type claimsKey struct{}

func claimsOf(r *http.Request) *auth.Claims {
	c, _ := r.Context().Value(claimsKey{}).(*auth.Claims)
	return c
}

// crossSite reports whether r comes from a page of another origin that may
// not send credentials: Config.CrossSite, or by default any Origin whose
// host is not the request's.
func (s *Server) crossSite(r *http.Request) bool {
	if s.cfg.CrossSite != nil {
		return s.cfg.CrossSite(r)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}

func unauthorized(w http.ResponseWriter, code int, err error, msg string) {
	if code == http.StatusUnauthorized {
		if v := auth.WWWAuthenticate(err); v != "" {
			w.Header().Set("WWW-Authenticate", v)
		}
	}
	fail(w, code, msg)
}

// fail answers an error with a message that says what to fix.
func fail(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

// storageError answers a failure of the log.
func (s *Server) storageError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, context.Canceled):
		return
	case errors.Is(err, ssehub.ErrTooLarge):
		fail(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, ssehub.ErrInvalid):
		fail(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ssehub.ErrUnavailable), errors.Is(err, ssehub.ErrClosed):
		w.Header().Set("Retry-After", "1")
		fail(w, http.StatusServiceUnavailable, "storage unavailable, retry: "+err.Error())
	default:
		s.logger.Warn("streams: storage failed", "err", err)
		fail(w, http.StatusInternalServerError, "storage failed: "+err.Error())
	}
}

// current returns the stream's state, up to date with the log. A stream
// whose TTL or expiry time has passed is gone: without locked, it is
// deleted (as DELETE would); a writer that holds st.writeMu (locked) sees
// it as deleted, and it is deleted then only when that touches no other
// stream (no forks, not a fork), since the fork lock comes before a
// stream's write lock.
func (s *Server) current(ctx context.Context, st *stream, locked bool) (state, error) {
	cur, err := s.store.sync(ctx, st)
	if err != nil || !st.expired(&cur, time.Now()) {
		return cur, err
	}
	if locked {
		if cur.refs > 0 || cur.from != "" {
			gone := cur
			if cur.refs > 0 {
				gone.softDeleted = true
			} else {
				gone.exists = false
			}
			return gone, nil
		}
	} else {
		s.forkMu.Lock()
		defer s.forkMu.Unlock()
		st.writeMu.Lock()
		defer st.writeMu.Unlock()
		if cur, err = s.store.sync(ctx, st); err != nil || !st.expired(&cur, time.Now()) {
			return cur, err
		}
	}
	if err := s.publish(ctx, s.deleteEvents(ctx, st.topic, &cur)...); err != nil {
		return cur, err
	}
	return s.store.sync(ctx, st)
}

// publish appends events through the hub and folds them into the streams'
// states.
func (s *Server) publish(ctx context.Context, evs ...*ssehub.Event) error {
	if err := s.hub.Publish(context.WithoutCancel(ctx), evs...); err != nil {
		return err
	}
	s.store.applyOwn(evs)
	return nil
}

// mediaType is a content type's essence, lower case ("text/plain").
func mediaType(ct string) string {
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	ct, _, _ = strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

func isJSON(ct string) bool { return mediaType(ct) == "application/json" }

// isText reports whether a stream's bytes are sent as text in SSE (else
// base64).
func isText(ct string) bool {
	mt := mediaType(ct)
	return strings.HasPrefix(mt, "text/") || mt == "application/json"
}

// sameType compares content types as the protocol does: by essence,
// case-insensitively.
func sameType(a, b string) bool { return mediaType(a) == mediaType(b) }

// isTrue is the protocol's reading of Stream-Closed: exactly "true", any
// case.
func isTrue(v string) bool { return strings.EqualFold(v, "true") }

// parseTTL parses Stream-TTL: decimal digits without a leading zero.
func parseTTL(v string) (int64, bool) {
	if len(v) > 12 || (len(v) > 1 && v[0] == '0') || !digits(v) {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// parseJSNumber parses a producer epoch or sequence: a non-negative
// integer no larger than 2^53-1.
func parseJSNumber(v string) (int64, bool) {
	if len(v) > 16 || !digits(v) {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n <= 1<<53-1
}

// digits reports whether v is made of ASCII digits only (and not empty).
func digits(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return v != ""
}

// setState writes the headers that describe a stream's state.
func setState(h http.Header, cur *state) {
	h.Set("Stream-Next-Offset", formatOffset(cur.tail))
	if cur.closed {
		h.Set("Stream-Closed", "true")
	}
}
