package hub_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/topic"
)

// A hub fans out what is published to the subscribers whose selectors
// match; a subscriber that comes back with its last event id gets what it
// missed.
func Example() {
	l := memlog.New(memlog.Options{})
	defer l.Close()
	h, err := hub.New(l, hub.Options{})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	ctx := context.Background()

	first := &ssehub.Event{Topics: []string{"https://example.com/books/1"}, Data: "first edition"}
	second := &ssehub.Event{Topics: []string{"https://example.com/books/1"}, Data: "second edition", Type: "book.updated"}
	if err := h.Publish(ctx, first, second); err != nil {
		panic(err)
	}

	// A client that saw the first event resumes after it.
	sub, err := h.Subscribe(ctx, hub.Request{
		Selectors:   []topic.Selector{topic.MustCompile("https://example.com/books/{id}")},
		LastEventID: first.WireID(),
	})
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	chunks, err := sub.Next(ctx)
	if err != nil {
		panic(err)
	}
	for _, c := range chunks {
		fmt.Print(strings.Replace(string(c), second.WireID(), "<id>", 1))
	}
	// Output:
	// id: <id>
	// event: book.updated
	// data: second edition
}
