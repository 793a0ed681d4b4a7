package streams_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/streams"
)

// A Durable Streams server on a hub, mounted in a program's own mux: a
// writer creates a stream and appends tokens, a reader catches up from the
// start and learns where to continue.
func Example() {
	l := memlog.New(memlog.Options{})
	defer l.Close()
	h, err := hub.New(l, hub.Options{})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	ds, err := streams.New(streams.Config{Hub: h, AnonymousWrites: true}) // development only
	if err != nil {
		panic(err)
	}
	defer ds.Close(0)
	mux := http.NewServeMux()
	mux.Handle(streams.Prefix, ds)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do := func(method, body string, header ...string) string {
		req, _ := http.NewRequest(method, srv.URL+"/v1/stream/answers/1", strings.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp.Status
	}
	fmt.Println("create:", do("PUT", "", "Content-Type", "text/plain"))
	for _, token := range []string{"The", " answer", " is", " 42."} {
		do("POST", token, "Content-Type", "text/plain")
	}
	fmt.Println("close:", do("POST", "", "Stream-Closed", "true"))

	resp, err := http.Get(srv.URL + "/v1/stream/answers/1?offset=-1")
	if err != nil {
		panic(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("read: %q, closed: %s, next offset: %d digits\n", text, resp.Header.Get("Stream-Closed"), len(resp.Header.Get("Stream-Next-Offset")))
	// Output:
	// create: 201 Created
	// close: 204 No Content
	// read: "The answer is 42.", closed: true, next offset: 20 digits
}
