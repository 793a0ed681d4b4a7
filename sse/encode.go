package sse

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Event is one server-sent event.
//
// When encoding, each field is written only when it says something: ID when
// not empty, Type when neither empty nor "message" (the default), Retry when
// positive; Data is always written.
//
// When decoding, the fields are what a browser's MessageEvent would show: ID
// is the last event ID at the moment of dispatch (it carries over from
// earlier events), Type is "message" unless an "event" field set it, and
// Retry is the reconnection time set by a valid "retry" field among this
// event's own lines (0 if none; see Decoder.Retry for the stream's value).
//
// An Event is a plain value; copying it is cheap and safe.
type Event struct {
	// ID is the event id ("id:" field).
	ID string
	// Type is the event type ("event:" field); "" and "message" mean the
	// default type.
	Type string
	// Data is the payload. It may contain CR, LF and CRLF; a receiver sees
	// each of them as LF.
	Data string
	// Retry is the reconnection time the receiver should use from now on.
	// It travels in whole milliseconds: the encoder rounds a positive value
	// up to the next millisecond.
	Retry time.Duration
}

// Errors returned by the encoder and by ValidateID and ValidateType. They
// are wrapped with details; test with errors.Is.
var (
	// ErrInvalidID: an id contains CR, LF or NUL.
	ErrInvalidID = errors.New("sse: id must not contain CR, LF or NUL")
	// ErrInvalidType: an event type contains CR, LF or NUL.
	ErrInvalidType = errors.New("sse: event type must not contain CR, LF or NUL")
	// ErrInvalidRetry: a reconnection time is negative.
	ErrInvalidRetry = errors.New("sse: retry must not be negative")
)

// ValidateID reports whether id can be sent as an "id" field: it must not
// contain CR, LF (they would end the line and inject fields) or NUL (a
// receiver ignores such an id). The error wraps ErrInvalidID and names the
// offending byte. Safe for concurrent use.
func ValidateID(id string) error {
	if i := indexCRLFNUL(id); i >= 0 {
		return fmt.Errorf("%w (found %q at byte %d)", ErrInvalidID, id[i], i)
	}
	return nil
}

// ValidateType reports whether typ can be sent as an "event" field: it must
// not contain CR, LF or NUL. The error wraps ErrInvalidType and names the
// offending byte. Safe for concurrent use.
func ValidateType(typ string) error {
	if i := indexCRLFNUL(typ); i >= 0 {
		return fmt.Errorf("%w (found %q at byte %d)", ErrInvalidType, typ[i], i)
	}
	return nil
}

func indexCRLFNUL(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			return i
		}
	}
	return -1
}

// AppendEvent appends the wire form of ev to dst and returns the extended
// buffer. It allocates only when dst lacks capacity. On error (an invalid ID,
// Type or Retry) it returns dst unchanged.
//
// The output is a complete event: its fields, then a blank line. Safe for
// concurrent use (it touches nothing but dst).
func AppendEvent(dst []byte, ev Event) ([]byte, error) {
	if err := ValidateID(ev.ID); err != nil {
		return dst, err
	}
	if err := ValidateType(ev.Type); err != nil {
		return dst, err
	}
	if ev.Retry < 0 {
		return dst, fmt.Errorf("%w (got %v)", ErrInvalidRetry, ev.Retry)
	}
	if ev.ID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, ev.ID...)
		dst = append(dst, '\n')
	}
	if ev.Type != "" && ev.Type != "message" {
		dst = append(dst, "event: "...)
		dst = append(dst, ev.Type...)
		dst = append(dst, '\n')
	}
	if ev.Retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, retryMillis(ev.Retry), 10)
		dst = append(dst, '\n')
	}
	dst = appendLines(dst, "data:", ev.Data)
	return append(dst, '\n'), nil
}

// retryMillis converts a non-negative duration to whole milliseconds,
// rounding up.
func retryMillis(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return ms
}

// appendLines writes text as one "prefix value" line per line of text,
// splitting on CR, LF and CRLF. An empty text (or an empty line of it) is
// written as a bare prefix.
func appendLines(dst []byte, prefix, text string) []byte {
	if strings.IndexByte(text, '\r') < 0 {
		// Fast path: LF only, searched with IndexByte.
		for {
			i := strings.IndexByte(text, '\n')
			if i < 0 {
				return appendLine(dst, prefix, text)
			}
			dst = appendLine(dst, prefix, text[:i])
			text = text[i+1:]
		}
	}
	for {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			return appendLine(dst, prefix, text)
		}
		dst = appendLine(dst, prefix, text[:i])
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
}

func appendLine(dst []byte, prefix, line string) []byte {
	dst = append(dst, prefix...)
	if line != "" {
		dst = append(dst, ' ')
		dst = append(dst, line...)
	}
	return append(dst, '\n')
}

// AppendComment appends a comment block to dst: one ":" line per line of
// text (split on CR, LF and CRLF), then a blank line so the block stands on
// its own. AppendComment(dst, "") appends the shortest heartbeat, ":\n\n".
// Receivers ignore comments; proxies see traffic. Safe for concurrent use.
func AppendComment(dst []byte, text string) []byte {
	dst = appendLines(dst, ":", text)
	return append(dst, '\n')
}

// AppendRetry appends a standalone "retry:" block to dst, telling the
// receiver to wait d before reconnecting: the field in whole milliseconds
// (rounded up; a negative d counts as 0) followed by a blank line. The block
// dispatches no event. Safe for concurrent use.
func AppendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, retryMillis(max(d, 0)), 10)
	return append(dst, "\n\n"...)
}

// Encoder writes events to an io.Writer, one Write call per event, reusing
// one buffer. It does not flush: an http.Handler calls its
// http.ResponseController's Flush after the events it wants sent.
//
// An Encoder is not safe for concurrent use.
type Encoder struct {
	w   io.Writer
	buf []byte
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes ev. It returns AppendEvent's validation errors (writing
// nothing) or the writer's error.
func (e *Encoder) Encode(ev Event) error {
	buf, err := AppendEvent(e.buf[:0], ev)
	if err != nil {
		return err
	}
	return e.write(buf)
}

// Comment writes a comment block (see AppendComment).
func (e *Encoder) Comment(text string) error { return e.write(AppendComment(e.buf[:0], text)) }

// Retry writes a standalone reconnection time (see AppendRetry).
func (e *Encoder) Retry(d time.Duration) error { return e.write(AppendRetry(e.buf[:0], d)) }

func (e *Encoder) write(buf []byte) error {
	e.buf = buf
	_, err := e.w.Write(buf)
	return err
}
