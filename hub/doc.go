// Package hub fans events out from the log to subscribers.
//
// A Hub runs one Log.Tail for the whole process. Each event is encoded to
// SSE wire bytes once and the same bytes are queued to every subscriber whose
// topic selectors match it (and, for private events, whose authorization
// does). Each subscriber has a bounded queue (events and bytes); a subscriber
// that falls behind is closed and comes back through resume, which costs
// nothing because the log holds what it missed. Publishing never waits for a
// subscriber.
//
// A Subscriber is a cursor in the log plus a filter: Subscribe registers it
// for live events first and then replays the log from the client's last
// event id up to the point where live delivery started, so resuming has
// neither a gap nor a duplicate. When history cannot fill the gap (the id is
// older than what is retained, or unknown), the subscriber's first event is
// a GapType event and Subscriber.Gap says why. A damaged event the replay
// meets in the log (ssehub.DamagedError) is skipped and replaced by a
// GapType event with the reason GapDamaged; one the tail meets ends the
// live subscribers' streams with ErrDamaged, so that they resume and their
// replay says so.
//
// Replay costs what the subscriber receives. A subscription of exact
// topics on a log with an ssehub.TopicIndex reads only its topics' events,
// at most Options.ReplayConcurrency such reads at once, so that a storm of
// reconnects waits its turn instead of taking the CPU from live delivery.
// Every other resume (wildcards, URI templates, URL patterns, or a log
// without an index) is served by the hub's one scanner goroutine, which
// reads each history batch once for every resuming subscriber whose
// position it covers, as the dispatcher shares one tail. Each step of a
// replay holds at most about Options.ReplayBytes of history, and a live
// subscriber holds none.
//
// Lock order: Hub.mu before Subscriber.mu. The scanner's lock guards only
// its queue of requests and is never held while calling out. Nothing holds
// Subscriber.mu while calling out. Across packages: the dispatcher holds
// Hub.mu (read) while it calls Hub.OnEvent's function (package presence
// takes its view's lock there) and each Subscriber's OnWake function
// (internal/park takes a connection's lock and releases it, then its
// writers' queue lock: park never nests its locks); so the order is
// Hub.mu, then presence's locks, or Hub.mu, then one of park's. Those
// functions never call back into the Hub.
package hub
