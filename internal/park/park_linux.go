//go:build linux

package park

import (
	"errors"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Supported reports whether this platform can park streams.
const Supported = true

// Parker holds parked streams. Create it with New and stop it with Close;
// its methods are safe for concurrent use.
type Parker struct {
	opts   Options
	epfd   int
	wakefd int // eventfd: interrupts epoll_wait on Close

	mu     sync.Mutex     // guards conns, gen and closed
	conns  map[int]*conn  // by file descriptor
	gen    int32          // generation of the last parked conn
	closed bool           //
	drain  sync.WaitGroup // one per parked conn, Done when it is closed

	qmu   sync.Mutex // guards queue and stop
	qcond *sync.Cond
	queue []*conn // conns with something to write
	stop  bool

	wg sync.WaitGroup // the poller and the writers
}

// New starts a Parker: one goroutine waits on epoll for clients that leave
// or become writable, and a few writer goroutines (as many as GOMAXPROCS)
// write queued events.
func New(opts Options) (*Parker, error) {
	opts.setDefaults()
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, errors.New("park: epoll_create1: " + err.Error())
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, errors.New("park: eventfd: " + err.Error())
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, errors.New("park: epoll_ctl: " + err.Error())
	}
	p := &Parker{opts: opts, epfd: epfd, wakefd: wakefd, conns: make(map[int]*conn)}
	p.qcond = sync.NewCond(&p.qmu)
	p.wg.Add(1)
	go p.poll()
	for range max(2, runtime.GOMAXPROCS(0)) {
		p.wg.Add(1)
		go p.writer()
	}
	return p, nil
}

// conn is one parked stream. The fields a delivery touches come first, so
// that writing one event to each of thousands of streams touches few cache
// lines per stream.
type conn struct {
	mu     sync.Mutex
	queued bool // in the queue or being written
	again  bool // woken while being written
	closed bool //
	outArm bool // EPOLLOUT is armed

	p       *Parker
	src     Source
	fd      int
	chunked bool
	stalled atomic.Int64 // UnixNano when a write last could not finish; 0: not stalled

	wmu  sync.Mutex // held during writev on fd
	shut bool       // fd is being closed: no more writes

	// Owned by the writer holding queued.
	ending  bool     // the source is done: write the end, then close
	pending [][]byte // framed bytes not yet written
	iov     [][]byte // scratch for framing
	hdr     [24]byte // chunk-size line

	nc      net.Conn
	raw     syscall.RawConn
	gen     int32     // in every epoll event of this conn (the Pad field)
	expires time.Time // zero: never
	input   int       // bytes the client sent after its request; owned by poll
}

var crlf = []byte("\r\n")
var lastChunk = []byte("0\r\n\r\n")

// Park takes over the connection of an HTTP/1.x stream whose headers and
// first bytes were written through w, and serves src's events on it from
// now on. It returns false, and leaves w untouched, when it cannot (HTTP/2,
// a ResponseWriter that cannot be hijacked, the Parker closed); the handler
// then keeps serving the stream itself. After true the handler must return
// at once without touching w or r again. expires, when not zero, is when
// the stream must end (the client's token expiry).
func (p *Parker) Park(w http.ResponseWriter, r *http.Request, src Source, expires time.Time) bool {
	// HTTP/2 streams cannot be hijacked; TLS connections have no socket to
	// write to directly; a HEAD response has no body to stream.
	if r.ProtoMajor != 1 || r.TLS != nil || r.Method == http.MethodHead {
		return false
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return false
	}
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return false
	}
	nc, _, err := rc.Hijack()
	if err != nil {
		return false
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		src.Close()
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		nc.Close()
		src.Close()
		return true
	}
	c := &conn{p: p, nc: nc, raw: raw, src: src, chunked: r.ProtoAtLeast(1, 1), expires: expires}
	raw.Control(func(fd uintptr) { c.fd = int(fd) })
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		nc.Close()
		src.Close()
		return true
	}
	// Register with epoll before anyone can find (and close) c; the event
	// carries c's generation so that a stale event for an earlier
	// connection with the same fd number is never applied to this one.
	p.gen++
	c.gen = p.gen
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, c.fd, c.event(false)); err != nil {
		p.mu.Unlock()
		p.opts.Logger.Warn("park: epoll_ctl add failed; closing stream", "err", err)
		nc.Close()
		src.Close()
		return true
	}
	p.conns[c.fd] = c
	p.drain.Add(1)
	p.mu.Unlock()
	src.OnWake(c.schedule)
	return true
}

// schedule queues c for a writer; it never blocks.
func (c *conn) schedule() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.queued {
		c.again = true
		c.mu.Unlock()
		return
	}
	c.queued = true
	c.mu.Unlock()
	p := c.p
	p.qmu.Lock()
	p.queue = append(p.queue, c)
	p.qmu.Unlock()
	p.qcond.Signal()
}

// writer writes for queued conns until the Parker stops.
func (p *Parker) writer() {
	defer p.wg.Done()
	for {
		p.qmu.Lock()
		for len(p.queue) == 0 && !p.stop {
			p.qcond.Wait()
		}
		if len(p.queue) == 0 {
			p.qmu.Unlock()
			return
		}
		c := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.qmu.Unlock()
		c.flush()
	}
}

// flush writes what c has pending and what its source has queued, until
// nothing is left or the socket is full (then EPOLLOUT brings it back).
func (c *conn) flush() {
	for {
		if len(c.pending) == 0 {
			chunks, err := c.src.TryNext()
			switch {
			case chunks != nil:
				c.frame(chunks)
			case err != nil:
				if !c.chunked {
					c.close() // the end of the body is the end of the connection
					return
				}
				c.ending = true
				c.pending = append(c.iov[:0], lastChunk)
			}
		}
		if len(c.pending) == 0 {
			// Nothing more now. A wake-up since TryNext set again: go
			// round once more rather than through the queue.
			c.mu.Lock()
			if c.again && !c.closed {
				c.again = false
				c.mu.Unlock()
				continue
			}
			c.queued = false
			c.mu.Unlock()
			return
		}
		done, err := c.write()
		if err != nil {
			c.close()
			return
		}
		if !done {
			c.armOut() // the socket is full: EPOLLOUT reschedules us
			c.release()
			return
		}
		if c.stalled.Load() != 0 {
			c.stalled.Store(0)
		}
		if c.ending {
			c.close()
			return
		}
		// Round again: TryNext returns what came during the write, or the
		// end that came with what was just written.
	}
}

// release gives up queued; a wake-up that came meanwhile schedules c again.
func (c *conn) release() {
	c.mu.Lock()
	c.queued = false
	again := c.again && !c.closed
	c.again = false
	c.mu.Unlock()
	if again {
		c.schedule()
	}
}

// frame turns chunks into pending bytes: one HTTP/1.1 chunk for all of
// them (or the bare bytes without chunked encoding).
func (c *conn) frame(chunks [][]byte) {
	pending := c.iov[:0]
	if c.chunked {
		n := 0
		for _, b := range chunks {
			n += len(b)
		}
		h := strconv.AppendInt(c.hdr[:0], int64(n), 16)
		h = append(h, '\r', '\n')
		pending = append(pending, h)
	}
	pending = append(pending, chunks...)
	if c.chunked {
		pending = append(pending, crlf)
	}
	c.iov = pending
	c.pending = pending
}

// maxIOV is the most buffers one writev takes (IOV_MAX on Linux).
const maxIOV = 1024

// write writes c.pending without blocking, in writev calls of at most
// maxIOV buffers. It reports whether everything was written; what was not
// (the socket is full) stays in c.pending. It calls writev on the socket
// directly (the socket is non-blocking); wmu keeps close from closing the
// descriptor, which could then be reused, during the call.
func (c *conn) write() (bool, error) {
	for len(c.pending) > 0 {
		iov := c.pending[:min(len(c.pending), maxIOV)]
		want := 0
		for _, b := range iov {
			want += len(b)
		}
		c.wmu.Lock()
		if c.shut {
			c.wmu.Unlock()
			return false, net.ErrClosed
		}
		n, werr := unix.Writev(c.fd, iov)
		c.wmu.Unlock()
		if werr != nil && werr != unix.EAGAIN && werr != unix.EINTR {
			return false, werr
		}
		n = max(n, 0)
		c.advance(n)
		if n < want && werr != unix.EINTR {
			break // the socket is full
		}
	}
	if len(c.pending) == 0 {
		return true, nil
	}
	if c.stalled.Load() == 0 {
		c.stalled.Store(time.Now().UnixNano())
	}
	return false, nil
}

// advance drops n written bytes from the front of c.pending, and the empty
// buffers that then lead it (an empty chunk from the source would otherwise
// stay in front of everything, never written).
func (c *conn) advance(n int) {
	for len(c.pending) > 0 && (n > 0 || len(c.pending[0]) == 0) {
		if n >= len(c.pending[0]) {
			n -= len(c.pending[0])
			c.pending = c.pending[1:]
			continue
		}
		c.pending[0] = c.pending[0][n:]
		n = 0
	}
}

func (c *conn) armOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.outArm {
		return
	}
	c.outArm = true
	unix.EpollCtl(c.p.epfd, unix.EPOLL_CTL_MOD, c.fd, c.event(true))
}

// event is c's epoll registration, with or without EPOLLOUT.
func (c *conn) event(out bool) *unix.EpollEvent {
	ev := &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd), Pad: c.gen}
	if out {
		ev.Events |= unix.EPOLLOUT
	}
	return ev
}

// writable is called by the poller on EPOLLOUT.
func (c *conn) writable() {
	c.mu.Lock()
	if c.outArm && !c.closed {
		c.outArm = false
		unix.EpollCtl(c.p.epfd, unix.EPOLL_CTL_MOD, c.fd, c.event(false))
	}
	c.mu.Unlock()
	c.schedule()
}

// close ends the stream: the connection is closed and the source released.
func (c *conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	p := c.p
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	p.mu.Lock()
	delete(p.conns, c.fd)
	p.mu.Unlock()
	c.wmu.Lock()
	c.shut = true // no writev on c.fd from now on
	c.wmu.Unlock()
	c.nc.Close()
	c.src.Close()
	p.drain.Done()
}

// readable handles input from a parked client: EOF means it left; a client
// of an event stream has nothing else to say, so bytes are discarded, and
// one that goes on sending past Options.MaxInput is disconnected.
func (c *conn) readable(buf []byte) {
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), buf)
		return true
	})
	if err != nil || (rerr != nil && rerr != unix.EAGAIN && rerr != unix.EINTR) || (n == 0 && rerr == nil) {
		c.close()
		return
	}
	c.input += max(n, 0)
	if c.input > c.p.opts.MaxInput {
		if f := c.p.opts.OnExcessInput; f != nil {
			f()
		}
		c.close()
	}
}

// poll waits for events on the parked connections and, once a second,
// closes streams stalled past the write timeout or whose token expired.
func (p *Parker) poll() {
	defer p.wg.Done()
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 512)
	lastSweep := time.Now()
	for {
		n, err := unix.EpollWait(p.epfd, events, 1000)
		if err != nil && err != unix.EINTR {
			p.opts.Logger.Error("park: epoll_wait failed", "err", err)
			return
		}
		for i := 0; i < n; i++ {
			ev := events[i]
			fd := int(ev.Fd)
			if fd == p.wakefd {
				return
			}
			p.mu.Lock()
			c := p.conns[fd]
			p.mu.Unlock()
			if c == nil || c.gen != ev.Pad {
				continue // closed meanwhile, maybe its fd number reused
			}
			switch {
			case ev.Events&(unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0:
				c.close()
			case ev.Events&unix.EPOLLIN != 0:
				c.readable(buf)
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				c.writable()
			}
		}
		if now := time.Now(); now.Sub(lastSweep) >= time.Second {
			lastSweep = now
			p.sweep(now)
		}
	}
}

// sweep closes stalled and expired streams.
func (p *Parker) sweep(now time.Time) {
	var doomed []*conn
	stalls := 0
	p.mu.Lock()
	for _, c := range p.conns {
		at := c.stalled.Load()
		stalled := at != 0 && now.Sub(time.Unix(0, at)) > p.opts.WriteTimeout
		if stalled || (!c.expires.IsZero() && now.After(c.expires)) {
			doomed = append(doomed, c)
			if stalled {
				stalls++
			}
		}
	}
	p.mu.Unlock()
	if p.opts.OnStall != nil {
		for range stalls { // counted before the streams end
			p.opts.OnStall()
		}
	}
	for _, c := range doomed {
		c.close()
	}
}

// Len returns the number of parked streams.
func (p *Parker) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops parking new streams, waits up to timeout for the parked ones
// to end by themselves (their sources end them, e.g. on hub shutdown, after
// writing what is pending), closes the rest, and stops the goroutines.
func (p *Parker) Close(timeout time.Duration) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()

	done := make(chan struct{})
	go func() { p.drain.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		p.mu.Lock()
		rest := make([]*conn, 0, len(p.conns))
		for _, c := range p.conns {
			rest = append(rest, c)
		}
		p.mu.Unlock()
		for _, c := range rest {
			c.close()
		}
		<-done
	}
	p.qmu.Lock()
	p.stop = true
	p.qmu.Unlock()
	p.qcond.Broadcast()
	var one [8]byte
	one[0] = 1
	unix.Write(p.wakefd, one[:])
	p.wg.Wait()
	unix.Close(p.epfd)
	unix.Close(p.wakefd)
}
