package auth

import (
	"slices"
	"testing"
)

// Draft-08 "urlpattern" matchers grant rights on every topic the URL
// pattern matches, in authorization_details and in the 0.x claim alike.
func TestVerifyURLPatternGrants(t *testing.T) {
	v := newVerifier(t, Config{Keys: Keys{mustKey(t, "HS256", secret)}})
	c, err := v.Verify(rawToken(`{"alg":"HS256","typ":"at+jwt"}`, `{"authorization_details":[
		{"type":"mercure","actions":["subscribe"],"topics":[{"match":"https://example.com/books/:id","match_type":"urlpattern"}],"payload":{"books":true}},
		{"type":"mercure","actions":["subscribe"],"topics":[{"match":"/.well-known/mercure/subscriptions/:type/:match/:subscriber","matchType":"URLPattern"}]},
		{"type":"mercure","actions":["publish"],"topics":[{"match":"*","match_type":"urlpattern"}]}]}`, secret))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.SubscribeURLPattern, []string{"https://example.com/books/:id", "/.well-known/mercure/subscriptions/:type/:match/:subscriber"}) || !slices.Equal(c.Publish, []string{"*"}) {
		t.Fatalf("claims %+v", c)
	}
	for _, tc := range []struct {
		topic string
		want  bool
	}{
		{"https://example.com/books/1", true},
		{"https://example.com/books/1/2", false},
		{"/.well-known/mercure/subscriptions/exact/a/urn%3Auuid%3A1", true},
		{"https://example.com/authors/1", false},
	} {
		if got := c.CanReceive([]string{tc.topic}); got != tc.want {
			t.Errorf("CanReceive(%q) = %v, want %v", tc.topic, got, tc.want)
		}
	}
	if err := c.CanPublish([]string{"anything"}, nil); err != nil {
		t.Errorf("a urlpattern \"*\" grants every topic: %v", err)
	}
	// The payload of the first subscribe detail whose matcher matches the
	// subscription's own matcher string, treated as a topic.
	if p := string(c.PayloadFor("https://example.com/books/:id")); p != `{"books":true}` {
		t.Errorf("PayloadFor = %s", p)
	}
}
