// Package streams serves the Durable Streams protocol (ElectricSQL's
// PROTOCOL.md, v1 draft) on a hub: append-only streams at URLs, read from
// any offset by catch-up, long-poll or SSE, closed with an end-of-stream
// signal, with TTLs, idempotent producers and forks.
//
// A stream is a topic of the hub's one log, named by its path
// (/v1/stream/chat/42): creating, appending to, closing and deleting it
// append events to that topic, and every hub on the log serves it. Each
// append is one data event (one per message for application/json); the
// lifecycle (create, close, delete, forks) is events with a
// "ssehub.stream.*" type. What the protocol needs beyond the data — the
// content type, TTL, closed state, writers' sequence numbers, the fork
// point — travels in the events' Meta, so a stream's state is the fold of
// its topic's events, read through the log's index by topic
// (ssehub.TopicIndex). With a local log (bbolt, memory) the hub reads a
// stream's events once and then keeps its state with its own writes; with a
// shared log (Redis, NATS) it reads what other hubs appended before every
// request. Nothing is stored anywhere else: a stream is as durable as the
// log's events, and it survives a restart or a kill -9 with them.
//
// Reads go through the same paths as Mercure's: a catch-up read is a read
// of the topic index (a fork's inherited part from its sources' topics);
// a long-poll or SSE reader is a hub Subscriber on the stream's topic,
// replayed from its offset and then fed by the hub's one dispatcher.
//
// An offset is the position of the last data event read, zero-padded to 20
// decimal digits so offsets sort as strings; it is also the event's id on
// the Mercure endpoint, so an EventSource subscribed to the stream's topic
// receives every append as a message and resumes with Last-Event-ID.
//
// Writes to one stream are checked and appended one at a time on each hub
// (a per-stream lock). Two hubs on one Redis or NATS log that write to the
// same stream at the same moment are not serialized with each other: the
// protocol's checks (closed, Stream-Seq, producer numbers) are made against
// the state each hub has read. Readers on any hub see every write.
package streams
