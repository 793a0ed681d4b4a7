package redislog

import (
	"testing"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/logtest"
)

// BenchmarkAppendParallel: see logtest.BenchmarkAppendParallel.
func BenchmarkAppendParallel(b *testing.B) {
	url := sharedURL(b)
	logtest.BenchmarkAppendParallel(b, func(b *testing.B) ssehub.Log {
		return open(b, url, Options{MaxEvents: 100_000})
	})
}
