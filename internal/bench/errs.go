package bench

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"sort"
	"sync"
)

// maxErrKinds bounds the distinct error messages an errCounter keeps.
const maxErrKinds = 20

// errCounter counts errors by message, keeping at most maxErrKinds distinct
// messages (the rest count as "other errors"). Safe for concurrent use.
type errCounter struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *errCounter) add(err error) {
	k := errKey(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]int64)
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= maxErrKinds {
		k = "other errors"
	}
	c.m[k]++
}

// list returns the counts, most frequent first.
func (c *errCounter) list() []ErrorCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	var l []ErrorCount
	for k, n := range c.m {
		l = append(l, ErrorCount{Error: k, Count: n})
	}
	sort.Slice(l, func(i, j int) bool {
		if l[i].Count != l[j].Count {
			return l[i].Count > l[j].Count
		}
		return l[i].Error < l[j].Error
	})
	return l
}

// ErrorCount is how often one kind of error happened.
type ErrorCount struct {
	Error string `json:"error"`
	Count int64  `json:"count"`
}

// errKey returns err's message without the parts that differ between
// connections (addresses and ports), so that equal causes count together.
func errKey(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled (run stopped)"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		inner := oe.Err
		var se *os.SyscallError
		if errors.As(inner, &se) {
			inner = se.Err
		}
		return oe.Op + ": " + inner.Error()
	}
	return err.Error()
}
