//go:build !linux

package bench

import "syscall"

// bindNoPort does nothing on this platform.
func bindNoPort(string, string, syscall.RawConn) error { return nil }
