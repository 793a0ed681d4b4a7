// Package boltlog is a durable ssehub.Log on bbolt (go.etcd.io/bbolt): the
// embedded history of a single `ssehub serve`.
//
// # Storage
//
// Open takes a data directory and keeps one bbolt file in it (FileName). One
// bucket holds the events: the key is the position as 8 big-endian bytes, so
// bbolt's key order is log order, and the value is a record: a CRC-32C
// checksum and Event.AppendBinary (record.go; histories written before
// checksums keep their records without one, read as before). A record
// that fails its checksum or does not decode is damaged: it is never
// served; reads stop before it and then report it as a
// *ssehub.DamagedError, so that the hub skips it and tells its readers
// (a gap), and reads after it go on. The bucket's sequence is the last
// position ever given out; it is written in the same transaction as the
// events, so positions increase strictly across restarts and crashes.
// The first commit after Open gives positions from the current Unix time
// in microseconds on when the sequence is below it: a new file, so that
// ids held by clients of an earlier history (a deleted directory, a
// switch from memory) cannot name events of the new one (see package
// memlog for the reasoning), and a file whose newest commits were lost —
// bbolt falls back to its older meta page when the newer one is torn, and
// an old copy may be restored — so that positions already acknowledged
// are never given again. (This holds while the log gives out fewer than a
// million positions per second on average, far beyond what one bbolt
// file commits, and the clock is not set back across a restart.) The
// positions skipped were never given to events: retention counts events,
// and Bounds reports as first the position after the newest one retention
// deleted (kept as the sequence of the id index's bucket), so that a
// client holding the last event before a restart is never told of a gap
// that is only the skip.
//
// Two more buckets index the events, written by the committer and
// deleted by retention with the events they describe:
//
//   - ssehub.ids maps each publisher-supplied id to its event's position
//     (ssehub.IDIndex), written in the transaction of its event.
//   - ssehub.topics holds, for each distinct topic of each event, the key
//     eventlog.TopicHash(topic) ‖ position (8 big-endian bytes each) with an
//     empty value (ssehub.TopicIndex). A topic's keys are adjacent and in
//     log order, so ReadTopics seeks to hash ‖ after+1 and reads only the
//     events named there; it checks their topics, so two topics sharing a
//     hash cost a read, never a wrong delivery. The bucket's sequence is the
//     position through which the index is complete. The keys are not
//     written in the transaction of their events but gathered in memory
//     and written, sorted, in the committer's transaction that completes
//     Options.IndexEvery events (8,192 by default): written one commit at a
//     time, each topic of each commit dirtied a page of the index. Until
//     then ReadTopics finds those events in an index in memory; after a
//     crash Open indexes them again from the events, which are durable —
//     the index needs no fsync of its own.
//
// # Reserved events
//
// With Options.MaxReserved, the hub's own events (ssehub.Event.Reserved:
// Mercure subscription events, heartbeats) are kept apart so that a flood
// of them never pushes an application event out (ssehub.ReservedRetention).
// The committer writes them to a fourth bucket, ssehub.reserved, with the
// same keys and records, in the same position space (positions are given
// in one sequence, the events bucket's) and in the same transaction; the
// id and topic indexes hold both classes. Each bucket is trimmed from its
// own oldest end, on a count of its own (MaxEvents counts application
// events only, MaxReserved reserved ones; MaxAge applies to both), so a
// reserved event is deleted from the middle of the log but retention stays
// a delete at the front of a bucket, with no scan. Reads merge the two
// buckets by position (a cursor over each), and a topic index key is
// looked up in one, then the other. The cache and the pending topic index
// hold both classes; an event retention deleted after an older retained
// one of the other class stays in memory until it reaches the cache's
// front, and readers skip it (each class is deleted from its oldest end,
// so an event is deleted if its class's newest deleted position is at or
// after it).
//
// Bounds' first then speaks of application events: the position after the
// newest application event retention deleted (the id bucket's sequence),
// or, when none was deleted, the oldest event of either class; reserved
// events older than first may be retained. ReservedRemoved is the newest
// reserved event retention deleted, kept as the reserved bucket's
// sequence, written in the transaction that deletes it: it survives
// restarts and crashes, and it is raised before that transaction commits,
// like first (see raiseFirst), so a read that misses an event never comes
// before a ReservedRemoved that does not cover it.
//
// A history of the previous version has no reserved bucket: Open creates
// it and loses nothing. Reserved events that version wrote are in the
// events bucket and stay there: they count as application events until
// retention reaches them. A history kept with MaxReserved and opened
// without it gets its reserved events moved back into the events bucket
// at Open, in one transaction (one budget for all again; the indexes name
// positions and stay valid); ReservedRemoved keeps its value.
//
// # Upgrades
//
// A history written before an index existed gets it at Open. The id index
// is built in one transaction. The topic index is built from the position
// it is complete through (0 for a history without it) to the newest, in
// transactions of 50,000 events, each advancing that position: memory stays
// bounded, and an Open interrupted while indexing (a crash, a kill) resumes
// where it stopped. Open logs at Info how many events it indexed and how
// long that took; the history is served once Open returns.
//
// # Group commit
//
// Append hands its events to a single committer goroutine and waits. The
// committer takes every request that is queued (up to a batch limit), writes
// them in one bbolt transaction — one fsync for all of them — and only then
// acknowledges each caller. While one batch is being synced the next one
// queues up, so under load many publishes share each fsync and throughput
// grows with concurrency while latency stays near one or two fsyncs.
//
// Retention (Options.MaxEvents, Options.MaxAge, Options.MaxReserved) is
// applied by the committer inside the same transactions, deleting from the
// oldest end of each bucket only, a bounded number of keys per
// transaction: no scans. MaxEvents counts the events
// retained (counted at Open from the bucket's pages, then kept by the
// committer), not positions, which jump at a restart. When nothing is appended, a timer
// wakes the committer when the oldest event expires.
//
// # Reading
//
// The newest events (Options.CacheEvents) stay in memory, so Tail and reads
// of recent history — a client resuming after a short disconnect — never
// touch the disk; older positions are read from bbolt. ReadTopics filters
// the cache when it holds the range asked for and that range is short (at
// most 1,000 events); otherwise it reads through the topic index, at a cost
// that follows the events returned, not the events published meanwhile. Tail sleeps until the
// committer announces a commit: no polling.
//
// # Crashes
//
// Append returns only after bbolt's commit (fdatasync) succeeded, so an
// acknowledged event survives kill -9 and power loss, as far as the disk
// honours fsync. Options.NoSync gives that up for speed (tests, benchmarks).
package boltlog
