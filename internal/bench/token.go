package bench

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SignToken returns an HS256 JWT signed with key whose "mercure" claim
// lists the publish and subscribe topic selectors (either may be nil), valid
// for one day. A token for publishing to every topic is
// SignToken(key, []string{"*"}, nil). It may be called concurrently.
func SignToken(key []byte, publish, subscribe []string) (string, error) {
	if len(key) == 0 {
		return "", errors.New("bench: empty JWT key")
	}
	m := map[string]any{}
	if publish != nil {
		m["publish"] = publish
	}
	if subscribe != nil {
		m["subscribe"] = subscribe
	}
	claims := jwt.MapClaims{
		"mercure": m,
		"exp":     time.Now().Add(24 * time.Hour).Unix(),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
}
