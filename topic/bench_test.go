package topic

import "testing"

func BenchmarkMatch(b *testing.B) {
	benches := []struct {
		name, selector, topic string
	}{
		{"exact", "https://example.com/books/1", "https://example.com/books/1"},
		{"all", "*", "https://example.com/books/1"},
		{"template/hit", "https://example.com/books/{id}", "https://example.com/books/12345"},
		{"template/miss-prefix", "https://example.com/books/{id}", "https://example.com/users/12345"},
		{"template/miss-value", "https://example.com/books/{id}", "https://example.com/books/12345/reviews"},
		{"template/query", "https://example.com/search{?q,lang,page}", "https://example.com/search?q=server%20sent%20events&page=2"},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			s := MustCompile(bb.selector)
			b.ReportAllocs()
			for b.Loop() {
				s.Match(bb.topic)
			}
		})
	}
}

func BenchmarkSetMatchAny(b *testing.B) {
	set, err := CompileSet(nil,
		"https://example.com/users/42", "https://example.com/users/42/notifications",
		"https://example.com/books/{id}", "https://example.com/rooms/{room}/messages")
	if err != nil {
		b.Fatal(err)
	}
	topics := []string{"https://example.com/rooms/lobby/messages"}
	b.ReportAllocs()
	for b.Loop() {
		set.MatchAny(topics)
	}
}

func BenchmarkCacheCompileHit(b *testing.B) {
	c := NewCache(0)
	c.Compile("https://example.com/books/{id}")
	b.ReportAllocs()
	for b.Loop() {
		c.Compile("https://example.com/books/{id}")
	}
}

func BenchmarkCompileTemplate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Compile("https://example.com/books/{id}{?page}")
	}
}
