package httpapi

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Transports, as in the ssehub_subscriptions metrics.
const (
	transportStream = "stream"
	transportPoll   = "long_poll"
)

// subTracker follows one subscribe request from its start to the end of
// its connection's use: it holds the connection-limit slot, the metrics
// gauge and the debug log lines. The end is when the handler returns or,
// for a connection the handler hands over (hijacks, to park the stream),
// when that connection is closed.
type subTracker struct {
	a         *API
	ip        string
	remote    string
	transport string
	start     time.Time
	debug     bool
	w         trackWriter

	hijacked     atomic.Bool
	ended        atomic.Bool
	writeTimeout atomic.Bool
}

// track starts following a subscribe request whose limit slot is taken.
func (a *API) track(w http.ResponseWriter, r *http.Request, ip string) *subTracker {
	t := &subTracker{a: a, ip: ip, remote: r.RemoteAddr, transport: transportStream, start: time.Now()}
	if wantsPoll(r) {
		t.transport = transportPoll
	}
	t.w = trackWriter{ResponseWriter: w, t: t, rc: http.NewResponseController(w)}
	a.ops.met.subOpened(t.transport)
	if t.debug = a.logger.Enabled(r.Context(), slog.LevelDebug); t.debug {
		a.logger.Debug("httpapi: subscriber connected", "remote", t.remote, "transport", t.transport, "proto", r.Proto)
	}
	return t
}

func (t *subTracker) writer() http.ResponseWriter { return &t.w }

// handlerDone is called when the handler returned.
func (t *subTracker) handlerDone() {
	if !t.hijacked.Load() {
		t.end()
	}
}

// end releases what the subscription held; only the first call counts.
func (t *subTracker) end() {
	if t.ended.Swap(true) {
		return
	}
	ops := t.a.ops
	ops.conns.release(t.ip)
	ops.met.subClosed(t.transport)
	if t.writeTimeout.Load() {
		ops.met.writeTimeout()
	}
	if t.debug {
		t.a.logger.Debug("httpapi: subscriber disconnected", "remote", t.remote, "transport", t.transport,
			"status", t.w.status, "duration", time.Since(t.start).Round(time.Millisecond), "write_timeout", t.writeTimeout.Load())
	}
}

// trackWriter is the ResponseWriter a tracked handler writes to. It
// records the status and write timeouts and intercepts Hijack so that the
// connection's close ends the tracking. Everything else goes to the
// wrapped writer (Unwrap, for http.ResponseController).
type trackWriter struct {
	http.ResponseWriter
	t      *subTracker
	rc     *http.ResponseController // of the wrapped writer
	status int
}

// WriteHeader records the status.
func (w *trackWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.setStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackWriter) setStatus(code int) {
	w.status = code
	if code == http.StatusOK {
		w.t.a.ops.met.subStarted(w.t.transport)
	}
}

// Write writes p, noting a write timeout.
func (w *trackWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.setStatus(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.note(err)
	return n, err
}

// FlushError flushes, noting a write timeout (http.ResponseController
// calls it).
func (w *trackWriter) FlushError() error {
	err := w.rc.Flush()
	w.note(err)
	return err
}

// Flush is FlushError for callers that use http.Flusher.
func (w *trackWriter) Flush() { _ = w.FlushError() }

// Unwrap returns the wrapped writer.
func (w *trackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *trackWriter) note(err error) {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		w.t.writeTimeout.Store(true)
	}
}

// Hijack hands the connection over, wrapped so that closing it ends the
// tracking. (The parker declines TLS connections itself.)
func (w *trackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := w.rc.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.t.hijacked.Store(true)
	// The handler is done with the writer: drop it, or the tracker (held by
	// the connection until it closes) would keep net/http's per-connection
	// buffers alive, ~8 KB per parked stream.
	w.ResponseWriter, w.rc = nil, nil
	c := &trackedConn{Conn: nc, t: w.t}
	if sc, ok := nc.(syscall.Conn); ok {
		return &trackedSysConn{trackedConn: c, sc: sc}, brw, nil
	}
	return c, brw, nil
}

// trackedConn is a hijacked connection whose Close ends the tracking.
type trackedConn struct {
	net.Conn
	t *subTracker
}

// Close closes the connection and ends the tracking.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.t.end()
	return err
}

// trackedSysConn is a trackedConn over a connection with a file
// descriptor, which it exposes (a parker polls it).
type trackedSysConn struct {
	*trackedConn
	sc syscall.Conn
}

// SyscallConn returns the wrapped connection's raw connection.
func (c *trackedSysConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the status.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write writes p.
func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap returns the wrapped writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// parkedStall counts a parked stream closed because its client stopped
// reading: the same write-timeout disconnect as on the handler's path.
func (a *API) parkedStall() { a.ops.met.writeTimeout() }
