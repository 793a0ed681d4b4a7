package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ssehub/ssehub/httpapi"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/ops"
	"github.com/ssehub/ssehub/streams"
)

// opsConfig is the operational part of serveConfig: the config file,
// metrics, TLS and HTTP/2, limits and timeouts.
type opsConfig struct {
	ConfigFile          string
	PrintConfig         bool
	MetricsAddr         string
	TLSCert             string
	TLSKey              string
	H2C                 bool
	IdleTimeout         time.Duration
	ReadTimeout         time.Duration
	MaxHeaderBytes      int
	MaxConnections      int
	MaxConnectionsPerIP int
	MaxTopics           int
	MaxEventBytes       int
	PublishRate         float64
	PublishBurst        int
	ReplayLimit         uint64
	ReplayConcurrency   int
	ReplayBytes         int
	MaxStreamInput      int
	MaxSelectorCost     int
	MaxPublishTopics    int

	args   []string          // the command line, re-read on SIGHUP
	values map[string]string // every flag's value at start, to tell what a reload changed
}

// Values of --metrics-addr.
const (
	metricsOnMain = ""    // on the main listener, at /metrics
	metricsOff    = "off" // not served
)

// opsFlags adds the operational flags to fs.
func opsFlags(fs *flag.FlagSet, c *opsConfig) {
	fs.StringVar(&c.ConfigFile, "config", "", "YAML file of settings, keyed by flag name (e.g. history-size: 1000); flags and environment variables win over it")
	fs.BoolVar(&c.PrintConfig, "print-config", false, "print the effective configuration (flags > environment > config file > defaults) as YAML and exit")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", metricsOnMain, "serve Prometheus metrics (and /healthz, /readyz) on this separate address, e.g. 127.0.0.1:9090; empty: at /metrics on --addr; off: nowhere")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS with HTTP/2 (with --tls-key)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.BoolVar(&c.H2C, "h2c", false, "also accept cleartext HTTP/2 (h2c, prior knowledge), for use behind a proxy that speaks it")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 2*time.Minute, "close a keep-alive connection that has no request for this long (streams are not idle)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 30*time.Second, "time a publisher has to send its request body (0: no limit)")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", 64<<10, "largest request header block in bytes (431 beyond)")
	fs.IntVar(&c.MaxConnections, "max-connections", 0, "most subscriptions (and stats streams) open at once (503 with Retry-After beyond; 0: no limit)")
	fs.IntVar(&c.MaxConnectionsPerIP, "max-connections-per-ip", 0, "most subscriptions (and stats streams) open at once from one client address (429 with Retry-After beyond; 0: no limit)")
	fs.IntVar(&c.MaxStreamInput, "max-stream-input", 4096, "bytes a subscriber may send on its HTTP/1.x stream after the request; beyond, it is disconnected")
	fs.IntVar(&c.MaxSelectorCost, "max-selector-cost", 5000, "most matching work of one subscription's selectors together (exact topics and * cost 0, a URI template or URL pattern tens to a few hundred; 400 beyond; -1: no limit)")
	fs.IntVar(&c.MaxPublishTopics, "max-publish-topics", 100, "most topics of one published update (400 beyond; -1: no limit)")
	fs.IntVar(&c.MaxTopics, "max-topics", 100, "most topic selectors in one subscription (400 beyond)")
	fs.IntVar(&c.MaxEventBytes, "max-event-bytes", 0, "largest event data in bytes (413 beyond; 0: only --max-body applies)")
	fs.Float64Var(&c.PublishRate, "publish-rate", 0, "most publishes per second per publisher token (429 with Retry-After beyond; 0: no limit)")
	fs.IntVar(&c.PublishBurst, "publish-burst", 0, "publishes a token may make at once after a quiet time (0: --publish-rate rounded up)")
	fs.Uint64Var(&c.ReplayLimit, "replay-limit", 0, "most events of history replayed on one reconnect (every event of the log since the client's, not only its topics'); beyond, the oldest are skipped and a replay_limit gap is signalled (0: no limit)")
	fs.IntVar(&c.ReplayConcurrency, "replay-concurrency", 4, "most topic-index history reads for resuming subscribers at once; the others wait their turn, so a reconnect storm leaves the CPU to live delivery")
	fs.IntVar(&c.ReplayBytes, "replay-bytes", 256<<10, "history read and held per step of one subscriber's replay, in bytes (at least one event)")
}

// start records the command line and the flags' values, for reloads.
func (c *opsConfig) start(fs *flag.FlagSet, args []string) {
	c.args = args
	c.values = flagValues(fs)
}

// flagValues returns every flag's current value by name.
func flagValues(fs *flag.FlagSet) map[string]string {
	m := make(map[string]string)
	fs.VisitAll(func(f *flag.Flag) { m[f.Name] = f.Value.String() })
	return m
}

// limits returns the Mercure API limits the flags ask for.
func (c *opsConfig) limits() httpapi.Limits {
	rt := c.ReadTimeout
	if rt == 0 {
		rt = -1 // the flag's 0 means no timeout
	}
	return httpapi.Limits{
		MaxEventBytes:    c.MaxEventBytes,
		MaxSelectorCost:  c.MaxSelectorCost,
		MaxPublishTopics: c.MaxPublishTopics,
		PublishRate:      c.PublishRate,
		PublishBurst:     c.PublishBurst,
		ReadTimeout:      rt,
	}
}

// tlsOn reports whether the hub serves HTTPS.
func (c *opsConfig) tlsOn() bool { return c.TLSCert != "" }

// scheme is the URL scheme of the main listener.
func (c *opsConfig) scheme() string {
	if c.tlsOn() {
		return "https"
	}
	return "http"
}

// connLimiter returns the connection limits the flags ask for, which the
// Mercure API's subscriptions and stats streams and the Durable Streams
// server's live reads share, counting refusals in m (nil: not counted).
func (c *opsConfig) connLimiter(m *ops.Metrics, logger *slog.Logger) *ops.ConnLimiter {
	return ops.NewConnLimiter(ops.ConnLimits{
		MaxConnections:      c.MaxConnections,
		MaxConnectionsPerIP: c.MaxConnectionsPerIP,
		Hints:               flagHints,
		Metrics:             m,
		Logger:              logger,
	})
}

// newMetrics returns the metrics of h, or nil with --metrics-addr off.
func (c *opsConfig) newMetrics(h *hub.Hub) *ops.Metrics {
	if c.MetricsAddr == metricsOff {
		return nil
	}
	m := ops.NewMetrics(h)
	m.Registry().MustRegister(collectors.NewBuildInfoCollector())
	return m
}

// certificate holds the TLS certificate, replaced on SIGHUP.
type certificate struct {
	p atomic.Pointer[tls.Certificate]
}

func (cc *certificate) load(certFile, keyFile string) error {
	crt, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("cannot load --tls-cert %s and --tls-key %s: %w", certFile, keyFile, err)
	}
	cc.p.Store(&crt)
	return nil
}

func (cc *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cc.p.Load(), nil }

// configureServer sets srv's protocols (HTTP/1.1 always; HTTP/2 over TLS;
// h2c on request) and TLS certificate. It returns the certificate holder
// (nil without TLS).
func (c *opsConfig) configureServer(srv *http.Server) (*certificate, error) {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both (PEM files) to serve HTTPS, or neither")
	}
	if c.H2C && c.tlsOn() {
		return nil, errors.New("--h2c is cleartext HTTP/2 and --tls-cert serves HTTPS (with HTTP/2 already): use one of them")
	}
	var p http.Protocols
	p.SetHTTP1(true)
	var cert *certificate
	if c.tlsOn() {
		cert = &certificate{}
		if err := cert.load(c.TLSCert, c.TLSKey); err != nil {
			return nil, err
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.get}
		p.SetHTTP2(true)
	}
	if c.H2C {
		p.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = &p
	return cert, nil
}

// serveOn serves srv on ln, over TLS when configured.
func (c *opsConfig) serveOn(srv *http.Server, ln net.Listener) error {
	if c.tlsOn() {
		return srv.ServeTLS(ln, "", "") // the certificate is in srv.TLSConfig
	}
	return srv.Serve(ln)
}

// opsRunner is what startOps runs beside the main server.
type opsRunner struct {
	metricsSrv *http.Server
	served     chan error
	stopHUP    func()
	wg         sync.WaitGroup
}

// startOps mounts or serves the metrics and starts reloading on SIGHUP.
// stop undoes both.
//
// keys is the serve's keyring: a reload replaces it (and closes the old
// one); it is only read or written by the goroutine startOps starts until
// stop returns.
func startOps(ctx context.Context, c *serveConfig, api *httpapi.API, ds *streams.Server, m *ops.Metrics, cert *certificate, keys **keyring, logger *slog.Logger) (*opsRunner, error) {
	o := &opsRunner{}
	if m != nil {
		switch c.MetricsAddr {
		case metricsOnMain:
			api.Handle("GET "+ops.MetricsPath, m.Handler())
		default:
			ln, err := net.Listen("tcp", c.MetricsAddr)
			if err != nil {
				return nil, fmt.Errorf("cannot listen on --metrics-addr %s: %w", c.MetricsAddr, err)
			}
			mux := http.NewServeMux()
			mux.Handle("GET "+ops.MetricsPath, m.Handler())
			mux.Handle("GET /healthz", api)
			mux.Handle("GET /readyz", api)
			o.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: c.IdleTimeout,
				ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
			o.served = make(chan error, 1)
			go func() { o.served <- o.metricsSrv.Serve(ln) }()
			logger.Info("serving metrics", "addr", ln.Addr().String(), "path", ops.MetricsPath)
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	o.stopHUP = func() { signal.Stop(hup); close(done) }
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-hup:
				reload(c, api, ds, cert, keys, logger)
			}
		}
	}()
	return o, nil
}

// stop stops the metrics server and the SIGHUP handling.
func (o *opsRunner) stop() {
	o.stopHUP()
	o.wg.Wait()
	if o.metricsSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if o.metricsSrv.Shutdown(ctx) != nil {
			o.metricsSrv.Close()
		}
		<-o.served
	}
}

// reloadable are the settings a SIGHUP applies; every other change needs a
// restart.
var reloadable = []string{
	"publisher-jwt-key", "publisher-jwt-alg", "publisher-jwks-url",
	"subscriber-jwt-key", "subscriber-jwt-alg", "subscriber-jwks-url",
	"issuer", "audience", "require-access-token",
	"cors-origins", "tls-cert", "tls-key",
}

// reload re-reads the command line, environment and config file and applies
// the new keys (fetching JWKS again), CORS origins and TLS certificate
// without dropping any connection. On any error the running configuration
// stays.
func reload(c *serveConfig, api *httpapi.API, ds *streams.Server, cert *certificate, keys **keyring, logger *slog.Logger) {
	fs, nc := serveFlags(io.Discard)
	if err := parseFlags(fs, c.args); err != nil {
		logger.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	nc.LogURL = c.LogURL // a restart is needed to change it; its key rules stay
	kr, err := newKeyring(nc, logger)
	if err != nil {
		logger.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	if cert != nil {
		if nc.TLSCert == "" || nc.TLSKey == "" {
			kr.close()
			logger.Error("reload failed; keeping the running configuration", "err", "--tls-cert and --tls-key cannot be removed without a restart")
			return
		}
		if err := cert.load(nc.TLSCert, nc.TLSKey); err != nil {
			kr.close()
			logger.Error("reload failed; keeping the running configuration", "err", err)
			return
		}
	}
	api.Reload(httpapi.ReloadConfig{Publishers: kr.pub, Subscribers: kr.sub, CORSOrigins: nc.CORSOrigins})
	ds.Reload(kr.pub, kr.sub)
	(*keys).close()
	*keys = kr

	now := flagValues(fs)
	var changed, restart []string
	for name, v := range now {
		if v == c.values[name] {
			continue
		}
		if slices.Contains(reloadable, name) {
			changed = append(changed, name)
		} else {
			restart = append(restart, name)
		}
	}
	slices.Sort(changed)
	slices.Sort(restart)
	logger.Info("reloaded keys, CORS origins and TLS certificate", "changed", changed, "cors_origins", []string(nc.CORSOrigins))
	warnCORSWildcard(nc.CORSOrigins, logger)
	if len(restart) > 0 {
		logger.Warn("reload: these settings changed but only take effect after a restart", "settings", restart)
	}
	for _, name := range changed {
		c.values[name] = now[name]
	}
}
