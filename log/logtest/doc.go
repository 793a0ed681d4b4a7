// Package logtest is the conformance suite every ssehub.Log must pass.
//
// An implementation's tests describe how to get a log in a Harness and call
// Run:
//
//	func TestConformance(t *testing.T) {
//		logtest.Run(t, logtest.Harness{
//			Open: func(t *testing.T) ssehub.Log { return memlog.New(memlog.Options{}) },
//			OpenRetained: func(t *testing.T, n int) ssehub.Log {
//				return memlog.New(memlog.Options{MaxEvents: n})
//			},
//		})
//	}
//
// Run checks the contract written on ssehub.Log as named subtests: positions
// and times set by Append, every field preserved, Read and Bounds at the
// edges, concurrent appends, Tail (catch-up then live, exactly once, in
// order, cancel, close), retention by count, and, for durable logs, that
// everything acknowledged survives a restart and that positions keep
// increasing after it. Logs that implement ssehub.IDIndex are also checked
// for lookups, refusal of duplicate ids (also under concurrency), ids freed
// by retention and the index surviving a restart; the IDIndex subtests skip
// other logs.
//
// Subtests run in parallel, each with its own log from Harness.Open, so a
// Harness must hand out independent logs (a fresh directory, stream or key
// per call). Nothing in the suite sleeps: waits end as soon as the log
// delivers and are bounded by Harness.Timeout only to report a stuck log.
//
// The suite is split by area: logtest.go (Harness, Run, shared helpers),
// append.go (append, Read, Bounds), tail.go (the Tail helper and tail
// subtests), retention.go (Close, retention, reopen), ids.go (IDIndex),
// topics.go (TopicIndex), outage.go (the tail-outage scenario),
// engines.go (the scenarios of the logs on a shared server: nodes sharing
// one position space and ids, the server down, stalled or silent; and the
// parts of their tests that are the same: ReopenWith, OpenErrors) and
// bench.go (shared benchmarks).
package logtest
