package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTokenFromRequest(t *testing.T) {
	type request struct {
		headers []string // Authorization header values
		query   string
		cookies map[string]string
	}
	tests := []struct {
		name       string
		req        request
		cookieName string
		wantToken  string
		wantSource Source
		wantErr    error
		wantMsg    string
	}{
		{name: "header", req: request{headers: []string{"Bearer h.h.h"}}, wantToken: "h.h.h", wantSource: SourceHeader},
		{name: "header scheme is case-insensitive", req: request{headers: []string{"bearer h.h.h"}}, wantToken: "h.h.h", wantSource: SourceHeader},
		{name: "header extra spaces", req: request{headers: []string{"Bearer   h.h.h "}}, wantToken: "h.h.h", wantSource: SourceHeader},
		{name: "query authorization", req: request{query: "authorization=q.q.q"}, wantToken: "q.q.q", wantSource: SourceQuery},
		{name: "query access_token", req: request{query: "access_token=a.a.a"}, wantToken: "a.a.a", wantSource: SourceQuery},
		{name: "cookie default name", req: request{cookies: map[string]string{"mercureAuthorization": "c.c.c"}}, wantToken: "c.c.c", wantSource: SourceCookie},
		{name: "cookie custom name", req: request{cookies: map[string]string{"hub": "c.c.c", "mercureAuthorization": "x"}}, cookieName: "hub", wantToken: "c.c.c", wantSource: SourceCookie},
		{name: "header beats query and cookie", req: request{headers: []string{"Bearer h.h.h"}, query: "authorization=q.q.q", cookies: map[string]string{"mercureAuthorization": "c.c.c"}}, wantToken: "h.h.h", wantSource: SourceHeader},
		{name: "query beats cookie", req: request{query: "authorization=q.q.q", cookies: map[string]string{"mercureAuthorization": "c.c.c"}}, wantToken: "q.q.q", wantSource: SourceQuery},
		{name: "authorization beats access_token", req: request{query: "access_token=a.a.a&authorization=q.q.q"}, wantToken: "q.q.q", wantSource: SourceQuery},
		{name: "malformed header does not fall back", req: request{headers: []string{"Basic dXNlcjpwYXNz"}, cookies: map[string]string{"mercureAuthorization": "c.c.c"}},
			wantSource: SourceHeader, wantErr: ErrBadRequest, wantMsg: `auth: the Authorization header uses the "Basic" scheme; send "Authorization: Bearer <token>"`},
		{name: "bare token in header", req: request{headers: []string{"h.h.h"}}, wantSource: SourceHeader, wantErr: ErrBadRequest, wantMsg: `auth: the Authorization header holds a bare token; prefix it with "Bearer "`},
		{name: "Bearer without token", req: request{headers: []string{"Bearer "}}, wantSource: SourceHeader, wantErr: ErrBadRequest, wantMsg: `auth: the Authorization header has no token after "Bearer"`},
		{name: "empty header", req: request{headers: []string{""}}, wantSource: SourceHeader, wantErr: ErrBadRequest},
		{name: "two headers", req: request{headers: []string{"Bearer a.a.a", "Bearer b.b.b"}}, wantSource: SourceHeader, wantErr: ErrBadRequest},
		{name: "repeated query parameter", req: request{query: "authorization=a&authorization=b"}, wantSource: SourceQuery, wantErr: ErrBadRequest},
		{name: "empty query parameter", req: request{query: "authorization="}, wantSource: SourceQuery, wantErr: ErrMissing, wantMsg: "auth: no token: the authorization query parameter is empty"},
		{name: "empty cookie", req: request{cookies: map[string]string{"mercureAuthorization": ""}}, wantSource: SourceCookie, wantErr: ErrMissing},
		{name: "nothing", req: request{query: "topic=a"}, wantSource: SourceNone, wantErr: ErrMissing,
			wantMsg: `auth: no token; send one in an "Authorization: Bearer <token>" header, the authorization query parameter or the mercureAuthorization cookie`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/.well-known/mercure?"+tt.req.query, nil)
			for _, h := range tt.req.headers {
				r.Header.Add("Authorization", h)
			}
			for name, value := range tt.req.cookies {
				r.AddCookie(&http.Cookie{Name: name, Value: value})
			}
			token, source, err := TokenFromRequest(r, tt.cookieName)
			if source != tt.wantSource {
				t.Errorf("source = %v, want %v", source, tt.wantSource)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if tt.wantMsg != "" && err.Error() != tt.wantMsg {
					t.Errorf("message\n got %q\nwant %q", err, tt.wantMsg)
				}
				if strings.Contains(err.Error(), "dXNlcjpwYXNz") {
					t.Error("the error repeats the credentials")
				}
				return
			}
			if err != nil || token != tt.wantToken {
				t.Errorf("TokenFromRequest = %q, %v; want %q", token, err, tt.wantToken)
			}
		})
	}
}

func TestSourceString(t *testing.T) {
	for s, want := range map[Source]string{SourceNone: "none", SourceHeader: "header", SourceQuery: "query", SourceCookie: "cookie"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}
