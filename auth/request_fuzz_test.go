package auth

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzTokenFromRequest reads tokens from arbitrary Authorization headers,
// query strings and cookies, then verifies what it found: it never panics,
// every error wraps a sentinel of the package and never echoes the key,
// and a token found is non-empty and comes from one of the three sources.
func FuzzTokenFromRequest(f *testing.F) {
	tok := sign(f, TokenSpec{Publish: []string{"*"}})
	f.Add("Bearer "+tok, "", "")
	f.Add("", "authorization="+tok, "")
	f.Add("", "access_token="+tok+"&authorization=x", "")
	f.Add("", "", DefaultCookieName+"="+tok)
	f.Add("bearer  "+tok, "authorization=&authorization=", "mercureAuthorization=; x=y")
	f.Add(tok, "", "")
	f.Add("Basic dXNlcjpwYXNz", "%zz", "=")
	f.Add("Bearer", "authorization", DefaultCookieName+"=\"a b\"")
	v := hsVerifier(f)
	f.Fuzz(func(t *testing.T, header, rawQuery, cookie string) {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{RawQuery: rawQuery}}
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		token, src, err := TokenFromRequest(r, "")
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("error %q wraps no sentinel", err)
			}
			return
		}
		if token == "" {
			t.Fatal("empty token without an error")
		}
		var from string
		switch src {
		case SourceHeader:
			from = header
		case SourceQuery:
			q, _ := url.ParseQuery(rawQuery)
			from = strings.Join(append(q[QueryParam], q[AccessTokenParam]...), " ")
		case SourceCookie:
			from = cookie
		default:
			t.Fatalf("token %q from source %v", token, src)
		}
		if !strings.Contains(from, strings.Trim(token, "\"")) {
			t.Fatalf("token %q is not in its source %q", token, from)
		}
		if c, err := v.Verify(token); err != nil {
			if c != nil || Reason(err) == "other" || strings.Contains(err.Error(), secret) {
				t.Fatalf("Verify(%q): %v, %v", token, c, err)
			}
		}
	})
}
