// Package topic compiles and matches Mercure topic selectors.
//
// A selector says which topics a subscriber wants, which topics a publisher
// may publish to and which private updates a subscriber may receive. Three
// forms exist, following the Mercure protocol (0.x "draft-07" dialect):
//
//   - "*" matches every topic;
//   - a selector containing "{" is an RFC 6570 URI template
//     ("https://example.com/books/{id}") and matches every topic that is a
//     possible expansion of it, and also the template string itself;
//   - anything else matches exactly that topic, byte for byte.
//
// Templates are compiled once into an RE2 regular expression (Go's regexp
// package), so matching runs in time linear in the length of the topic
// whatever the template: a hostile selector cannot make the hub backtrack.
// CompileExact gives the draft-08 "exact" matcher type ("match=" query
// parameter), where only "*" is special, and CompileURLPattern the draft-08
// "urlpattern" type ("match_urlpattern="): WHATWG URL patterns such as
// "https://example.com/books/:id", also compiled to RE2.
//
// A Set groups the selectors of one subscription or one token and answers
// "does any of them match?" without allocating. A Cache memoizes compiled
// templates, because a hub compiles the same few selectors for thousands of
// subscribers.
//
// Selector values and *Set are immutable once built and safe for concurrent
// use; *Cache is safe for concurrent use.
package topic
