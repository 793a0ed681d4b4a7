package httpapi

import (
	"hash/maphash"
	"sync"
	"time"
)

// rateLimiter is a token bucket per key (a publisher token), with bounded
// memory: at most maxKeys buckets. A bucket that has refilled completely is
// the same as no bucket, so those are forgotten first when room is needed;
// if there are none among a few looked at, an arbitrary one is, which can
// only make the limiter more lenient for that key, never stricter.
type rateLimiter struct {
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

func newRateLimiter(rate float64, burst, maxKeys int) *rateLimiter {
	return &rateLimiter{
		rate: rate, burst: float64(burst), maxKeys: maxKeys,
		seed: maphash.MakeSeed(), buckets: make(map[uint64]*bucket),
	}
}

// allow takes a token from key's bucket. When there is none it returns
// false and how long until there is one.
func (l *rateLimiter) allow(key string, now time.Time) (time.Duration, bool) {
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
func (l *rateLimiter) evict(now time.Time) {
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
func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
