package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// result is a run's report. Pointer fields are null in JSON where the
// scenario does not measure them.
type result struct {
	Scenario string `json:"scenario"`

	MsgsPerS     *float64 `json:"msgs_per_s"`
	P50          *float64 `json:"p50_ms"` // Send acknowledgement latency
	P99          *float64 `json:"p99_ms"`
	Max          *float64 `json:"max_ms"`
	DeliveryP50  *float64 `json:"delivery_p50_ms"` // Send to push
	DeliveryP99  *float64 `json:"delivery_p99_ms"`
	DeliveryMax  *float64 `json:"delivery_max_ms"`
	RSSPerConnKB *float64 `json:"rss_per_conn_kb"`
	// The server's CPU time and system calls over the timed phase, per
	// acked message (pair scenarios, for a server on this machine; the
	// whole process, so an in-process server counts the tool too).
	ServerCPUPerMsgUS  *float64 `json:"server_cpu_us_per_msg"`
	ServerWritesPerMsg *float64 `json:"server_writes_per_msg"`
	ServerReadsPerMsg  *float64 `json:"server_reads_per_msg"`
	// The tool's own CPU time over the timed phase, per acked message:
	// on a machine the two share, what the tool takes the server cannot.
	ToolCPUPerMsgUS *float64 `json:"tool_cpu_us_per_msg"`

	// Counts of the pair scenarios.
	Sent      int64   `json:"sent"`      // Sends acknowledged OK
	Delivered int64   `json:"delivered"` // envelopes pushed to receivers
	Acked     int64   `json:"acked"`     // envelopes the receivers acked (OK)
	Errors    int64   `json:"errors"`    // Sends and Acks that failed
	Retries   int64   `json:"retries"`   // requests retried after RATE_LIMITED or UNAVAILABLE
	Unmatched int64   `json:"unmatched"` // pushed envelopes not in the side table (delivery latency unknown)
	Elapsed   float64 `json:"elapsed_s"` // the timed phase
	// EnvelopeBytes is the mean size of a sealed envelope as sent.
	EnvelopeBytes int `json:"envelope_bytes,omitempty"`
	// OfferedPerS and MaxLagMS (rate): the load asked for, and how late
	// the tool was, at worst, in sending one on schedule.
	OfferedPerS *float64 `json:"offered_per_s"`
	MaxLagMS    *float64 `json:"max_lag_ms"`

	// Idle.
	Conns        int    `json:"conns,omitempty"`
	Accounts     int    `json:"accounts,omitempty"`
	ServerPID    int    `json:"server_pid,omitempty"`
	RSSBeforeKB  *int64 `json:"rss_before_kb"`
	RSSAfterKB   *int64 `json:"rss_after_kb"`
	ServerConns  *int64 `json:"server_connections"` // the server's own gauge, from /metrics
	ServerAuthed *int64 `json:"server_authenticated"`

	Flags map[string]string `json:"flags"`
}

func ptr[T any](v T) *T { return &v }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// latencies summarizes durations: p50, p99 (nearest rank) and the maximum;
// nils when there are none. It sorts ds.
func latencies(ds []time.Duration) (p50, p99, mx *float64) {
	if len(ds) == 0 {
		return nil, nil, nil
	}
	slices.Sort(ds)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(ds))+0.999999) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return ptr(ms(rank(0.50))), ptr(ms(rank(0.99))), ptr(ms(ds[len(ds)-1]))
}

func (r *result) write(w io.Writer, asJSON bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	f := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f", *p)
	}
	row("scenario", "%s", r.Scenario)
	switch r.Scenario {
	case scenarioThroughput, scenarioRate:
		row("pairs", "%s (content %s B, envelope %d B, in flight %s, pool %s)", r.Flags["pairs"], r.Flags["size"],
			r.EnvelopeBytes, r.Flags["inflight"], r.Flags["pool"])
		if r.OfferedPerS != nil {
			row("offered", "%.0f Sends/s for %s (worst lag behind schedule %s ms)", *r.OfferedPerS, r.Flags["duration"], f(r.MaxLagMS))
		}
		row("counts", "%d sent, %d delivered, %d acked, %d errors, %d retries", r.Sent, r.Delivered, r.Acked, r.Errors, r.Retries)
		row("elapsed", "%.2f s", r.Elapsed)
		row("throughput", "%s msgs/s (stored, delivered and acked)", f(r.MsgsPerS))
		row("send ack", "p50 %s ms   p99 %s ms   max %s ms", f(r.P50), f(r.P99), f(r.Max))
		row("delivery", "p50 %s ms   p99 %s ms   max %s ms", f(r.DeliveryP50), f(r.DeliveryP99), f(r.DeliveryMax))
		if r.ServerCPUPerMsgUS != nil {
			row("server", "%s µs CPU, %s writes, %s reads per message (pid %d)",
				f(r.ServerCPUPerMsgUS), f(r.ServerWritesPerMsg), f(r.ServerReadsPerMsg), r.ServerPID)
		}
		if r.ToolCPUPerMsgUS != nil {
			row("tool", "%s µs CPU per message", f(r.ToolCPUPerMsgUS))
		}
	case scenarioIdle:
		i := func(p *int64) string {
			if p == nil {
				return "-"
			}
			return fmt.Sprint(*p)
		}
		row("connections", "%d authenticated, idle (%d accounts; server counts %s open, %s authenticated)",
			r.Conns, r.Accounts, i(r.ServerConns), i(r.ServerAuthed))
		row("server RSS", "%s kB before, %s kB after (pid %d)", i(r.RSSBeforeKB), i(r.RSSAfterKB), r.ServerPID)
		row("per conn", "%s kB", f(r.RSSPerConnKB))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !asJSON {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, strings.TrimSpace(string(b)))
	return err
}
