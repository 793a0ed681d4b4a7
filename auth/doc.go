// Package auth verifies the JSON Web Tokens of Mercure publishers and
// subscribers and answers the authorization questions of the hub: may this
// publisher publish to these topics, may this subscriber receive this
// private update.
//
// A Verifier checks one role's tokens (publishers and subscribers use
// different keys and so different Verifiers): the signature with the keys of
// a KeySource, only the configured algorithms ("none" never), exp and nbf
// with an optional leeway, and optionally typ, iss and aud. Both protocol
// forms are understood at once:
//
//   - Mercure 0.x ("draft-07"): a "mercure" claim holding "publish" and
//     "subscribe" arrays of topic selectors and a "payload";
//   - draft-08 / Mercure 1.0: RFC 9068 access tokens (typ "at+jwt") whose
//     RFC 9396 "authorization_details" entries of type
//     "https://mercure.rocks/authorization-detail" (or "mercure") grant
//     "publish" and "subscribe" actions on "topics" matchers.
//
// Keys come from a KeySource: Keys is a static list (ParseKey reads HS*
// secrets and PEM public keys); JWKS fetches a JSON Web Key Set over HTTP,
// selects keys by kid, refreshes it in the background and on an unknown kid
// (rate-limited), and keeps its keys when a refresh fails. A source that
// implements KeyFinder tells the Verifier why it has no key ("unknown key
// id …"), and that reason is the token's error.
//
// TokenFromRequest finds the token of a request (Authorization header, then
// the "authorization" or "access_token" query parameter, then the cookie).
//
// Every failure is one of the package's sentinel errors, wrapped in a
// message a user can act on ("auth: token expired at 2026-03-01T10:00:00Z
// (it is now 2026-03-01T10:05:00Z)"); Reason gives a short label for
// metrics and WWWAuthenticate the RFC 6750 challenge. Messages never contain
// key material.
//
// Verifiers, KeySources made by this package and Claims returned by Verify
// are safe for concurrent use.
package auth
