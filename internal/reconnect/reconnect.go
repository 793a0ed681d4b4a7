// Package reconnect is the reconnection schedule of package client. The
// load generator (internal/bench) follows it too, so that the reconnection
// storms it makes are those of real clients.
package reconnect

import (
	"math/rand/v2"
	"time"
)

// MinBackoff is where the doubling starts when the reconnection time is
// smaller (a server may send "retry: 0").
const MinBackoff = 250 * time.Millisecond

// Backoff returns the wait before a reconnection attempt after failures
// consecutive failures (1: the first attempt after a healthy connection):
// the reconnection time retry, then from max(retry, MinBackoff) doubling
// per failure up to max(ceiling, retry), drawn from the upper half of that
// range but never below retry. Safe for concurrent use.
func Backoff(retry, ceiling time.Duration, failures int) time.Duration {
	if failures <= 1 {
		return retry
	}
	ceiling = max(ceiling, retry)
	d := max(retry, MinBackoff)
	for i := 1; i < failures && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	lo := max(retry, d/2)
	if d <= lo {
		return lo
	}
	return lo + rand.N(d-lo+1)
}
