package redislog

import (
	"context"
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
	enc   [][]byte // the events, encoded with position 0
	size  int      // about len of all enc
	first uint64   // set by the committer: the first event's position
	err   error    // set by the committer
	done  chan struct{}
}

// commitLoop stores queued appends until Close: it takes every append
// waiting (up to maxCommitN events) into one script call, so concurrent
// appends share round trips and Redis's work. Several commitLoops run at
// once, so a slow call does not hold everything up. Owned by the Log
// (l.wg).
func (l *Log) commitLoop() {
	defer l.wg.Done()
	var batch []*appendReq
	args := make([]any, 0, 1+maxCommitN)
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
		args = append(args[:0], strconv.Itoa(l.opts.MaxEvents))
		for _, r := range batch {
			for _, e := range r.enc {
				args = append(args, e)
			}
		}
		ctx, cancel := context.WithTimeout(l.closing, l.opts.Timeout)
		first, err := appendScript.Run(ctx, l.client, []string{l.stream, l.counter}, args...).Uint64()
		cancel()
		for _, r := range batch {
			r.first, r.err = first, err
			first += uint64(len(r.enc))
			close(r.done)
		}
		clear(args) // let the events' bytes go
	}
}
