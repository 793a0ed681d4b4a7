package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Modes of Config.Mode.
const (
	// ModeSSEHub drives an ssehub (or any Mercure) hub: subscribers GET
	// the URL with one "topic" query parameter each, publishers POST the
	// form fields "topic" and "data" to the same URL.
	ModeSSEHub = "ssehub"
	// ModePlain drives any SSE endpoint, e.g. nginx+nchan: the subscribe
	// URL and the publish URL are templates in which "{topic}" is replaced
	// by the topic's name, and the publish body is chosen by
	// Config.PublishFormat.
	ModePlain = "plain"
	// ModeDurableStreams drives a Durable Streams server (the protocol of
	// durable-streams/durable-streams, PROTOCOL.md): each topic is a
	// stream, created with PUT (text/plain) before the readers connect;
	// subscribers read it with GET ?offset=…&live=sse and resume from the
	// last control event's streamNextOffset when their stream ends;
	// publishes are raw appends (POST) to the stream's URL. URL is the
	// streams' base URL (the stream's name is appended to it) or a template
	// with "{topic}".
	ModeDurableStreams = "durable-streams"
)

// StreamContentType is the content type of the streams of
// ModeDurableStreams: text, as generated tokens are, so the SSE data
// events carry it as it is (binary types are base64 in SSE).
const StreamContentType = "text/plain"

// Publish body formats of Config.PublishFormat.
const (
	// FormatForm posts the form fields "topic" and "data".
	FormatForm = "form"
	// FormatRaw posts the payload itself as a text/plain body (nchan's
	// "/pub?id={topic}" style).
	FormatRaw = "raw"
)

// MaxPerSourceAddr is the most subscriber connections Run opens from one
// local address: a little under the 28,232 ports of Linux's default
// ephemeral range (net.ipv4.ip_local_port_range).
const MaxPerSourceAddr = 28000

// Config describes one benchmark run. The zero value of every field but URL,
// Subscribers (and PublishURL in plain mode) means its default.
type Config struct {
	// URL is the subscribe URL, e.g.
	// http://127.0.0.1:8080/.well-known/mercure. Only http is supported
	// (subscribers speak HTTP/1.1 on raw TCP connections). In ModePlain
	// "{topic}" in it is replaced by the topic's name, query-escaped. In
	// ModeDurableStreams it is the streams' base URL, e.g.
	// http://127.0.0.1:8080/v1/stream/, to which the stream's name is
	// appended, or a template in which "{topic}" is replaced by it.
	URL string
	// Mode is ModeSSEHub (default), ModePlain or ModeDurableStreams.
	Mode string
	// PublishURL is where events are posted: by default URL in ModeSSEHub;
	// required in ModePlain. "{topic}" in it is replaced by the topic's
	// name, query-escaped. ModeDurableStreams appends to the stream's URL
	// and takes none.
	PublishURL string
	// PublishFormat is FormatForm (default in ModeSSEHub) or FormatRaw
	// (default in ModePlain).
	PublishFormat string
	// Token is sent to the publish URL as "Authorization: Bearer <Token>"
	// when not empty; SubscriberToken likewise to the subscribe URL.
	Token           string
	SubscriberToken string

	// Subscribers is the number of subscriber connections; 0 runs the
	// publish phase alone (to measure publishing).
	Subscribers int
	// Topics is the number of topics (default 1), named TopicPrefix
	// followed by 0 … Topics-1 (default prefix "bench/"; in
	// ModeDurableStreams "bench-<start time>/", new streams each run).
	// Subscriber i
	// subscribes to topic i mod Topics, or to every topic with
	// SubscribeAll ("*" in ModeSSEHub; in ModePlain URL must then contain
	// no "{topic}" and stream every topic).
	Topics       int
	TopicPrefix  string
	SubscribeAll bool

	// Rate is publishes per second over all topics (default 10), sent
	// round-robin over the topics for Duration (default 10s). Payload is
	// the size of each event's data in bytes (default 100; at least the
	// size of the header, about 20 bytes), in ModeDurableStreams of each
	// append.
	Rate     float64
	Duration time.Duration
	Payload  int
	// Concurrency bounds the publish requests in flight (default 16). A
	// topic's publishes are sent one after the other, so that a topic's
	// delivery order must be its publish order: at most Topics requests
	// are in flight in the publish phase.
	Concurrency int
	// PublishTimeout bounds one publish request (default 10s).
	PublishTimeout time.Duration

	// ConnectRate paces new subscriber connections, per second (default
	// 2000). ConnectTimeout bounds a connection's dial and response
	// header (default 10s).
	ConnectRate    float64
	ConnectTimeout time.Duration
	// SourceAddrs chooses the local addresses of subscriber connections:
	// "auto" (default: when the hub's address is IPv4 loopback, one
	// address per 20,000 subscribers from 127.0.0.2 up; otherwise none),
	// "none", a count n (127.0.0.2 … 127.0.0.n+1), or a comma-separated
	// list of addresses. Each address has its own ephemeral ports, which
	// is how one machine opens more than 28,000 connections to one port.
	SourceAddrs string

	// Settle is the pause after every subscriber is connected, before the
	// idle RSS is sampled and publishing starts (default 2s). Drain bounds
	// the wait, after the last publish, for every expected event to
	// arrive, and every event whose publish failed (the server may have
	// applied it: a run with publish errors waits the whole drain when it
	// did not) (default 5s).
	Settle time.Duration
	Drain  time.Duration

	// HubPID, when not zero, is the hub's process id: its RSS and CPU time
	// are read from /proc/<pid>.
	HubPID int

	// ResumeMissed, when positive, runs the resume scenario during the
	// publish phase: one extra subscriber (on topic TopicPrefix+"resume")
	// disconnects, ResumeMissed events are published to its topic, and it
	// reconnects with Last-Event-ID; the report says how long until it had
	// them all. ResumeTimeout bounds each of its waits (default 10s).
	ResumeMissed  int
	ResumeTimeout time.Duration

	// Storm, when positive, runs the reconnect storm with Storm extra
	// subscribers over StormTopics exact topics (default Storm: one topic
	// each), named TopicPrefix+"storm" followed by 0, 1, …. Each receives
	// a marker event (its Last-Event-ID) and disconnects; then StormBehind
	// events are published over StormBehindTopics other topics (default
	// 1000, TopicPrefix+"behind"…, nobody subscribes to them) and after
	// them StormMissed events (default 10) on every storm topic. One
	// second into the publish phase (or half of it, when shorter) every
	// storm subscriber reconnects at once with its own Last-Event-ID; the
	// report says how long until each had caught up, what the hub's CPU
	// did meanwhile, and how late the main subscribers (the control
	// group) got the events published during the storm. StormTimeout
	// bounds the wait for the markers and for the catch-up (default 60s).
	Storm             int
	StormTopics       int
	StormMissed       int
	StormBehind       int
	StormBehindTopics int
	StormTimeout      time.Duration

	// Reconnect makes the main subscribers reconnect, with Last-Event-ID,
	// when their stream ends, as a browser does (always on in
	// ModeDurableStreams, whose readers resume at once from their last
	// offset, as the protocol's clients do when the server ends a stream): after the reconnection
	// time (the stream's "retry:" field, 3s when it sent none), and after
	// failed attempts after a wait that doubles up to ReconnectMaxBackoff
	// (default 5s), drawn from its upper half. Publishes that fail
	// meanwhile (the hub is down) count as publish errors, not as lost
	// events: only acknowledged events are expected. With it the run
	// tolerates a hub restart in the middle of the publish phase.
	Reconnect           bool
	ReconnectMaxBackoff time.Duration

	// MaxTime bounds the whole run (default: the sum of the phases' bounds
	// plus 30s). When it expires the run stops and reports what it has.
	MaxTime time.Duration

	// ReadBuffer is the initial read buffer of a subscriber connection
	// (default 1024 bytes; it grows for longer lines up to MaxLine,
	// default 1 MiB).
	ReadBuffer int
	MaxLine    int

	// Progress, when not nil, receives a progress line every
	// ProgressInterval (default 1s).
	Progress         io.Writer
	ProgressInterval time.Duration
}

// withDefaults returns c with defaults filled in, or an error naming the
// first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Mode == "" {
		c.Mode = ModeSSEHub
	}
	if c.Mode != ModeSSEHub && c.Mode != ModePlain && c.Mode != ModeDurableStreams {
		return c, fmt.Errorf("bench: unknown mode %q (want %q, %q or %q)", c.Mode, ModeSSEHub, ModePlain, ModeDurableStreams)
	}
	if c.URL == "" {
		return c, errors.New("bench: a subscribe URL is required")
	}
	if c.Mode == ModeDurableStreams {
		if err := c.durableDefaults(); err != nil {
			return c, err
		}
	}
	if c.PublishURL == "" {
		if c.Mode == ModePlain {
			return c, errors.New("bench: plain mode needs a publish URL, e.g. http://127.0.0.1/pub?id={topic}")
		}
		c.PublishURL = c.URL
	}
	if c.PublishFormat == "" {
		c.PublishFormat = FormatForm
		if c.Mode == ModePlain {
			c.PublishFormat = FormatRaw
		}
	}
	if c.PublishFormat != FormatForm && c.PublishFormat != FormatRaw {
		return c, fmt.Errorf("bench: unknown publish format %q (want %q or %q)", c.PublishFormat, FormatForm, FormatRaw)
	}
	if c.SubscribeAll && c.Mode == ModePlain && strings.Contains(c.URL, "{topic}") {
		return c, errors.New("bench: subscribing to all topics in plain mode needs a URL without {topic} that streams every topic")
	}
	setDef(&c.Topics, 1)
	if c.TopicPrefix == "" {
		c.TopicPrefix = "bench/"
	}
	if c.Rate == 0 {
		c.Rate = 10
	}
	setDef(&c.Duration, 10*time.Second)
	setDef(&c.Payload, 100)
	setDef(&c.Concurrency, 16)
	setDef(&c.PublishTimeout, 10*time.Second)
	if c.ConnectRate == 0 {
		c.ConnectRate = 2000
	}
	setDef(&c.ConnectTimeout, 10*time.Second)
	if c.SourceAddrs == "" {
		c.SourceAddrs = "auto"
	}
	setDef(&c.Settle, 2*time.Second)
	setDef(&c.Drain, 5*time.Second)
	setDef(&c.ResumeTimeout, 10*time.Second)
	if c.Storm > 0 {
		setDef(&c.StormTopics, c.Storm)
		setDef(&c.StormMissed, 10)
		setDef(&c.StormBehindTopics, 1000)
	}
	setDef(&c.StormTimeout, 60*time.Second)
	setDef(&c.ReconnectMaxBackoff, 5*time.Second)
	setDef(&c.ReadBuffer, 1024)
	setDef(&c.MaxLine, 1<<20)
	setDef(&c.ProgressInterval, time.Second)
	switch {
	case c.Subscribers < 0:
		return c, errors.New("bench: subscribers must not be negative")
	case c.Topics < 0:
		return c, errors.New("bench: topics must be positive")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return c, errors.New("bench: rate must be a positive number of publishes per second")
	case c.ConnectRate < 0 || math.IsNaN(c.ConnectRate) || math.IsInf(c.ConnectRate, 0):
		return c, errors.New("bench: connect rate must be a positive number per second")
	case c.Duration < 0, c.Settle < 0, c.Drain < 0, c.ConnectTimeout < 0, c.PublishTimeout < 0, c.ResumeTimeout < 0,
		c.StormTimeout < 0, c.ReconnectMaxBackoff < 0, c.MaxTime < 0:
		return c, errors.New("bench: durations must not be negative")
	case c.Payload < 0, c.Concurrency < 0, c.ResumeMissed < 0, c.ReadBuffer < 0, c.MaxLine < 0,
		c.Storm < 0, c.StormTopics < 0, c.StormMissed < 0, c.StormBehind < 0, c.StormBehindTopics < 0:
		return c, errors.New("bench: sizes and counts must not be negative")
	case c.Payload > 16<<20:
		return c, errors.New("bench: payload larger than 16 MiB")
	}
	if err := c.checkStorm(); err != nil {
		return c, err
	}
	if c.MaxTime == 0 {
		connect := time.Duration(float64(c.Subscribers+1) / c.ConnectRate * float64(time.Second))
		c.MaxTime = connect + c.ConnectTimeout + c.Settle + c.Duration + c.PublishTimeout + c.Drain + 30*time.Second
		if c.ResumeMissed > 0 {
			c.MaxTime += 4 * c.ResumeTimeout
		}
		if c.Storm > 0 {
			// Markers and catch-up, the storm's connections, and the fill
			// at no less than 1,000 publishes/s.
			fill := c.StormBehind + c.StormTopics*(c.StormMissed+1)
			c.MaxTime += 2*c.StormTimeout + c.ConnectTimeout +
				time.Duration(float64(c.Storm)/c.ConnectRate*float64(time.Second)) +
				time.Duration(fill)*time.Millisecond
		}
	}
	return c, nil
}

// durableDefaults checks and completes a configuration of
// ModeDurableStreams: URL becomes a template, appends go to the stream's
// URL, readers always resume, and the streams are new ones.
func (c *Config) durableDefaults() error {
	switch {
	case c.PublishURL != "":
		return errors.New("bench: durable-streams mode appends to the streams' own URLs: drop the publish URL")
	case c.PublishFormat != "" && c.PublishFormat != FormatRaw:
		return errors.New("bench: durable-streams mode appends the raw chunk: drop the publish format")
	case c.SubscribeAll:
		return errors.New("bench: a Durable Streams reader reads one stream: drop --all")
	case c.ResumeMissed > 0 || c.Storm > 0:
		return errors.New("bench: the resume scenario and the storm resume with Last-Event-ID, which Durable Streams readers do not use (they resume from offsets whenever a stream ends): drop them")
	}
	if !strings.Contains(c.URL, "{topic}") {
		if !strings.HasSuffix(c.URL, "/") {
			c.URL += "/"
		}
		c.URL += "{topic}"
	}
	c.PublishURL, c.PublishFormat, c.Reconnect = c.URL, FormatRaw, true
	if c.TopicPrefix == "" {
		c.TopicPrefix = "bench-" + strconv.FormatInt(time.Now().UnixMilli(), 36) + "/"
	}
	return nil
}

// checkStorm checks the storm's fields, once defaults are filled in.
func (c *Config) checkStorm() error {
	if c.Storm == 0 {
		if c.StormTopics+c.StormMissed+c.StormBehind+c.StormBehindTopics > 0 {
			return errors.New("bench: the storm's topics, missed and behind counts need a storm: set the number of storm subscribers (--storm)")
		}
		return nil
	}
	switch {
	case c.StormTopics > c.Storm:
		return fmt.Errorf("bench: %d storm topics for %d storm subscribers leaves topics without a subscriber: use at most %d", c.StormTopics, c.Storm, c.Storm)
	case c.SubscribeAll:
		return errors.New("bench: a storm needs subscribers on exact topics: drop --all (the control group would receive the storm's events)")
	case c.ResumeMissed > 0:
		return errors.New("bench: run the resume scenario (--resume-missed) or the storm (--storm), not both")
	}
	return nil
}

func setDef[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// topicName returns the name of topic i.
func (c *Config) topicName(i int) string {
	if i < 0 {
		return c.TopicPrefix + "resume"
	}
	return c.TopicPrefix + strconv.Itoa(i)
}

// stormTopic and behindTopic return the names of the storm's topic i and
// of its fill's topic i: letters and digits after the prefix, so that they
// fit plain servers' channel names (nchan's \w+).
func (c *Config) stormTopic(i int) string  { return c.TopicPrefix + "storm" + strconv.Itoa(i) }
func (c *Config) behindTopic(i int) string { return c.TopicPrefix + "behind" + strconv.Itoa(i) }

// subscribeURL returns the subscribe URL for a topic name ("*" for all);
// in ModeDurableStreams the stream's URL, without the read parameters.
func (c *Config) subscribeURL(topic string) (*url.URL, error) {
	var raw string
	switch c.Mode {
	case ModePlain:
		raw = strings.ReplaceAll(c.URL, "{topic}", url.QueryEscape(topic))
	case ModeDurableStreams:
		raw = strings.ReplaceAll(c.URL, "{topic}", (&url.URL{Path: topic}).EscapedPath())
	default:
		raw = c.URL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bench: subscribe URL: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("bench: subscribe URL %q: only http:// is supported", c.URL)
	}
	if c.Mode == ModeSSEHub {
		q := u.RawQuery
		if q != "" {
			q += "&"
		}
		u.RawQuery = q + "topic=" + url.QueryEscape(topic)
	}
	return u, nil
}

// publishURL returns the publish URL for a topic name.
func (c *Config) publishURL(topic string) string {
	return strings.ReplaceAll(c.PublishURL, "{topic}", url.QueryEscape(topic))
}

// sourceAddrs resolves c.SourceAddrs for a hub at target and n connections.
func (c *Config) sourceAddrs(target netip.Addr, n int) ([]netip.Addr, error) {
	s := strings.TrimSpace(c.SourceAddrs)
	count := 0
	switch {
	case s == "auto":
		if !target.Is4() || !target.IsLoopback() {
			return nil, nil
		}
		count = max(1, (n+19999)/20000)
	case s == "none":
		return nil, nil
	default:
		if k, err := strconv.Atoi(s); err == nil {
			if k < 0 || k > 250 {
				return nil, fmt.Errorf("bench: source address count %d out of range (0 to 250)", k)
			}
			count = k
			break
		}
		var addrs []netip.Addr
		for _, f := range strings.Split(s, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("bench: source addresses: %w", err)
			}
			addrs = append(addrs, a)
		}
		return checkPerAddr(addrs, n)
	}
	var addrs []netip.Addr
	a := netip.AddrFrom4([4]byte{127, 0, 0, 2})
	for range count {
		addrs = append(addrs, a)
		a = a.Next()
	}
	return checkPerAddr(addrs, n)
}

func checkPerAddr(addrs []netip.Addr, n int) ([]netip.Addr, error) {
	k := max(len(addrs), 1)
	if per := (n + k - 1) / k; per > MaxPerSourceAddr {
		return nil, fmt.Errorf("bench: %d connections from %d source address(es) is %d per address, more than the %d ephemeral ports of each: add source addresses", n, len(addrs), per, MaxPerSourceAddr)
	}
	return addrs, nil
}
