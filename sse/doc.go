// Package sse implements the text/event-stream wire format of Server-Sent
// Events, as specified by the WHATWG HTML standard ("Server-sent events",
// section "Parsing an event stream" and "Interpreting an event stream"). It
// uses the standard library only.
//
// # Encoding
//
// AppendEvent encodes an Event into a caller-supplied buffer and does not
// allocate when the buffer has room, so a hub can encode each event once and
// share the same bytes with every subscriber. AppendComment and AppendRetry
// encode a comment (a heartbeat) and a standalone reconnection time. An
// Encoder wraps those for an io.Writer.
//
// Data may contain any newlines: CR, LF and CRLF each start a new "data:"
// line, so the receiver sees them as LF. An empty Data still produces one
// "data:" line, so the event is dispatched (a browser dispatches nothing for
// an event without data lines). An ID or Type containing CR, LF or NUL is
// refused with ErrInvalidID or ErrInvalidType, because it would inject
// fields into the stream.
//
// # Decoding
//
// A Decoder reads a stream from an io.Reader and returns the events it
// dispatches, following the standard to the letter:
//
//   - the bytes are decoded as UTF-8, each maximal invalid subsequence
//     replaced by U+FFFD (as the WHATWG Encoding standard's decoder does);
//   - one byte order mark at the start of the stream is skipped, also when
//     it arrives split across reads; a later one is ordinary text;
//   - lines end with CR, LF or CRLF, including a CR that ends one read and
//     an LF that starts the next;
//   - a line starting with ":" is a comment; a line without a colon is a
//     field with an empty value; one space after the colon is removed;
//   - "data" lines are joined with LF; "event" sets the type, which is
//     "message" when not set and is reset after each dispatch; "id" sets the
//     last event ID unless the value contains NUL, an empty "id" resets it,
//     and it carries over to later events; "retry" counts only when it is
//     made of ASCII digits; other fields are ignored;
//   - a blank line dispatches the event, unless no data line was seen; an
//     event left unfinished when the stream ends is never dispatched.
//
// There is no line-length limit of the kind bufio.Scanner has: instead
// SetMaxEventSize bounds a line and an event's data (DefaultMaxEventSize by
// default) and the Decoder fails with ErrEventTooLarge past it.
//
// A reader that keeps its own buffer and wants no allocation per event
// (the load generator behind "ssehub bench" reads thousands of streams with
// one small buffer each) can follow the same line-level rules without a
// Decoder: LineSplitter splits lines, Field splits a field from its value
// and ParseRetry reads a "retry" value, exactly as the Decoder does.
package sse
