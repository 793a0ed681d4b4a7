package h1

import (
	"errors"
	"net"
	"sync"
)

// Listener is the listener an http.Server serves when a Server may take
// its connections over: it accepts from the wrapped listener, and returns
// the connections a Server gives back too.
type Listener struct {
	net.Listener
	accepted chan accepted
	backs    chan net.Conn
	done     chan struct{}
	once     sync.Once
}

type accepted struct {
	c   net.Conn
	err error
}

// NewListener wraps ln.
func NewListener(ln net.Listener) *Listener {
	l := &Listener{Listener: ln, accepted: make(chan accepted), backs: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- accepted{c, err}:
		case <-l.done:
			if c != nil {
				c.Close()
			}
			return
		}
		// Only a closed listener ends the loop. Other errors (EMFILE when
		// the process runs out of file descriptors, a timeout) go to
		// net/http, which retries after a pause, or gives up and closes
		// this Listener: ending here would leave net/http's retries
		// waiting for good, and the server accepting nothing more.
		if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// Accept returns the next new or given-back connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case a := <-l.accepted:
		return a.c, a.err
	case c := <-l.backs:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// back queues c for Accept; false when the listener is closed.
func (l *Listener) back(c net.Conn) bool {
	select {
	case l.backs <- c:
		return true
	case <-l.done:
		return false
	}
}

// Close closes the wrapped listener; connections given back after it are
// closed.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
