// Package redislog is an ssehub.Log kept in a Redis stream, so that any
// number of hub processes can share one log: every node appends to the same
// stream and tails it, and an event id minted on one node means the same
// event on every other.
//
// # Keys and positions
//
// A log with prefix P (Options.Prefix, default "ssehub") uses these keys:
//
//	{P}:events    the stream; entry ids are "<pos>-0", one field "e" holding
//	              the event's binary encoding (ssehub.Event.AppendBinary)
//	{P}:reserved  with Options.MaxReserved: the reserved events' stream, in
//	              the same layout (see "Reserved events" below)
//	{P}:seq       a counter: the newest position ever assigned
//	{P}:ids       a hash: publisher-supplied event id -> position
//	{P}:t:<hash>  a sorted set per topic: its events' positions (score and
//	              member); <hash> is eventlog.TopicHash in 16 hex digits
//	{P}:topics    a sorted set: topic hash -> oldest position in its set
//	{P}:r:<hash>, {P}:rtopics  the same for the events of {P}:reserved
//	{P}:indexed   the marker M: every retained event at or before M is in
//	              the topic index
//	{P}:unindexed a sorted set of position ranges, only while M lags
//	              behind the counter (see "Upgrading" below)
//	{P}:lock:<hash>  a topic's lock (ssehub.TopicLocker: the Durable
//	              Streams writes), its holder's random token, with a 5 s
//	              lifetime in case the holder dies
//
// The braces are a Redis Cluster hash tag, so the keys live in one slot.
// (The scripts build the names of the topics' sets from the prefix rather
// than taking them as KEYS, which a single server and a proxy accept; a
// Redis Cluster URL is not supported anyway.)
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
// Read is one XRANGE of each stream in one MULTI/EXEC, merged by position.
// Tail is one blocking XREAD of both streams in a loop on a connection of
// its own (a hub runs one Tail, so one connection per node, not per
// subscriber), delivering what each XREAD returns, merged, as one batch.
// Positions are dense (each names one event of one stream), so an answer
// without a hole after the last position delivered misses nothing. A
// blocked XREAD is answered (before Redis 7.2) with the entries of the one
// stream whose append woke it, which may be newer than an entry the same
// script call added to the other stream: an answer with a hole is
// therefore read again without BLOCK, which Redis answers at once and
// atomically from both streams. When a stream's part of an answer is cut
// at the XREAD's COUNT, the batch is cut at its last entry. Cancelling a
// Tail unblocks its XREAD with CLIENT UNBLOCK, so Tail returns promptly.
//
// # Reading by topic
//
// Log implements ssehub.TopicIndex: a reader of a few topics reads only
// their events, so a client resuming behind 200,000 events of other topics
// costs what it receives. The append script adds each event's position to
// the sets of its distinct topics in the same script call that stores it
// (no extra round trip; atomic with the event). ReadTopics is one script
// call: per topic a ZRANGEBYSCORE of the positions in (After, Until]
// (LIMIT Limit), merged in order without repeats, then an XRANGE of each
// entry, stopping at Limit or once the events' Size reaches MaxBytes. The
// newest position is read in the same call, so the answer never claims
// more than it saw. Two topics may share a hash: the Go side checks every
// event's topics (eventlog.Collector), and only when such a collision cut
// the page short does it make a second call. Empty Topics is a scan of
// the stream, bounded the same way.
//
// Costs: per append call (a group commit) and topic touched, one ZADD of
// the call's positions to the topic's set and one to the topics set,
// about 40 % more Redis time per event than without the index; the index
// takes about 20 bytes per (event, topic) in a topic with up to 128
// retained events (a listpack) and about 120 bytes beyond (a skiplist).
// A read costs O(topics × log n + events returned): about 0.15 ms of
// Redis CPU for 10 events behind 200,000 (BenchmarkReadTopics).
//
// # Upgrading from a version without the index
//
// A stream written by the previous version has no index and no marker M;
// a fresh log gets M with its first append. The append script indexes
// every event it stores, and moves M to the new counter only when M was
// the counter before the call (then the index held everything). Otherwise
// (M lags: an older stream, or a node of the older version appending
// during a rolling upgrade) each Log builds the index in the background,
// at Open and then whenever it finds M behind the counter (checked every
// second): it reads up to 1,000 entries after M with XRANGE, hashes their
// topics, and calls a script that indexes them and sets M to the last
// entry read, but only if M is still what it read (compare and set: when
// several nodes build at once, one wins each chunk and the others read
// again; a crash leaves M where the last chunk put it). Appends run
// between chunks. Reads are right throughout: the read script uses the
// index up to M and scans the stream after M, checking topics itself (at
// most 4,096 entries per call; ReadTopics calls again while it must).
//
// The race between a chunk and concurrent appends: events appended after
// the builder's XRANGE have positions beyond the chunk, so setting M to the
// chunk's end never claims them; they are indexed by their own append (or,
// if a node of the older version wrote them, by the next chunk). But under
// steady publishing there is always such an event, so "the builder reaches
// the counter" might never happen and M would lag for ever. So while M
// lags, the append script records the range of positions each call stored
// (and indexed) in {P}:unindexed, and the build script, after setting M to
// the chunk's end, steps M over the ranges that begin at the next entry,
// and to the counter once no entry lies beyond M. From then on appends move
// M themselves, and the ranges behind M are deleted.
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
// # Reserved events
//
// With Options.MaxReserved > 0 the hub's own events (ssehub.Event.Reserved:
// Mercure subscription events, hub heartbeats) are kept on a budget of
// their own (ssehub.ReservedRetention), so that a flood of them never
// pushes an application event out of history. The append script writes
// them, in the same script call and the same position space, to the stream
// {P}:reserved, trimmed with XADD MAXLEN ~ MaxReserved (at least
// MaxReserved kept, up to about a hundred more), while {P}:events, trimmed
// to MaxEvents, holds the application events only. The Go side marks a
// reserved event in the script's arguments, so this costs the append path
// no command and no round trip. Their topics are indexed in sets of their
// own ({P}:r:<hash>, listed in {P}:rtopics), so that each set names
// positions of one stream: reads know which stream to fetch a position
// from, and the sweep removes a set's positions before its own stream's
// oldest entry (for the reserved stream, from the middle of the log).
// MaxAge trims both streams.
//
// Reads merge the two streams (see "Reading and tailing"); ReadTopics
// takes candidates from both kinds of sets and scans both streams where
// it scans. Bounds' first is the oldest entry of {P}:events, from which on
// every application event is retained (reserved events older than it may
// be retained too; they are not counted in, so first may be later than
// memlog's); when {P}:events holds nothing, it is the oldest reserved
// event after {P}:events' last generated id. ReservedRemoved is derived
// from {P}:reserved, which is trimmed from its oldest end only: 0 while it
// holds every entry ever added to it (XINFO STREAM's entries-added, Redis
// 7; an older Redis is assumed to have trimmed), else the position before
// its oldest entry (at least the newest reserved event removed), or its
// last generated id when it is empty. Both survive a restart with the
// streams: there is no state of their own to lose.
//
// A log written with MaxReserved 0, or by an earlier version, keeps its
// reserved events in {P}:events, where they stay, are read in order and
// go with that stream's retention; opening it with MaxReserved > 0 loses
// nothing and sends new reserved events to {P}:reserved. Nodes of an
// earlier version read {P}:events only: during a rolling upgrade they do
// not see the reserved events the new nodes append.
//
// Trimming leaves the positions of removed events in the topics' sets;
// reads never look below the stream's first entry, and a sweep removes
// them: every second (and after each trim by age) a script takes the
// topics whose oldest position (the {P}:topics score) is before the
// stream's first entry, removes their old positions, and deletes a set
// left empty with its {P}:topics entry, so a topic that stopped receiving
// events leaves nothing behind once its events are gone. Its work follows
// what retention removed, not the number of topics.
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
