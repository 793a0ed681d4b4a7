// Package eventlog holds what the event-log implementations under log/
// share ("log" as in ssehub.Log, the history of events, not logging): a
// Notifier that wakes tails after an append, a Ring of recent events and
// the Tail loop built on the two (memlog, boltlog); for the engine logs
// (redislog, natslog) a never-backwards Clock, the check before every call
// and how their Tails end and back off (engine.go); and what every
// ssehub.TopicIndex needs: the stable TopicHash its index is keyed by and a
// Collector that turns candidate events into the answer to a TopicQuery.
package eventlog
