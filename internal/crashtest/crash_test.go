package crashtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/benchclient"
	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/testserver"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// The test's shape, each with its reason.
const (
	// iterations is how many times sottod is killed.
	iterations = 20
	// senders and receivers are the accounts (the eight of each);
	// every sender sends to every receiver, round robin.
	senders   = 8
	receivers = 8
	// inflight is how many Sends each sender keeps outstanding, so that a
	// kill finds several in one group commit.
	inflight = 4
	// perIteration bounds what one sender sends between restarts, which
	// bounds the receivers' decryption work (about 0.5 ms an envelope, 5
	// times that under the race detector): 24,000 envelopes in all.
	perIteration = 150
	// minKill and maxKill bound the random delay from the start of the
	// load to SIGKILL.
	minKill = 5 * time.Millisecond
	maxKill = 300 * time.Millisecond
	// drainEvery: receivers connect and drain after every drainEvery-th
	// restart, acking all but their last push (which is then delivered
	// again, to exercise duplicate detection), and fully at the end.
	drainEvery = 5
	// drainTimeout bounds a receiver's wait for its next push.
	drainTimeout = 20 * time.Second
	// seedEnv names the variable that replays a run's kill delays.
	seedEnv = "SOTTO_CRASHTEST_SEED"
	// tagPrefix starts every plaintext; the tag follows.
	tagPrefix = "crashtest "
)

// sottod is one run of the server binary and a dialer to it.
type sottod struct {
	*testserver.Process
	dialer *benchclient.Dialer
}

// start runs sottod on data and waits until it is ready.
func start(t *testing.T, bin, data, logPath string) *sottod {
	t.Helper()
	p := testserver.StartProcess(t, bin, data, logPath)
	d, err := benchclient.NewDialer("ws://" + p.Addr)
	if err != nil {
		p.Kill()
		t.Fatal(err)
	}
	return &sottod{Process: p, dialer: d}
}

// sender is a sending device and its sessions with every receiver.
type sender struct {
	idx   int
	dev   *benchclient.Device
	peers []*benchclient.Peer // by receiver
	next  int                 // the next message number (the sender's loop only)
}

// receiver is a receiving device and what it has seen.
type receiver struct {
	dev *benchclient.Device
}

// ledger is what the test knows: what the server acknowledged, and what
// the receivers got. It is safe for concurrent use.
type ledger struct {
	mu         sync.Mutex
	acked      map[string]bool     // tags of Sends acknowledged OK
	delivered  map[string]int      // tag → distinct envelopes delivered with it
	seen       map[[32]byte]string // envelope content hash → tag
	duplicates int                 // envelopes delivered again
	failures   []string            // envelopes that did not open
}

func newLedger() *ledger {
	return &ledger{acked: map[string]bool{}, delivered: map[string]int{}, seen: map[[32]byte]string{}}
}

// load runs every sender against s until each has sent perIteration
// messages or its connection fails (the kill). It returns how many Sends
// were acknowledged and how many failed.
func load(ctx context.Context, s *sottod, ss []*sender, l *ledger) (ok, failed int64, err error) {
	var okN, failedN atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(ss)*inflight)
	defer wg.Wait()
	for _, snd := range ss {
		anon, err := s.dialer.Dial(ctx, snd.dev.Source)
		if err != nil {
			if s.Killed() {
				continue // killed before this sender began
			}
			return 0, 0, fmt.Errorf("sender %d: %w", snd.idx, err)
		}
		defer anon.Close()
		var mu sync.Mutex // guards snd.next
		sent := 0
		for range inflight {
			wg.Go(func() {
				for {
					mu.Lock()
					if sent >= perIteration {
						mu.Unlock()
						return
					}
					sent++
					n := snd.next
					snd.next++
					mu.Unlock()
					tag := fmt.Sprintf("s%d-%d", snd.idx, n)
					plain := []byte(tagPrefix + tag + " " + strings.Repeat("x", 200))
					send, err := snd.peers[n%len(snd.peers)].Seal(plain)
					if err != nil {
						errs <- fmt.Errorf("seal %s: %w", tag, err)
						return
					}
					if _, err := anon.Do(ctx, send); err != nil {
						var se *wsclient.StatusError
						if errors.As(err, &se) || !s.Killed() {
							errs <- fmt.Errorf("send %s failed, not by the kill: %w", tag, err)
						}
						failedN.Add(1)
						return // the server is gone
					}
					okN.Add(1)
					l.mu.Lock()
					l.acked[tag] = true
					l.mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	return okN.Load(), failedN.Load(), <-errs
}

// drain connects r, takes every envelope in its mailbox, opens each one it
// has not seen (by content hash), and acks. With ackLast false the last
// push before the mailbox is empty is not acked, as if the device had
// gone away before acking it.
func drain(ctx context.Context, s *sottod, r *receiver, l *ledger, ackLast bool) (pushed int, err error) {
	c, err := r.dev.Connect(ctx, s.dialer)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var pending []uint64 // the last push's ids, acked when the next comes
	ack := func() error {
		for len(pending) > 0 {
			n := min(len(pending), wire.MaxAckIDs)
			if _, err := c.Do(ctx, &wirepb.Ack{Ids: pending[:n]}); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
			pending = pending[n:]
		}
		return nil
	}
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	for {
		var push *wirepb.Push
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				return pushed, fmt.Errorf("connection closed: %w", c.Err())
			}
			push = p
		case <-timer.C:
			return pushed, errors.New("mailbox not drained in time")
		}
		timer.Reset(drainTimeout)
		if push.GetQueueEmpty() != nil {
			if ackLast {
				return pushed, ack()
			}
			return pushed, nil
		}
		envs := push.GetEnvelopes().GetEnvelopes()
		if len(envs) == 0 {
			continue
		}
		if err := ack(); err != nil {
			return pushed, err
		}
		for _, e := range envs {
			l.open(r, e.GetContent())
			pending = append(pending, e.GetId())
		}
		pushed += len(envs)
	}
}

func (l *ledger) dups() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.duplicates
}

// open records one delivered envelope.
func (l *ledger) open(r *receiver, content []byte) {
	h := sha256.Sum256(content)
	l.mu.Lock()
	_, dup := l.seen[h]
	if dup {
		l.duplicates++
	}
	l.mu.Unlock()
	if dup {
		return
	}
	opened, err := r.dev.Open(content)
	tag := ""
	if err == nil {
		rest, found := bytes.CutPrefix(opened.Plaintext, []byte(tagPrefix))
		if t, _, ok := bytes.Cut(rest, []byte(" ")); found && ok {
			tag = string(t)
		} else {
			err = fmt.Errorf("plaintext without a tag: %.40q", opened.Plaintext)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failures = append(l.failures, err.Error())
		return
	}
	l.seen[h] = tag
	l.delivered[tag]++
}

func TestCrashKill9(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(seedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s: %v", seedEnv, err)
		}
	}
	t.Logf("seed %d (replay the kill delays with %s=%d)", seed, seedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	began := time.Now()

	bin := testserver.Build(t)
	dir := t.TempDir()
	data, logPath := filepath.Join(dir, "data"), filepath.Join(dir, "sottod.log")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sottod's log (tail):\n%s", testserver.Tail(logPath))
		}
	})

	// Accounts: receivers register and go offline; senders start a
	// session with each receiver and keep their sender certificates.
	s := start(t, bin, data, logPath)
	// Each account gets its own source address (registration is
	// rate-limited per source), from a random base so that runs differ.
	src := rng.IntN(benchclient.MaxSources / 2)
	nextSource := func() int { src++; return src }
	rs := make([]*receiver, receivers)
	for i := range rs {
		d, err := benchclient.Register(ctx, s.dialer, benchclient.Source(nextSource()))
		if err != nil {
			t.Fatal(err)
		}
		c, err := d.Connect(ctx, s.dialer)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.UploadPreKeys(ctx, c, senders); err != nil {
			t.Fatal(err)
		}
		c.Close()
		rs[i] = &receiver{dev: d}
	}
	ss := make([]*sender, senders)
	for i := range ss {
		d, err := benchclient.Register(ctx, s.dialer, benchclient.Source(nextSource()))
		if err != nil {
			t.Fatal(err)
		}
		c, err := d.Connect(ctx, s.dialer)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.FetchCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Close()
		anon, err := s.dialer.Dial(ctx, d.Source)
		if err != nil {
			t.Fatal(err)
		}
		snd := &sender{idx: i, dev: d}
		for _, r := range rs {
			p, err := d.Initiate(ctx, anon, r.dev.Account, r.dev.AccessKey[:])
			if err != nil {
				t.Fatal(err)
			}
			snd.peers = append(snd.peers, p)
		}
		anon.Close()
		ss[i] = snd
	}

	l := newLedger()
	midLoad := 0
	var totalOK, totalFailed int64
	for i := range iterations {
		if i > 0 {
			s = start(t, bin, data, logPath)
		}
		if i > 0 && i%drainEvery == 0 {
			for j, r := range rs {
				d0 := l.dups()
				n, err := drain(ctx, s, r, l, false)
				if err != nil {
					t.Fatalf("iteration %d: drain receiver %d: %v", i, j, err)
				}
				t.Logf("iteration %d: receiver %d drained %d envelopes, %d of them again (last push left unacked)", i, j, n, l.dups()-d0)
			}
		}
		delay := minKill + time.Duration(rng.Int64N(int64(maxKill-minKill)))
		killed := make(chan struct{})
		cur := s
		timer := time.AfterFunc(delay, func() { cur.Kill(); close(killed) })
		ok, failed, err := load(ctx, s, ss, l)
		<-killed
		timer.Stop()
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		if failed > 0 {
			midLoad++
		}
		totalOK += ok
		totalFailed += failed
		t.Logf("iteration %d: SIGKILL after %v: %d Sends acknowledged, %d cut off", i, delay.Round(time.Millisecond), ok, failed)
	}

	// The end: every receiver drains everything and acks it all; then its
	// mailbox must be empty.
	s = start(t, bin, data, logPath)
	for j, r := range rs {
		d0 := l.dups()
		n, err := drain(ctx, s, r, l, true)
		if err != nil {
			t.Fatalf("final drain of receiver %d: %v", j, err)
		}
		t.Logf("final: receiver %d drained %d envelopes, %d of them again", j, n, l.dups()-d0)
		if n, err := drain(ctx, s, r, l, true); err != nil || n != 0 {
			t.Errorf("receiver %d: %d envelopes after acking everything (%v), want none", j, n, err)
		}
	}
	s.Stop(t)

	l.mu.Lock()
	defer l.mu.Unlock()
	var lost []string
	for tag := range l.acked {
		if l.delivered[tag] == 0 {
			lost = append(lost, tag)
		}
	}
	unacked, twice := 0, 0
	for tag, n := range l.delivered {
		if !l.acked[tag] {
			unacked++
		}
		if n > 1 {
			twice++
		}
	}
	t.Logf("%d kills (%d during Sends); %d Sends acknowledged, %d cut off by a kill; %d envelopes delivered "+
		"(%d of them from Sends whose acknowledgement the kill cut off), %d delivered again and dropped as duplicates; lost: %d; %v",
		iterations, midLoad, totalOK, totalFailed, len(l.delivered), unacked, l.duplicates, len(lost), time.Since(began).Round(time.Millisecond))
	testkit.Summary(t, fmt.Sprintf("crash test (kill -9 × %d, %d senders, %d receivers): %d acknowledged, lost = %d, duplicates shown = %d",
		iterations, senders, receivers, totalOK, len(lost), twice))
	if len(lost) > 0 {
		t.Errorf("%d acknowledged Sends were never delivered, e.g. %q", len(lost), lost[:min(len(lost), 10)])
	}
	if len(l.failures) > 0 {
		t.Errorf("%d envelopes did not open, e.g. %s", len(l.failures), l.failures[0])
	}
	if twice > 0 {
		t.Errorf("%d tags arrived in two different envelopes: a sender reused a message number", twice)
	}
	if totalOK == 0 || midLoad == 0 {
		t.Errorf("%d Sends acknowledged, %d kills during Sends: the test did not test", totalOK, midLoad)
	}
	if int64(len(l.acked)) != totalOK {
		t.Errorf("%d acknowledged tags, %d acknowledgements", len(l.acked), totalOK)
	}
}
