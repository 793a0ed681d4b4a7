//go:build !linux

package park

import (
	"net/http"
	"time"
)

// Supported reports whether this platform can park streams.
const Supported = false

// Parker declines every stream on this platform.
type Parker struct{}

// New returns a Parker that parks nothing.
func New(opts Options) (*Parker, error) { return &Parker{}, nil }

// Park always returns false here: the handler keeps the stream.
func (p *Parker) Park(w http.ResponseWriter, r *http.Request, src Source, expires time.Time) bool {
	return false
}

// Len returns 0.
func (p *Parker) Len() int { return 0 }

// Close does nothing.
func (p *Parker) Close(timeout time.Duration) {}
