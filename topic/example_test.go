package topic_test

import (
	"fmt"

	"github.com/ssehub/ssehub/topic"
)

func ExampleCompile() {
	sel, err := topic.Compile("https://example.com/books/{id}")
	if err != nil {
		panic(err)
	}
	fmt.Println(sel.Kind())
	fmt.Println(sel.Match("https://example.com/books/1"))
	fmt.Println(sel.Match("https://example.com/books/1/reviews"))
	// Output:
	// template
	// true
	// false
}

func ExampleCompile_error() {
	_, err := topic.Compile("https://example.com/books/{id")
	fmt.Println(err)
	// Output:
	// topic: invalid URI template "https://example.com/books/{id": expression opened at byte 26 is never closed with "}"
}

func ExampleSet() {
	set, err := topic.CompileSet(nil, "https://example.com/users/42", "https://example.com/books/{id}")
	if err != nil {
		panic(err)
	}
	fmt.Println(set.MatchAny([]string{"https://example.com/books/7"}))
	fmt.Println(set.MatchAny([]string{"https://example.com/users/43"}))
	// Output:
	// true
	// false
}

func ExampleCache() {
	cache := topic.NewCache(1000) // shared by every subscription of a hub
	for range 3 {
		sel, _ := cache.Compile("https://example.com/rooms/{room}/messages")
		fmt.Println(sel.Match("https://example.com/rooms/lobby/messages"))
	}
	fmt.Println(cache.Len(), "compiled template")
	// Output:
	// true
	// true
	// true
	// 1 compiled template
}
