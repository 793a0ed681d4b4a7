// Package memlog is an ssehub.Log kept in memory: the history for a hub run
// with --history memory, for tests, and for Go programs that embed a hub and
// need no durability.
//
// Events live in one ring, trimmed to Options.MaxEvents and Options.MaxAge on
// every call (no background goroutine). Tail waits for appends through a
// notification, never by polling.
//
// # Positions after a restart
//
// A memory log forgets everything when the process ends, but the clients it
// served still hold event ids. So that such an id can never be mistaken for an
// event of the new process, positions do not start at 1: the first event of a
// log gets the current Unix time in microseconds as its position, and each
// event after it the next integer. A client that comes back after a restart
// with an id from the old process then holds a position that is older than
// (or, rarely, inside) the new log's retained range: its events are gone, the
// hub sees that the id lies before the first retained event and signals a gap
// instead of silently replaying the wrong events. This holds as long as the
// old process appended on average fewer than one million events per second
// since it started, and the positions (about 2^50 today) stay exact in a
// JavaScript number.
package memlog
