package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// pipeNet is an in-memory network for tests inside a synctest bubble, where
// real sockets cannot be used: a real http.Server serves connections made of
// net.Pipe, and a real http.Transport dials them. Nothing of the client is
// faked; only the kernel's sockets are replaced.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	mu     sync.Mutex
	refuse int // dials to refuse before accepting again
}

func newPipeNet() *pipeNet {
	return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// Accept implements net.Listener.
func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (p *pipeNet) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

// Addr implements net.Listener.
func (p *pipeNet) Addr() net.Addr { return pipeAddr{} }

// Refuse makes the next n dials fail as a refused connection would.
func (p *pipeNet) Refuse(n int) {
	p.mu.Lock()
	p.refuse = n
	p.mu.Unlock()
}

var errRefused = errors.New("connection refused")

// DialContext is the transport's dialer.
func (p *pipeNet) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	p.mu.Lock()
	if p.refuse > 0 {
		p.refuse--
		p.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: errRefused}
	}
	p.mu.Unlock()
	srv, cli := net.Pipe()
	select {
	case p.conns <- srv:
		return cli, nil
	case <-p.done:
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: errRefused}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startPipeServer serves h on a new pipeNet and returns an http.Client
// connected to it, and a function that shuts both down. Call it inside the
// bubble; call stop before the bubble ends.
func startPipeServer(h http.Handler) (*http.Client, *pipeNet, func()) {
	pn := newPipeNet()
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(pn)
	}()
	tr := &http.Transport{DialContext: pn.DialContext}
	stop := func() {
		srv.Close()
		tr.CloseIdleConnections()
		<-served
	}
	return &http.Client{Transport: tr}, pn, stop
}
