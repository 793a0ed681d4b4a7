package redislog_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/redislog"
)

// Every hub node opens the same Redis with the same prefix; an event
// appended on one node gets the same id everywhere. (Not run: it needs a
// Redis server.)
func Example() {
	ctx := context.Background()
	l, err := redislog.Open(ctx, "redis://127.0.0.1:6379/0", redislog.Options{
		Prefix:    "myapp",
		MaxEvents: 100_000,
	})
	if err != nil {
		log.Fatal(err) // wraps ssehub.ErrUnavailable when Redis is down
	}
	defer l.Close()

	ev := &ssehub.Event{Topics: []string{"https://example.com/books/1"}, Data: `{"title":"1984"}`}
	if err := l.Append(ctx, ev); err != nil {
		log.Fatal(err)
	}
	fmt.Println("published as id", ev.WireID())
}
