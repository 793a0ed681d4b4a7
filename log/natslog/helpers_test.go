package natslog

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/internal/servicetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sharedURL is the machine's shared NATS server; tests use unique stream
// names on it and delete their streams afterwards.
func sharedURL(t testing.TB) string { t.Helper(); return servicetest.NATSURL(t) }

func requireNATS(t testing.TB, url string) { t.Helper(); servicetest.RequireNATS(t, url) }

func pingJS(url string) error { return servicetest.PingJetStream(url) }

// newStream returns a stream name no other test uses; the stream and its
// id stream are deleted when t ends.
func newStream(t testing.TB, url string) string {
	t.Helper()
	return servicetest.NATSStream(t, url, idStreamPrefix)
}

// open opens a Log on url with a fresh stream (unless opts names one) and
// closes it when t ends.
func open(t testing.TB, url string, opts Options) *Log {
	t.Helper()
	if opts.Stream == "" {
		opts.Stream = newStream(t, url)
	}
	l, err := Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rawJS returns a plain JetStream client for url, closed when t ends.
func rawJS(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// server is a nats-server process of a test's own, for outage tests: the
// test may kill and restart it. Its JetStream store is in a directory of
// the test, so a restart keeps the stream.
type server struct{ *servicetest.Server }

// startServer starts a nats-server with JetStream on a free port; it is
// killed when t ends.
func startServer(t testing.TB) *server {
	t.Helper()
	return &server{servicetest.StartServer(t, "nats-server", func(port int, dir string) []string {
		return []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir}
	}, func(port int) error {
		return pingJS(fmt.Sprintf("nats://127.0.0.1:%d", port))
	})}
}

func (s *server) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }
