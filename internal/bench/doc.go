// Package bench is the load generator behind `ssehub bench`: it measures
// what a hub costs (memory per idle connection, CPU per delivered event)
// and whether it delivers every event, in order, quickly.
//
// Run opens Config.Subscribers subscriber connections at Config.ConnectRate,
// spread over local source addresses 127.0.0.2, 127.0.0.3, … (each has its
// own ephemeral ports, so one machine can open more than 28,000 connections
// to one port). Subscriber i is on topic i mod Config.Topics (or on all of
// them). After a settle time it publishes Config.Rate events per second for
// Config.Duration, round-robin over the topics, then waits for the last
// deliveries (Config.Drain), closes everything and returns a Report: a human
// summary (Report.WriteText) and a JSON object.
//
// # Exact counts
//
// Every event's data is "<phase> <topic> <seq> <sent> <padding>": the
// index of its topic, its sequence number on that topic (0, 1, …) and the
// time the publisher sent it (on the generator's monotonic clock; publisher
// and subscribers are one process). No event is published before every
// subscriber is connected and the settle time has passed, so a subscriber
// must receive every acknowledged event of its topics: Expected is their
// number, Missing the ones it never got, Duplicated the ones it got twice,
// OutOfOrder the ones that arrived after a later event of their topic. A
// topic's publishes are sent one after the other (each waits for the
// previous one's answer), so their order is the order the hub accepted them
// in; at most min(Concurrency, Topics) publishes are in flight. Connections
// established only after publishing started are left out of the counts
// (Report.Connections.Late). Received events are kept in one bit per
// event per subscriber.
//
// End-to-end latency runs from the start of the publish request to the
// parsing of the event; both it and the publish latency are kept in
// fixed-size log-linear histograms (Histogram, < 1% error).
//
// # Cheap subscribers
//
// A subscriber is a raw TCP connection, an HTTP/1.1 GET written by hand, a
// goroutine, and one read buffer (1 KiB, grown only for longer lines) in
// which the response is de-chunked and split into lines in place, where
// net/http's client would spend two buffers and a goroutine more. The
// generator holds 15,000 connections in about 200 MB.
//
// # The hub's cost
//
// With Config.HubPID the hub's RSS and CPU time are read from /proc/<pid>
// (Linux): RSS per idle connection is the RSS after connecting and
// settling, minus the RSS before connecting, over the connections
// established; CPU per delivered event is the hub's CPU time from the first
// publish to the end of the drain over the events received.
//
// # Other servers
//
// ModePlain drives any SSE server with templates: a subscribe URL and a
// publish URL in which "{topic}" is replaced by the topic's name, and a
// publish body of form fields or the raw data, e.g. nginx+nchan with
// URL "http://127.0.0.1/sub/{topic}", PublishURL
// "http://127.0.0.1/pub?id={topic}" and FormatRaw.
//
// # Durable Streams
//
// ModeDurableStreams measures token streaming over the Durable Streams
// protocol (durable-streams/durable-streams, PROTOCOL.md): each topic is a
// stream, created with PUT (text/plain; an existing one stops the run, so
// the default prefix is new every run) before its readers connect. A
// reader is one SSE read, GET <stream>?offset=-1&live=sse, on the same
// cheap connections. Publishes are appends: POST of one chunk,
// "<phase> <stream> <seq> <sent>" padded with "x" to Config.Payload bytes
// and ended by ';' (a stream is bytes: a server may batch appends into one
// data event or split one over two, so chunks are found by their end),
// over Config.Concurrency keep-alive connections whose requests are
// written by hand (an append costs a write and a read). A stream's appends
// go one after the other, as one generator's tokens do.
//
// A reader keeps the data events' bytes until the control event that
// follows them (its streamNextOffset is the reader's offset), and only
// then counts their chunks: when a response ends, the reader resumes at
// once from that offset, as the protocol's clients do, and receives what
// came after it again, which must count once. Missing, duplicated and
// out-of-order chunks and the delivery latency (to the control event) are
// counted as events are, per reader; Report.Streams adds the data and
// control events, control events without an offset, bytes no control
// event confirmed, and readers told that their stream closed.
//
// # Resume
//
// With Config.ResumeMissed one extra subscriber, on topic
// TopicPrefix+"resume", receives a marker event, disconnects, misses
// ResumeMissed events published meanwhile (while the publish phase goes
// on), reconnects with Last-Event-ID, and the report says how long it took
// to receive them all.
//
// # Reconnect storm
//
// With Config.Storm, that many extra subscribers, on exact topics of their
// own (TopicPrefix+"storm0", …), each receive a marker event, which gives
// them a Last-Event-ID, and disconnect. Then Config.StormBehind events are
// published on topics nobody subscribes to and, behind them in the
// history, Config.StormMissed events on every storm topic, up to
// Config.Concurrency at once (a topic's one after the other). One second
// into the publish phase every storm subscriber reconnects at once with its
// own Last-Event-ID. A subscriber has caught up when it received the last
// acknowledged event of its topic; the report gives the times from the
// storm's moment until each caught up (p50, p99, max), the hub's CPU time
// until the last one did, the missing, duplicated and out-of-order missed
// events, and the delivery latency of the events published during the storm
// to the main subscribers, which stayed connected on other topics: the
// control group.
//
// # Hub restarts
//
// With Config.Reconnect a subscriber whose stream ends reconnects with its
// Last-Event-ID the way a browser does: after the stream's "retry:" time,
// then, while attempts fail, after waits that double with jitter up to
// Config.ReconnectMaxBackoff. The run then survives a restart of the hub
// (a script kills and restarts it while bench runs): publishes refused
// during the outage are publish errors, and only acknowledged events are
// expected, so every one must arrive once and in order across the restart.
// The report says when the first reconnection was accepted (the hub's
// return) and how long after it each subscriber caught up to the last event
// of its topic acknowledged when it reconnected.
//
// Only http:// URLs are supported: the subscribers speak HTTP/1.1 on plain
// TCP. Run stops by itself: every phase is bounded, and Config.MaxTime bounds
// the whole run.
package bench
