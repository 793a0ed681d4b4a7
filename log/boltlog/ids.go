package boltlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/internal/eventlog"
)

// The id index: a second bucket maps each publisher-supplied event id to
// the position of its event (8 big-endian bytes). The committer maintains
// it in the same transactions as the events: Append refuses an id that is
// taken (ssehub.IDIndex), and retention deletes the ids of the events it
// deletes, so the index always describes exactly the retained events.

var idsBucketName = []byte("ssehub.ids")

var _ ssehub.IDIndex = (*Log)(nil)

// LookupID implements ssehub.IDIndex: the position of the retained event
// whose publisher-supplied ID is id. It reads the index on disk. Safe for
// concurrent use.
func (l *Log) LookupID(ctx context.Context, id string) (pos uint64, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	select {
	case <-l.closing:
		return 0, false, ssehub.ErrClosed
	default:
	}
	if id == "" {
		return 0, false, nil
	}
	err = l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(idsBucketName).Get([]byte(id))
		if v == nil {
			return nil
		}
		if len(v) != 8 {
			return corruptError(l.file, fmt.Errorf("damaged: the id index holds %d bytes for id %q", len(v), id))
		}
		pos, found = binary.BigEndian.Uint64(v), true
		return nil
	})
	switch {
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return 0, false, ssehub.ErrClosed
	case err != nil:
		return 0, false, fmt.Errorf("boltlog: looking up id %q: %w", id, err)
	}
	return pos, found, nil
}

// checkIDs returns an error wrapping ssehub.ErrDuplicateID when an event of
// one Append has an id the index holds or another event of it has.
func checkIDs(ids *bolt.Bucket, events []*ssehub.Event) error {
	for _, e := range events {
		if e.ID != "" && ids.Get([]byte(e.ID)) != nil {
			return fmt.Errorf("%w: id %q is already the id of a retained event", ssehub.ErrDuplicateID, e.ID)
		}
	}
	if id, dup := eventlog.DuplicateID(events); dup {
		return fmt.Errorf("%w: id %q is given to two events of the batch", ssehub.ErrDuplicateID, id)
	}
	return nil
}

// forget removes the index entries of the event stored under key with the
// record v, before retention deletes the event. A record too damaged to
// name its id or topics keeps its entries, and retention goes on: readers
// skip a topic key whose event is gone, and an id whose event is gone
// resolves to a position before the oldest retained, a gap.
func (l *Log) forget(ids, topics *bolt.Bucket, key, v []byte) error {
	if err := l.forgetID(ids, key, v); err != nil {
		return err
	}
	return l.forgetTopics(topics, key, v)
}

// forgetID removes the id index entry of the event stored under key with
// the record v. An entry that names another position is left alone (also
// the one a damaged record's id may name).
func (l *Log) forgetID(ids *bolt.Bucket, key, v []byte) error {
	id, err := peekID(v)
	if err != nil {
		l.logger.Warn("boltlog: a damaged event is deleted without its id index entry", "path", l.file, "pos", binary.BigEndian.Uint64(key), "err", err)
		return nil
	}
	if len(id) == 0 {
		return nil
	}
	if cur := ids.Get(id); cur != nil && string(cur) == string(key) {
		return ids.Delete(id)
	}
	return nil
}

// peekID returns the ID of the event in record v without decoding the
// rest (the encoding holds version, flags, position, time, retry, then
// the ID).
func peekID(v []byte) ([]byte, error) {
	b, err := skipHeader(v)
	if err != nil {
		return nil, err
	}
	id, _, err := peekString(b)
	return id, err
}

// skipHeader returns the encoding of the event in record v without the
// fields before its ID: version, flags, position, time and retry. It does
// not check the record's checksum (peekEncoding).
func skipHeader(v []byte) ([]byte, error) {
	v = peekEncoding(v)
	if len(v) < 2 {
		return nil, errShort
	}
	b := v[2:]
	for range 3 { // position (uvarint), time (varint), retry (uvarint): same byte length rules
		_, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errShort
		}
		b = b[n:]
	}
	return b, nil
}

// peekString returns the string b starts with (its length as a uvarint,
// then its bytes) and the rest of b.
func peekString(b []byte) (s, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errShort
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

var errShort = errors.New("truncated event encoding")

// indexIDs builds the id index of a history written before the index
// existed, in the transaction that creates the bucket. When ids repeat, the
// newest event keeps its id.
func (l *Log) indexIDs(events, ids *bolt.Bucket) error {
	n := 0
	c := events.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		id, err := peekID(v)
		if err != nil {
			return corruptError(l.file, fmt.Errorf("damaged: event %x: %w", k, err))
		}
		if len(id) == 0 {
			continue
		}
		if err := ids.Put(append([]byte(nil), id...), append([]byte(nil), k...)); err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		l.logger.Info("boltlog: indexed the publisher-supplied ids of an existing history", "path", l.file, "ids", n)
	}
	return nil
}
