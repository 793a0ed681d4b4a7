package bench

import (
	"fmt"
	"io"
	"strings"
)

// Report is the result of a run; it marshals to the JSON object that
// `ssehub bench --json` prints. Counts of deliveries count one event
// received by one subscriber.
type Report struct {
	Mode        string         `json:"mode"`
	URL         string         `json:"url"`
	PublishURL  string         `json:"publish_url"`
	Config      ReportConfig   `json:"config"`
	Connections ConnReport     `json:"connections"`
	Publish     PublishReport  `json:"publish"`
	Delivery    DeliveryReport `json:"delivery"`
	// Hub is present when the hub's pid was given.
	Hub       *HubReport       `json:"hub,omitempty"`
	Generator ProcReport       `json:"generator"`
	Resume    *ResumeReport    `json:"resume,omitempty"`
	Storm     *StormReport     `json:"storm,omitempty"`
	Reconnect *ReconnectReport `json:"reconnect,omitempty"`
	// Streams is present in ModeDurableStreams, where Publish counts the
	// appends and Delivery the chunks.
	Streams *StreamsReport `json:"streams,omitempty"`
	Phases  Phases         `json:"phases"`
	// Error says why the run stopped before its end (deadline, interrupt),
	// empty after a complete run.
	Error string `json:"error,omitempty"`
}

// ReportConfig is the configuration the run used.
type ReportConfig struct {
	Subscribers    int      `json:"subscribers"`
	Topics         int      `json:"topics"`
	TopicPrefix    string   `json:"topic_prefix"`
	SubscribeAll   bool     `json:"subscribe_all"`
	Rate           float64  `json:"rate"`
	PayloadBytes   int      `json:"payload_bytes"`
	DurationS      float64  `json:"duration_s"`
	ConnectRate    float64  `json:"connect_rate"`
	Concurrency    int      `json:"concurrency"`
	PublishFormat  string   `json:"publish_format"`
	SourceAddrs    []string `json:"source_addrs"`
	SettleS        float64  `json:"settle_s"`
	DrainS         float64  `json:"drain_s"`
	PublishWorkers int      `json:"publish_workers"`
}

// ConnReport counts the subscriber connections.
type ConnReport struct {
	Attempted   int64 `json:"attempted"`
	Established int64 `json:"established"`
	Failed      int64 `json:"failed"`
	// EndedEarly counts streams the hub (or the network) ended before the
	// run closed them.
	EndedEarly int64 `json:"ended_early"`
	// Late counts connections established only after publishing started;
	// they are left out of the delivery counts.
	Late int64 `json:"late"`
	// ConnectS is the time from the first dial until every connection was
	// established or failed; PerSecond is Established / ConnectS.
	ConnectS   float64      `json:"connect_s"`
	PerSecond  float64      `json:"per_second"`
	Errors     []ErrorCount `json:"errors,omitempty"`
	EndReasons []ErrorCount `json:"end_reasons,omitempty"`
}

// PublishReport counts the publish requests of the publish phase.
type PublishReport struct {
	Scheduled int64 `json:"scheduled"`
	Sent      int64 `json:"sent"`
	Acked     int64 `json:"acked"`
	Errors    int64 `json:"errors"`
	// Dropped counts scheduled events not sent before the phase ended
	// (the hub answered too slowly to keep the rate).
	Dropped int64 `json:"dropped"`
	// PerSecond is Acked / the publish phase's length.
	PerSecond  float64      `json:"per_second"`
	Latency    LatencyStats `json:"latency"`
	ErrorKinds []ErrorCount `json:"error_kinds,omitempty"`
}

// DeliveryReport counts deliveries of the publish phase's events to the
// subscribers established before it started.
type DeliveryReport struct {
	// Expected is, summed over subscribers, the acknowledged events of
	// their topics.
	Expected int64 `json:"expected"`
	// Received counts first deliveries (of any event of the phase, also
	// unacknowledged ones); Missing the expected ones never received.
	Received int64 `json:"received"`
	Missing  int64 `json:"missing"`
	// Duplicated counts deliveries of an event the subscriber already had;
	// OutOfOrder first deliveries of an event older than one it already had
	// on the same topic.
	Duplicated int64 `json:"duplicated"`
	OutOfOrder int64 `json:"out_of_order"`
	// UnackedReceived counts received events whose publish failed.
	UnackedReceived int64 `json:"unacked_received"`
	// Foreign counts our events of a topic the subscriber is not on; Other
	// events that are not ours (other types, other data).
	Foreign int64 `json:"foreign"`
	Other   int64 `json:"other"`
	// SubscribersWithLoss counts subscribers missing at least one event.
	SubscribersWithLoss int64 `json:"subscribers_with_loss"`
	// PerSecond is Received / the time from the first publish to the last
	// first delivery.
	PerSecond float64 `json:"per_second"`
	// Latency is from the publish request's start to the delivery.
	Latency LatencyStats `json:"latency"`
}

// HubReport is the hub's memory and CPU time, from /proc/<pid>.
type HubReport struct {
	PID int `json:"pid"`
	// RSS before connecting, after connecting and settling, at the end
	// (after draining), and the process's peak, in bytes.
	RSSBefore    int64 `json:"rss_before_bytes"`
	RSSConnected int64 `json:"rss_connected_bytes"`
	RSSEnd       int64 `json:"rss_end_bytes"`
	RSSPeak      int64 `json:"rss_peak_bytes"`
	// RSSPerIdleConn is (RSSConnected - RSSBefore) / established.
	RSSPerIdleConn float64 `json:"rss_per_idle_conn_bytes"`
	// CPUPublishS is the hub's CPU time from the first publish to the end
	// of the drain; CPUPerEventUS is that over Received, in µs. Both
	// include the resume scenario's and the storm's work when they ran
	// (not the storm's fill, which precedes the first publish).
	CPUPublishS   float64 `json:"cpu_publish_s"`
	CPUPerEventUS float64 `json:"cpu_per_event_us"`
	Error         string  `json:"error,omitempty"`
}

// ProcReport is the load generator's own memory and CPU time at the end.
type ProcReport struct {
	RSS     int64   `json:"rss_bytes"`
	PeakRSS int64   `json:"rss_peak_bytes"`
	CPUS    float64 `json:"cpu_s"`
}

// ResumeReport is the result of the resume scenario.
type ResumeReport struct {
	Missed int `json:"missed"`
	// Acked is how many of the Missed events were acknowledged, Received
	// how many of them arrived after the reconnect, Missing how many
	// acknowledged ones did not.
	Acked      int64 `json:"acked"`
	Received   int64 `json:"received"`
	Missing    int64 `json:"missing"`
	Duplicated int64 `json:"duplicated"`
	// PublishS is the time to publish the missed events.
	PublishS float64 `json:"publish_s"`
	// ConnectMS, FirstMS and AllMS are the times from the start of the
	// reconnection to its response header, to the first missed event and
	// to the last one (-1 when it did not happen).
	ConnectMS float64 `json:"connect_ms"`
	FirstMS   float64 `json:"first_ms"`
	AllMS     float64 `json:"all_ms"`
	// Gap is the Ssehub-Gap header or "event" when the hub signalled a gap.
	Gap   string `json:"gap,omitempty"`
	Error string `json:"error,omitempty"`
}

// StormReport is the result of the reconnect storm (Config.Storm). Its
// delivery counts cover the missed events (not the markers) of the
// subscribers that took part in the storm.
type StormReport struct {
	Subscribers  int `json:"subscribers"`
	Topics       int `json:"topics"`
	Missed       int `json:"missed_per_topic"`
	Behind       int `json:"behind"`
	BehindTopics int `json:"behind_topics"`
	// PrimeS is the time to connect the storm's subscribers and give each
	// its marker; BehindS the time to publish the behind events
	// (BehindPerSecond of them per second), MissedS the missed ones.
	PrimeS            float64      `json:"prime_s"`
	BehindS           float64      `json:"behind_s"`
	BehindPerSecond   float64      `json:"behind_per_second"`
	MissedS           float64      `json:"missed_s"`
	PublishAcked      int64        `json:"publish_acked"`
	PublishErrors     int64        `json:"publish_errors"`
	PublishErrorKinds []ErrorCount `json:"publish_error_kinds,omitempty"`
	// Connected counts the first connections, Primed the subscribers that
	// received their marker (and so have a Last-Event-ID and take part in
	// the storm); Reconnected and ReconnectFailed their reconnections.
	Connected       int64        `json:"connected"`
	ConnectErrors   []ErrorCount `json:"connect_errors,omitempty"`
	Primed          int64        `json:"primed"`
	Reconnected     int64        `json:"reconnected"`
	ReconnectFailed int64        `json:"reconnect_failed"`
	ReconnectErrors []ErrorCount `json:"reconnect_errors,omitempty"`
	// Expected is, summed over the storm's subscribers, the acknowledged
	// missed events of their topics; Received the ones they got, Missing
	// the ones they did not. Duplicated and OutOfOrder count deliveries as
	// in DeliveryReport (markers included).
	Expected   int64 `json:"expected"`
	Received   int64 `json:"received"`
	Missing    int64 `json:"missing"`
	Duplicated int64 `json:"duplicated"`
	OutOfOrder int64 `json:"out_of_order"`
	Foreign    int64 `json:"foreign"`
	Other      int64 `json:"other"`
	// Gaps counts subscribers that were told of a gap.
	Gaps int64 `json:"gaps"`
	// StartS is the storm's moment on the run's clock; CatchUp is the time
	// from it until each subscriber received the last acknowledged event
	// of its topic (CaughtUp of them did, before the run closed them, so
	// also after the storm timeout); StormS is the time from it until the
	// last one did or the storm timeout.
	StartS   float64      `json:"start_s"`
	CaughtUp int64        `json:"caught_up"`
	CatchUp  LatencyStats `json:"catch_up"`
	StormS   float64      `json:"storm_s"`
	// HubCPUS is the hub's CPU time during StormS (with the hub's pid).
	HubCPUS  float64 `json:"hub_cpu_s"`
	HubError string  `json:"hub_error,omitempty"`
	// Control is the delivery latency, to the main subscribers (the
	// control group), of the events published during the storm.
	Control LatencyStats `json:"control"`
	Error   string       `json:"error,omitempty"`
}

// ReconnectReport is what the main subscribers did when their streams
// ended (Config.Reconnect), e.g. across a hub restart.
type ReconnectReport struct {
	// Ended counts streams that ended before the run closed them,
	// Reconnected the reconnections accepted, Attempts the attempts
	// (refused ones too).
	Ended       int64        `json:"ended"`
	Attempts    int64        `json:"attempts"`
	Reconnected int64        `json:"reconnected"`
	Errors      []ErrorCount `json:"errors,omitempty"`
	// BackS is the run clock at the first accepted reconnection (the hub's
	// return). CatchUp is the time from it until each reconnected
	// subscriber received the last event of its topic acknowledged when it
	// reconnected (CaughtUp of them did, NotCaughtUp did not).
	BackS       float64      `json:"back_s"`
	CaughtUp    int64        `json:"caught_up"`
	NotCaughtUp int64        `json:"not_caught_up"`
	CatchUp     LatencyStats `json:"catch_up"`
	// OwnCatchUp is the time from each one's own (latest) reconnection,
	// i.e. without its backoff wait: the hub's part.
	OwnCatchUp LatencyStats `json:"catch_up_from_own_reconnect"`
	// Gaps counts subscribers that were told of a gap.
	Gaps int64 `json:"gaps"`
}

// StreamsReport is what ModeDurableStreams did besides appending and
// reading chunks.
type StreamsReport struct {
	Streams     int    `json:"streams"`
	ContentType string `json:"content_type"`
	// Created counts the streams created (201) in CreateS seconds,
	// CreateFailed the others, why in CreateErrors.
	Created      int64        `json:"created"`
	CreateFailed int64        `json:"create_failed"`
	CreateErrors []ErrorCount `json:"create_errors,omitempty"`
	CreateS      float64      `json:"create_s"`
	// DataEvents and ControlEvents count the SSE events the readers got
	// (each read starts with a control event too); BadControl the control
	// events without a JSON streamNextOffset (BadControlExample says why),
	// which the readers ignored.
	DataEvents        int64  `json:"data_events"`
	ControlEvents     int64  `json:"control_events"`
	BadControl        int64  `json:"bad_control_events"`
	BadControlExample string `json:"bad_control_example,omitempty"`
	// Uncommitted counts bytes received in data events that no control
	// event followed before the run ended; they count as not received.
	Uncommitted int64 `json:"uncommitted_bytes"`
	// Closed counts readers told that their stream was closed
	// (streamClosed), which the run never asks for.
	Closed int64 `json:"closed"`
}

// Phases are the lengths of the run's phases, in seconds.
type Phases struct {
	ConnectS float64 `json:"connect_s"`
	SettleS  float64 `json:"settle_s"`
	PublishS float64 `json:"publish_s"`
	DrainS   float64 `json:"drain_s"`
	TotalS   float64 `json:"total_s"`
}

// WriteText writes a human summary of the report.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	c := &r.Config
	all := fmt.Sprintf("%d topic(s)", c.Topics)
	if c.SubscribeAll {
		all += ", every subscriber on all"
	}
	pub := "publish"
	if r.Mode == ModeDurableStreams {
		pub = "append "
		fmt.Fprintf(&b, "ssehub bench (durable-streams): %d streams, %d SSE readers, %g appends/s (%.3g per stream) for %gs, chunks of %d B\n",
			c.Topics, c.Subscribers, c.Rate, c.Rate/float64(max(c.Topics, 1)), c.DurationS, c.PayloadBytes)
	} else {
		fmt.Fprintf(&b, "ssehub bench (%s mode): %d subscribers over %s, %g publishes/s for %gs, payload %d B\n",
			r.Mode, c.Subscribers, all, c.Rate, c.DurationS, c.PayloadBytes)
	}
	if st := r.Streams; st != nil {
		fmt.Fprintf(&b, "streams      %d of %d created (%s) in %.2fs, %d failed\n",
			st.Created, st.Streams, st.ContentType, st.CreateS, st.CreateFailed)
		writeErrs(&b, "  create error", st.CreateErrors)
	}
	cn := &r.Connections
	fmt.Fprintf(&b, "connections  %d established, %d failed of %d", cn.Established, cn.Failed, cn.Attempted)
	fmt.Fprintf(&b, " in %.2fs (%.0f/s)", cn.ConnectS, cn.PerSecond)
	if cn.EndedEarly > 0 || cn.Late > 0 {
		fmt.Fprintf(&b, "; %d ended early, %d late", cn.EndedEarly, cn.Late)
	}
	b.WriteString("\n")
	writeErrs(&b, "  connect error", cn.Errors)
	writeErrs(&b, "  stream ended", cn.EndReasons)
	p := &r.Publish
	fmt.Fprintf(&b, "%s      %d acked of %d sent (%d scheduled), %d errors, %d dropped; %.1f/s\n",
		pub, p.Acked, p.Sent, p.Scheduled, p.Errors, p.Dropped, p.PerSecond)
	fmt.Fprintf(&b, "             latency %s\n", latText(p.Latency))
	writeErrs(&b, "  "+strings.TrimSpace(pub)+" error", p.ErrorKinds)
	d := &r.Delivery
	fmt.Fprintf(&b, "delivery     expected %d, received %d, missing %d, duplicated %d, out of order %d",
		d.Expected, d.Received, d.Missing, d.Duplicated, d.OutOfOrder)
	if d.UnackedReceived > 0 || d.Foreign > 0 || d.Other > 0 {
		fmt.Fprintf(&b, ", unacked received %d, foreign %d, not ours %d", d.UnackedReceived, d.Foreign, d.Other)
	}
	if d.SubscribersWithLoss > 0 {
		fmt.Fprintf(&b, " (%d subscribers lost events)", d.SubscribersWithLoss)
	}
	fmt.Fprintf(&b, "\n             %.0f events/s; latency %s\n", d.PerSecond, latText(d.Latency))
	if st := r.Streams; st != nil {
		fmt.Fprintf(&b, "             %d data and %d control events; %d bad control events, %d uncommitted bytes, %d streams closed\n",
			st.DataEvents, st.ControlEvents, st.BadControl, st.Uncommitted, st.Closed)
		if st.BadControlExample != "" {
			fmt.Fprintf(&b, "  bad control event: %s\n", st.BadControlExample)
		}
	}
	if h := r.Hub; h != nil {
		if h.Error != "" {
			fmt.Fprintf(&b, "hub          pid %d: %s\n", h.PID, h.Error)
		} else {
			fmt.Fprintf(&b, "hub          pid %d: RSS %s before, %s connected (%s per idle connection), %s at the end, peak %s\n",
				h.PID, size(h.RSSBefore), size(h.RSSConnected), size(int64(h.RSSPerIdleConn)), size(h.RSSEnd), size(h.RSSPeak))
			fmt.Fprintf(&b, "             CPU %.2fs from first publish to end of drain: %.2f µs per delivered event\n",
				h.CPUPublishS, h.CPUPerEventUS)
		}
	}
	g := &r.Generator
	fmt.Fprintf(&b, "generator    RSS %s (peak %s), CPU %.2fs\n", size(g.RSS), size(g.PeakRSS), g.CPUS)
	if rs := r.Resume; rs != nil {
		fmt.Fprintf(&b, "resume       %d missed (%d acked in %.2fs): received %d, missing %d, duplicated %d",
			rs.Missed, rs.Acked, rs.PublishS, rs.Received, rs.Missing, rs.Duplicated)
		if rs.AllMS >= 0 {
			fmt.Fprintf(&b, "; all within %.1f ms of reconnecting", rs.AllMS)
		}
		fmt.Fprintf(&b, " (header %.1f ms, first %.1f ms)", rs.ConnectMS, rs.FirstMS)
		if rs.Gap != "" {
			fmt.Fprintf(&b, "; gap signalled: %s", rs.Gap)
		}
		if rs.Error != "" {
			fmt.Fprintf(&b, "; %s", rs.Error)
		}
		b.WriteString("\n")
	}
	if st := r.Storm; st != nil {
		st.writeText(&b)
	}
	// Durable Streams readers always resume: say so only when one did.
	if rc := r.Reconnect; rc != nil && (r.Mode != ModeDurableStreams || rc.Ended+rc.Attempts > 0) {
		fmt.Fprintf(&b, "reconnect    %d streams ended, %d reconnected (%d attempts); back at %.2fs, caught up %d (not %d) %s",
			rc.Ended, rc.Reconnected, rc.Attempts, rc.BackS, rc.CaughtUp, rc.NotCaughtUp, latText(rc.CatchUp))
		if rc.Gaps > 0 {
			fmt.Fprintf(&b, "; %d told of a gap", rc.Gaps)
		}
		fmt.Fprintf(&b, "\n             from each one's own reconnection %s\n", latText(rc.OwnCatchUp))
		writeErrs(&b, "  reconnect error", rc.Errors)
	}
	ph := &r.Phases
	fmt.Fprintf(&b, "phases       connect %.2fs, settle %.2fs, publish %.2fs, drain %.2fs, total %.2fs\n",
		ph.ConnectS, ph.SettleS, ph.PublishS, ph.DrainS, ph.TotalS)
	if r.Error != "" {
		fmt.Fprintf(&b, "stopped early: %s\n", r.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (st *StormReport) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "storm        %d subscribers over %d topics, %d missed each behind %d events on %d topics\n",
		st.Subscribers, st.Topics, st.Missed, st.Behind, st.BehindTopics)
	fmt.Fprintf(b, "             primed %d of %d connected in %.2fs; behind published in %.2fs (%.0f/s), missed in %.2fs; %d acked, %d errors\n",
		st.Primed, st.Connected, st.PrimeS, st.BehindS, st.BehindPerSecond, st.MissedS, st.PublishAcked, st.PublishErrors)
	writeErrs(b, "  storm connect error", st.ConnectErrors)
	writeErrs(b, "  storm publish error", st.PublishErrorKinds)
	fmt.Fprintf(b, "             at %.2fs: %d reconnected, %d failed; storm %.2fs; caught up %d: %s\n",
		st.StartS, st.Reconnected, st.ReconnectFailed, st.StormS, st.CaughtUp, latText(st.CatchUp))
	writeErrs(b, "  storm reconnect error", st.ReconnectErrors)
	fmt.Fprintf(b, "             expected %d, received %d, missing %d, duplicated %d, out of order %d",
		st.Expected, st.Received, st.Missing, st.Duplicated, st.OutOfOrder)
	if st.Foreign+st.Other+st.Gaps > 0 {
		fmt.Fprintf(b, ", foreign %d, other %d, told of a gap %d", st.Foreign, st.Other, st.Gaps)
	}
	b.WriteString("\n")
	if st.HubError != "" {
		fmt.Fprintf(b, "             hub: %s\n", st.HubError)
	} else {
		fmt.Fprintf(b, "             hub CPU %.2fs during the storm\n", st.HubCPUS)
	}
	fmt.Fprintf(b, "             control group latency during the storm %s\n", latText(st.Control))
	if st.Error != "" {
		fmt.Fprintf(b, "             %s\n", st.Error)
	}
}

func writeErrs(b *strings.Builder, label string, l []ErrorCount) {
	for _, e := range l {
		fmt.Fprintf(b, "%s: %s (%d)\n", label, e.Error, e.Count)
	}
}

func latText(l LatencyStats) string {
	if l.Count == 0 {
		return "(none)"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (mean %s)",
		msText(l.P50), msText(l.P90), msText(l.P99), msText(l.Max), msText(l.Mean))
}

func msText(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.0fµs", v*1000)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.0fms", v)
	}
}

// size formats bytes with a binary unit.
func size(n int64) string {
	f := float64(n)
	switch {
	case n < 0:
		return "-" + size(-n)
	case n < 10<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", f/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", f/(1<<20))
	default:
		return fmt.Sprintf("%.2f GiB", f/(1<<30))
	}
}
