package relay

import "github.com/sotto-chat/sotto/internal/metrics"

// relayMetrics are the relay's label-free counters.
type relayMetrics struct {
	connections   *metrics.Gauge
	authenticated *metrics.Gauge
	refused       *metrics.Counter
	requests      *metrics.Counter
	badFrames     *metrics.Counter
	envelopesIn   *metrics.Counter
	envelopesOut  *metrics.Counter
	acked         *metrics.Counter
	registrations *metrics.Counter
	rateLimited   *metrics.Counter
	stuckRequests *metrics.Counter
	sendSeconds   *metrics.Histogram
}

func newRelayMetrics(r *metrics.Registry) relayMetrics {
	return relayMetrics{
		connections:   r.Gauge("sotto_websocket_connections", "Open WebSocket connections."),
		authenticated: r.Gauge("sotto_websocket_authenticated", "Authenticated WebSocket connections."),
		refused:       r.Counter("sotto_websocket_refused_total", "WebSocket upgrades refused (origin or protocol)."),
		requests:      r.Counter("sotto_requests_total", "Requests handled."),
		badFrames:     r.Counter("sotto_bad_frames_total", "Frames refused as malformed."),
		envelopesIn:   r.Counter("sotto_envelopes_stored_total", "Envelopes stored in mailboxes."),
		envelopesOut:  r.Counter("sotto_envelopes_pushed_total", "Envelopes pushed to devices."),
		acked:         r.Counter("sotto_envelopes_acked_total", "Envelope acknowledgements received."),
		registrations: r.Counter("sotto_registrations_total", "Accounts registered."),
		rateLimited:   r.Counter("sotto_rate_limited_total", "Requests refused by a rate limit."),
		stuckRequests: r.Counter("sotto_requests_timed_out_total", "Connections closed because a request outran the handler timeout."),
		sendSeconds: r.Histogram("sotto_send_seconds", "Time to store a send durably.",
			[]float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5}),
	}
}
