package eventlog

import (
	"sort"

	"github.com/ssehub/ssehub"
)

const minRingCap = 16

// Ring is a growable first-in first-out queue of events in strictly
// increasing position order: events are pushed at the back (newest) and
// popped at the front (oldest). The zero value is an empty ring.
//
// A Ring is not safe for concurrent use: its owner guards it with a lock.
type Ring struct {
	buf  []*ssehub.Event // len(buf) is zero or a power of two
	head int             // index of the front in buf
	n    int             // number of events held
}

// Len returns the number of events in the ring.
func (r *Ring) Len() int { return r.n }

// At returns the i-th event from the front (0 is the oldest). It panics if i
// is out of range.
func (r *Ring) At(i int) *ssehub.Event {
	if i < 0 || i >= r.n {
		panic("eventlog: ring index out of range")
	}
	return r.buf[(r.head+i)&(len(r.buf)-1)]
}

// Front returns the oldest event, or nil when the ring is empty.
func (r *Ring) Front() *ssehub.Event {
	if r.n == 0 {
		return nil
	}
	return r.buf[r.head]
}

// Back returns the newest event, or nil when the ring is empty.
func (r *Ring) Back() *ssehub.Event {
	if r.n == 0 {
		return nil
	}
	return r.At(r.n - 1)
}

// Push adds e at the back. Its position must be greater than Back's.
func (r *Ring) Push(e *ssehub.Event) {
	if r.n == len(r.buf) {
		r.resize(max(minRingCap, 2*len(r.buf)))
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = e
	r.n++
}

// PopFront removes and returns the oldest event, or nil when the ring is
// empty. The ring gives memory back when it is mostly empty.
func (r *Ring) PopFront() *ssehub.Event {
	if r.n == 0 {
		return nil
	}
	e := r.buf[r.head]
	r.buf[r.head] = nil // let the event be collected
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if len(r.buf) > minRingCap && r.n <= len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
	return e
}

// Clear removes every event and releases the memory.
func (r *Ring) Clear() { *r = Ring{} }

func (r *Ring) resize(size int) {
	buf := make([]*ssehub.Event, size)
	for i := 0; i < r.n; i++ {
		buf[i] = r.At(i)
	}
	r.buf, r.head = buf, 0
}

// Search returns the index of the first event whose position is greater than
// after (Len when there is none). It runs in O(log Len).
func (r *Ring) Search(after uint64) int {
	return sort.Search(r.n, func(i int) bool { return r.At(i).Pos > after })
}

// AppendAfter appends to dst up to limit events with a position greater than
// after, oldest first, and returns the extended slice.
func (r *Ring) AppendAfter(dst []*ssehub.Event, after uint64, limit int) []*ssehub.Event {
	for i := r.Search(after); i < r.n && limit > 0; i++ {
		dst = append(dst, r.At(i))
		limit--
	}
	return dst
}

// Remove removes e from the ring wherever it is (O(Len) unless it is the
// front) and reports whether it was there.
func (r *Ring) Remove(e *ssehub.Event) bool {
	if r.Front() == e {
		r.PopFront()
		return e != nil
	}
	i := r.Search(e.Pos - 1)
	if i >= r.n || r.At(i) != e {
		return false
	}
	for ; i < r.n-1; i++ {
		r.buf[(r.head+i)&(len(r.buf)-1)] = r.At(i + 1)
	}
	r.buf[(r.head+r.n-1)&(len(r.buf)-1)] = nil
	r.n--
	return true
}
