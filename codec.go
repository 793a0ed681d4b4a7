package ssehub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// codecVersion is the first byte of every encoded event.
const codecVersion = 1

// Flags, the second byte. An event without Meta is encoded exactly as
// before Meta existed, and records written then decode unchanged.
const (
	flagPrivate = 1 << 0
	flagMeta    = 1 << 1 // Meta follows Data
)

// errCorrupt is returned by UnmarshalBinary for bytes it cannot decode.
var errCorrupt = errors.New("ssehub: corrupt stored event")

// AppendBinary appends the event's storage encoding to b and returns the
// extended slice. Every Log that stores bytes uses this one format, so an
// event read back is identical to the one appended.
func (e *Event) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, codecVersion)
	var flags byte
	if e.Private {
		flags |= flagPrivate
	}
	if e.Meta != "" {
		flags |= flagMeta
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, e.Pos)
	b = binary.AppendVarint(b, e.Time.UnixNano())
	b = binary.AppendUvarint(b, uint64(e.Retry/time.Millisecond))
	b = appendString(b, e.ID)
	b = appendString(b, e.Type)
	b = binary.AppendUvarint(b, uint64(len(e.Topics)))
	for _, t := range e.Topics {
		b = appendString(b, t)
	}
	b = appendString(b, e.Data)
	if e.Meta != "" {
		b = appendString(b, e.Meta)
	}
	return b, nil
}

// MarshalBinary returns the event's storage encoding.
func (e *Event) MarshalBinary() ([]byte, error) {
	return e.AppendBinary(make([]byte, 0, 32+len(e.ID)+len(e.Type)+len(e.Data)+len(e.Meta)+16*len(e.Topics)))
}

// UnmarshalBinary decodes bytes made by AppendBinary into e.
func (e *Event) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	if v := d.byte(); v != codecVersion {
		return fmt.Errorf("%w: unknown version %d", errCorrupt, v)
	}
	flags := d.byte()
	pos := d.uvarint()
	nanos := d.varint()
	retry := d.uvarint()
	id := d.string()
	typ := d.string()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errCorrupt
	}
	var topics []string
	if d.err == nil {
		topics = make([]string, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			topics = append(topics, d.string())
		}
	}
	data := d.string()
	var meta string
	if flags&flagMeta != 0 {
		meta = d.string()
	}
	if d.err != nil {
		return d.err
	}
	*e = Event{
		Pos:     pos,
		ID:      id,
		Topics:  topics,
		Type:    typ,
		Data:    data,
		Retry:   time.Duration(retry) * time.Millisecond,
		Private: flags&flagPrivate != 0,
		Time:    time.Unix(0, nanos),
		Meta:    meta,
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
