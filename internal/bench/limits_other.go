//go:build !unix

package bench

// RaiseFileLimit does nothing on this platform and returns 0.
func RaiseFileLimit() (uint64, error) { return 0, nil }

// fileLimit returns 0: unknown.
func fileLimit() uint64 { return 0 }
