package h1_test

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/h1"
)

// flakyListener fails its first Accept with a temporary error, as a
// listener does when the process is out of file descriptors (EMFILE).
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// A temporary Accept error (out of file descriptors) does not stop the
// Listener for good: net/http retries it, and new connections are served
// once the error is over.
func TestListenerSurvivesTemporaryAcceptErrors(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := h1.NewListener(&flakyListener{Listener: tcp})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := &http.Server{Handler: h1.New(ln, handler, h1.Options{}), ErrorLog: nil}
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	defer func() { srv.Close(); <-served }()
	c := dial(t, tcp.Addr().String())
	c.SetDeadline(time.Now().Add(3 * time.Second))
	c.send(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.read(t); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}
