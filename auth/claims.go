package auth

import (
	"encoding/json"
	"time"

	"github.com/ssehub/ssehub/topic"
)

// Claims is what a verified token grants.
//
// Claims returned by Verify must not be modified; they are then safe for
// concurrent use, and their selectors are compiled once, so CanPublish and
// CanReceive cost no compilation. Claims built by hand (in tests) compile
// their selectors at each call.
type Claims struct {
	// Publish lists the topic selectors the token may publish to, in the
	// Mercure 0.x syntax ("*", an RFC 6570 URI template, or an exact
	// topic): the mercure.publish claim, plus the topics of draft-08
	// authorization_details granting "publish" whose meaning is the same
	// as a selector's (every exact matcher without "{").
	Publish []string
	// Subscribe lists, likewise, the selectors of the private updates the
	// token may receive (mercure.subscribe and "subscribe" details).
	Subscribe []string
	// PublishExact and SubscribeExact list draft-08 exact matchers that
	// contain "{": they match only themselves, byte for byte, which no
	// selector can say, so they are kept apart.
	PublishExact, SubscribeExact []string
	// PublishURLPattern and SubscribeURLPattern list draft-08 "urlpattern"
	// matchers (WHATWG URL patterns, see topic.CompileURLPattern).
	PublishURLPattern, SubscribeURLPattern []string
	// Payload is the raw JSON of the mercure.payload claim, or else of the
	// first draft-08 "subscribe" detail with a payload; nil when none. See
	// PayloadFor.
	Payload json.RawMessage
	// Subject, Issuer and Audience are the sub, iss and aud claims.
	Subject  string
	Issuer   string
	Audience []string
	// ExpiresAt is the exp claim; zero when the token does not expire.
	ExpiresAt time.Time
	// Type is the typ header ("JWT", "at+jwt" or empty).
	Type string

	pub, sub       *topic.Set      // compiled by Verify
	details        []detail        // draft-08 subscribe details, kept when one has a payload
	mercurePayload json.RawMessage // the 0.x mercure.payload claim
}

// detail is a draft-08 "subscribe" authorization detail.
type detail struct {
	topics  *topic.Set
	payload json.RawMessage
}

func (c *Claims) count() int {
	return len(c.Publish) + len(c.Subscribe) + len(c.PublishExact) + len(c.SubscribeExact) +
		len(c.PublishURLPattern) + len(c.SubscribeURLPattern)
}

func (c *Claims) compile(cache *topic.Cache) {
	c.pub = compileSet(cache, c.Publish, c.PublishExact, c.PublishURLPattern)
	c.sub = compileSet(cache, c.Subscribe, c.SubscribeExact, c.SubscribeURLPattern)
}

// compileSet compiles selectors, exact patterns and URL patterns into a
// Set. A selector that is a malformed URI template matches only itself, as
// in the Mercure 0.x protocol (a topic matches a selector it is identical
// to); a malformed URL pattern (Verify refuses them) matches nothing.
func compileSet(cache *topic.Cache, selectors, exact, patterns []string) *topic.Set {
	sels := make([]topic.Selector, 0, len(selectors)+len(exact)+len(patterns))
	for _, s := range selectors {
		sel, err := cache.Compile(s)
		if err != nil {
			sel = topic.CompileExact(s)
		}
		sels = append(sels, sel)
	}
	for _, s := range exact {
		sels = append(sels, topic.CompileExact(s))
	}
	for _, s := range patterns {
		if sel, err := cache.CompileURLPattern(s); err == nil {
			sels = append(sels, sel)
		}
	}
	return topic.NewSet(sels...)
}

// PublishSet returns the compiled Publish and PublishExact selectors. It
// compiles them (through cache, which may be nil) only for Claims not made
// by Verify. Safe for concurrent use on Claims from Verify.
func (c *Claims) PublishSet(cache *topic.Cache) *topic.Set {
	if c == nil {
		return nil
	}
	if c.pub != nil {
		return c.pub
	}
	return compileSet(cache, c.Publish, c.PublishExact, c.PublishURLPattern)
}

// SubscribeSet returns the compiled Subscribe and SubscribeExact selectors,
// like PublishSet. A subscriber's connection keeps it and asks
// Set.MatchAny(event.Topics) for each private update.
func (c *Claims) SubscribeSet(cache *topic.Cache) *topic.Set {
	if c == nil {
		return nil
	}
	if c.sub != nil {
		return c.sub
	}
	return compileSet(cache, c.Subscribe, c.SubscribeExact, c.SubscribeURLPattern)
}

// CanPublish returns nil when the token may publish an update with these
// topics: every one of them must match a publish selector. Otherwise it
// returns an error wrapping ErrTopicNotAllowed that names the first topic
// refused. A nil *Claims (no token) gets ErrMissing. cache is used only for
// Claims not made by Verify and may be nil. Safe for concurrent use on
// Claims from Verify.
func (c *Claims) CanPublish(topics []string, cache *topic.Cache) error {
	if c == nil {
		return newError(ErrMissing, "auth: no token; publishing needs a token whose mercure.publish claim lists the topics")
	}
	set := c.PublishSet(cache)
	if set.Len() == 0 {
		return newError(ErrTopicNotAllowed, "auth: topic not allowed: the token grants no publish rights (its mercure.publish claim is missing or empty)")
	}
	if ok, t := set.MatchAll(topics); !ok {
		return newError(ErrTopicNotAllowed, "auth: topic %q not allowed: no selector of the token's publish claim matches it", printable(t))
	}
	return nil
}

// CanReceive reports whether the token may receive a private update with
// these topics: one of them must match a subscribe selector. A nil *Claims
// (anonymous subscriber) receives no private update. It does not allocate
// on Claims from Verify and is safe for concurrent use on them.
func (c *Claims) CanReceive(topics []string) bool {
	return c.SubscribeSet(nil).MatchAny(topics)
}

// PayloadFor returns the payload to publish in the subscriptions API for a
// subscription with the given selector: with draft-08 details, the payload
// of the first "subscribe" detail whose topics match the selector (treated
// as a topic; it may be nil), or the mercure.payload claim when none
// matches; without draft-08 payloads, Payload. Safe for concurrent use on
// Claims from Verify.
func (c *Claims) PayloadFor(selector string) json.RawMessage {
	if c == nil {
		return nil
	}
	if len(c.details) == 0 {
		return c.Payload
	}
	for _, d := range c.details {
		if d.topics.Match(selector) {
			return d.payload
		}
	}
	return c.mercurePayload
}
