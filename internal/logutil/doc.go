// Package logutil holds what the in-process Log implementations (memlog and
// boltlog) share: a Notifier that wakes tails after an append, a Ring of
// recent events, and the Tail loop built on the two.
//
// It is internal: the engines that talk to a server (Redis, NATS) have their
// own way to wait for new entries and do not need it.
package logutil
