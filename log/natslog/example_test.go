package natslog_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/log/natslog"
)

// Every hub node opens the same stream; an event appended on one node gets
// the same id everywhere. (Not run: it needs a NATS server with
// JetStream.)
func Example() {
	ctx := context.Background()
	l, err := natslog.Open(ctx, "nats://127.0.0.1:4222", natslog.Options{
		Stream: "MYAPP",
		MaxAge: 24 * time.Hour,
	})
	if err != nil {
		log.Fatal(err) // wraps ssehub.ErrUnavailable when NATS is down
	}
	defer l.Close()

	ev := &ssehub.Event{Topics: []string{"https://example.com/books/1"}, Data: `{"title":"1984"}`}
	if err := l.Append(ctx, ev); err != nil {
		log.Fatal(err)
	}
	fmt.Println("published as id", ev.WireID())
}
