// Command sotto-bench drives a running sottod over the real protocol and
// reports what it sustains. Every account it uses is really registered,
// every connection really authenticated, and every envelope is a real
// sealed-sender v1 envelope around a Double Ratchet message, made with the
// protocol packages (through internal/benchclient).
//
// Scenarios:
//
//   - throughput: -pairs sender→receiver pairs (an account with one device
//     each). Each sender keeps -inflight Sends outstanding on its anonymous
//     connection until it has sent -messages; each receiver is connected
//     (authenticated) and acks what it is pushed as the client package
//     does: quiet Acks (no answer), each gathering the ids pushed within
//     wire.AckDelay, and at the end one answered Ack that proves them all
//     carried out. Reported: envelopes stored, delivered and acked end to
//     end per second; latency of the Send acknowledgements; delivery
//     latency (Send to push).
//   - rate: the same pairs under a fixed offered load of -rate Sends per
//     second in all, spread evenly over the pairs, for -duration. Reported:
//     Send and delivery latency at that load; with -trace FILE, every
//     message's send time and delivery latency, to see where in time the
//     slow ones fall.
//   - idle: -conns authenticated connections that then stay idle; reported:
//     the server's resident memory per connection (VmRSS of the server
//     process, before and after opening them).
//
// # What is prepared ahead
//
// Sealing costs about 150 µs of CPU per envelope; done inside the timed
// phase on the same two cores as the server it would measure the tool. So
// before the timed phase each pair's sessions are established (one message
// each way, so that envelopes are ordinary SignalMessages, as in a
// conversation's steady state) and a pool of -pool real sealed envelopes is
// made per pair; the timed phase sends from the pool, in order, round and
// round. Real clients seal in parallel, each on its own device; the server
// cannot tell a repeated envelope from a new one (it never looks inside).
// Receivers do not decrypt, for the same reason: they ack what they are
// pushed.
//
// Delivery latency is measured without touching the content: the tool keeps
// a side table from each pool envelope (recognized by its first bytes,
// which hold its unique ephemeral key) to the time its latest copy was
// sent. Copies of one pool envelope are a whole pool apart, so they cannot
// overtake each other unless a Send is outstanding for a whole pool's worth
// of round trips.
//
// # Running it
//
// Registration costs a proof of work and is rate-limited per source
// address, so run the server for benchmarks with a small difficulty, and
// note that the tool spreads its connections over loopback source addresses
// (127.0.0.2, 127.0.0.3, …): it drives a server on this machine only.
//
//	go build -o /tmp/sottod ./cmd/sottod
//	/tmp/sottod -data $(mktemp -d) -pow-difficulty 0 &
//	go run ./cmd/sotto-bench -server ws://127.0.0.1:8080 -scenario throughput
//
// For idle, both processes need a file descriptor per connection; the tool
// raises its own soft RLIMIT_NOFILE to the hard limit, and sottod (a Go
// program) does the same for itself at start, so the hard limit (ulimit -Hn)
// is the bound.
//
// Output is a table, or with -json also one JSON object on the last line:
// msgs_per_s, p50_ms, p99_ms, max_ms (Send acknowledgements),
// delivery_p50_ms, delivery_p99_ms, delivery_max_ms, rss_per_conn_kb,
// server_cpu_us_per_msg, server_writes_per_msg, server_reads_per_msg (the
// server's CPU time and system calls over the timed phase, from /proc, for
// a server on this machine; null where the scenario does not measure it),
// the counts, and the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sotto-bench:", err)
		os.Exit(1)
	}
}

// run parses args, runs the scenario and writes the report to stdout;
// progress goes to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, flags, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	b, err := newBench(opts, stderr)
	if err != nil {
		return err
	}
	var res *result
	switch opts.Scenario {
	case scenarioThroughput, scenarioRate:
		res, err = b.pairs(ctx)
	case scenarioIdle:
		res, err = b.idle(ctx)
	}
	if res != nil {
		res.Scenario, res.Flags = opts.Scenario, flags
		if werr := res.write(stdout, opts.JSON); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Scenario, err)
	}
	return nil
}
