// Package relay is sottod's WebSocket endpoint: it authenticates devices,
// registers accounts, serves the prekey directory, stores sealed envelopes
// in per-device mailboxes and pushes them to their devices, deleting each
// when its device acknowledges it. The protocol is package wire's.
//
// A client keeps two connections. On its authenticated connection (after
// GetChallenge / Authenticate) it receives its mailbox and manages its
// account; on an anonymous connection it looks up bundles and usernames and
// sends sealed envelopes, so that the server cannot tie a send to a sender.
//
// # Delivery
//
// A Send is acknowledged only after its envelopes are durably stored
// (store.Mailboxes.Append). A device that authenticates drains its mailbox in
// id order, then gets new envelopes as the bus signals them; each envelope
// stays stored until the device acks it, so delivery is at-least-once with
// stable ids, and a connection that drops loses nothing.
//
// # Privacy
//
// The relay never logs or stores addresses, user agents, or a sender next to
// a recipient. Abuse limits are token buckets in memory (package ratelimit)
// keyed by the connection's source address, which is held only for the life
// of the connection.
//
// # Concurrency
//
// An idle connection holds no goroutine and no buffer. The relay's poller
// (package netpoll: epoll on Linux) reads every socket from one goroutine
// per CPU and feeds the bytes to the connection's WebSocket parser
// (package ws); each request runs on a goroutine of its own, up to
// MaxInFlightPerConn per connection. The requests of the hot path hold no
// goroutine while the store commits, when the store's mailboxes take
// changes without waiting (store.AsyncMailboxes): a Send to a recipient in
// the cache is checked on the poller's goroutine and answered, and its
// envelopes pushed, from the store's writer once durable; a quiet Ack is
// handed to the store and answered never. Frames to write are queued and a
// writer goroutine runs only while the queue is not empty, writing all
// that has queued in one system call. A mailbox reads the store on a
// goroutine only while it is behind; one goroutine pings every connection.
// Lock order: Relay.mu, then mailbox.mu, then conn.mu or conn.out.
package relay

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sotto-chat/sotto/internal/bus"
	"github.com/sotto-chat/sotto/internal/certs"
	"github.com/sotto-chat/sotto/internal/metrics"
	"github.com/sotto-chat/sotto/internal/netpoll"
	"github.com/sotto-chat/sotto/internal/pow"
	"github.com/sotto-chat/sotto/internal/ratelimit"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/ws"
)

// Limits of the relay, each with its reason.
const (
	// MaxInFlightPerConn bounds the requests one connection has running at
	// once: enough to keep a sender's pipeline full (group commit batches
	// them), small enough that one connection cannot monopolize the store.
	MaxInFlightPerConn = 32
	// ChallengeTTL is how long an authentication nonce may be answered.
	ChallengeTTL = time.Minute
	// LinkTokenTTL and ProvisioningTTL bound device linking: minutes for a
	// person to scan a QR code and approve.
	LinkTokenTTL    = 10 * time.Minute
	ProvisioningTTL = 10 * time.Minute
	// MaxPendingLinks bounds link tokens and provisioning addresses held in
	// memory; beyond it the oldest are dropped.
	MaxPendingLinks = 10_000
	// maxLinkAttempts bounds the retries of a device link that lost a race
	// for a device id to another link of the same account.
	maxLinkAttempts = 5
	// PreKeysLowWater: a device with fewer one-time prekeys of a kind is
	// told to upload more (clients upload 100 at a time).
	PreKeysLowWater = 20
	// writeTimeout bounds one frame write: a peer that stops reading is
	// dropped rather than holding the server's buffers.
	writeTimeout = 10 * time.Second
	// handlerTimeout bounds how long a connection's requests may run
	// without one finishing: longer means the storage is stuck, and the
	// connection is closed (the client reconnects and tries again). The
	// ping loop checks, so it may take up to two ticks longer.
	handlerTimeout = 30 * time.Second
)

// StatusDeviceRemoved closes the connections of a device that its account
// removed (a code in the range RFC 6455 leaves to applications).
const StatusDeviceRemoved ws.StatusCode = 4001

// RateLimits configures the in-memory abuse limits per source address.
type RateLimits struct {
	// Registrations (challenges issued and accounts created) per second,
	// with burst.
	Register      float64
	RegisterBurst int
	// Lookups (bundles and usernames) per second, with burst: bounds how
	// fast one source can enumerate usernames or drain prekeys.
	Lookup      float64
	LookupBurst int
	// Sends (Send and SendMulti) per second, with burst.
	Send      float64
	SendBurst int
}

// DefaultRateLimits are generous for people and tight for scripts.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		Register: 0.2, RegisterBurst: 10,
		Lookup: 5, LookupBurst: 50,
		Send: 5_000, SendBurst: 20_000,
	}
}

// Config is what a Relay needs.
type Config struct {
	Store   store.Store
	Bus     bus.Bus
	Certs   *certs.Authority
	PoW     *pow.Issuer
	Metrics *metrics.Registry // optional
	Logger  *slog.Logger      // optional
	// AllowedOrigins are browser origins ("https://host") allowed to open
	// a WebSocket besides the server's own host.
	AllowedOrigins []string
	PingInterval   time.Duration
	PingTimeout    time.Duration
	// Retention is how long undelivered envelopes are kept.
	Retention  time.Duration
	RateLimits RateLimits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NoPoller reads each connection on a goroutine of its own instead of
	// from the poller (for comparison; see BENCHMARKS.md).
	NoPoller bool
	// HandlerTimeout overrides handlerTimeout (for tests).
	HandlerTimeout time.Duration
}

// Relay serves the WebSocket API. Mount it with http.Handle.
type Relay struct {
	cfg     Config
	poller  *netpoll.Poller // nil: a reader goroutine per connection
	log     *slog.Logger
	now     func() time.Time
	m       relayMetrics
	origins []string

	registerLimit, lookupLimit, sendLimit *ratelimit.Limiter
	// async is the store's mailboxes as store.AsyncMailboxes, or nil:
	// with them Sends and quiet Acks need no goroutine through the fsync.
	async store.AsyncMailboxes

	mu           sync.Mutex
	closing      bool
	conns        map[*conn]struct{}
	devices      map[bus.Device]map[*conn]struct{} // authenticated connections
	links        *pending[linkGrant]
	provisioning *pending[*conn]
	recipients   *recipientCache
	wg           sync.WaitGroup
	pingOnce     sync.Once
	stopPing     chan struct{}
	workers      workers // runs requests, writers and mailbox reads

	flushMu  sync.Mutex // guards dirty and flushing
	dirty    []*conn    // connections with frames for the flusher
	flushing bool       // the flusher runs
}

type linkGrant struct{ account store.AccountID }

// New makes a relay.
func New(cfg Config) *Relay {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.HandlerTimeout == 0 {
		cfg.HandlerTimeout = handlerTimeout
	}
	rl := cfg.RateLimits
	r := &Relay{
		cfg: cfg, log: cfg.Logger, now: cfg.Now,
		conns:         map[*conn]struct{}{},
		stopPing:      make(chan struct{}),
		devices:       map[bus.Device]map[*conn]struct{}{},
		links:         newPending[linkGrant](MaxPendingLinks),
		recipients:    newRecipientCache(),
		provisioning:  newPending[*conn](MaxPendingLinks),
		registerLimit: ratelimit.New(rl.Register, rl.RegisterBurst, 0, cfg.Now),
		lookupLimit:   ratelimit.New(rl.Lookup, rl.LookupBurst, 0, cfg.Now),
		sendLimit:     ratelimit.New(rl.Send, rl.SendBurst, 0, cfg.Now),
		async:         store.AsyncOf(cfg.Store),
	}
	// "scheme://host" patterns match the Origin's scheme and host.
	r.origins = append(r.origins, cfg.AllowedOrigins...)
	r.m = newRelayMetrics(cfg.Metrics)
	if !cfg.NoPoller {
		p, err := netpoll.New(0)
		if err != nil {
			r.log.Warn("no poller: one reader goroutine per connection", "err", err)
		}
		r.poller = p
	}
	return r
}

// ServeHTTP upgrades the request to a WebSocket and hands the connection
// to the poller; the request's goroutine ends here.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	nc, early, err := ws.Upgrade(w, req, ws.UpgradeOptions{OriginPatterns: r.origins})
	if err != nil {
		r.m.refused.Inc()
		return // Upgrade has answered (403 for a foreign Origin)
	}
	c := newConn(r, nc, SourceOf(req))
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		c.closeWith(ws.StatusGoingAway, "server shutting down", true)
		return
	}
	r.conns[c] = struct{}{}
	r.wg.Add(1)
	r.m.connections.Add(1)
	r.mu.Unlock()
	r.pingOnce.Do(func() { go r.pingLoop() })
	c.start(early)
}

// forget is a connection's last step. A connection refused while the relay
// shuts down was never counted, so only a counted one is uncounted.
func (r *Relay) forget(c *conn) {
	r.mu.Lock()
	_, counted := r.conns[c]
	delete(r.conns, c)
	r.mu.Unlock()
	if !counted {
		return
	}
	r.m.connections.Add(-1)
	r.wg.Done()
}

// SourceOf returns a request's source host, for use only as an in-memory
// rate-limit key (never logged or stored).
func SourceOf(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// Shutdown closes every connection with 1001 (going away) after its
// in-flight requests finish, and waits for them, or for ctx.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if !r.closing {
		close(r.stopPing)
	}
	r.closing = true
	conns := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		go c.drain()
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			c.end()
		}
		<-done
	}
	if r.poller != nil {
		r.poller.Close()
	}
	r.workers.close()
	return ctx.Err()
}

// pingTick is how often the ping loop looks for connections due a ping; a
// ping is late by at most this much.
const pingTick = time.Second

// workerTrimTicks is how many ping ticks pass between trims of the idle
// workers: a worker idle this long is not part of the current load.
const workerTrimTicks = 10

// pingLoop pings every connection once per PingInterval, from one goroutine
// for the whole relay rather than one per connection, and drops a
// connection whose pong is later than PingTimeout.
func (r *Relay) pingLoop() {
	t := time.NewTicker(min(pingTick, r.cfg.PingInterval, r.cfg.PingTimeout, r.cfg.HandlerTimeout))
	defer t.Stop()
	var due, dead, stuck []*conn
	ticks := 0
	for {
		select {
		case <-r.stopPing:
			return
		case <-t.C:
		}
		if ticks++; ticks%workerTrimTicks == 0 {
			r.workers.trim()
		}
		now := r.now()
		// The watchdog runs on the real clock: a test's clock (Config.Now)
		// moves pings and expiry, not how long a request has really run.
		wall := time.Now().UnixNano()
		due, dead, stuck = due[:0], dead[:0], stuck[:0]
		r.mu.Lock()
		for c := range r.conns {
			sent := c.pingSent.Load()
			switch {
			case c.stuck(wall, r.cfg.HandlerTimeout):
				stuck = append(stuck, c)
			case sent != 0 && now.UnixNano()-sent > int64(r.cfg.PingTimeout):
				dead = append(dead, c)
			case sent == 0 && c.nextPing.Load() <= now.UnixNano():
				due = append(due, c)
			}
		}
		r.mu.Unlock()
		for _, c := range stuck {
			// The connection ends once the close frame is out, which
			// cancels its requests' context.
			if c.closeWith(ws.StatusInternalError, "request timed out", true) {
				r.m.stuckRequests.Inc()
				r.log.Warn("a request ran longer than the handler timeout; its connection is closed", "timeout", r.cfg.HandlerTimeout)
			}
		}
		for _, c := range dead {
			// The peer does not answer, so it will not answer a close
			// handshake either: drop the connection at once.
			c.end()
		}
		for _, c := range due {
			c.nextPing.Store(now.Add(r.cfg.PingInterval).UnixNano())
			c.ping(now)
		}
	}
}

// addDevice and removeDevice track authenticated connections by device, for
// ephemeral (store-nothing) delivery.
func (r *Relay) addDevice(d bus.Device, c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.devices[d] == nil {
		r.devices[d] = map[*conn]struct{}{}
	}
	r.devices[d][c] = struct{}{}
}

func (r *Relay) removeDevice(d bus.Device, c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.devices[d], c)
	if len(r.devices[d]) == 0 {
		delete(r.devices, d)
	}
}

func (r *Relay) connsOf(d bus.Device) []*conn {
	return r.appendConnsOf(nil, d)
}

// appendConnsOf appends the device's connections to out: with a buffer on
// the caller's stack, the common case (one connection) allocates nothing.
func (r *Relay) appendConnsOf(out []*conn, d bus.Device) []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.devices[d] {
		out = append(out, c)
	}
	return out
}

// isClosed reports whether err means the connection is gone.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.Canceled)
}
