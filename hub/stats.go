package hub

import (
	"sync/atomic"
	"time"
)

// Stats are the hub's counters since it started.
type Stats struct {
	Subscribers  int    // connected now
	Published    uint64 // events appended through this hub
	Dispatched   uint64 // position of the last event fanned out
	Delivered    uint64 // live events queued to subscribers (one per subscriber)
	Replayed     uint64 // events sent from history on reconnect
	Gaps         uint64 // gap events sent (most at the start of a subscription)
	Damaged      uint64 // damaged events met in the log: skipped, and told to readers as gaps
	ReservedGaps uint64 // of Gaps: for the hub's own events a ReservedRetention log removed
	Slow         uint64 // subscribers closed because their queue overflowed
	AppendErrors uint64 // failed appends
	ReplayScans  uint64 // history batches read by the shared replay scanner
	Replaying    int64  // subscribers whose replay is not done yet
}

type counters struct {
	published, delivered, replayed, gaps, damaged, slow, appendErrors, scans, reservedGaps atomic.Uint64
	replaying                                                                              atomic.Int64
	// Observers for latency histograms; set by whoever exports metrics.
	publishObserver atomic.Pointer[func(time.Duration)]
	lagObserver     atomic.Pointer[func(time.Duration)]
}

func (c *counters) snapshot(subs int) Stats {
	return Stats{
		Subscribers:  subs,
		Published:    c.published.Load(),
		Delivered:    c.delivered.Load(),
		Replayed:     c.replayed.Load(),
		Gaps:         c.gaps.Load(),
		Damaged:      c.damaged.Load(),
		ReservedGaps: c.reservedGaps.Load(),
		Slow:         c.slow.Load(),
		AppendErrors: c.appendErrors.Load(),
		ReplayScans:  c.scans.Load(),
		Replaying:    c.replaying.Load(),
	}
}

func (c *counters) observePublish(d time.Duration) {
	if f := c.publishObserver.Load(); f != nil {
		(*f)(d)
	}
}

func (c *counters) observeLag(d time.Duration) {
	if f := c.lagObserver.Load(); f != nil {
		(*f)(d)
	}
}

// OnPublishLatency sets a function called with the duration of every
// successful Publish (the log's append latency). For metrics.
func (h *Hub) OnPublishLatency(f func(time.Duration)) { h.stats.publishObserver.Store(&f) }

// OnDeliveryLag sets a function called, per event fanned out, with the time
// from the log accepting it to its fan-out. For metrics.
func (h *Hub) OnDeliveryLag(f func(time.Duration)) { h.stats.lagObserver.Store(&f) }
