package ssehub

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The rules every published event follows, whoever publishes it (the HTTP
// API, a Go program using the hub, the hub's own presence events). The
// HTTP API adds only what belongs to the Mercure protocol (its reserved
// topic namespace and type, ids starting with "#").

// EarliestID, as a last event id, asks for every retained event; no event
// may have it as its id.
const EarliestID = "earliest"

// ReservedTypePrefix starts every event type the hub itself sends (gaps,
// reconnect instructions); publishers may not use it.
const ReservedTypePrefix = "ssehub."

// ErrReservedType: a publisher used an event type reserved for the hub.
// Validate's error wraps it (and ErrInvalid).
var ErrReservedType = errors.New(`ssehub: event types starting with "ssehub." are reserved for the hub`)

// Validate reports whether the event can be published: at least one
// topic; topics, id and type in valid UTF-8 without control characters
// (C0, DEL, C1: CR, LF or NUL would inject SSE fields); no topic equal to
// the wildcard "*" (no subscriber could select it alone); an id that is
// not made of digits only (reserved for the ids the log assigns) nor
// EarliestID, and without white space at either end (HTTP trims the
// Last-Event-ID header a client resumes with, so such an id could never be
// resumed from); a type not starting with ReservedTypePrefix, unless the
// event carries Meta (only the hub's own protocol layers write it: a
// Durable Stream's lifecycle events); data in valid
// UTF-8; no negative retry. Errors wrap ErrInvalid and say what to fix.
// Safe for concurrent use.
func (e *Event) Validate() error {
	if len(e.Topics) == 0 {
		return fmt.Errorf("%w: topic is required", ErrInvalid)
	}
	for _, t := range e.Topics {
		if t == "" {
			return fmt.Errorf("%w: topic must not be empty", ErrInvalid)
		}
		if err := CheckText("topic", t); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if t == "*" {
			return fmt.Errorf("%w: the topic \"*\" is reserved: it is the wildcard that matches every topic, so no subscriber could select it alone; publish to a real topic", ErrInvalid)
		}
	}
	if e.ID != "" {
		if strings.ContainsAny(e.ID, "\r\n\x00") {
			return fmt.Errorf("%w: id must not contain CR, LF or NUL", ErrInvalid)
		}
		if err := CheckText("id", e.ID); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if strings.TrimSpace(e.ID) != e.ID {
			return fmt.Errorf("%w: id %q must not start or end with white space: HTTP trims the Last-Event-ID header, so a client could not resume from it; remove the spaces", ErrInvalid, Printable(e.ID))
		}
		if _, digits := ParseID(e.ID); digits {
			return fmt.Errorf("%w: id %q is made of digits only; such ids are reserved for hub-assigned ids, pick another (e.g. a URN)", ErrInvalid, e.ID)
		}
		if e.ID == EarliestID {
			return fmt.Errorf("%w: id %q is reserved (as a last event id it asks for all history); pick another id", ErrInvalid, EarliestID)
		}
	}
	if e.Type != "" {
		if strings.ContainsAny(e.Type, "\r\n\x00") {
			return fmt.Errorf("%w: type must not contain CR, LF or NUL", ErrInvalid)
		}
		if err := CheckText("type", e.Type); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if strings.HasPrefix(e.Type, ReservedTypePrefix) && e.Meta == "" {
			return fmt.Errorf("%w: %w", ErrInvalid, ErrReservedType)
		}
	}
	if !utf8.ValidString(e.Data) {
		return fmt.Errorf("%w: data is not valid UTF-8 (an event stream carries text; encode binary data, e.g. in base64)", ErrInvalid)
	}
	if e.Retry < 0 {
		return fmt.Errorf("%w: retry must not be negative", ErrInvalid)
	}
	return nil
}

// CheckText refuses a string that is not valid UTF-8 or holds a control
// character (C0, DEL, C1): what names it in the error, which says where the
// problem is. Topics, ids, types and topic selectors follow it. Safe for
// concurrent use.
func CheckText(what, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s %q is not valid UTF-8", what, Printable(strings.ToValidUTF8(v, "\uFFFD")))
	}
	for i, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return fmt.Errorf("%s %q contains the control character U+%04X at byte %d", what, Printable(v), r, i)
		}
	}
	return nil
}

// Printable cuts a client-supplied string to quote in an error message:
// its first 100 bytes (valid UTF-8) and "...".
func Printable(s string) string {
	const max = 100
	if len(s) > max {
		return strings.ToValidUTF8(s[:max], "") + "..."
	}
	return s
}
