package eventlog

import (
	"sync/atomic"
	"time"
)

// Clock hands out wall-clock times that never go back, also when the
// system clock is stepped back, so the Times a log assigns keep their
// order. The zero Clock is ready; it is safe for concurrent use.
type Clock struct {
	last atomic.Int64 // newest time handed out, Unix nanoseconds
}

// Now returns the current time, or the newest time it returned before when
// the clock reads earlier than that.
func (c *Clock) Now() time.Time {
	for {
		prev := c.last.Load()
		now := time.Now().UnixNano()
		if now <= prev {
			return time.Unix(0, prev)
		}
		if c.last.CompareAndSwap(prev, now) {
			return time.Unix(0, now)
		}
	}
}
