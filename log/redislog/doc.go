// Package redislog is an ssehub.Log kept in a Redis stream, so that any
// number of hub processes can share one log: every node appends to the same
// stream and tails it, and an event id minted on one node means the same
// event on every other.
//
// # Keys and positions
//
// A log with prefix P (Options.Prefix, default "ssehub") uses three keys:
//
//	{P}:events   the stream; entry ids are "<pos>-0", one field "e" holding
//	             the event's binary encoding (ssehub.Event.AppendBinary)
//	{P}:seq      a counter: the newest position ever assigned
//	{P}:ids      a hash: publisher-supplied event id -> position
//
// The braces are a Redis Cluster hash tag, so the keys live in one slot.
// The append script refuses an append (ssehub.ErrDuplicateID) whose id the
// hash maps to a position still in the stream, before writing anything of
// it, so ids are unique across nodes (ssehub.IDIndex); an entry whose event
// was trimmed counts as free, and a Log with retention deletes such
// entries in the background, a few pages of the hash per second.
// Append runs one Lua script that increments the counter by the number of
// events and adds them with explicit ids, so positions are assigned by Redis
// itself: strictly increasing in log order and identical on every node. A
// batch of events passed to one Append is stored atomically with consecutive
// positions. Concurrent appends from many nodes are totally ordered because
// Redis runs scripts one at a time. Concurrent appends on one node are
// group-committed: a few committer goroutines each take every append waiting
// into one script call, so under load many appends share a round trip.
//
// The stored encoding carries the position: the script writes it into the
// encoded bytes, so an entry read by another tool decodes to the full event.
//
// # Positions after data loss
//
// Clients keep event ids across a loss of Redis's data (a Redis without
// persistence that restarted, a flushed database). So that such an id can
// never be mistaken for an event of the new log, a counter that does not
// exist starts at Redis's clock in microseconds, as memlog does: the first
// event of a log gets a position like 1763729012345678, and the ones after
// it the next integers. An id from before the loss is then older than the
// new log's first position (as long as the old log averaged fewer than a
// million events per second), so the hub signals a gap instead of replaying
// the wrong events. If only the counter key is lost, the next append
// continues after the stream's newest id.
//
// # Reading and tailing
//
// Read is one XRANGE. Tail is one blocking XREAD loop on a connection of its
// own (a hub runs one Tail, so one connection per node, not per subscriber),
// delivering what each XREAD returns as one batch. Cancelling a Tail unblocks
// its XREAD with CLIENT UNBLOCK, so Tail returns promptly.
//
// # Retention
//
// Options.MaxEvents trims the stream on every append with XADD MAXLEN ~,
// which keeps at least MaxEvents events (Redis trims whole internal nodes, so
// up to about a hundred more may remain). Entry ids are positions, not times,
// so Options.MaxAge cannot use Redis's MINID trimming directly: each Log runs
// a background trimmer that looks at the oldest events' Time and removes
// expired ones with XTRIM MINID, at an interval of a tenth of MaxAge (between
// 50 ms and one minute). Events are removed from the oldest end only.
// Bounds reports the oldest retained position and the counter.
//
// # When Redis is unreachable
//
// Append, Read, Bounds and Ping fail within Options.Timeout (default 3 s), or
// sooner when their context ends, with an error wrapping
// ssehub.ErrUnavailable that names the Redis address. An append is
// acknowledged only after the script returned, so an acknowledged event is in
// Redis (as durable as Redis is configured to be: use appendfsync always or
// replicas with WAIT semantics for stronger guarantees). A failed append may
// still have been stored if the failure happened after Redis ran the script;
// it is then delivered like any other event, never acknowledged twice.
// Commands are never retried by the client, so a lost reply cannot store an
// event twice.
//
// Tail does not return when Redis goes away: it logs a warning, retries with
// exponential backoff (100 ms up to 5 s, with jitter) and continues after the
// last position it delivered when Redis is back, so fn sees no gap and no
// duplicate.
//
// Entries that cannot be decoded (written to the stream by something else)
// are skipped with an error in the log rather than stopping every hub.
package redislog
