package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sotto-chat/sotto/internal/wire"
)

// Scenarios.
const (
	scenarioThroughput = "throughput"
	scenarioRate       = "rate"
	scenarioIdle       = "idle"
)

// Bounds of the flags, each with its reason.
const (
	// maxPairs bounds the pairs: each is two registered accounts and three
	// connections, plus a pool of envelopes in memory.
	maxPairs = 2_000
	// maxMessages bounds the messages per pair (and the send-time table,
	// 8 bytes each).
	maxMessages = 10_000_000
	// maxSize bounds the content of a message: a long text is a few kB,
	// and media travel as attachments, not in envelopes.
	maxSize = 64 << 10
	// maxPoolBytes bounds the memory of the envelopes sealed ahead
	// (pairs × pool × size).
	maxPoolBytes = 2 << 30
	// maxInflight bounds the Sends a sender keeps outstanding: sottod runs
	// relay.MaxInFlightPerConn (32) requests of a connection at once, so
	// more only queue in the socket.
	maxInflight = 256
	// maxPool bounds the envelopes sealed ahead per pair.
	maxPool = 1 << 16
	// maxRate bounds the offered load of the rate scenario.
	maxRate = 1_000_000
	// maxDuration bounds the rate scenario.
	maxDuration = time.Hour
	// maxConns bounds the idle scenario's connections (and the accounts,
	// one per -devices connections).
	maxConns = 1_000_000
	// maxSettle bounds the wait before a memory reading; a Go server runs
	// a garbage collection at least every two minutes, so a settle past
	// that sees its heap without the setup's garbage.
	maxSettle = 5 * time.Minute
	// maxTimeout bounds a whole run, so the tool always stops by itself.
	maxTimeout = 24 * time.Hour
)

// options are the tool's settings.
type options struct {
	Server    string
	Scenario  string
	Pairs     int
	Messages  int
	Warmup    int
	Size      int
	Rate      float64
	Duration  time.Duration
	Conns     int
	Devices   int
	Inflight  int
	Pool      int
	ServerPID int
	Settle    time.Duration
	Timeout   time.Duration
	JSON      bool
	Trace     string
}

func defaults() options {
	return options{
		Server: "ws://127.0.0.1:8080", Scenario: scenarioThroughput,
		Pairs: 50, Messages: 10_000, Size: 1024, Rate: 10_000, Duration: 10 * time.Second,
		Conns: 1000, Devices: 16, Inflight: 16, Pool: 512, Settle: 3 * time.Second, Timeout: 30 * time.Minute,
	}
}

// validate returns every problem with o.
func (o options) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.Scenario == scenarioThroughput || o.Scenario == scenarioRate || o.Scenario == scenarioIdle,
		"-scenario %q: want throughput, rate or idle", o.Scenario)
	check(o.Pairs >= 1 && o.Pairs <= maxPairs, "-pairs %d: want 1 to %d", o.Pairs, maxPairs)
	check(o.Messages >= 1 && o.Messages <= maxMessages, "-messages %d: want 1 to %d", o.Messages, maxMessages)
	check(o.Warmup >= 0 && o.Warmup <= maxMessages, "-warmup %d: want 0 to %d", o.Warmup, maxMessages)
	check(o.Size >= 1 && o.Size <= maxSize, "-size %d: want 1 to %d", o.Size, maxSize)
	check(o.Rate > 0 && o.Rate <= maxRate, "-rate %v: want more than 0, at most %d", o.Rate, maxRate)
	check(o.Duration > 0 && o.Duration <= maxDuration, "-duration %v: want more than 0, at most %v", o.Duration, maxDuration)
	check(o.Conns >= 1 && o.Conns <= maxConns, "-conns %d: want 1 to %d", o.Conns, maxConns)
	check(o.Devices >= 1 && o.Devices <= wire.MaxDeviceID, "-devices %d: want 1 to %d", o.Devices, wire.MaxDeviceID)
	check(o.Inflight >= 1 && o.Inflight <= maxInflight, "-inflight %d: want 1 to %d", o.Inflight, maxInflight)
	check(o.Pool >= 1 && o.Pool <= maxPool, "-pool %d: want 1 to %d", o.Pool, maxPool)
	check(int64(o.Pairs)*int64(o.Pool)*int64(o.Size) <= maxPoolBytes,
		"-pairs × -pool × -size = %d bytes to seal ahead: want at most %d", int64(o.Pairs)*int64(o.Pool)*int64(o.Size), int64(maxPoolBytes))
	check(o.Pool > 2*o.Inflight, "-pool %d: want more than twice -inflight (%d), so that copies of a pool envelope cannot overtake each other", o.Pool, o.Inflight)
	check(o.ServerPID >= 0, "-server-pid %d: want a process id, or 0 to find the server by its port", o.ServerPID)
	check(o.Settle >= 0 && o.Settle <= maxSettle, "-settle %v: want 0 to %v", o.Settle, maxSettle)
	check(o.Timeout > 0 && o.Timeout <= maxTimeout, "-timeout %v: want more than 0, at most %v", o.Timeout, maxTimeout)
	if o.Scenario == scenarioRate {
		perPair := o.Rate * o.Duration.Seconds() / float64(o.Pairs)
		check(perPair >= 1 && perPair <= maxMessages, "-rate × -duration ÷ -pairs = %.0f messages per pair: want 1 to %d", perPair, maxMessages)
	}
	return errors.Join(errs...)
}

// parseFlags returns the options and every flag's value (for the report).
func parseFlags(args []string, usage io.Writer) (options, map[string]string, error) {
	o := defaults()
	fs := flag.NewFlagSet("sotto-bench", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&o.Server, "server", o.Server, "sottod's URL (ws:// or http://, on a loopback address)")
	fs.StringVar(&o.Scenario, "scenario", o.Scenario, "throughput, rate or idle")
	fs.IntVar(&o.Pairs, "pairs", o.Pairs, "sender→receiver pairs (throughput, rate)")
	fs.IntVar(&o.Messages, "messages", o.Messages, "messages per pair (throughput)")
	fs.IntVar(&o.Warmup, "warmup", o.Warmup, "messages per pair sent, unmeasured, before the timed phase (throughput, rate): the server's steady state")
	fs.IntVar(&o.Size, "size", o.Size, "bytes of content per message, before encryption")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "Sends per second offered in all (rate)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long to offer the load (rate)")
	fs.IntVar(&o.Conns, "conns", o.Conns, "idle authenticated connections (idle)")
	fs.IntVar(&o.Devices, "devices", o.Devices, "devices per account (idle); sottod allows 16 (store.DefaultLimits)")
	fs.IntVar(&o.Inflight, "inflight", o.Inflight, "Sends each sender keeps outstanding (throughput; the bound in rate)")
	fs.IntVar(&o.Pool, "pool", o.Pool, "real sealed envelopes prepared per pair before the timed phase")
	fs.IntVar(&o.ServerPID, "server-pid", o.ServerPID, "the server's process id, for its memory; 0: find the process listening on the server's port")
	fs.DurationVar(&o.Settle, "settle", o.Settle, "wait before each memory reading (idle); past 2m the server has run a garbage collection since the setup")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "give up after this long")
	fs.BoolVar(&o.JSON, "json", o.JSON, "end the report with one JSON object on its last line")
	fs.StringVar(&o.Trace, "trace", o.Trace, "write each delivered message's send time and delivery latency (ms, CSV) to this file (throughput, rate): where in time the slow ones fall")
	if err := fs.Parse(args); err != nil {
		return options{}, nil, err
	}
	if fs.NArg() > 0 {
		return options{}, nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := o.validate(); err != nil {
		return options{}, nil, err
	}
	flags := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { flags[f.Name] = f.Value.String() })
	return o, flags, nil
}
