package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// DefaultMaxEventSize is the Decoder's default limit, in bytes, on one line
// and on one event's data: 4 MiB, well above any event a hub should carry
// yet small enough that a broken or hostile server cannot exhaust memory.
const DefaultMaxEventSize = 4 << 20

// ErrEventTooLarge is returned (wrapped, with the limit) by Decoder.Next when
// a line or an event's data exceeds the maximum event size. The Decoder is
// unusable afterwards (until Reset).
var ErrEventTooLarge = errors.New("sse: event too large")

// minReadSize is the initial buffer size and the smallest read.
const minReadSize = 4096

// maxRetryMillis is the largest retry value, in milliseconds, that fits a
// time.Duration.
const maxRetryMillis = math.MaxInt64 / int64(time.Millisecond)

// smallEvent is the data size up to which a dispatched event's Data, ID and
// Type share one allocation.
const smallEvent = 1024

var bom = []byte{0xEF, 0xBB, 0xBF}

// Decoder reads an event stream and returns the events it dispatches.
//
// The Decoder buffers its input itself, so it may read past the end of the
// event it returns. A Decoder is not safe for concurrent use; its methods
// must be called from one goroutine at a time.
type Decoder struct {
	rd   io.Reader
	rerr error // error from rd, returned once the buffer holds no full line
	err  error // fatal decoding error (too large), sticky

	buf   []byte
	r, w  int          // unread bytes are buf[r:w]
	lines LineSplitter // splits buf[r:w]
	bomOK bool         // the start of the stream was checked for a BOM

	max int

	// The three buffers of the standard.
	data []byte
	typ  []byte
	id   []byte
	// lastID is the last event ID string, updated at each dispatch.
	lastID string
	// prevType is the last non-default type dispatched, reused when the
	// next event has the same type.
	prevType string

	retry    time.Duration // stream's reconnection time, valid when retrySet
	retrySet bool
	evRetry  time.Duration // set by a retry field since the last dispatch

	tmp []byte // a line decoded from invalid UTF-8
	out []byte // strings of a dispatched event, before conversion
}

// NewDecoder returns a Decoder reading from r, with the default maximum event
// size and an empty last event ID.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{rd: r, max: DefaultMaxEventSize}
}

// SetMaxEventSize sets the largest line and the largest event data, in
// bytes, that the Decoder accepts; n <= 0 restores DefaultMaxEventSize. Call
// it before Next.
func (d *Decoder) SetMaxEventSize(n int) {
	if n <= 0 {
		n = DefaultMaxEventSize
	}
	d.max = n
}

// SetLastEventID sets the last event ID, as if an earlier stream had left it
// so: events without an "id" field carry it, and LastEventID reports it.
// A client resuming a subscription calls it before Next.
func (d *Decoder) SetLastEventID(id string) {
	d.lastID = id
	d.id = append(d.id[:0], id...)
}

// LastEventID returns the last event ID string: the value of the last "id"
// field of the most recently completed event (a blank line completes an
// event even when it dispatches nothing). It is the value a client sends in
// the Last-Event-ID header when it reconnects. An "id" field of an event the
// stream ended in the middle of does not count.
func (d *Decoder) LastEventID() string { return d.lastID }

// Retry returns the stream's reconnection time, set by the latest valid
// "retry" field (ASCII digits only, in milliseconds; a value too large for a
// time.Duration is ignored), and whether any was seen. Per the standard it
// takes effect when the field is read, even if its event never dispatches.
func (d *Decoder) Retry() (time.Duration, bool) { return d.retry, d.retrySet }

// Reset makes the Decoder read a new stream from r, as a client does after
// reconnecting. The buffers and any error are discarded and the new stream
// may start with its own byte order mark; the last event ID, the maximum
// event size and the reconnection time are kept, and the new stream's id
// buffer starts from the last event ID. (Read literally, the standard starts
// each stream's id buffer empty, which would forget the id at the new
// stream's first blank line; browsers keep it, as verified in Chromium.)
func (d *Decoder) Reset(r io.Reader) {
	d.rd, d.rerr, d.err = r, nil, nil
	d.r, d.w = 0, 0
	d.lines.Reset()
	d.bomOK = false
	d.data, d.typ = d.data[:0], d.typ[:0]
	d.id = append(d.id[:0], d.lastID...)
	d.evRetry = 0
}

// Next reads until the stream dispatches an event and returns it. At the
// end of the stream it returns io.EOF, discarding an unfinished event; a read
// error is returned as is, after the events completed before it; past the
// size limit it returns an error wrapping ErrEventTooLarge. Errors are
// sticky: later calls return the same error.
func (d *Decoder) Next() (Event, error) {
	if d.err != nil {
		return Event{}, d.err
	}
	for {
		line, err := d.readLine()
		if err != nil {
			return Event{}, err
		}
		if ev, ok := d.processLine(line); ok {
			return ev, nil
		}
		if d.err != nil {
			return Event{}, d.err
		}
	}
}

// readLine returns the next complete line, without its terminator. The line
// is valid until the next call.
func (d *Decoder) readLine() ([]byte, error) {
	for {
		if !d.bomOK { // no line was split yet
			n := min(d.w-d.r, len(bom))
			match := bytes.Equal(d.buf[d.r:d.r+n], bom[:n])
			if match && n < len(bom) && d.rerr == nil {
				d.fill() // could still be a BOM: need more bytes
				continue
			}
			if match && n == len(bom) {
				d.r += n
			}
			d.bomOK = true
		}
		line, n, ok := d.lines.Next(d.buf[d.r:d.w])
		d.r += n
		if ok {
			if len(line) > d.max {
				return nil, d.tooLarge()
			}
			return line, nil
		}
		if d.w-d.r > d.max {
			return nil, d.tooLarge()
		}
		if d.rerr != nil {
			return nil, d.rerr
		}
		d.fill()
	}
}

// fill reads more input into the buffer, compacting or growing it first so
// that a long line costs amortized linear time.
func (d *Decoder) fill() {
	if d.r == d.w {
		d.r, d.w = 0, 0
	}
	if len(d.buf)-d.w < minReadSize/8 {
		if d.r > 0 {
			copy(d.buf, d.buf[d.r:d.w])
			d.w -= d.r
			d.r = 0
		}
		if d.w > len(d.buf)/2 || len(d.buf)-d.w < minReadSize/8 {
			nb := make([]byte, max(2*len(d.buf), minReadSize))
			copy(nb, d.buf[:d.w])
			d.buf = nb
		}
	}
	for range 100 {
		n, err := d.rd.Read(d.buf[d.w:])
		if n < 0 || n > len(d.buf)-d.w {
			d.rerr = errors.New("sse: reader returned an invalid count")
			return
		}
		d.w += n
		if err != nil {
			d.rerr = err
			return
		}
		if n > 0 {
			return
		}
	}
	d.rerr = io.ErrNoProgress
}

func (d *Decoder) tooLarge() error {
	d.err = fmt.Errorf("%w: a line or an event's data is longer than %d bytes (raise the maximum event size)", ErrEventTooLarge, d.max)
	return d.err
}

// processLine interprets one line and returns the event it dispatches, if
// any. It sets d.err when the data grows past the limit.
func (d *Decoder) processLine(line []byte) (Event, bool) {
	if len(line) == 0 {
		return d.dispatch()
	}
	if line[0] == ':' {
		return Event{}, false // comment
	}
	if !utf8.Valid(line) {
		d.tmp = appendUTF8(d.tmp[:0], line)
		line = d.tmp
	}
	field, value := Field(line)
	switch string(field) {
	case "data":
		if len(d.data)+len(value) > d.max {
			d.tooLarge()
			return Event{}, false
		}
		d.data = append(d.data, value...)
		d.data = append(d.data, '\n')
	case "event":
		d.typ = append(d.typ[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			d.id = append(d.id[:0], value...)
		}
	case "retry":
		if retry, ok := ParseRetry(value); ok {
			d.retry = retry
			d.retrySet = true
			d.evRetry = d.retry
		}
	}
	return Event{}, false
}

// dispatch runs the standard's "dispatch the event" steps.
func (d *Decoder) dispatch() (Event, bool) {
	idChanged := string(d.id) != d.lastID
	if len(d.data) == 0 {
		if idChanged {
			d.lastID = string(d.id)
		}
		d.typ = d.typ[:0]
		d.evRetry = 0
		return Event{}, false
	}
	data := d.data[:len(d.data)-1]
	typeChanged := len(d.typ) > 0 && string(d.typ) != d.prevType

	// One allocation for the strings of a small event; separate ones for a
	// large event, so a long-lived id does not pin a large payload.
	ev := Event{Type: "message", Retry: d.evRetry}
	if len(data) <= smallEvent {
		out := append(d.out[:0], data...)
		if idChanged {
			out = append(out, d.id...)
		}
		if typeChanged {
			out = append(out, d.typ...)
		}
		d.out = out
		s := string(out)
		ev.Data, s = s[:len(data)], s[len(data):]
		if idChanged {
			d.lastID, s = s[:len(d.id)], s[len(d.id):]
		}
		if typeChanged {
			d.prevType = s
		}
	} else {
		ev.Data = string(data)
		if idChanged {
			d.lastID = string(d.id)
		}
		if typeChanged {
			d.prevType = string(d.typ)
		}
	}
	ev.ID = d.lastID
	if len(d.typ) > 0 {
		ev.Type = d.prevType
	}
	d.data, d.typ, d.evRetry = d.data[:0], d.typ[:0], 0
	return ev, true
}
