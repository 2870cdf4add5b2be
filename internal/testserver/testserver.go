// Package testserver runs a real sottod for tests of its clients.
package testserver

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/config"
	"github.com/sotto-chat/sotto/internal/server"
)

// Start runs sottod (SQLite and the mailbox queue in a temporary
// directory, an easy proof of work) on a loopback port and returns its
// URL; the test's cleanup shuts it down.
func Start(t testing.TB) string {
	t.Helper()
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.PoWDifficulty = 2
	ctx := context.Background()
	s, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-s.Ready()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return "http://" + s.Addr().String()
}
