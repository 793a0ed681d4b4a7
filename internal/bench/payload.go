package bench

import (
	"strconv"
	"time"
)

// Phases of a payload: the first byte of every event's data.
const (
	phaseMain   = 'm' // the publish phase, counted in the report's delivery
	phaseResume = 'r' // the resume scenario's topic
	phaseStorm  = 's' // the storm's topics (topic is the storm topic's index)
	phaseBehind = 'b' // the storm's fill, on topics nobody subscribes to
)

// payload is what an event's data carries:
//
//	<phase> <topic> <seq> <sent> <padding>
//
// phase is one of the phase constants; topic is the topic's index; seq the event's
// sequence number on its topic, from 0; sent the publisher's clock when it
// sent the request, in microseconds since the run started (one process,
// monotonic clock; microseconds keep a Durable Streams chunk near 20
// bytes); padding is "x" repeated to the configured size.
type payload struct {
	phase byte
	topic int
	seq   int
	sent  time.Duration
}

// appendPayload appends p's data, padded to size bytes, to b.
func appendPayload(b []byte, p payload, size int) []byte {
	start := len(b)
	b = append(b, p.phase, ' ')
	b = strconv.AppendInt(b, int64(p.topic), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(p.seq), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, p.sent.Microseconds(), 10)
	b = append(b, ' ')
	for len(b)-start < size {
		b = append(b, 'x')
	}
	return b
}

// parsePayload parses an event's data; ok is false when it is not one of
// ours.
func parsePayload(b []byte) (p payload, ok bool) {
	if len(b) < 2 || b[1] != ' ' || !isPhase(b[0]) {
		return p, false
	}
	p.phase = b[0]
	b = b[2:]
	var n [3]int64
	for i := range n {
		v, rest, ok := parseUint(b)
		if !ok {
			return p, false
		}
		n[i] = v
		b = rest
	}
	p.topic, p.seq, p.sent = int(n[0]), int(n[1]), time.Duration(n[2])*time.Microsecond
	return p, true
}

func isPhase(c byte) bool {
	return c == phaseMain || c == phaseResume || c == phaseStorm || c == phaseBehind
}

// parseUint parses decimal digits ending at a space or the end of b.
func parseUint(b []byte) (v int64, rest []byte, ok bool) {
	i := 0
	for ; i < len(b) && b[i] != ' '; i++ {
		c := b[i]
		if c < '0' || c > '9' || i >= 18 {
			return 0, nil, false
		}
		v = v*10 + int64(c-'0')
	}
	if i == 0 {
		return 0, nil, false
	}
	if i < len(b) {
		i++
	}
	return v, b[i:], true
}
