package boltlog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/boltlog"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ssehub-example")
	defer os.RemoveAll(dir)

	l, err := boltlog.Open(dir, boltlog.Options{MaxEvents: 100_000})
	if err != nil {
		fmt.Println(err)
		return
	}
	e := &ssehub.Event{Topics: []string{"https://example.com/books/1"}, Data: "in stock"}
	if err := l.Append(ctx, e); err != nil { // returns once the event is on disk
		fmt.Println(err)
		return
	}
	l.Close()

	// After a restart the event is still there, and new positions follow it.
	l, err = boltlog.Open(dir, boltlog.Options{MaxEvents: 100_000})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	events, _ := l.Read(ctx, e.Pos-1, 10)
	fmt.Println(len(events), events[0].Data, events[0].Pos == e.Pos)
	next := &ssehub.Event{Topics: []string{"https://example.com/books/1"}, Data: "sold out"}
	l.Append(ctx, next)
	fmt.Println(next.Pos > e.Pos)
	// Output:
	// 1 in stock true
	// true
}

func ExampleOpen_locked() {
	dir, _ := os.MkdirTemp("", "ssehub-example")
	defer os.RemoveAll(dir)
	l, _ := boltlog.Open(dir, boltlog.Options{})
	defer l.Close()

	// A second hub on the same directory is refused with a clear error.
	_, err := boltlog.Open(dir, boltlog.Options{LockTimeout: 10 * time.Millisecond})
	fmt.Println(errors.Is(err, boltlog.ErrLocked))
	// Output:
	// true
}
