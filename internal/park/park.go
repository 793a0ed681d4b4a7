package park

import (
	"log/slog"
	"net/http"
	"time"
)

// MayPark marks, before its headers are written, the response of a stream
// that a Parker may take over: a parked stream ends by closing its
// connection, so an HTTP/1.x client must be told not to reuse it (a fetch
// reader's next request would otherwise go into a closed socket and fail).
// HTTP/2 streams are never parked and stay untouched: "Connection: close"
// there would end every stream of the connection. Without a Parker or on a
// platform that cannot park, it does nothing.
func (p *Parker) MayPark(h http.Header, r *http.Request) {
	if p != nil && Supported && r.ProtoMajor == 1 {
		h.Set("Connection", "close")
	}
}

// Source is what a parked stream writes: a hub subscriber.
type Source interface {
	// TryNext returns the wire bytes to write now, or nil and an error once
	// the stream is over (after everything before it was returned), or nil,
	// nil when there is nothing to write. Calls are never concurrent.
	TryNext() ([][]byte, error)
	// OnWake registers f, to be called (quickly, without blocking) whenever
	// TryNext may have something new.
	OnWake(f func())
	// Close releases the source; called once, when the stream ends.
	Close()
}

// Options configure a Parker.
type Options struct {
	// WriteTimeout: a stream whose writes have been stuck (the client does
	// not read) for longer is closed. Default 10s.
	WriteTimeout time.Duration
	// OnStall, when set, is called for each stream closed because its
	// writes were stuck longer than WriteTimeout (for metrics).
	OnStall func()
	// MaxInput is how many bytes a client may send on a parked stream
	// after its request (an event stream's client has nothing to say);
	// one that sends more is disconnected, so that a client cannot make
	// the hub read without end. Default 4096.
	MaxInput int
	// OnExcessInput, when set, is called for each stream closed for
	// sending more than MaxInput (for metrics).
	OnExcessInput func()
	// Logger receives errors. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxInput <= 0 {
		o.MaxInput = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
