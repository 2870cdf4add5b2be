package crashtest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/testserver"
)

// The SIGTERM test's shape, each with its reason.
const (
	// termSenders and termReceivers are client package accounts: each
	// sender writes to every receiver in turn.
	termSenders   = 4
	termReceivers = 4
	// termLoad is how long the senders write before the SIGTERM and
	// again after the restart; termDown is how long the server stays
	// down (the senders keep writing: those messages queue).
	termLoad = time.Second
	termDown = 500 * time.Millisecond
	// termSettle bounds the wait for every message to arrive after the
	// senders stop (reconnects back off up to a few seconds).
	termSettle = 60 * time.Second
)

// TestSIGTERMUnderLoad: real clients (the client package, which
// reconnects by itself) write to each other while sottod is stopped with
// SIGTERM and started again. Every message whose send the server
// acknowledged arrives, and so does every one written while it was down
// (queued, then sent on reconnect); none arrives twice.
func TestSIGTERMUnderLoad(t *testing.T) {
	bin := testserver.Build(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv := testserver.StartProcess(t, bin, data, filepath.Join(dir, "sottod.log"), "-register-burst", "1000")
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Stop(t)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	mk := func(name string) (*client.Client, func()) {
		c, err := client.Create(ctx, client.Options{Server: srv.URL, Store: client.NewMemoryStore()})
		if err != nil {
			t.Fatal(err)
		}
		if name != "" {
			if err := c.SetUsername(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(runCtx) }()
		return c, func() { stop(); <-done; c.Close() }
	}
	receivers := make([]*client.Client, termReceivers)
	for i := range receivers {
		var stop func()
		receivers[i], stop = mk(fmt.Sprintf("recv_%d", i))
		defer stop()
	}
	senders := make([]*client.Client, termSenders)
	for i := range senders {
		var stop func()
		senders[i], stop = mk("")
		defer stop()
		for j := range receivers {
			if _, err := senders[i].AddContact(ctx, fmt.Sprintf("recv_%d", j)); err != nil {
				t.Fatal(err)
			}
		}
	}

	// What arrived: text → times, per receiver.
	var mu sync.Mutex
	got := make([]map[string]int, termReceivers)
	var collectors sync.WaitGroup
	collectCtx, stopCollecting := context.WithCancel(ctx)
	defer stopCollecting()
	for i, r := range receivers {
		got[i] = map[string]int{}
		collectors.Go(func() {
			for {
				select {
				case <-collectCtx.Done():
					return
				case e := <-r.Events():
					if m, ok := e.(client.MessageEvent); ok {
						mu.Lock()
						got[i][m.Message.Text]++
						mu.Unlock()
					}
				}
			}
		})
	}

	// The senders write until told to stop; each remembers what the
	// server acknowledged and what was queued.
	type sent struct {
		to    int
		text  string
		acked bool
	}
	var sentMu sync.Mutex
	var all []sent
	writing, stopWriting := context.WithCancel(ctx)
	var writers sync.WaitGroup
	for i, s := range senders {
		writers.Go(func() {
			for n := 0; writing.Err() == nil; n++ {
				to := n % termReceivers
				text := fmt.Sprintf("s%d-%d", i, n)
				sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := s.SendText(sctx, receivers[to].Account(), text)
				cancel()
				switch {
				case err == nil:
				case errors.Is(err, client.ErrQueued):
					time.Sleep(10 * time.Millisecond) // the server is away: do not spin
				default:
					t.Errorf("sender %d: %v", i, err)
					return
				}
				sentMu.Lock()
				all = append(all, sent{to, text, err == nil})
				sentMu.Unlock()
			}
		})
	}

	time.Sleep(termLoad)
	t0 := time.Now()
	srv.Stop(t) // SIGTERM: drain, close with 1001, exit
	stopped = true
	t.Logf("SIGTERM drained in %v", time.Since(t0).Round(time.Millisecond))
	time.Sleep(termDown)
	srv = testserver.RestartProcess(t, bin, data, srv, "-register-burst", "1000")
	stopped = false
	time.Sleep(termLoad)
	stopWriting()
	writers.Wait()

	sentMu.Lock()
	defer sentMu.Unlock()
	acked, queued := 0, 0
	for _, s := range all {
		if s.acked {
			acked++
		} else {
			queued++
		}
	}
	// Wait for everything: acked messages were stored before their
	// acknowledgement; queued ones go out once their sender reconnects.
	deadline := time.Now().Add(termSettle)
	for {
		mu.Lock()
		missing := 0
		for _, s := range all {
			if got[s.to][s.text] == 0 {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			lostAcked := 0
			mu.Lock()
			for _, s := range all {
				if s.acked && got[s.to][s.text] == 0 {
					lostAcked++
				}
			}
			mu.Unlock()
			testkit.Summary(t, fmt.Sprintf("SIGTERM under load: %d sent, lost = %d (%d acknowledged)", len(all), missing, lostAcked))
			t.Fatalf("%d of %d messages never arrived (%d of them acknowledged by the server)", missing, len(all), lostAcked)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // duplicates, if any, arrive by now
	stopCollecting()
	collectors.Wait()
	dups := 0
	for _, m := range got {
		for _, n := range m {
			dups += n - 1
		}
	}
	line := fmt.Sprintf("SIGTERM under load: %d sent (%d acknowledged, %d queued while down), lost = 0, duplicates = %d", len(all), acked, queued, dups)
	t.Log(line)
	testkit.Summary(t, line)
	if dups != 0 {
		t.Fatalf("%d duplicate messages shown", dups)
	}
	if acked == 0 || queued == 0 {
		t.Fatalf("the load did not cover both sides of the restart: %d acknowledged, %d queued", acked, queued)
	}
}
