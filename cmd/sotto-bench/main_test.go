package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/config"
	"github.com/sotto-chat/sotto/internal/server"
)

// startServer runs sottod in-process on a free loopback port, with
// registration's proof of work off, and returns its WebSocket URL.
func startServer(t *testing.T) string {
	t.Helper()
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.PoWDifficulty = 0
	ctx := context.Background()
	s, err := server.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-s.Ready()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "ws://" + s.Addr().String()
}

// report is the JSON line, with every field the tests look at.
type report struct {
	Scenario      string            `json:"scenario"`
	MsgsPerS      *float64          `json:"msgs_per_s"`
	P50           *float64          `json:"p50_ms"`
	P99           *float64          `json:"p99_ms"`
	Max           *float64          `json:"max_ms"`
	DeliveryP50   *float64          `json:"delivery_p50_ms"`
	DeliveryP99   *float64          `json:"delivery_p99_ms"`
	DeliveryMax   *float64          `json:"delivery_max_ms"`
	RSSPerConnKB  *float64          `json:"rss_per_conn_kb"`
	ServerCPU     *float64          `json:"server_cpu_us_per_msg"`
	ServerWrites  *float64          `json:"server_writes_per_msg"`
	ServerReads   *float64          `json:"server_reads_per_msg"`
	Sent          int64             `json:"sent"`
	Delivered     int64             `json:"delivered"`
	Acked         int64             `json:"acked"`
	Errors        int64             `json:"errors"`
	Unmatched     int64             `json:"unmatched"`
	EnvelopeBytes int               `json:"envelope_bytes"`
	OfferedPerS   *float64          `json:"offered_per_s"`
	Conns         int               `json:"conns"`
	Accounts      int               `json:"accounts"`
	ServerPID     int               `json:"server_pid"`
	RSSBeforeKB   *int64            `json:"rss_before_kb"`
	RSSAfterKB    *int64            `json:"rss_after_kb"`
	ServerConns   *int64            `json:"server_connections"`
	ServerAuthed  *int64            `json:"server_authenticated"`
	Flags         map[string]string `json:"flags"`
}

// runJSON runs the tool with -json and decodes its last line (strictly:
// every key must be known above or be one the tool is known to write).
func runJSON(t *testing.T, args ...string) report {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, append(args, "-json"), &out, &errOut); err != nil {
		t.Fatalf("run %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(last), &raw); err != nil {
		t.Fatalf("last line is not a JSON object: %v\n%s", err, last)
	}
	for _, k := range []string{"msgs_per_s", "p50_ms", "p99_ms", "max_ms", "rss_per_conn_kb", "flags"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, last)
		}
	}
	var r report
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", out.String())
	return r
}

func checkOrdered(t *testing.T, what string, p50, p99, mx *float64) {
	t.Helper()
	if p50 == nil || p99 == nil || mx == nil {
		t.Fatalf("%s: p50 %v, p99 %v, max %v: want all three", what, p50, p99, mx)
	}
	if !(0 < *p50 && *p50 <= *p99 && *p99 <= *mx) {
		t.Errorf("%s: p50 %v, p99 %v, max %v: want 0 < p50 ≤ p99 ≤ max", what, *p50, *p99, *mx)
	}
}

func checkPairCounts(t *testing.T, r report, want int64) {
	t.Helper()
	if r.Sent != want || r.Delivered != want || r.Acked != want || r.Errors != 0 || r.Unmatched != 0 {
		t.Errorf("sent %d, delivered %d, acked %d, errors %d, unmatched %d: want %d, %[6]d, %[6]d, 0, 0",
			r.Sent, r.Delivered, r.Acked, r.Errors, r.Unmatched, want)
	}
	if r.MsgsPerS == nil || *r.MsgsPerS <= 0 {
		t.Errorf("msgs_per_s %v", r.MsgsPerS)
	}
	checkOrdered(t, "send", r.P50, r.P99, r.Max)
	checkOrdered(t, "delivery", r.DeliveryP50, r.DeliveryP99, r.DeliveryMax)
	if r.RSSPerConnKB != nil {
		t.Errorf("rss_per_conn_kb %v: want null", *r.RSSPerConnKB)
	}
	if r.EnvelopeBytes <= 1024 {
		t.Errorf("envelope_bytes %d: want more than the 1 KiB of content", r.EnvelopeBytes)
	}
	// The in-process server is found (the test's own process listens on
	// its port): its usage is there, though it counts the tool too.
	if r.ServerCPU == nil || *r.ServerCPU <= 0 || r.ServerWrites == nil || *r.ServerWrites <= 0 ||
		r.ServerReads == nil || *r.ServerReads <= 0 {
		t.Errorf("server usage per message: CPU %v µs, %v writes, %v reads", r.ServerCPU, r.ServerWrites, r.ServerReads)
	}
}

func TestThroughput(t *testing.T) {
	url := startServer(t)
	r := runJSON(t, "-server", url, "-scenario", "throughput", "-pairs", "2", "-messages", "50",
		"-inflight", "4", "-pool", "20")
	if r.Scenario != "throughput" || r.Flags["pairs"] != "2" || r.Flags["messages"] != "50" {
		t.Errorf("scenario %q, flags %v", r.Scenario, r.Flags)
	}
	// 50 messages from a pool of 20: every envelope is sent two or three
	// times, and each copy is matched to its own send.
	checkPairCounts(t, r, 100)
	if r.OfferedPerS != nil {
		t.Errorf("offered_per_s %v: want null", *r.OfferedPerS)
	}
}

func TestRate(t *testing.T) {
	url := startServer(t)
	trace := filepath.Join(t.TempDir(), "trace.csv")
	r := runJSON(t, "-server", url, "-scenario", "rate", "-pairs", "2", "-rate", "200", "-duration", "500ms",
		"-inflight", "4", "-pool", "20", "-trace", trace)
	checkPairCounts(t, r, 100) // 200/s × 0.5 s
	if r.OfferedPerS == nil || *r.OfferedPerS != 200 {
		t.Errorf("offered_per_s %v", r.OfferedPerS)
	}
	// The trace has a row per delivered message, by send time, the
	// slowest as slow as the report's maximum.
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if lines[0] != "sent_ms,delivery_ms" || len(lines) != 101 {
		t.Fatalf("trace: header %q and %d rows, want 100", lines[0], len(lines)-1)
	}
	var lastSent, maxLat float64
	for _, l := range lines[1:] {
		var sent, lat float64
		if _, err := fmt.Sscanf(l, "%g,%g", &sent, &lat); err != nil {
			t.Fatalf("trace row %q: %v", l, err)
		}
		if sent < lastSent || lat <= 0 {
			t.Fatalf("trace row %q after send time %g", l, lastSent)
		}
		lastSent, maxLat = sent, max(maxLat, lat)
	}
	if r.DeliveryMax == nil || math.Abs(maxLat-*r.DeliveryMax) > 0.01 {
		t.Errorf("slowest traced delivery %g ms, report says %v", maxLat, r.DeliveryMax)
	}
}

func TestIdle(t *testing.T) {
	url := startServer(t)
	// 20 connections: one account's 16 devices and four of a second.
	r := runJSON(t, "-server", url, "-scenario", "idle", "-conns", "20", "-settle", "0")
	if r.Conns != 20 || r.Accounts != 2 {
		t.Errorf("conns %d, accounts %d: want 20, 2", r.Conns, r.Accounts)
	}
	if r.ServerConns == nil || *r.ServerConns != 20 || r.ServerAuthed == nil || *r.ServerAuthed != 20 {
		t.Errorf("server counts %v connections, %v authenticated: want 20 each", r.ServerConns, r.ServerAuthed)
	}
	// The server is this process: found by its listening port.
	if r.ServerPID != os.Getpid() {
		t.Errorf("server pid %d, want %d (this test)", r.ServerPID, os.Getpid())
	}
	if r.RSSPerConnKB == nil || r.RSSBeforeKB == nil || r.RSSAfterKB == nil || *r.RSSBeforeKB <= 0 {
		t.Errorf("rss per conn %v, before %v, after %v", r.RSSPerConnKB, r.RSSBeforeKB, r.RSSAfterKB)
	}
	if r.MsgsPerS != nil || r.P50 != nil {
		t.Errorf("msgs_per_s %v, p50 %v: want null", r.MsgsPerS, r.P50)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"unknown scenario", []string{"-scenario", "soak"}, "-scenario"},
		{"pool too small", []string{"-pool", "16", "-inflight", "16"}, "-pool"},
		{"not loopback", []string{"-server", "ws://192.0.2.1:8080"}, "loopback"},
		{"too large", []string{"-size", "100000"}, "-size"},
		{"pool too large", []string{"-pairs", "2000", "-pool", "1000", "-size", "60000"}, "seal ahead"},
		{"rate below one message per pair", []string{"-scenario", "rate", "-rate", "1", "-duration", "1s", "-pairs", "10"}, "messages per pair"},
		{"argument", []string{"extra"}, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one about %q", err, tt.want)
			}
		})
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &out, &errOut); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, f := range []string{"-server", "-scenario", "-pairs", "-messages", "-size", "-rate", "-duration", "-conns", "-inflight", "-json"} {
		if !strings.Contains(errOut.String(), f) {
			t.Errorf("usage lacks %s", f)
		}
	}
}

// TestProfile runs the throughput scenario against an in-process sottod
// under a CPU profile, for finding where the server's time goes (sottod has
// no profiling endpoint). It runs only when SOTTO_BENCH_PROFILE names the
// profile to write; SOTTO_BENCH_ARGS adds flags (default: 50 pairs × 2000
// messages):
//
//	SOTTO_BENCH_PROFILE=/tmp/cpu.pprof go test -run TestProfile -v ./cmd/sotto-bench
//	go tool pprof -top -focus 'internal/(relay|store)' /tmp/cpu.pprof
//
// Tool and server share the process, so look at the server's functions
// (internal/relay, internal/store, net/http); sealing (internal/sealed) is
// the tool's.
func TestProfile(t *testing.T) {
	path := os.Getenv("SOTTO_BENCH_PROFILE")
	if path == "" {
		t.Skip("set SOTTO_BENCH_PROFILE to a file name to profile")
	}
	url := startServer(t)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	args := []string{"-server", url, "-scenario", "throughput", "-pairs", "50", "-messages", "2000"}
	args = append(args, strings.Fields(os.Getenv("SOTTO_BENCH_ARGS"))...)
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	r := runJSON(t, args...)
	pprof.StopCPUProfile()
	t.Logf("%.0f msgs/s; profile in %s", *r.MsgsPerS, path)
}
