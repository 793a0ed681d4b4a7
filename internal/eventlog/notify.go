package eventlog

import "sync"

// Notifier wakes every goroutine waiting for the next append. The zero value
// is ready to use. All methods are safe for concurrent use.
//
// A waiter calls C before it checks for new events and then waits on the
// returned channel; a Notify that happens between the check and the wait has
// already closed that channel, so no wake-up is lost and nobody polls.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{} // nil while nobody waits
}

// C returns a channel that is closed by the next call to Notify.
func (n *Notifier) C() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// Notify wakes everyone holding a channel from C. It costs a mutex and no
// allocation when nobody waits.
func (n *Notifier) Notify() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}
