package bench

import "math/bits"

// seqSet is a set of small non-negative sequence numbers, one bit each.
// It grows as needed. Not safe for concurrent use.
type seqSet struct {
	words []uint64
}

// add inserts seq and reports whether it was already present.
func (s *seqSet) add(seq int) (dup bool) {
	w := seq >> 6
	if w >= len(s.words) {
		n := max(2*len(s.words), w+1, 2)
		nw := make([]uint64, n)
		copy(nw, s.words)
		s.words = nw
	}
	bit := uint64(1) << (seq & 63)
	dup = s.words[w]&bit != 0
	s.words[w] |= bit
	return dup
}

// has reports whether seq is in the set.
func (s *seqSet) has(seq int) bool {
	w := seq >> 6
	return seq >= 0 && w < len(s.words) && s.words[w]&(1<<(seq&63)) != 0
}

// len returns the number of members.
func (s *seqSet) len() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// missingFrom returns how many members of want are not in s, and how many
// members of s are not in want.
func (s *seqSet) missingFrom(want *seqSet) (missing, extra int) {
	for i, w := range want.words {
		var have uint64
		if i < len(s.words) {
			have = s.words[i]
		}
		missing += bits.OnesCount64(w &^ have)
		extra += bits.OnesCount64(have &^ w)
	}
	for _, have := range s.words[min(len(want.words), len(s.words)):] {
		extra += bits.OnesCount64(have)
	}
	return missing, extra
}

// topicTrack follows what one subscriber received on one topic.
type topicTrack struct {
	got    seqSet
	maxSeq int // highest sequence number received (0 before the first)
}

// receive records seq and classifies it: a duplicate (already received), or
// out of order (lower than one received before), or neither.
func (t *topicTrack) receive(seq int) (dup, outOfOrder bool) {
	if t.got.add(seq) {
		return true, false
	}
	if seq < t.maxSeq {
		return false, true
	}
	t.maxSeq = seq
	return false, false
}
