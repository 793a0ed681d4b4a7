package ops

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
)

// A Tracker hears how a response that Track follows goes. Status is
// called on the handler's goroutine; Done may be called on another one
// (the one that closes a connection the handler took over).
type Tracker interface {
	// Status is called once, with the status the handler answers: its
	// first WriteHeader of a final (>= 200) status, or 200 at its first
	// Write.
	Status(code int)
	// Done is called once, when the response is over: when the handler
	// returned (TrackedWriter.HandlerDone) or, for a connection the
	// handler took over (Hijack, to park the stream), when that
	// connection is closed. status is 0 when the handler answered
	// nothing; writeTimedOut tells whether a write or a flush missed its
	// deadline (os.ErrDeadlineExceeded).
	Done(status int, writeTimedOut bool)
}

// Track returns the writer to give the handler of a long-lived request
// (a subscription, a live read) instead of w, so that t hears its status
// and its end, also when the handler hijacks the connection. Call
// HandlerDone when the handler returned.
func Track(w http.ResponseWriter, t Tracker) *TrackedWriter {
	return &TrackedWriter{ResponseWriter: w, t: t, rc: http.NewResponseController(w)}
}

// TrackedWriter is the ResponseWriter a tracked handler writes to (see
// Track). It records the status and write timeouts and intercepts Hijack
// so that the connection's close ends the tracking. Everything else goes
// to the wrapped writer (Unwrap, for http.ResponseController). Like any
// ResponseWriter it is used by one handler goroutine.
type TrackedWriter struct {
	http.ResponseWriter
	t      Tracker
	rc     *http.ResponseController // of the wrapped writer
	status int

	hijacked     atomic.Bool
	ended        atomic.Bool
	writeTimeout atomic.Bool
}

// HandlerDone tells w that the handler returned (the caller of the handler
// calls it, after ServeHTTP): unless the handler took the connection over,
// the response is over and the Tracker's Done is called.
func (w *TrackedWriter) HandlerDone() {
	if !w.hijacked.Load() {
		w.end()
	}
}

// end tells the tracker the response is over; only the first call counts.
func (w *TrackedWriter) end() {
	if !w.ended.Swap(true) {
		w.t.Done(w.status, w.writeTimeout.Load())
	}
}

// WriteHeader records the status.
func (w *TrackedWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.setStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *TrackedWriter) setStatus(code int) {
	w.status = code
	w.t.Status(code)
}

// Write writes p, noting a write timeout.
func (w *TrackedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.setStatus(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.note(err)
	return n, err
}

// FlushError flushes, noting a write timeout (http.ResponseController
// calls it).
func (w *TrackedWriter) FlushError() error {
	err := w.rc.Flush()
	w.note(err)
	return err
}

// Flush is FlushError for callers that use http.Flusher.
func (w *TrackedWriter) Flush() { _ = w.FlushError() }

// Unwrap returns the wrapped writer.
func (w *TrackedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *TrackedWriter) note(err error) {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		w.writeTimeout.Store(true)
	}
}

// Hijack hands the connection over, wrapped so that closing it ends the
// tracking. (The parker declines TLS connections itself.)
func (w *TrackedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := w.rc.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked.Store(true)
	// The handler is done with the writer: drop it, or the tracked writer
	// (held by the connection until it closes) would keep net/http's
	// per-connection buffers alive, ~8 KB per parked stream.
	w.ResponseWriter, w.rc = nil, nil
	c := &trackedConn{Conn: nc, w: w}
	if sc, ok := nc.(syscall.Conn); ok {
		return &trackedSysConn{trackedConn: c, sc: sc}, brw, nil
	}
	return c, brw, nil
}

// trackedConn is a hijacked connection whose Close ends the tracking.
type trackedConn struct {
	net.Conn
	w *TrackedWriter
}

// Close closes the connection and ends the tracking.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.w.end()
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
