package ops

import (
	"hash/maphash"
	"sync"
	"time"
)

// RateLimiter is a token bucket per key (httpapi's: a publisher token),
// with bounded memory: at most maxKeys buckets. A bucket that has refilled completely is
// the same as no bucket, so those are forgotten first when room is needed;
// if there are none among a few looked at, an arbitrary one is, which can
// only make the limiter more lenient for that key, never stricter. Create
// it with NewRateLimiter; it is safe for concurrent use.
type RateLimiter struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int
	seed    maphash.Seed

	mu      sync.Mutex // guards buckets
	buckets map[uint64]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// evictScan bounds the work of making room for a new key.
const evictScan = 64

// NewRateLimiter returns a limiter that lets each key take rate tokens per
// second, and up to burst at once after a quiet period, tracking at most
// maxKeys keys. rate, burst and maxKeys must be positive.
func NewRateLimiter(rate float64, burst, maxKeys int) *RateLimiter {
	return &RateLimiter{
		rate: rate, burst: float64(burst), maxKeys: maxKeys,
		seed: maphash.MakeSeed(), buckets: make(map[uint64]*bucket),
	}
}

// Allow takes a token from key's bucket at the time now. When there is
// none it returns false and how long until there is one (a Retry-After).
func (l *RateLimiter) Allow(key string, now time.Time) (time.Duration, bool) {
	h := maphash.String(l.seed, key)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[h]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[h] = b
	} else if el := now.Sub(b.last); el > 0 {
		b.tokens = min(l.burst, b.tokens+el.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}

// evict forgets full buckets among up to evictScan, or else one of them.
func (l *RateLimiter) evict(now time.Time) {
	n, removed := 0, false
	var victim uint64
	for k, b := range l.buckets {
		if n == 0 {
			victim = k
		}
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
			removed = true
		}
		if n++; n >= evictScan {
			break
		}
	}
	if !removed {
		delete(l.buckets, victim)
	}
}

// size returns the number of tracked keys.
func (l *RateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
