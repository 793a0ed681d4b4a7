// Package ssehub is the domain of the ssehub real-time push server: the
// Event that flows from publishers to subscribers, the Log that stores events
// in one total order, and the errors shared by every part of the system.
//
// The data flows one way:
//
//	publisher --POST--> httpapi --> Log.Append --> (memory | bbolt | Redis | NATS)
//	                                                  |
//	                                   Log.Tail (one per hub process)
//	                                                  v
//	browser <--text/event-stream-- subscriber <-- hub (match topics, fan out)
//	        <--replay (Last-Event-ID)----------- Log.Read(after position)
//
// The log is the truth: a hub delivers only what the log accepted, and a
// subscriber is a position in the log plus a topic filter, so resuming is
// reading the log after that position.
//
// Sub-packages: sse (wire format), client (Go EventSource), hub (fan-out),
// httpapi (the Mercure HTTP protocol), auth (JWT), topic (selectors), and
// one Log implementation per engine under log/.
package ssehub
