// Package h1 serves the POST requests of HTTP/1.1 keep-alive connections
// with a lean loop of its own instead of net/http's, for publishers and
// Durable Streams producers that send many small requests one after the
// other on a connection.
//
// net/http spends more on each small request than the request itself
// costs: a context, a canonicalized header map, a response writer and its
// buffers, and a background read (a goroutine, two deadline changes and a
// read that finds nothing) so that the handler notices a client that
// leaves. A Server takes over (http.Hijacker) the connection of a POST
// that net/http parsed, and serves it and the connection's next POSTs
// itself: it parses each request in place, calls the same http.Handler
// with a response writer that buffers the (small) answer, and writes it
// with one system call. The first request of another kind (a GET, a
// chunked body, an Expect or Upgrade header, anything it does not parse)
// goes back to net/http, with the bytes read so far, through the Listener
// net/http serves: net/http then serves the connection as a new one.
//
// It only takes over plain-text HTTP/1.1 connections (never TLS or
// HTTP/2), and only when the http.Server serves its Listener.
package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Server takes over POST connections for an http.Server that serves its
// Listener. Create it with New; it is safe for concurrent use.
type Server struct {
	ln     *Listener
	next   http.Handler
	opts   Options
	logger *slog.Logger

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Options configure a Server. Zero values take net/http's defaults.
type Options struct {
	// IdleTimeout: a connection that sends no new request for this long is
	// closed (http.Server.IdleTimeout; default 2 minutes).
	IdleTimeout time.Duration
	// HeaderTimeout bounds reading a request's head from its first byte
	// (http.Server.ReadHeaderTimeout; default 10s). Its body may take up
	// to IdleTimeout.
	HeaderTimeout time.Duration
	// WriteTimeout bounds writing one response (default 10s).
	WriteTimeout time.Duration
	// MaxHeaderBytes caps a request's header (default
	// http.DefaultMaxHeaderBytes): a larger one is answered 431.
	MaxHeaderBytes int
	// Logger receives handler panics. Default slog.Default().
	Logger *slog.Logger
}

// New returns a Server that takes over the POST connections net/http
// serves from ln, serving their requests with next.
func New(ln *Listener, next http.Handler, opts Options) *Server {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 2 * time.Minute
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = 10 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Server{ln: ln, next: next, opts: opts, logger: opts.Logger, conns: map[*conn]struct{}{}}
}

// ServeHTTP serves r with the next handler, taking its connection over
// first when it may: an HTTP/1.1 POST with a Content-Length body, on a
// connection that stays open.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !takeable(r) || !s.serve(w, r) {
		s.next.ServeHTTP(w, r)
	}
}

// takeable reports whether net/http's request r is one the loop serves.
func takeable(r *http.Request) bool {
	return r.Method == http.MethodPost && r.ProtoMajor == 1 && r.ProtoMinor == 1 && r.TLS == nil &&
		!r.Close && len(r.TransferEncoding) == 0 && r.ContentLength >= 0 &&
		r.Header.Get("Expect") == "" && r.Header.Get("Upgrade") == ""
}

// Close stops taking connections over, closes those waiting for a request
// and waits up to timeout for the others to finish their request; it
// closes those still busy then, and returns how many it closed so. Call
// it when the http.Server shuts down.
func (s *Server) Close(timeout time.Duration) (cut int) {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.wake()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
			cut++
		}
		s.mu.Unlock()
		// A handler stuck past its connection's end (a blocked write to
		// the log) does not hold the shutdown up any longer: net/http's
		// Close does not wait for its handlers either.
		select {
		case <-done:
		case <-time.After(time.Second):
		}
	}
	return cut
}

// Taken returns how many connections the loop serves now.
func (s *Server) Taken() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// serve takes r's connection over and serves it until it ends or goes
// back to net/http. It returns false, with w untouched, when it cannot.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || s.ln == nil {
		return false
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	c := &conn{s: s, nc: nc, br: brw.Reader, ctx: r.Context(), remote: r.RemoteAddr}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		// Serve this one request (its bytes are read), then close.
		c.closing = true
	} else {
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		c.tracked = true
	}
	s.mu.Unlock()
	c.loop(r)
	return true
}

// field is a header line of the request being read.
type field struct {
	key        string // canonical name
	start, end int    // the value in conn.head
}

// conn is a connection the loop serves.
type conn struct {
	s       *Server
	nc      net.Conn
	br      *bufio.Reader
	ctx     context.Context // the first request's: it lives as long as the loop
	remote  string
	tracked bool

	mu      sync.Mutex
	idle    bool // waiting for a request: Close may interrupt the read
	closing bool // Server.Close: end after the current request

	body   bodyReader
	w      respWriter
	head   []byte  // the raw request head, for a handback
	fields []field // its header lines (next)
	out    []byte  // the response being written
}

// wake interrupts a connection waiting for its next request (Close).
func (c *conn) wake() {
	c.mu.Lock()
	c.closing = true
	if c.idle {
		c.nc.SetReadDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
}

func (c *conn) setIdle(idle bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = idle
	return !c.closing
}

func (c *conn) done(closeConn bool) {
	if closeConn {
		c.nc.Close()
	}
	if c.tracked {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.s.wg.Done()
	}
}

// loop serves first, then the connection's next requests.
func (c *conn) loop(first *http.Request) {
	req := first
	req.Body = &c.body
	c.body.reset(c.br, req.ContentLength)
	for {
		// One deadline for the body and the wait for the next request. It
		// is set before the connection says it is idle, so that Close's
		// wake (a deadline in the past) is never undone.
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
		if !c.handle(req) {
			c.done(true)
			return
		}
		if c.w.readDeadline { // the handler bounded its body's read
			c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
		}
		if !c.setIdle(true) {
			c.done(true)
			return
		}
		var back bool
		req, back = c.next()
		c.setIdle(false)
		if req == nil {
			if back {
				c.handBack()
				c.done(false)
			} else {
				c.done(true)
			}
			return
		}
	}
}

// next reads the connection's next request. It returns nil, true when the
// request is not one the loop serves (it goes back to net/http), and nil,
// false when the connection is to be closed (the client left, a timeout, a
// malformed request, which is answered first).
func (c *conn) next() (*http.Request, bool) {
	s := c.s
	c.head = c.head[:0]
	if cap(c.head) > 8<<10 {
		// A large head (up to MaxHeaderBytes) is not kept for the wait
		// for the next request, that many connections may do at once.
		c.head = nil
	}
	if _, err := c.br.Peek(1); err != nil {
		return nil, false // the client left, or idle too long
	}
	c.nc.SetReadDeadline(time.Now().Add(s.opts.HeaderTimeout))

	line, err := c.readLine()
	if err != nil {
		return nil, c.refuse(err)
	}
	method, rest, ok1 := bytes.Cut(line, sp)
	target, proto, ok2 := bytes.Cut(rest, sp)
	if !ok1 || !ok2 || len(method) == 0 || len(target) == 0 {
		return nil, c.refuse(errMalformed)
	}
	if string(method) != http.MethodPost || string(proto) != "HTTP/1.1" {
		return c.rest() // net/http serves every other kind
	}
	tStart := len(method) + 1 // the target's place in c.head
	tEnd := tStart + len(target)
	// The header lines are checked as they come; their names and values
	// are taken, once the head is whole, from one string of it (one
	// allocation for all of them).
	fields := c.fields[:0]
	var contentLength []byte
	host := -1 // index in fields
	hosts, lengths := 0, 0
	for {
		start := len(c.head)
		line, err := c.readLine()
		if err != nil {
			return nil, c.refuse(err)
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, colon)
		if !ok || !validName(name) {
			return nil, c.refuse(errMalformed) // also obsolete line folding
		}
		value = trimOWS(value)
		if !validValue(value) {
			return nil, c.refuse(errMalformed)
		}
		key := canonical(name)
		vStart := start + (cap(line) - cap(value)) // value's offset within the line (same array)
		switch key {
		case "Host":
			hosts++
			host = len(fields)
		case "Content-Length":
			if lengths > 0 && !bytes.Equal(value, contentLength) {
				return nil, c.refuse(errMalformed)
			}
			lengths++
			contentLength = value
			if lengths > 1 {
				continue // equal repeats: the handler sees one, as from net/http
			}
		case "Transfer-Encoding", "Expect", "Upgrade":
			c.fields = fields[:0]
			return c.rest()
		}
		fields = append(fields, field{key, vStart, vStart + len(value)})
	}
	c.fields = fields[:0]
	if hosts != 1 || !validHost(c.head[fields[host].start:fields[host].end]) {
		return nil, c.refuse(errMalformed)
	}
	n := int64(0)
	if lengths > 0 {
		if n, err = parseLength(contentLength); err != nil {
			return nil, c.refuse(errMalformed)
		}
	}
	if target[0] != '/' {
		return nil, true // absolute form (a proxy's request): net/http's rules
	}
	hs := string(c.head)
	u, err := url.ParseRequestURI(hs[tStart:tEnd])
	if err != nil {
		return nil, c.refuse(errMalformed)
	}
	h := make(http.Header, len(fields))
	vals := make([]string, len(fields))
	for i, f := range fields {
		if i == host {
			continue // net/http moves it to Request.Host
		}
		vals[i] = hs[f.start:f.end]
		if prev, ok := h[f.key]; ok {
			h[f.key] = append(prev, vals[i])
		} else {
			h[f.key] = vals[i : i+1 : i+1]
		}
	}
	c.body.reset(c.br, n)
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          &c.body,
		ContentLength: n,
		Host:          hs[fields[host].start:fields[host].end],
		RemoteAddr:    c.remote,
		RequestURI:    hs[tStart:tEnd],
		Close:         hasToken(h["Connection"], "close"),
	}
	return req.WithContext(c.ctx), false
}

var (
	sp    = []byte(" ")
	colon = []byte(":")

	errMalformed      = errors.New("malformed HTTP request")
	errHeaderTooLarge = errors.New("request header too large")
)

// readLine reads one line of the request head (without its CRLF or LF),
// keeping the raw bytes in c.head.
func (c *conn) readLine() ([]byte, error) {
	start := len(c.head)
	for { // a line may be longer than the reader's buffer (a large token)
		frag, err := c.br.ReadSlice('\n')
		if len(c.head)+len(frag) > c.s.opts.MaxHeaderBytes {
			return nil, errHeaderTooLarge
		}
		c.head = append(c.head, frag...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return nil, err
		}
	}
	line := c.head[start : len(c.head)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// rest reads the remaining lines of a head the loop does not serve (they
// go back to net/http with it), so that the handback holds whole lines.
func (c *conn) rest() (*http.Request, bool) {
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, c.refuse(err)
		}
		if len(line) == 0 {
			return nil, true
		}
	}
}

// refuse answers a request the loop could not read, as net/http does, and
// reports false (close the connection). A client that left or a timeout
// gets no answer.
func (c *conn) refuse(err error) bool {
	var msg string
	switch {
	case errors.Is(err, errHeaderTooLarge):
		msg = "431 Request Header Fields Too Large"
	case errors.Is(err, errMalformed):
		msg = "400 Bad Request"
	default:
		return false
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	io.WriteString(c.nc, "HTTP/1.1 "+msg+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"+msg)
	// Closing with unread bytes would reset the connection and could
	// destroy the answer before the client reads it: half-close, and
	// read what the client still sends, for a moment.
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.CopyN(io.Discard, c.nc, 256<<10)
	}
	return false
}

// handBack gives the connection, with what was read of its next request,
// back to net/http.
func (c *conn) handBack() {
	c.nc.SetReadDeadline(time.Time{})
	pre := append([]byte(nil), c.head...)
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		pre = append(pre, b...)
	}
	nc := c.nc
	if p, ok := nc.(*prefixConn); ok {
		// Handed back before: wrap the connection itself, not the
		// wrapper, or a client going back and forth (a POST, a GET, a
		// POST...) piles wrappers up without bound, every read going
		// through all of them. What the earlier handback has not given
		// net/http yet comes after what was read here.
		pre = append(pre, p.pre...)
		nc = p.Conn
	}
	if !c.s.ln.back(&prefixConn{Conn: nc, pre: pre}) {
		nc.Close()
	}
}

// handle serves one request and writes its response; it reports whether
// the connection may serve another.
func (c *conn) handle(req *http.Request) (keep bool) {
	w := &c.w
	w.reset(c.nc)
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				c.s.logger.Error("h1: handler panicked", "panic", p, "method", req.Method, "path", req.URL.Path)
			}
			keep = false
		}
	}()
	c.s.next.ServeHTTP(w, req)
	c.mu.Lock()
	keep = !req.Close && !w.close && !c.closing // closing: answer this one, then close
	c.mu.Unlock()
	// What the handler left of the body is read and dropped, up to a
	// bound; a client that sends more is not worth keeping.
	if c.body.n > 0 {
		if c.body.n > 256<<10 {
			keep = false
		} else if _, err := io.Copy(io.Discard, &c.body); err != nil {
			keep = false
		}
	}
	if c.body.err != nil {
		keep = false
	}
	c.out = w.appendResponse(c.out[:0], !keep)
	if w.close { // the handler's Connection: close, which the answer says
		keep = false
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	if _, err := c.nc.Write(c.out); err != nil {
		return false
	}
	if cap(c.out) > 64<<10 {
		c.out, w.body = nil, nil
	}
	return keep
}

// bodyReader is a request body of a known length.
type bodyReader struct {
	r   *bufio.Reader
	n   int64
	err error // a read of the connection failed
}

func (b *bodyReader) reset(r *bufio.Reader, n int64) { b.r, b.n, b.err = r, n, nil }

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	}
	return n, nil
}

func (b *bodyReader) Close() error { return nil }

// parseLength parses a Content-Length: decimal digits.
func parseLength(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > 18 {
		return 0, errMalformed
	}
	var n int64
	for _, ch := range v {
		if ch < '0' || ch > '9' {
			return 0, errMalformed
		}
		n = n*10 + int64(ch-'0')
	}
	return n, nil
}

// validName reports whether b is a header field name (RFC 9110 token).
func validName[T string | []byte](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if ch := b[i]; ch >= 0x80 || !isTokenChar[ch] {
			return false
		}
	}
	return true
}

// validValue reports whether b may be a field value: no control bytes but
// horizontal tab.
func validValue(b []byte) bool {
	for _, ch := range b {
		if ch < ' ' && ch != '\t' || ch == 0x7f {
			return false
		}
	}
	return true
}

var isTokenChar = func() (t [128]bool) {
	for ch := range 128 {
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
			t[ch] = true
		default:
			t[ch] = ch != 0 && bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), byte(ch)) >= 0
		}
	}
	return t
}()

// validHost reports whether a Host header holds only the bytes a host
// and port (or an IP literal) may hold, as net/http requires.
func validHost(b []byte) bool {
	for _, ch := range b {
		if ch >= 0x80 || !isHostChar[ch] {
			return false
		}
	}
	return true
}

var isHostChar = func() (t [128]bool) {
	for ch := range 128 {
		t[ch] = 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' ||
			bytes.IndexByte([]byte("!$%&'()*+,-.:;=@[]_~"), byte(ch)) >= 0
	}
	return t
}()

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// canonical is the canonical form of a header name (net/textproto's),
// without allocating for the common names.
func canonical(name []byte) string {
	for _, k := range common {
		if len(k) == len(name) && bytes.EqualFold(name, []byte(k)) {
			return k
		}
	}
	return http.CanonicalHeaderKey(string(name))
}

var common = [...]string{"Host", "Content-Type", "Content-Length", "Authorization", "User-Agent", "Accept", "Connection", "Cookie", "Origin", "Transfer-Encoding", "Expect", "Upgrade"}

// hasToken reports whether a comma-separated header holds token.
func hasToken(vals []string, token string) bool {
	for _, v := range vals {
		for len(v) > 0 {
			var t string
			t, v, _ = cutComma(v)
			if equalFoldTrim(t, token) {
				return true
			}
		}
	}
	return false
}

func cutComma(v string) (string, string, bool) {
	for i := 0; i < len(v); i++ {
		if v[i] == ',' {
			return v[:i], v[i+1:], true
		}
	}
	return v, "", false
}

func equalFoldTrim(s, t string) bool {
	return bytes.EqualFold(trimOWS([]byte(s)), []byte(t))
}

// prefixConn is a connection handed back to net/http: the bytes already
// read from it come first.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		if len(p.pre) == 0 {
			p.pre = nil // let the bytes go
		}
		return n, nil
	}
	return p.Conn.Read(b)
}

// SyscallConn lets a handback be parked (internal/park) like any
// connection: the parker only writes to it and watches for the client
// leaving.
func (p *prefixConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := p.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("h1: not a system connection")
}

// CloseWrite half-closes the connection when it can (net/http's
// graceful close of a connection that sent an error).
func (p *prefixConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return p.Conn.Close()
}

// respWriter buffers a response.
type respWriter struct {
	nc           net.Conn
	h            http.Header
	status       int
	body         []byte
	close        bool // the handler asked to close the connection
	readDeadline bool // the handler set a read deadline
}

func (w *respWriter) reset(nc net.Conn) {
	if w.h == nil {
		w.h = make(http.Header, 8)
	} else {
		clear(w.h)
	}
	w.nc, w.status, w.body, w.close, w.readDeadline = nc, 0, w.body[:0], false, false
}

// SetReadDeadline bounds the reads of the request's body, as net/http's
// response writer does (http.ResponseController).
func (w *respWriter) SetReadDeadline(t time.Time) error {
	w.readDeadline = true
	return w.nc.SetReadDeadline(t)
}

func (w *respWriter) Header() http.Header { return w.h }

func (w *respWriter) WriteHeader(code int) {
	if w.status != 0 || code < 100 || code > 999 {
		return
	}
	if code < 200 { // an informational answer is not the response
		return
	}
	w.status = code
}

func (w *respWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

// FlushError is a no-op: the response is written in one go when the
// handler returns (the loop serves requests whose answers are small).
func (w *respWriter) FlushError() error { return nil }

// SetWriteDeadline is accepted and ignored: the loop bounds every write
// with Options.WriteTimeout.
func (w *respWriter) SetWriteDeadline(time.Time) error { return nil }

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified && status >= 200
}

// appendResponse appends the wire form of the response to b.
func (w *respWriter) appendResponse(b []byte, closeConn bool) []byte {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	h := w.h
	if hasToken(h["Connection"], "close") {
		closeConn = true
		w.close = true
	}
	delete(h, "Connection")
	delete(h, "Transfer-Encoding")
	if bodyAllowed(w.status) {
		if _, set := h["Content-Type"]; !set && len(w.body) > 0 {
			h["Content-Type"] = []string{http.DetectContentType(w.body)}
		}
		h["Content-Length"] = []string{strconv.Itoa(len(w.body))}
	} else {
		delete(h, "Content-Length")
	}
	for k, vs := range h {
		if !validName(k) {
			continue // as net/http: a name with CR, LF, ':'... would split the answer
		}
		for _, v := range vs {
			if v == "" && k == "Content-Type" {
				continue // explicitly unset: no sniffing, no header
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	if _, set := h["Date"]; !set {
		b = append(b, "Date: "...)
		b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "\r\n"...)
	}
	if closeConn {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	if bodyAllowed(w.status) {
		b = append(b, w.body...)
	}
	return b
}

// appendValue appends a header value with CR and LF replaced by spaces,
// as net/http does, so that a handler cannot split the response.
func appendValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch == '\r' || ch == '\n' {
			ch = ' '
		}
		b = append(b, ch)
	}
	return b
}
