package boltlog

import bolt "go.etcd.io/bbolt"

// SetMaxTrimPerTx sets how many events one transaction may delete, for logs
// opened afterwards, and returns a function that restores it. Not for
// parallel tests.
func SetMaxTrimPerTx(n int) (restore func()) {
	old := maxTrimPerTx
	maxTrimPerTx = n
	return func() { maxTrimPerTx = old }
}

// SetIndexChunk sets how many events one transaction of the topic
// indexing at Open covers, and a function called after each chunk (an
// error from it stops Open as a crash would), for logs opened afterwards;
// it returns a function that restores both. Not for parallel tests.
func SetIndexChunk(n int, after func(through uint64) error) (restore func()) {
	oldN, oldAfter := indexChunk, afterIndexChunk
	indexChunk, afterIndexChunk = n, after
	return func() { indexChunk, afterIndexChunk = oldN, oldAfter }
}

// TopicKeys returns the number of keys in the topic index and the position
// it is complete through.
func TopicKeys(l *Log) (keys int, through uint64, err error) {
	err = l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(topicsBucketName)
		keys, through = b.Stats().KeyN, b.Sequence()
		return nil
	})
	return keys, through, err
}

// SetAfterCommit sets a function the committer calls after each commit of
// events, before readers are told of it, and returns a function that
// restores the previous one. Not for parallel tests.
func SetAfterCommit(fn func()) (restore func()) {
	old := afterCommit
	afterCommit = fn
	return func() { afterCommit = old }
}

// Jumps returns how many jumps of the position counter the log keeps.
func (l *Log) Jumps() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.jumps)
}
