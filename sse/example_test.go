package sse_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ssehub/ssehub/sse"
)

// Encode an event once into a reusable buffer; the same bytes can then be
// written to every subscriber.
func ExampleAppendEvent() {
	buf := make([]byte, 0, 512)
	buf, err := sse.AppendEvent(buf, sse.Event{
		ID:    "42",
		Type:  "update",
		Data:  "line one\nline two",
		Retry: 5 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(buf))

	_, err = sse.AppendEvent(buf[:0], sse.Event{ID: "1\ndata: injected"})
	fmt.Println(err)
	// Output:
	// id: 42
	// event: update
	// retry: 5000
	// data: line one
	// data: line two
	//
	// sse: id must not contain CR, LF or NUL (found '\n' at byte 1)
}

// A heartbeat is an empty comment.
func ExampleAppendComment() {
	fmt.Printf("%q\n", sse.AppendComment(nil, ""))
	fmt.Printf("%q\n", sse.AppendComment(nil, "hub ready"))
	// Output:
	// ":\n\n"
	// ": hub ready\n\n"
}

// Decode a stream the way a browser's EventSource interprets it.
func ExampleDecoder() {
	stream := "retry: 2000\r\n" +
		": a comment\r\n" +
		"id: 1\r\n" +
		"event: add\r\n" +
		"data: first\r\n" +
		"data: second\r\n" +
		"\r\n" +
		"data: carries the last id\r\n" +
		"\r\n" +
		"id: 3\r\n" +
		"data: never finished\r\n"
	d := sse.NewDecoder(strings.NewReader(stream))
	for {
		ev, err := d.Next()
		if err != nil {
			fmt.Println("end:", err)
			break
		}
		fmt.Printf("type=%s id=%s data=%q\n", ev.Type, ev.ID, ev.Data)
	}
	retry, _ := d.Retry()
	fmt.Println("last event id:", d.LastEventID(), "retry:", retry)
	// Output:
	// type=add id=1 data="first\nsecond"
	// type=message id=1 data="carries the last id"
	// end: EOF
	// last event id: 1 retry: 2s
}

func ExampleEncoder() {
	e := sse.NewEncoder(os.Stdout)
	e.Retry(3 * time.Second)
	e.Encode(sse.Event{ID: "7", Data: "hello"})
	e.Comment("")
	// Output:
	// retry: 3000
	//
	// id: 7
	// data: hello
	//
	// :
	//
}
