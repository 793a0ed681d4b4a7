package topic_test

import (
	"fmt"

	"github.com/ssehub/ssehub/topic"
)

func ExampleCompileURLPattern() {
	sel, err := topic.CompileURLPattern("https://example.com/books/:id(\\d+)")
	if err != nil {
		panic(err)
	}
	fmt.Println(sel.Kind())
	fmt.Println(sel.Match("https://example.com/books/42"))
	fmt.Println(sel.Match("https://EXAMPLE.com:443/books/42?page=2")) // the same URL
	fmt.Println(sel.Match("https://example.com/books/war-and-peace"))

	_, err = topic.CompileURLPattern("books/:id")
	fmt.Println(err != nil)
	// Output:
	// urlpattern
	// true
	// true
	// false
	// true
}
