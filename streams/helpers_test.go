package streams_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/servicetest"
	"github.com/ssehub/ssehub/log/boltlog"
	"github.com/ssehub/ssehub/log/memlog"
	"github.com/ssehub/ssehub/log/natslog"
	"github.com/ssehub/ssehub/log/redislog"
	"github.com/ssehub/ssehub/ops"
	"github.com/ssehub/ssehub/streams"
)

// node is one hub serving Mercure and Durable Streams over HTTP.
type node struct {
	url string
	hub *hub.Hub
	srv *httptest.Server
	ds  *streams.Server
}

// serve starts a hub on l with the Mercure API (anonymous subscribers)
// and the Durable Streams server configured by cfg (Hub set here), all
// stopped when t ends (the log too).
func serve(t testing.TB, l ssehub.Log, cfg streams.Config) *node {
	t.Helper()
	return serveAPI(t, l, httpapi.Config{Anonymous: true}, cfg)
}

// serveAPI is serve with the Mercure API configured by api (Hub set
// here), wired as the binary wires them: live reads count in the
// connection limits of the API (api.Connections, one made here if nil).
func serveAPI(t testing.TB, l ssehub.Log, apiCfg httpapi.Config, cfg streams.Config) *node {
	t.Helper()
	h, err := hub.New(l, hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	apiCfg.Hub = h
	if apiCfg.Connections == nil {
		apiCfg.Connections = ops.NewConnLimiter(ops.ConnLimits{})
	}
	api, err := httpapi.New(apiCfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Hub = h
	if cfg.AdmitLive == nil {
		cfg.AdmitLive = apiCfg.Connections.Admit
	}
	ds, err := streams.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api.Handle(streams.Prefix, ds)
	srv := httptest.NewServer(api)
	n := &node{url: srv.URL, hub: h, srv: srv, ds: ds}
	t.Cleanup(func() { n.stop(); l.Close() })
	return n
}

// stop closes the server and the hub (not the log).
func (n *node) stop() {
	n.srv.CloseClientConnections()
	n.srv.Close()
	n.hub.Close()
	n.ds.Close(time.Second)
}

// response is an answer, read whole.
type response struct {
	code int
	h    http.Header
	body string
}

// do sends a request to the node; headers alternate names and values.
func (n *node) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	resp, b := servicetest.Do(t, method, n.url+path, body, headers...)
	return response{resp.StatusCode, resp.Header, b}
}

// want fails t unless r has the status code.
func (r response) want(t *testing.T, code int, what string) response {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: status %d, want %d (body %q)", what, r.code, code, r.body)
	}
	return r
}

func (r response) next() string { return r.h.Get("Stream-Next-Offset") }

// engine opens logs of one kind; reopen opens the same log again (for
// the engines that keep data).
type engine struct {
	name string
	open func(t *testing.T) (l ssehub.Log, reopen func(t *testing.T) ssehub.Log)
}

func engines() []engine {
	return []engine{
		{"memlog", func(t *testing.T) (ssehub.Log, func(*testing.T) ssehub.Log) {
			return memlog.New(memlog.Options{}), nil
		}},
		{"boltlog", func(t *testing.T) (ssehub.Log, func(*testing.T) ssehub.Log) {
			dir := t.TempDir()
			open := func(t *testing.T) ssehub.Log {
				l, err := boltlog.Open(dir, boltlog.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			return open(t), open
		}},
		{"redislog", func(t *testing.T) (ssehub.Log, func(*testing.T) ssehub.Log) {
			url := servicetest.RedisURL(t)
			prefix := servicetest.RedisPrefix(t, url)
			open := func(t *testing.T) ssehub.Log {
				l, err := redislog.Open(t.Context(), url, redislog.Options{Prefix: prefix})
				if err != nil {
					servicetest.Unavailable(t, fmt.Sprintf("Redis at %s: %v", url, err))
				}
				return l
			}
			return open(t), open
		}},
		{"natslog", func(t *testing.T) (ssehub.Log, func(*testing.T) ssehub.Log) {
			url := servicetest.NATSURL(t)
			name := servicetest.NATSStream(t, url, "SSEHUB_IDS_") // and its id stream (natslog)
			open := func(t *testing.T) ssehub.Log {
				l, err := natslog.Open(t.Context(), url, natslog.Options{Stream: name})
				if err != nil {
					servicetest.Unavailable(t, fmt.Sprintf("NATS JetStream at %s: %v", url, err))
				}
				return l
			}
			return open(t), open
		}},
	}
}
