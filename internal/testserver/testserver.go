// Package testserver runs a real sottod for tests of its clients.
package testserver

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/config"
	"github.com/sotto-chat/sotto/internal/server"
	"github.com/sotto-chat/sotto/internal/store"
)

// Start runs sottod (SQLite and the mailbox queue in a temporary
// directory, an easy proof of work) on a loopback port and returns its
// URL; the test's cleanup shuts it down.
func Start(t testing.TB) string {
	return New(t).URL()
}

// Server is a sottod that a test can stop and start again, on the same
// address and data directory.
type Server struct {
	t   testing.TB
	cfg config.Config
	s   *server.Server
	url string
}

// New starts a Server; the test's cleanup stops it.
func New(t testing.TB) *Server {
	t.Helper()
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.PoWDifficulty = 2
	cfg.RegisterBurst = 10_000 // every test account comes from 127.0.0.1
	s := &Server{t: t, cfg: cfg}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Store is the running server's storage, for tests that play a server
// gone bad (nil while stopped).
func (s *Server) Store() store.Store {
	if s.s == nil {
		return nil
	}
	return s.s.Store()
}

// DataDir is the server's data directory (its certificate authority's
// keys among it), for tests that play a server gone bad.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// URL is the server's http:// URL, the same across restarts.
func (s *Server) URL() string { return s.url }

// Start starts a stopped server.
func (s *Server) Start() {
	s.t.Helper()
	if s.s != nil {
		return
	}
	ctx := context.Background()
	srv, err := server.New(ctx, s.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		s.t.Fatal(err)
	}
	<-srv.Ready()
	s.s = srv
	s.cfg.Listen = srv.Addr().String() // the same port next time
	s.url = "http://" + s.cfg.Listen
}

// Stop shuts the server down (SIGTERM's drain).
func (s *Server) Stop() {
	if s.s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.s.Shutdown(ctx)
	s.s = nil
}
