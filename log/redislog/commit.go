package redislog

import (
	"context"
	"fmt"
	"strconv"
)

const (
	committers    = 4       // script calls in flight at once per Log
	queueLen      = 1024    // appends waiting for a committer
	maxCommitN    = 512     // events per script call, unless one append has more
	maxCommitSize = 1 << 20 // bytes per script call, unless one append has more
)

// appendReq is one Append waiting for its events to be stored.
type appendReq struct {
	enc    [][]byte // the events, encoded with position 0
	ids    []string // the events' publisher-supplied ids ("" for none)
	hashes []string // the hashes of the events' topics, as the script takes them
	size   int      // about len of all enc
	first  uint64   // set by the committer: the first event's position
	dup    int      // set by the committer: 1 + index of an event whose id is taken
	err    error    // set by the committer
	done   chan struct{}
}

// commitLoop stores queued appends until Close: it takes every append
// waiting (up to maxCommitN events) into one script call, so concurrent
// appends share round trips and Redis's work. Several commitLoops run at
// once, so a slow call does not hold everything up. Owned by the Log
// (l.wg).
func (l *Log) commitLoop() {
	defer l.wg.Done()
	var batch []*appendReq
	args := make([]any, 0, 4+3*maxCommitN)
	for {
		var r *appendReq
		select {
		case <-l.closing.Done():
			return // waiting appends see closing too
		case r = <-l.queue:
		}
		batch = append(batch[:0], r)
		n, size := len(r.enc), r.size
	fill:
		for n < maxCommitN && size < maxCommitSize {
			select {
			case r := <-l.queue:
				batch = append(batch, r)
				n, size = n+len(r.enc), size+r.size
			default:
				break fill
			}
		}
		args = append(args[:0], strconv.Itoa(l.opts.MaxEvents), l.tprefix, strconv.Itoa(l.opts.MaxReserved), l.rprefix)
		for _, r := range batch {
			args = append(args, len(r.enc))
			for i, e := range r.enc {
				args = append(args, r.ids[i], e, r.hashes[i])
			}
		}
		ctx, cancel := context.WithTimeout(l.closing, l.opts.Timeout)
		res, err := appendScript.Run(ctx, l.client, l.appendKeys(), args...).Int64Slice()
		cancel()
		if err == nil && len(res) != 2*len(batch) {
			err = fmt.Errorf("redislog: append script returned %d values for %d appends", len(res), len(batch))
		}
		for i, r := range batch {
			if err != nil {
				r.err = err
			} else {
				r.first, r.dup = uint64(res[2*i]), int(res[2*i+1])
			}
			close(r.done)
		}
		clear(args) // let the events' bytes go
	}
}

// appendKeys returns the keys appendScript takes.
func (l *Log) appendKeys() []string {
	return []string{l.stream, l.counter, l.ids, l.topics, l.marker, l.unindexed, l.reserved, l.rtopics}
}
