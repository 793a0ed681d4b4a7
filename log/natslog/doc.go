// Package natslog is an ssehub.Log kept in a NATS JetStream stream, so that
// any number of hub processes can share one log: every node publishes to the
// same stream and tails it, and an event id minted on one node means the same
// event on every other.
//
// # Stream and positions
//
// A Log uses one stream (Options.Stream, default "SSEHUB") capturing one
// subject (Options.Subject, default "ssehub.<stream>.events"), created or
// updated by Open with file storage, limits retention and discard-old. Each
// message holds one event's binary encoding (ssehub.Event.AppendBinary,
// stored with Pos 0). JetStream assigns stream sequences in the order it
// stores messages: strictly increasing and the one total order of the
// deployment however many nodes publish at once.
//
// An event's position is its message's stream sequence plus the stream's
// creation time in microseconds (which JetStream keeps with the stream and
// reports to every node alike): the first event of a new stream gets a
// position like 1763729012345679. Clients keep event ids across a loss of
// the stream (a deleted stream, a NATS server that lost its store); a
// stream created again has a later creation time, so its positions start
// above the old ones and the hub signals a gap for an old id instead of
// replaying the wrong events, as memlog does. This holds as long as the old
// stream averaged fewer than a million events per second. A Log notices a
// stream created again under it (an acknowledged sequence not above one it
// has seen) and switches to the new creation time, with a warning.
//
// # Appending
//
// Append publishes every event with PublishAsync and waits for the stream's
// acknowledgements; the position is the acknowledged sequence. Concurrent
// Appends share one connection and are pipelined, so many publishers reach
// thousands of events per second without waiting for each other's round
// trips. An Append of several events keeps their order, but other nodes'
// events may land between them, and the batch is not atomic: if a later
// event fails, the earlier ones may be stored (and delivered) although
// Append reports the error.
//
// # Reading and tailing
//
// Read first fetches the message at or after the wanted position with one
// (direct) get, which answers "nothing new" in one round trip. Small reads
// (up to 8 events) continue with gets; larger ones create an ephemeral
// consumer starting at the next sequence, fetch the rest in one no-wait pull
// and delete the consumer: a few round trips for any number of events
// instead of one per event.
//
// Tail runs one ephemeral, memory-backed pull consumer from the position
// after the last one it delivered, and delivers what has arrived as one
// batch. It checks the consumer sequence of every message: a message lost in
// transit makes it recreate the consumer from its last position, as
// JetStream's ordered consumers do, so fn never sees a gap or a duplicate.
//
// # Retention
//
// Options.MaxEvents and Options.MaxAge become the stream's MaxMsgs and
// MaxAge, enforced exactly by JetStream. Bounds reads the stream's first and
// last sequence. Options.Replicas sets the stream's replicas; with more than
// one, reads go through the stream leader (no direct gets from replicas
// that may lag), so a Read after an acknowledged Append on any node sees it.
//
// # When NATS is unreachable
//
// Append, Read, Bounds and Ping fail within Options.Timeout (default 3 s),
// or at once while the client is disconnected, with an error wrapping
// ssehub.ErrUnavailable that names the server. Publishes are never buffered
// while reconnecting, so a failed Append is not stored later behind the
// caller's back; an event is acknowledged only once JetStream stored it.
//
// Tail does not return when NATS goes away: it logs a warning, waits for the
// client to reconnect (the client retries forever), recreates its consumer
// with backoff (100 ms up to 5 s, with jitter) and continues after the last
// position it delivered.
//
// Messages that cannot be decoded (published to the subject by something
// else) are skipped with an error in the log rather than stopping every hub.
//
// # Publisher-supplied ids
//
// Log implements ssehub.IDIndex with a second stream, SSEHUB_IDS_<Stream>,
// holding one message per id (see ids.go): Append reserves each id with a
// publish that JetStream accepts only when the id has no message, so one
// node wins, and replaces the reservation with the position once the event
// is stored. An id whose event retention removed is free again.
package natslog
