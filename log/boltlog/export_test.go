package boltlog

// SetMaxTrimPerTx sets how many events one transaction may delete, for logs
// opened afterwards, and returns a function that restores it. Not for
// parallel tests.
func SetMaxTrimPerTx(n int) (restore func()) {
	old := maxTrimPerTx
	maxTrimPerTx = n
	return func() { maxTrimPerTx = old }
}
