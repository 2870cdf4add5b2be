// Package server assembles sottod: storage, the WebSocket relay, the
// attachment store, health and metrics endpoints, behind one HTTP server.
// It can be embedded (tests start it in-process):
//
//	s, err := server.New(cfg, logger)
//	err = s.Start(ctx)      // listens; returns once serving
//	<-s.Ready()
//	err = s.Shutdown(ctx)   // drains: stops accepting, finishes writes, closes sockets with 1001
//
// # Privacy
//
// The HTTP layer never logs or keeps remote addresses, user agents or
// forwarding headers (DESIGN.md, P4); requests are logged, if at all, by
// method, route and status only. Every log record the server and its
// components write passes a redactor that replaces IP addresses with
// "[addr]" (the server's own configured addresses excepted), because
// some messages come with one built in: net/http's TLS handshake errors
// name the client's address, and a network error names both ends of the
// connection. The subpoena test (internal/subpoena) checks the result.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sotto-chat/sotto/internal/attach"
	"github.com/sotto-chat/sotto/internal/bus"
	"github.com/sotto-chat/sotto/internal/certs"
	"github.com/sotto-chat/sotto/internal/config"
	"github.com/sotto-chat/sotto/internal/metrics"
	"github.com/sotto-chat/sotto/internal/pow"
	"github.com/sotto-chat/sotto/internal/ratelimit"
	"github.com/sotto-chat/sotto/internal/relay"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/postgres"
	"github.com/sotto-chat/sotto/internal/store/sqlite"
)

// Timeouts of the HTTP server, each with its reason.
const (
	// readHeaderTimeout closes connections that dribble their headers
	// (slowloris): honest clients send them in one packet.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes idle keep-alive HTTP connections (WebSockets are
	// hijacked and governed by pings instead).
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes bounds request headers; the API needs few.
	maxHeaderBytes = 16 << 10
	// readyPingTimeout bounds a /readyz storage check.
	readyPingTimeout = 2 * time.Second
	// expireInterval is how often undelivered envelopes past retention are
	// deleted; retention is counted in days, so hourly is prompt enough.
	expireInterval = time.Hour
	// uploadRate and uploadBurst limit new attachment uploads per source
	// address (in memory only): a person sends a few files at a time.
	uploadRate  = 1.0
	uploadBurst = 30
)

// Server is a running sottod.
type Server struct {
	cfg        config.Config
	log        *slog.Logger
	redact     *redactor // in front of log's handler
	store      store.Store
	certs      *certs.Authority
	metrics    *metrics.Registry
	relay      *relay.Relay
	attach     *attach.Store
	mux        *http.ServeMux
	http       *http.Server
	stop       context.CancelFunc // ends the background loops
	background sync.WaitGroup     // the background loops, waited for before the store closes

	ready    chan struct{}
	addr     net.Addr
	closeMu  sync.Mutex
	closing  bool
	shutdown []func(context.Context) error // run in order by Shutdown
}

// New opens storage and builds the server; it does not listen yet.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pgURL, err := cfg.PostgresURL()
	if err != nil {
		return nil, err
	}
	red := newRedactor(log.Handler(), append([]string{cfg.Listen}, postgresAddrs(pgURL)...))
	log = slog.New(red)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	s := &Server{cfg: cfg, log: log, redact: red, metrics: metrics.New(), mux: http.NewServeMux(), ready: make(chan struct{})}
	st, err := openStore(ctx, cfg, log, s.metrics)
	if err != nil {
		return nil, err
	}
	s.store = st
	if s.certs, err = certs.Open(cfg.DataDir); err != nil {
		st.Close()
		return nil, err
	}
	s.relay = relay.New(relay.Config{
		Store: st, Bus: &bus.Local{}, Certs: s.certs,
		PoW:     pow.NewIssuer(cfg.PoWDifficulty, time.Now),
		Metrics: s.metrics, Logger: log.With("component", "relay"),
		AllowedOrigins: cfg.AllowedOrigins,
		PingInterval:   time.Duration(cfg.PingInterval), PingTimeout: time.Duration(cfg.PingTimeout),
		Retention: time.Duration(cfg.Retention), RateLimits: rateLimits(cfg),
		NoPoller: !cfg.NetPoll,
	})
	uploads := ratelimit.New(uploadRate, uploadBurst, 0, time.Now)
	s.attach, err = attach.New(attach.Config{
		Dir: filepath.Join(cfg.DataDir, "attachments"), MaxSize: cfg.MaxAttachmentSize,
		Retention: time.Duration(cfg.Retention), Metrics: s.metrics, Logger: log.With("component", "attach"),
		Authorize: func(r *http.Request) error {
			if ok, wait := uploads.Allow(relay.SourceOf(r)); !ok {
				return &attach.RateLimitError{RetryAfter: wait}
			}
			return nil
		},
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	s.routes()
	s.http = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// rateLimits are the relay's defaults with the configured registration
// burst.
func rateLimits(cfg config.Config) relay.RateLimits {
	rl := relay.DefaultRateLimits()
	rl.RegisterBurst = cfg.RegisterBurst
	return rl
}

func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, m *metrics.Registry) (store.Store, error) {
	url, err := cfg.PostgresURL()
	if err != nil {
		return nil, err
	}
	limits := store.DefaultLimits()
	if url != "" {
		st, err := postgres.Open(ctx, url, postgres.Options{Limits: limits, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return st, nil
	}
	opts := sqlite.Options{Limits: limits, Logger: log}
	queueDir := filepath.Join(cfg.DataDir, "mailboxes")
	if cfg.Mailboxes == "queue" {
		opts.MailboxDir = queueDir
		commits := m.Histogram("sotto_mailbox_commit_seconds",
			"Time of each synced mailbox commit (write and fsync): what every acknowledged Send waits for.",
			[]float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5})
		opts.OnMailboxCommit = func(d time.Duration) { commits.Observe(d.Seconds()) }
	} else if _, err := os.Stat(queueDir); err == nil {
		// Envelopes in the queue would wait there unseen.
		return nil, fmt.Errorf("open SQLite store: %s holds the mailboxes of -mailboxes queue; start with that", queueDir)
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "sotto.db"), opts)
	if err != nil {
		return nil, fmt.Errorf("open SQLite store: %w", err)
	}
	return st, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyPingTimeout)
		defer cancel()
		if s.isClosing() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if err := s.store.Ping(ctx); err != nil {
			s.log.Warn("storage not ready", "err", err)
			http.Error(w, "storage unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	s.mux.Handle("GET /metrics", s.metrics)
	s.mux.Handle("/v1/websocket", s.relay)
	s.mux.Handle("/v1/attachments/", http.StripPrefix("/v1/attachments", s.attach.Handler()))
	s.OnShutdown(s.relay.Shutdown)
}

// expire deletes undelivered envelopes past retention, every
// expireInterval, until ctx ends.
func (s *Server) expire(ctx context.Context) {
	t := time.NewTicker(expireInterval)
	defer t.Stop()
	for {
		n, err := s.store.Expire(ctx, store.DayOf(time.Now()))
		if err != nil && ctx.Err() == nil {
			s.log.Warn("expire envelopes", "err", err)
		} else if n > 0 {
			s.log.Info("expired envelopes", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Handle mounts h at pattern (for the relay and the attachment store).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// OnShutdown registers a function Shutdown runs before closing storage
// (the relay drains its connections there).
func (s *Server) OnShutdown(f func(context.Context) error) { s.shutdown = append(s.shutdown, f) }

// Store returns the server's storage.
func (s *Server) Store() store.Store { return s.store }

// Metrics returns the server's metric registry.
func (s *Server) Metrics() *metrics.Registry { return s.metrics }

// Certs returns the sealed-sender certificate authority.
func (s *Server) Certs() *certs.Authority { return s.certs }

// Start listens on the configured address and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	s.addr = ln.Addr()
	s.redact.Keep(s.addr.String())
	go func() {
		var err error
		if s.cfg.TLSCert != "" {
			err = s.http.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			err = s.http.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.background.Add(2)
	go func() { defer s.background.Done(); s.expire(bg) }()
	go func() { defer s.background.Done(); s.attach.Run(bg) }()
	close(s.ready)
	s.log.Info("sottod listening", "addr", s.addr.String(), "tls", s.cfg.TLSCert != "")
	return nil
}

// Ready is closed once the server accepts connections.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the listening address (after Start).
func (s *Server) Addr() net.Addr { return s.addr }

func (s *Server) isClosing() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	return s.closing
}

// Shutdown stops accepting connections, lets in-flight HTTP requests finish,
// runs the registered shutdown functions (the relay finishes in-flight writes
// and closes its WebSockets with 1001), and closes storage.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeMu.Lock()
	s.closing = true
	s.closeMu.Unlock()
	// Close the listener and wait for plain HTTP requests (uploads); the
	// WebSockets, hijacked from net/http, are drained by the relay next.
	if s.stop != nil {
		s.stop()
	}
	errs := []error{s.http.Shutdown(ctx)}
	for _, f := range s.shutdown {
		errs = append(errs, f(ctx))
	}
	s.background.Wait() // the expiry loops use the store
	errs = append(errs, s.store.Close())
	s.log.Info("sottod stopped")
	return errors.Join(errs...)
}
