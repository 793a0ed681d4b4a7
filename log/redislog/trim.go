package redislog

import (
	"context"
	"time"

	"github.com/ssehub/ssehub"
)

const trimScan = 256 // entries looked at per XRANGE while trimming by age

// indexInterval is how often a Log checks whether the topic index lags
// behind the stream (a node of an older version appended) and, if so,
// builds it; it also sweeps the index of trimmed events that often.
const indexInterval = time.Second

// maintain keeps the log in shape until Close: it builds the topic index
// at once and whenever it lags (see buildIndex), sweeps the index of
// trimmed events, and, with retention, removes events older than MaxAge
// and cleans the id index of entries whose events retention removed. Open
// starts it; it is owned by the Log (l.wg).
func (l *Log) maintain() {
	defer l.wg.Done()
	var age, ids <-chan time.Time
	if l.opts.MaxAge > 0 {
		t := time.NewTicker(trimInterval(l.opts.MaxAge))
		defer t.Stop()
		age = t.C
	}
	if l.opts.MaxAge > 0 || l.opts.MaxEvents > 0 || l.opts.MaxReserved > 0 {
		t := time.NewTicker(idCleanInterval)
		defer t.Stop()
		ids = t.C
	}
	index := time.NewTicker(indexInterval)
	defer index.Stop()
	build := make(chan time.Time, 1)
	build <- time.Now() // at once: a stream of an older version needs it
	var cursor uint64   // of the id index sweep
	failing := false
	for {
		var err error
		select {
		case <-l.closing.Done():
			return
		case <-age:
			if err = l.trimAge(l.closing); err == nil {
				err = l.sweepTopics(l.closing)
			}
		case <-ids:
			cursor, err = l.cleanIDs(l.closing, cursor)
		case <-build:
			err = l.buildIndex(l.closing)
		case <-index.C:
			if err = l.buildIndex(l.closing); err == nil {
				err = l.sweepTopics(l.closing)
			}
		}
		switch {
		case err != nil && l.closing.Err() == nil && !failing:
			failing = true
			l.logger.Warn("redislog: cannot maintain the log (trim, index); will retry", "err", err)
		case err == nil && failing:
			failing = false
			l.logger.Info("redislog: maintaining the log again")
		}
	}
}

// trimInterval is how often events older than maxAge are removed: a tenth
// of maxAge, between 50 ms and a minute.
func trimInterval(maxAge time.Duration) time.Duration {
	return min(max(maxAge/10, 50*time.Millisecond), time.Minute)
}

// trimAge removes the events at the oldest end of each stream whose Time
// is older than MaxAge. Undecodable entries at that end are removed too. It
// is safe to run on several nodes at once: XTRIM MINID is idempotent and
// appends only add newer ids.
func (l *Log) trimAge(ctx context.Context) error {
	cutoff := time.Now().Add(-l.opts.MaxAge)
	if err := l.trimStreamAge(ctx, l.stream, cutoff); err != nil {
		return err
	}
	return l.trimStreamAge(ctx, l.reserved, cutoff)
}

// trimStreamAge removes the events before cutoff at the oldest end of
// stream.
func (l *Log) trimStreamAge(ctx context.Context, stream string, cutoff time.Time) error {
	for {
		opCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		msgs, err := l.client.XRangeN(opCtx, stream, "-", "+", trimScan).Result()
		cancel()
		if err != nil {
			return l.fail(ctx, "trim", err)
		}
		minID, expired := "", 0
		for _, m := range msgs {
			pos, ok := parseID(m.ID)
			if !ok {
				break
			}
			s, _ := m.Values[field].(string)
			var ev ssehub.Event
			if err := ev.UnmarshalBinary([]byte(s)); err == nil && !ev.Time.Before(cutoff) {
				break
			}
			minID, expired = entryID(pos+1), expired+1
		}
		if minID == "" {
			return nil
		}
		opCtx, cancel = context.WithTimeout(ctx, l.opts.Timeout)
		err = l.client.XTrimMinID(opCtx, stream, minID).Err()
		cancel()
		if err != nil {
			return l.fail(ctx, "trim", err)
		}
		if expired < trimScan {
			return nil
		}
	}
}
