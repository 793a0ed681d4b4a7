// Package presence keeps the Mercure subscriptions API's state on top of a
// hub: it publishes an event when a subscription starts and when it ends,
// heartbeats saying this hub is alive, the end of dead hubs' subscriptions,
// and builds from the events the hub fans out a view of the active
// subscriptions that httpapi serves. Nothing of it lives only in this
// process's memory:
//
//   - start and end events go through the log (Hub.Publish), like any
//     update, so every hub sharing the log sees them;
//   - each hub builds its view of the active subscriptions from the events
//     it fans out (Hub.OnEvent), after reading the retained history once at
//     start, so a hub that starts later or restarts knows about the
//     subscriptions held by the others;
//   - the view's position in the log is the cursor of the API: a client
//     lists, then subscribes with the returned lastEventID and receives
//     every later subscription event exactly once, with no gap.
//
// A hub that dies (kill -9, a lost machine) never publishes its "ended"
// events. So each hub also publishes, every Options.Heartbeat, a private
// "node" event saying until when it is alive (three periods), and a final
// one with an expiry of now when it shuts down. When a hub's heartbeat
// expires, the live hub with the smallest node id publishes the "ended"
// events of the dead hub's subscriptions on its behalf; a hub that sees its
// own live subscriptions ended by another (after a network partition)
// announces them again.
//
// New starts one goroutine; whoever calls New owns it and stops it with
// Close (it also stops when the hub closes). Lock order: the hub's
// dispatcher holds Hub.mu while it calls the view's hook, which takes the
// view's lock (vmu), then, to announce again, the queue's lock (qmu). No
// method holds vmu while matching or authorizing: List copies the view and
// filters the copy.
package presence
