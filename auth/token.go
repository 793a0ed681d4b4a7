package auth

import (
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/topic"
)

// TokenSpec describes a token to sign; see Sign. The zero value of each
// optional field leaves the claim out.
type TokenSpec struct {
	// Alg is the signing algorithm; "" means "HS256".
	Alg string
	// Key is the HS* secret or the PEM-encoded private key (see
	// ParseSigningKey).
	Key string
	// KeyID, when set, is written as the kid header.
	KeyID string
	// Publish and Subscribe are the topic selectors granted.
	Publish, Subscribe []string
	// Payload, when not nil, is marshalled as the subscription payload.
	Payload any
	// TTL, when positive, sets exp to Now+TTL.
	TTL time.Duration
	// NotBefore, when set, is the nbf claim.
	NotBefore time.Time
	// Issuer, Subject and Audience are the iss, sub and aud claims.
	Issuer, Subject string
	Audience        []string
	// AccessToken writes a draft-08 access token: typ "at+jwt" and
	// authorization_details instead of the 0.x mercure claim. Selectors
	// must then be exact topics or "*" (draft-08 has no URI templates).
	AccessToken bool
	// Now is the issue time; zero means time.Now().
	Now time.Time
}

// Sign returns the signed token. Errors wrap ErrKey for an unusable key or
// algorithm, ErrMalformed for selectors an access token cannot carry. Safe
// for concurrent use.
func (s TokenSpec) Sign() (string, error) {
	alg := s.Alg
	if alg == "" {
		alg = "HS256"
	}
	key, err := ParseSigningKey(alg, s.Key)
	if err != nil {
		return "", err
	}
	now := s.Now
	if now.IsZero() {
		now = time.Now()
	}
	claims := jwt.MapClaims{"iat": jwt.NewNumericDate(now)}
	if s.TTL > 0 {
		claims["exp"] = jwt.NewNumericDate(now.Add(s.TTL))
	}
	if !s.NotBefore.IsZero() {
		claims["nbf"] = jwt.NewNumericDate(s.NotBefore)
	}
	if s.Issuer != "" {
		claims["iss"] = s.Issuer
	}
	if s.Subject != "" {
		claims["sub"] = s.Subject
	}
	if len(s.Audience) > 0 {
		claims["aud"] = s.Audience
	}
	if s.AccessToken {
		details, err := s.authorizationDetails()
		if err != nil {
			return "", err
		}
		claims["authorization_details"] = details
	} else {
		m := map[string]any{}
		if s.Publish != nil {
			m["publish"] = s.Publish
		}
		if s.Subscribe != nil {
			m["subscribe"] = s.Subscribe
		}
		if s.Payload != nil {
			m["payload"] = s.Payload
		}
		claims["mercure"] = m
	}
	t := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if s.AccessToken {
		t.Header["typ"] = "at+jwt"
	}
	if s.KeyID != "" {
		t.Header["kid"] = s.KeyID
	}
	signed, err := t.SignedString(key)
	if err != nil {
		return "", newError(ErrKey, "auth: invalid key: signing with %s failed: %v", alg, err)
	}
	return signed, nil
}

func (s TokenSpec) authorizationDetails() ([]map[string]any, error) {
	var details []map[string]any
	for _, grant := range []struct {
		action string
		topics []string
	}{{"publish", s.Publish}, {"subscribe", s.Subscribe}} {
		if len(grant.topics) == 0 {
			continue
		}
		matchers := make([]map[string]string, 0, len(grant.topics))
		for _, t := range grant.topics {
			if !topic.IsExact(t) && t != topic.Wildcard {
				return nil, newError(ErrMalformed, "auth: malformed token: selector %q is a URI template, which draft-08 access tokens cannot express; use exact topics or *", t)
			}
			matchers = append(matchers, map[string]string{"match": t})
		}
		d := map[string]any{"type": DetailType, "actions": []string{grant.action}, "topics": matchers}
		if grant.action == "subscribe" && s.Payload != nil {
			d["payload"] = s.Payload
		}
		details = append(details, d)
	}
	return details, nil
}

// NewToken returns a token signed with key (the HS* secret or a PEM private
// key) and algorithm alg ("" means HS256), granting the publish and
// subscribe selectors, expiring after ttl (never when ttl <= 0). It is a
// shorthand for TokenSpec.Sign, for tests and the "ssehub token" command.
// Safe for concurrent use.
func NewToken(key, alg string, publish, subscribe []string, ttl time.Duration) (string, error) {
	return TokenSpec{Alg: alg, Key: key, Publish: publish, Subscribe: subscribe, TTL: ttl}.Sign()
}
