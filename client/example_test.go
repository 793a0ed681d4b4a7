package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/ssehub/ssehub/client"
)

// Subscribe, print events and state changes, and resume after the server
// ends the stream. The second request carries Last-Event-ID; the server
// answers it with 204 No Content, which ends the iteration.
func ExampleClient_Events() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			fmt.Println("server: resume after", id)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "retry: 10\nid: 1\nevent: greeting\ndata: hello\n\nid: 2\ndata: world\n\n")
	}))
	defer srv.Close()

	c, err := client.New(srv.URL,
		client.WithHeader("Authorization", "Bearer <token>"),
		client.WithOnState(func(sc client.StateChange) {
			switch sc.State {
			case client.Reconnecting:
				fmt.Printf("state: %v in %v (%v)\n", sc.State, sc.Delay, sc.Err)
			default:
				fmt.Println("state:", sc.State)
			}
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	for ev, err := range c.Events(context.Background()) {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Printf("event: type=%s id=%s data=%s\n", ev.Type, ev.ID, ev.Data)
	}
	fmt.Println("last event id:", c.LastEventID())
	// Output:
	// state: connecting
	// state: open
	// event: type=greeting id=1 data=hello
	// event: type=message id=2 data=world
	// state: reconnecting in 10ms (EOF)
	// state: connecting
	// server: resume after 2
	// state: closed
	// last event id: 2
}

// A server that refuses the stream ends the iteration with a
// *client.ResponseError saying what it answered.
func ExampleResponseError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "token expired at 2025-01-01T00:00:00Z", http.StatusUnauthorized)
	}))
	defer srv.Close()

	c, _ := client.New(srv.URL)
	for _, err := range c.Events(context.Background()) {
		fmt.Println(err)
	}
	// Output:
	// client: server answered 401 Unauthorized, want 200 with Content-Type text/event-stream: token expired at 2025-01-01T00:00:00Z
}
