package memlog_test

import (
	"context"
	"fmt"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/memlog"
)

func Example() {
	ctx := context.Background()
	l := memlog.New(memlog.Options{MaxEvents: 1000})
	defer l.Close()

	for _, data := range []string{"first", "second", "third"} {
		if err := l.Append(ctx, &ssehub.Event{Topics: []string{"news"}, Data: data}); err != nil {
			fmt.Println(err)
			return
		}
	}
	first, _, _ := l.Bounds(ctx)
	// A client that saw the first event resumes after it.
	events, _ := l.Read(ctx, first, 10)
	for _, e := range events {
		fmt.Println(e.Pos-first, e.Data)
	}
	// Output:
	// 1 second
	// 2 third
}
