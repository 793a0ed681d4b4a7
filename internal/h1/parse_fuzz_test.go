package h1

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"testing"
	"time"
)

// nopConn is a connection whose reads come from elsewhere (the parser
// reads its bufio.Reader) and whose writes are dropped.
type nopConn struct{ net.Conn }

func (nopConn) Write(b []byte) (int, error)      { return len(b), nil }
func (nopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) Close() error                     { return nil }
func (nopConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (nopConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }

// oracle is what net/http's server makes of raw: the request and the
// bytes left after its body, or an error when it refuses it.
func oracle(raw []byte) (*http.Request, []byte, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	// The checks net/http's server adds to ReadRequest's (which drops
	// the Host header: read it again).
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	tp.ReadLine()
	h, _ := tp.ReadMIMEHeader()
	hosts, ok := h["Host"]
	if !ok || len(hosts) != 1 {
		return nil, nil, errMalformed
	}
	if !validHost([]byte(hosts[0])) {
		return nil, nil, errMalformed
	}
	for k, vv := range req.Header {
		if !validName([]byte(k)) {
			return nil, nil, errMalformed
		}
		for _, v := range vv {
			if !validValue([]byte(v)) {
				return nil, nil, errMalformed
			}
		}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	rest, _ := io.ReadAll(br)
	return req, rest, nil
}

// FuzzNext checks that every request the loop serves itself is one
// net/http reads the same way: same method, target, Host, headers, body
// and, above all, the same end, so that the bytes after it (the next
// request) are the same for both.
func FuzzNext(f *testing.F) {
	for _, s := range []string{
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc",
		"POST /a?x=1 HTTP/1.1\r\nHost: a:80\r\nContent-Length: 03\r\nContent-Length: 03\r\nConnection: close\r\n\r\nabcd",
		"POST /a HTTP/1.1\r\nHost: a\r\nX: \t v \t\r\nContent-Length:0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\n\r\nx",
		"POST /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nX: \x80\xff\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	s := New(nil, nil, Options{MaxHeaderBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := &conn{s: s, nc: nopConn{}, br: bufio.NewReaderSize(bytes.NewReader(raw), 16), ctx: t.Context()}
		req, _ := c.next()
		if req == nil {
			return // refused (stricter is fine) or handed back (net/http reads it)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return // a short body: the connection is closed
		}
		rest, _ := io.ReadAll(c.br)
		want, wantRest, err := oracle(raw)
		if err != nil {
			t.Fatalf("the loop serves %q, net/http refuses it: %v", raw, err)
		}
		wantBody, _ := io.ReadAll(want.Body)
		if !bytes.Equal(rest, wantRest) || !bytes.Equal(body, wantBody) {
			t.Fatalf("%q: the loop reads body %q then %q, net/http body %q then %q", raw, body, rest, wantBody, wantRest)
		}
		if req.Method != want.Method || req.RequestURI != want.RequestURI || req.Host != want.Host ||
			req.ContentLength != want.ContentLength || req.Close != want.Close || req.URL.String() != want.URL.String() {
			t.Fatalf("%q: the loop reads %s %s host %q length %d close %v, net/http %s %s host %q length %d close %v",
				raw, req.Method, req.RequestURI, req.Host, req.ContentLength, req.Close,
				want.Method, want.RequestURI, want.Host, want.ContentLength, want.Close)
		}
		delete(want.Header, "Host")
		for k, vv := range req.Header {
			wv := want.Header[k]
			if k == "Content-Length" {
				vv = slices.Compact(slices.Clone(vv))
			}
			if !slices.Equal(vv, wv) {
				t.Fatalf("%q: header %s: loop %q, net/http %q", raw, k, vv, wv)
			}
		}
		for k := range want.Header {
			if _, ok := req.Header[k]; !ok {
				t.Fatalf("%q: header %s only in net/http's request", raw, k)
			}
		}
	})
}
