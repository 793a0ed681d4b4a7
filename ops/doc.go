// Package ops is the operational side of a hub's HTTP handlers, what
// docs/operations.md describes, shared by the Mercure API (httpapi), the
// Durable Streams server (streams) and any handler a program mounts beside
// them: the Prometheus metrics of a hub and its handlers, in a registry of
// their own (Metrics); the connection limits that long-lived requests share,
// in total and per client address, refused with 503 or 429 and a jittered
// Retry-After (ConnLimiter, Refuse); a token bucket per key with bounded
// memory (RateLimiter); and the following of a long-lived response until
// its connection closes, also after the handler hands the connection to a
// poller (Track). It speaks HTTP and knows the hub, but no protocol: limits
// that need a protocol's types (httpapi's selector cost, topics and event
// size of a publish, publish rate per token) stay with the protocol, which
// applies them with these parts. Metrics, ConnLimiter and RateLimiter are
// safe for concurrent use; a nil *Metrics records nothing and a nil
// *ConnLimiter admits everything.
package ops
