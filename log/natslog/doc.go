// Package natslog is an ssehub.Log kept in a NATS JetStream stream, so that
// any number of hub processes can share one log: every node publishes to the
// same stream and tails it, and an event id minted on one node means the same
// event on every other.
//
// # Stream and positions
//
// A Log uses one stream (Options.Stream, default "SSEHUB"), created or
// updated by Open with file storage, limits retention and discard-old. Each
// message holds one event's binary encoding (ssehub.Event.AppendBinary,
// stored with Pos 0). JetStream assigns stream sequences in the order it
// stores messages: strictly increasing and the one total order of the
// deployment however many nodes publish at once, whatever the subjects.
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
// # Subjects: the topic index
//
// The subject of an event's message is its index entry, written in the
// same publish as the event, so it is exactly as durable: there is no
// moment when an acknowledged event is stored but not indexed. With S the
// base subject (Options.Subject, default "ssehub.<stream>.events"):
//
//   - S.t.<h>: events with one distinct topic, h being the 16 lowercase hex
//     digits of eventlog.TopicHash(topic) (an event with no topic uses the
//     empty topic's hash; nobody reads it by topic);
//   - S.m: events with several distinct topics;
//   - S itself: events written by the previous version, which published
//     every event there (see Upgrading).
//
// The stream captures these three: S, S.t.* and S.m. JetStream keeps, per
// block of its store (8 MB for our limits stream on 2.9), the first and
// last sequence of each subject: a get or a consumer filtered on a subject
// skips the blocks without it and, inside a block, scans from the start
// sequence (or the subject's first message) to the next match. A read of a
// thin topic therefore costs the server a scan of the blocks the topic
// appears in, and the hub one round trip per event; never the transfer and
// decoding of everybody's events.
//
// An event with several topics is read by every reader of any topic (S.m
// is part of every read by topic) and dropped by those it does not
// concern: each multi-topic event costs every resuming subscriber a little.
// Publish one event per topic when that matters. Two topics may share a
// hash; readers check each event's topics, so a collision costs reads, not
// wrong deliveries.
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
// Reads go through a cursor on one subject filter (topics.go). It fetches
// the message at or after the wanted position with one (direct) get with
// next_by_subj, which answers "nothing new" in one round trip. Small reads
// (up to 8 events) continue with gets; larger ones create an ephemeral
// consumer filtered on the subject, starting at the next sequence, fetch the
// rest with no-wait pulls and delete the consumer: a few round trips for any
// number of events instead of one per event. A subject whose messages turn
// out to be sparse (more than 256 sequences apart) stays with gets: a
// filtered consumer makes the server scan once more to count what is
// pending, which costs more than the round trips it saves. Read uses one
// cursor on every subject (filter ">").
//
// ReadTopics (ssehub.TopicIndex) reads the stream's state first: its
// newest sequence is what a complete answer claims to be complete through
// (a message stored after that may be missed by the reads, so it is not
// claimed). It then runs a cursor per distinct topic subject, one on S.m
// and, when the read starts at or before the last event of the previous
// version, one on S; it merges them by position into a eventlog.Collector,
// which checks topics, drops what lies beyond Until and stops at Limit or
// MaxBytes. S.m and S hold other topics' events, so they are pulled in
// chunks of about 1 MB. With no topics, ReadTopics is a plain read bounded
// in bytes. Pulls ask for as many messages as MaxBytes leaves room for at
// the average size seen so far, so a read holds about MaxBytes, or one
// pull more when later events are larger.
//
// Tail runs one ephemeral, memory-backed pull consumer from the position
// after the last one it delivered, and delivers what has arrived as one
// batch. It checks the consumer sequence of every message: a message lost in
// transit makes it recreate the consumer from its last position, as
// JetStream's ordered consumers do, so fn never sees a gap or a duplicate.
//
// # Upgrading from the previous version
//
// The previous version published every event on S and its stream captured
// only S. Open updates such a stream's subjects (a stream update: its
// messages stay where they are) and looks up the last message on S. Its
// events keep their positions and ids; reads by topic that start at or
// before that message also scan S (filtered by topic, hence O(old events
// read)), until readers have moved past it or retention removed it. New
// events go to the indexed subjects.
//
// Upgrade every node together. A node of the previous version reads only
// S, so it would not replay the new nodes' events, and one that restarts
// sets the stream's subjects back to S alone, after which new nodes'
// appends fail (loudly). If a previous-version node still publishes, the
// tail notices its messages on S (and logs a warning once) so that reads
// by topic include them; a read that runs before the tail saw such an
// event may miss it.
//
// # Retention
//
// Options.MaxEvents and Options.MaxAge become the stream's MaxMsgs and
// MaxAge, enforced exactly by JetStream. Bounds reads the stream's first and
// last sequence.
//
// # The reserved class
//
// With Options.MaxReserved, the hub's own events (ssehub.Event.Reserved:
// subscription events, heartbeats) are kept on a budget of their own
// (ssehub.ReservedRetention), so that a flood of them never pushes an
// application event out of history. They stay in the one stream (their
// positions are stream sequences like any other's) on subjects of their
// own beside the application subjects, not under them:
//
//   - R.t.<h> and R.m, with R = S-r (S followed by "-r"), for reserved
//     events with one and with several distinct topics, all reserved. An
//     event a Go program publishes with a reserved canonical topic and an
//     application topic too stays on S.m, an application event, where the
//     readers of its application topic look.
//
// so that the filter S.> matches application events only and R.> reserved
// ones only. A Log counts the events of each class it appends and, when a
// class has had an eighth of its budget of them (at least one, at most
// 1024) since it last trimmed that class, wakes its trimmer goroutine: no
// round trip is added to Append, and each class may hold up to that step
// more than its budget (per node appending) until the trim runs.
//
//   - Application events are trimmed by one purge with filter S.> and keep
//     = MaxEvents, which removes the oldest of them wherever they lie in
//     the stream, reserved ones untouched.
//   - Reserved events are deleted one by one: an ephemeral consumer on R.>
//     lists the oldest, and each that had at least MaxReserved reserved
//     messages after it is deleted, with pipelined requests. A purge would
//     be one request, but nats-server 2.9 moves every consumer reading
//     both classes (a Tail, a Read) to the first message left on a purge's
//     filter: past the application events in between, lost to that
//     reader. (After an application purge that is the oldest application
//     event retained: a consumer skips only reserved events before
//     Bounds' first.) The deletes erase the message: 2.9 records a fast
//     delete only in its index, which a killed server may lose, bringing
//     deleted messages back.
//
// Every node trims with the same filters and budgets, so they agree
// whichever runs. The stream's MaxMsgs is then twice MaxEvents+MaxReserved
// plus 65536, a backstop for when trimming falls behind (a flood faster
// than the deletes) or fails: it removes the oldest messages, of either
// class. Without MaxEvents there is no limit. MaxAge applies to both
// classes.
//
// Bounds' first is then the oldest application event's sequence (a get
// with next_by_subj on S.> from the stream's first sequence; the stream's
// first when there is none): every application event after it is
// retained, older reserved events may be. ReservedRemoved is the sequence
// just before the oldest retained reserved event (a get on R.>), or before
// the stream's first message when there is none: every node sharing the
// stream says the same, and it is never earlier than the newest reserved
// event removed (it may be later, by the application events in between).
// A read of a reserved topic by topic also reads R.t.<h> and R.m (and S's
// subjects, where reserved events appended without MaxReserved are).
//
// A stream of a version without MaxReserved (or opened with MaxReserved 0)
// is updated in place: its MaxMsgs grows to the backstop and the reserved
// subjects are added, nothing is removed. Its reserved events stay on the
// application subjects and count as application events until newer
// application events push them out. Events on the literal subject S (the
// layout before the topic index) are not counted: once S.> holds an
// event, they lie before Bounds' first, and the backstop removes them.
// Setting MaxReserved back to 0 shrinks MaxMsgs to MaxEvents, which
// removes the oldest messages beyond it at once.
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
