package eventlog

import (
	"sync/atomic"
	"time"
)

// The logs keep one rule for the Times they assign: an assigned time never
// goes back. Two variants exist on purpose. memlog and boltlog assign one
// event at a time under their write lock, seeded (boltlog) from the newest
// stored time, and make every assigned time strictly later than the one
// before: NextTime. The engine logs (redislog, natslog) take one time per
// Append, lock-free, shared by the events of the batch and by concurrent
// callers: Clock, where equal times are allowed.

// NextTime returns the Time to assign to an event after last, the newest
// Time assigned before: now, or one nanosecond after last when now is not
// later (the system clock was stepped back, or ticks coarsely).
func NextTime(last, now time.Time) time.Time {
	if !now.After(last) {
		return last.Add(time.Nanosecond)
	}
	return now
}

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
