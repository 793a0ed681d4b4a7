package sse

import (
	"bytes"
	"time"
)

// The line-level rules of the standard's "Parsing an event stream", which
// the Decoder follows and which a reader that keeps its own buffer (such
// as the load generator, one small buffer per connection and no allocation
// per event) can follow too without spelling them again.

// LineSplitter splits an event stream into lines as a Decoder does: a line
// ends with CR, LF or CRLF, also when a CR ends one read and the LF of the
// same CRLF starts the next. It holds no input: its caller passes the bytes
// it has not split yet to Next. A long line costs linear time over any
// number of calls. The zero value is ready. A LineSplitter serves one
// stream, from one goroutine at a time; Reset starts another.
type LineSplitter struct {
	scan   int  // the first scan bytes of the input are known to hold no CR or LF
	skipLF bool // the last line ended with CR: an LF that follows belongs to it
}

// Next returns the first line of b, without its end, and n, how many bytes
// of b it used: an LF that belonged to the previous line's CR, the line and
// its end. When b holds no complete line yet, ok is false and n counts only
// such an LF: call Next again with the rest of b and more input after it.
// The line aliases b.
func (s *LineSplitter) Next(b []byte) (line []byte, n int, ok bool) {
	if s.skipLF && len(b) > 0 {
		s.skipLF = false
		if b[0] == '\n' {
			b, n = b[1:], 1
		}
	}
	i := indexEOL(b, s.scan)
	if i < 0 {
		s.scan = len(b)
		return nil, n, false
	}
	end := i + 1
	if b[i] == '\r' {
		if end == len(b) {
			s.skipLF = true
		} else if b[end] == '\n' {
			end++
		}
	}
	s.scan = 0
	return b[:i], n + end, true
}

// Reset makes s ready for a new stream.
func (s *LineSplitter) Reset() { *s = LineSplitter{} }

// indexEOL returns the index of the first CR or LF in b, starting the search
// at from, or -1.
func indexEOL(b []byte, from int) int {
	s := b[from:]
	i := bytes.IndexByte(s, '\n')
	if i >= 0 {
		s = s[:i]
	}
	if j := bytes.IndexByte(s, '\r'); j >= 0 {
		return from + j
	}
	if i >= 0 {
		return from + i
	}
	return -1
}

// Field splits a line that is neither blank nor a comment (":…") into its
// field name and value: the name runs up to the first colon and the value
// follows it, without the one space that may start it; a line without a
// colon is a field with an empty value. Both alias line.
func Field(line []byte) (name, value []byte) {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return line, nil
	}
	name, value = line[:i], line[i+1:]
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	return name, value
}

// ParseRetry parses the value of a "retry" field, the reconnection time in
// milliseconds. It reports false unless the value is one or more ASCII
// digits, and for a time too large for a time.Duration.
func ParseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		ms = ms*10 + int64(c-'0')
		if ms > maxRetryMillis {
			return 0, false
		}
	}
	return time.Duration(ms) * time.Millisecond, true
}
