package logtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

// testTopicLocks checks ssehub.TopicLocker: a topic's lock is held by one
// caller at a time (any hub: the lock lives in the engine), other topics
// are free meanwhile, and a lock its holder never releases (a hub that
// died) ends by itself.
func (s *suite) testTopicLocks(t *testing.T) {
	l := s.open(t)
	lk, ok := l.(ssehub.TopicLocker)
	if !ok {
		t.Skipf("%T does not lock topics", l)
	}
	ctx := context.Background()
	unlock, err := lk.LockTopic(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := lk.LockTopic(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second lock of a held topic: %v, want it to wait until its context ends", err)
	}
	unlockB, err := lk.LockTopic(ctx, "b")
	if err != nil {
		t.Fatalf("another topic while a is held: %v", err)
	}
	unlockB()
	got := make(chan error, 1)
	go func() {
		u, err := lk.LockTopic(ctx, "a")
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("the lock after its release: %v", err)
		}
	case <-time.After(s.timeout):
		t.Fatal("a waiting lock was not given after the release")
	}

	// Never released: the lock ends by itself.
	if _, err := lk.LockTopic(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	u, err := lk.LockTopic(ctx, "c")
	if err != nil {
		t.Fatalf("a lock whose holder never released it: %v after %v, want it once the lock ended by itself", err, time.Since(start).Round(time.Millisecond))
	}
	u()
}
