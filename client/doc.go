// Package client is a Go EventSource: it subscribes to a text/event-stream
// URL and keeps the subscription alive across disconnections, like a
// browser's EventSource, only better at staying connected.
//
// A Client connects with Accept: text/event-stream and Cache-Control:
// no-cache plus any headers given (an Authorization header, say), follows
// redirects, and yields the events it receives through an iterator:
//
//	c, err := client.New(url, client.WithHeader("Authorization", "Bearer "+token))
//	...
//	for ev, err := range c.Events(ctx) {
//		if err != nil {
//			return err // permanent failure or ctx done; the loop ends here
//		}
//		fmt.Println(ev.Type, ev.ID, ev.Data)
//	}
//
// # Which responses open a stream
//
// Only a 200 response whose Content-Type is text/event-stream (the media type
// compared case-insensitively, parameters allowed) opens the stream. A 204 No
// Content means "stop": the iteration ends without an error and without
// reconnecting. Any other status or content type is a permanent failure: the
// iterator yields a *ResponseError naming the status, content type and the
// start of the body the server sent, and ends. So does an event larger than
// the maximum event size (sse.ErrEventTooLarge), since reconnecting would
// fetch it again.
//
// # Reconnecting
//
// Everything else is temporary: a network error, a connection that breaks,
// and a stream that ends cleanly (a common bug in other clients is to give up
// there). The client waits the reconnection time and connects again to the
// original URL, sending Last-Event-ID when the last event ID is not empty.
// The reconnection time is 3 seconds unless WithRetry or the server's
// "retry:" field says otherwise.
//
// After a healthy connection (one that delivered an event or stayed open for
// 10 seconds) the next attempt waits exactly the reconnection time, as a
// browser does. After repeated failures the wait grows exponentially, from
// max(reconnection time, 250ms) doubling per failure up to WithMaxBackoff
// (default 30s, never below the reconnection time), with jitter: each wait
// is drawn uniformly from the upper half of that range (but never below the
// reconnection time), so that clients dropped together do not all return in
// the same instant.
//
// # State
//
// WithOnState registers a callback that sees every state change:
// Connecting before each request, Open when a stream is accepted,
// Reconnecting (with the reason and the wait) after each disconnection or
// failed attempt, and Closed when the iteration ends.
//
// # Goroutines
//
// The client starts no goroutine of its own: the iterator does its work in
// the goroutine that ranges over it. Cancelling the context, or breaking out
// of the loop, closes the response body at once; nothing is left behind but
// net/http's idle keep-alive connections (closed by the http.Client's
// transport as usual).
package client
