package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/config"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T) (*Server, string, *syncBuffer) {
	t.Helper()
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.PoWDifficulty = 2
	logs := &syncBuffer{}
	ctx := context.Background()
	s, err := New(ctx, cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
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
	return s, "http://" + s.Addr().String(), logs
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("User-Agent", "CanaryAgent/9.9")
	req.Header.Set("X-Forwarded-For", "203.0.113.77")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServesHealthReadyMetricsAndAPI(t *testing.T) {
	s, base, logs := start(t)
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	ctx := context.Background()
	c, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/websocket", &wsclient.Options{
		Header: http.Header{"User-Agent": {"CanaryAgent/9.9"}, "X-Forwarded-For": {"203.0.113.77"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, &wirepb.GetRegistrationChallenge{}); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "sotto_websocket_connections 1") || !strings.Contains(body, "sotto_requests_total 1") ||
		!strings.Contains(body, "sotto_mailbox_commit_seconds_count") {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
	// An attachment upload goes through the mounted store.
	req, _ := http.NewRequest("POST", base+"/v1/attachments/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", "5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("attachment upload: %d", resp.StatusCode)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, canary := range []string{"203.0.113.77", "CanaryAgent"} {
		if strings.Contains(logs.String(), canary) {
			t.Errorf("logs contain %q:\n%s", canary, logs.String())
		}
	}
}

func TestNotReadyWhileShuttingDown(t *testing.T) {
	s, base, _ := start(t)
	s.closeMu.Lock()
	s.closing = true
	s.closeMu.Unlock()
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d while shutting down", code)
	}
}

func TestNotReadyWhileStorageDown(t *testing.T) {
	s, base, _ := start(t)
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d with storage closed", code)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d: liveness does not depend on storage", code)
	}
}
