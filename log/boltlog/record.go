package boltlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/ssehub/ssehub"
)

// Records: how an event is stored in the events bucket. A record is the
// byte recordChecked, the CRC-32C (Castagnoli) of the event's encoding as
// 4 big-endian bytes, then that encoding (ssehub.Event.AppendBinary). A
// record whose bytes no longer match their checksum is damaged: it is
// never served (see readDisk and readTopicsDisk).
//
// Versions before the checksum stored the encoding alone. It starts with
// the codec's version byte (1), which recordChecked is not, so such
// records are read as they always were, without a check: a history of
// the previous version opens and loses nothing. They are not rewritten;
// retention replaces them with checked ones over time.

// recordChecked starts every record with a checksum.
const recordChecked byte = 0xC5

// recordHeader is the length of what precedes the encoding in a checked
// record.
const recordHeader = 5

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errChecksum: a record's bytes do not match its checksum.
var errChecksum = errors.New("its bytes do not match their checksum (CRC-32C)")

// appendRecord appends the record of e to b.
func appendRecord(b []byte, e *ssehub.Event) []byte {
	start := len(b)
	b = append(b, recordChecked, 0, 0, 0, 0)
	b, _ = e.AppendBinary(b) // never fails
	binary.BigEndian.PutUint32(b[start+1:], crc32.Checksum(b[start+recordHeader:], castagnoli))
	return b
}

// recordEncoding returns the event encoding held by record v, after
// checking it against its checksum when the record has one.
func recordEncoding(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != recordChecked {
		return v, nil // written before checksums
	}
	if len(v) < recordHeader {
		return nil, errShort
	}
	if crc32.Checksum(v[recordHeader:], castagnoli) != binary.BigEndian.Uint32(v[1:]) {
		return nil, errChecksum
	}
	return v[recordHeader:], nil
}

// peekEncoding returns the event encoding held by record v without
// checking it: for retention and indexing, which read a field or two and
// cope with what a damaged record yields (see forgetID, forgetTopics).
func peekEncoding(v []byte) []byte {
	if len(v) >= recordHeader && v[0] == recordChecked {
		return v[recordHeader:]
	}
	return v
}

// damaged is the error of a record at pos that cannot be read back.
func (l *Log) damaged(pos uint64, cause error) error {
	return &ssehub.DamagedError{Pos: pos, Err: fmt.Errorf("%w %s: event %d: %v", ErrCorrupt, l.file, pos, cause)}
}
