package boltlog

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

// With CommitDelay, appends that arrive paced, each while no commit is
// under way, share commits; every one still returns, within about the
// delay, acknowledged.
func TestCommitDelaySharesCommits(t *testing.T) {
	for _, tc := range []struct {
		delay      time.Duration
		maxCommits int32
	}{
		{0, 20},                     // each paced append is its own commit
		{200 * time.Millisecond, 4}, // 20 appends over ~100 ms share one or two
	} {
		var commits atomic.Int32
		old := afterCommit
		afterCommit = func() { commits.Add(1) }
		l, err := Open(t.TempDir(), Options{NoSync: true, CommitDelay: tc.delay})
		if err != nil {
			t.Fatal(err)
		}
		commits.Store(0)
		var wg sync.WaitGroup
		var slowest atomic.Int64
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i) * 5 * time.Millisecond)
				start := time.Now()
				if err := l.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, Data: "x"}); err != nil {
					t.Error(err)
				}
				if d := int64(time.Since(start)); d > slowest.Load() {
					slowest.Store(d)
				}
			}()
		}
		wg.Wait()
		l.Close()
		afterCommit = old
		n := commits.Load()
		if tc.delay == 0 && n < 10 {
			t.Errorf("without a delay, 20 appends 5 ms apart made %d commits, want about one each", n)
		}
		if tc.delay > 0 && n > tc.maxCommits {
			t.Errorf("with CommitDelay %v, 20 appends 5 ms apart made %d commits, want at most %d", tc.delay, n, tc.maxCommits)
		}
		if tc.delay > 0 && time.Duration(slowest.Load()) > tc.delay+time.Second {
			t.Errorf("with CommitDelay %v an append took %v", tc.delay, time.Duration(slowest.Load()))
		}
	}
}
