package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/benchclient"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// Timing of the pair scenarios, each with its reason.
const (
	// setupWorkers bounds the pairs registered at once: registration is a
	// handful of round trips and some key generation on each side.
	setupWorkers = 8
	// handshakeTimeout bounds the wait for a pair's first message each way.
	handshakeTimeout = 30 * time.Second
	// stallTimeout ends the wait for the last acks when none has come for
	// this long after the senders finished: something is lost or stuck,
	// and the counts will say so.
	stallTimeout = 30 * time.Second
	// contentKeySize is how much of a sealed envelope identifies it in the
	// side table: the version byte, the protobuf tag and length, and the
	// 33-byte ephemeral public key, unique per sealed envelope.
	contentKeySize = 40
	// sourcesPerRun spaces the source addresses of runs: each run starts at
	// a random multiple, so that a run right after another does not find
	// the server's per-source registration buckets already drained.
	sourcesPerRun = 1 << 16
)

// bench is one run of the tool.
type bench struct {
	opts   options
	dialer *benchclient.Dialer
	stderr io.Writer
	next   atomic.Int64 // next source address index
}

func newBench(opts options, stderr io.Writer) (*bench, error) {
	d, err := benchclient.NewDialer(opts.Server)
	if err != nil {
		return nil, err
	}
	b := &bench{opts: opts, dialer: d, stderr: stderr}
	b.next.Store(int64(mrand.IntN(200)) * sourcesPerRun)
	return b, nil
}

// source returns a loopback source address no other caller gets.
func (b *bench) source() netip.Addr { return benchclient.Source(int(b.next.Add(1) - 1)) }

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.stderr, "sotto-bench: "+format+"\n", args...)
}

// parallel runs fn(i) for i in [0, n) on up to workers goroutines and
// returns the first error (which stops the others from starting more).
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// closeAll closes connections, several at a time (a close waits for the
// server's close frame).
func closeAll(conns []*wsclient.Conn) {
	_ = parallel(context.Background(), len(conns), 64, func(_ context.Context, i int) error {
		if conns[i] != nil {
			conns[i].Close()
		}
		return nil
	})
}

// pair is a sender and a receiver, each an account with one device.
type pair struct {
	idx                  int
	sender, receiver     *benchclient.Device
	peer                 *benchclient.Peer // the sender's sessions with the receiver
	senderAuth, recvAuth *wsclient.Conn    // authenticated
	senderAnon           *wsclient.Conn    // anonymous: the Sends
	pool                 []*wirepb.Send
	slots                map[string]int // contentKey → pool index
	total                int            // messages to send
	sentAt               []atomic.Int64 // per message: 1 + ns since start when sent, 0 before
	next                 atomic.Int64   // next message (throughput)
	tracing              bool           // -trace: keep sentOf

	mu           sync.Mutex // guards the latencies and the failure
	open         bool       // the phase takes results
	sendLat      []time.Duration
	deliveryLat  []time.Duration
	sentOf       []time.Duration // with -trace: each deliveryLat's send time since start
	firstFailure error

	cycles    []int         // per pool slot, copies received (receiver's reader only)
	ackMu     sync.Mutex    // guards ackBatch
	ackBatch  []uint64      // ids pushed and not yet acked
	lastAckID atomic.Uint64 // the highest id acked
}

func (p *pair) conns() []*wsclient.Conn {
	return []*wsclient.Conn{p.senderAuth, p.senderAnon, p.recvAuth}
}

func contentKey(content []byte) string { return string(content[:min(len(content), contentKeySize)]) }

// counters are the run's totals.
type counters struct {
	sent, delivered, acked, errors, retries, unmatched atomic.Int64
	lastAck                                            atomic.Int64 // ns since start
}

// setupPair registers a pair, connects it, and establishes its sessions
// with one message each way, through the server.
func (b *bench) setupPair(ctx context.Context, idx int) (_ *pair, err error) {
	p := &pair{idx: idx}
	defer func() {
		if err != nil {
			closeAll(p.conns())
		}
	}()
	if p.receiver, err = benchclient.Register(ctx, b.dialer, b.source()); err != nil {
		return nil, err
	}
	if p.sender, err = benchclient.Register(ctx, b.dialer, b.source()); err != nil {
		return nil, err
	}
	if p.recvAuth, err = p.receiver.Connect(ctx, b.dialer); err != nil {
		return nil, err
	}
	if err := p.receiver.UploadPreKeys(ctx, p.recvAuth, 5); err != nil {
		return nil, err
	}
	if p.senderAuth, err = p.sender.Connect(ctx, b.dialer); err != nil {
		return nil, err
	}
	if err := p.sender.FetchCertificate(ctx, p.senderAuth); err != nil {
		return nil, err
	}
	if p.senderAnon, err = b.dialer.Dial(ctx, p.sender.Source); err != nil {
		return nil, err
	}
	if p.peer, err = p.sender.Initiate(ctx, p.senderAnon, p.receiver.Account, p.receiver.AccessKey[:]); err != nil {
		return nil, err
	}
	// Hello, and a reply, so that the sender's session is acknowledged and
	// its messages are SignalMessages rather than PreKeySignalMessages.
	hello, err := p.peer.Seal([]byte("hello"))
	if err != nil {
		return nil, err
	}
	if _, err := benchclient.Do(ctx, p.senderAnon, hello, nil); err != nil {
		return nil, fmt.Errorf("send hello: %w", err)
	}
	opened, err := receiveOne(ctx, p.receiver, p.recvAuth)
	if err != nil {
		return nil, fmt.Errorf("receive hello: %w", err)
	}
	if err := p.receiver.FetchCertificate(ctx, p.recvAuth); err != nil {
		return nil, err
	}
	back, err := p.receiver.PeerOf(p.sender.Account, p.sender.AccessKey[:], opened.SenderIdentity,
		map[benchclient.DeviceID]uint32{p.sender.ID: p.sender.RegistrationID})
	if err != nil {
		return nil, err
	}
	reply, err := back.Seal([]byte("hello back"))
	if err != nil {
		return nil, err
	}
	recvAnon, err := b.dialer.Dial(ctx, p.receiver.Source)
	if err != nil {
		return nil, err
	}
	_, err = benchclient.Do(ctx, recvAnon, reply, nil)
	recvAnon.Close()
	if err != nil {
		return nil, fmt.Errorf("send reply: %w", err)
	}
	if _, err := receiveOne(ctx, p.sender, p.senderAuth); err != nil {
		return nil, fmt.Errorf("receive reply: %w", err)
	}
	return p, nil
}

// receiveOne waits for one envelope on d's authenticated connection c,
// opens it and acks it.
func receiveOne(ctx context.Context, d *benchclient.Device, c *wsclient.Conn) (*benchclient.Opened, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case push, ok := <-c.Pushes():
			if !ok {
				return nil, fmt.Errorf("connection closed: %w", c.Err())
			}
			envs := push.GetEnvelopes().GetEnvelopes()
			if len(envs) == 0 {
				continue
			}
			if len(envs) != 1 {
				return nil, fmt.Errorf("%d envelopes, want 1", len(envs))
			}
			opened, err := d.Open(envs[0].GetContent())
			if err != nil {
				return nil, err
			}
			if _, err := benchclient.Do(ctx, c, &wirepb.Ack{Ids: []uint64{envs[0].GetId()}}, nil); err != nil {
				return nil, fmt.Errorf("ack: %w", err)
			}
			return opened, nil
		}
	}
}

// sealPools fills every pair's pool with real sealed envelopes, on every
// core.
func (b *bench) sealPools(ctx context.Context, pairs []*pair) (meanSize int, err error) {
	n := b.opts.Pool
	plain := make([][]byte, len(pairs))
	for i, p := range pairs {
		p.pool = make([]*wirepb.Send, n)
		plain[i] = make([]byte, b.opts.Size)
		rand.Read(plain[i])
	}
	err = parallel(ctx, len(pairs)*n, runtime.GOMAXPROCS(0), func(_ context.Context, i int) error {
		p := pairs[i/n]
		s, err := p.peer.Seal(plain[i/n])
		if err != nil {
			return err
		}
		p.pool[i%n] = s
		return nil
	})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, p := range pairs {
		p.slots = make(map[string]int, n)
		for i, s := range p.pool {
			c := s.GetEnvelopes()[0].GetContent()
			p.slots[contentKey(c)] = i
			total += len(c)
		}
		p.cycles = make([]int, n)
	}
	return total / (len(pairs) * n), nil
}

// pairs runs the throughput or rate scenario.
func (b *bench) pairs(ctx context.Context) (*result, error) {
	o := b.opts
	b.progress("registering %d pairs and establishing their sessions", o.Pairs)
	pairs := make([]*pair, o.Pairs)
	var mu sync.Mutex
	defer func() {
		var conns []*wsclient.Conn
		for _, p := range pairs {
			if p != nil {
				conns = append(conns, p.conns()...)
			}
		}
		closeAll(conns)
	}()
	err := parallel(ctx, o.Pairs, setupWorkers, func(ctx context.Context, i int) error {
		p, err := b.setupPair(ctx, i)
		if err != nil {
			return fmt.Errorf("pair %d: %w", i, err)
		}
		mu.Lock()
		pairs[i] = p
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	b.progress("sealing %d envelopes per pair (%d bytes of content each)", o.Pool, o.Size)
	envSize, err := b.sealPools(ctx, pairs)
	if err != nil {
		return nil, err
	}
	if o.Warmup > 0 {
		// The same load, unmeasured: the server reaches its steady state
		// (its memtables at full size and recycled, its workers' stacks
		// grown, its collector paced) before the timed phase.
		b.progress("warming up: %d messages per pair, not measured", o.Warmup)
		if _, err := b.timed(ctx, pairs, scenarioThroughput, o.Warmup, envSize); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	perPair := o.Messages
	if o.Scenario == scenarioRate {
		perPair = int(o.Rate*o.Duration.Seconds()/float64(o.Pairs) + 0.5)
	}
	return b.timed(ctx, pairs, o.Scenario, perPair, envSize)
}

// timed runs one phase of load over the pairs and measures it.
func (b *bench) timed(ctx context.Context, pairs []*pair, scenario string, perPair, envSize int) (*result, error) {
	o := b.opts
	for _, p := range pairs {
		p.total = perPair
		p.sentAt = make([]atomic.Int64, perPair)
		p.next.Store(0)
		p.sendLat, p.deliveryLat, p.sentOf = nil, nil, nil
		clear(p.cycles)
		p.firstFailure = nil
		p.tracing = o.Trace != ""
	}
	var err error
	res := &result{EnvelopeBytes: envSize}
	var c counters
	var maxLag atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	// The server's usage over the timed phase, if it runs here.
	pid := o.ServerPID
	if pid == 0 {
		pid, _ = b.findServer()
	}
	before, uerr := usage(pid)
	self, serr := usage(os.Getpid())
	if pid == 0 || uerr != nil {
		b.progress("server process not found here: no server CPU or system call counts")
	}
	start := time.Now()
	for _, p := range pairs {
		p.open = true
		p.recvAuth.SetPushHandler(func(push *wirepb.Push) { p.receive(runCtx, start, &c, push) })
	}
	defer func() {
		for _, p := range pairs {
			p.recvAuth.SetPushHandler(nil)
			p.mu.Lock()
			p.open = false
			p.mu.Unlock()
		}
	}()
	var senders sync.WaitGroup
	if scenario == scenarioThroughput {
		b.progress("sending %d messages per pair, %d in flight each", perPair, o.Inflight)
		for _, p := range pairs {
			senders.Go(func() { p.pump(runCtx, start, &c, o.Inflight) })
		}
	} else {
		b.progress("offering %.0f Sends/s over %d pairs for %v", o.Rate, o.Pairs, o.Duration)
		interval := time.Duration(float64(time.Second) * float64(o.Pairs) / o.Rate)
		for _, p := range pairs {
			offset := interval * time.Duration(p.idx) / time.Duration(o.Pairs)
			senders.Go(func() { p.schedule(runCtx, start, offset, interval, o.Inflight, &c, &maxLag) })
		}
		res.OfferedPerS = ptr(o.Rate)
	}
	senders.Wait()
	// Wait for the last acks: until every acknowledged Send's envelope is
	// acked, or nothing moves for stallTimeout.
	lastProgress, lastAcked := time.Now(), int64(-1)
	for c.acked.Load() < c.sent.Load() && ctx.Err() == nil {
		if a := c.acked.Load(); a != lastAcked {
			lastProgress, lastAcked = time.Now(), a
		} else if time.Since(lastProgress) > stallTimeout {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The acks were quiet: the run ends when the server has carried them
	// out (the acker goroutines are idle now: everything sent is acked).
	for _, p := range pairs {
		if err := p.confirmAck(ctx); err != nil && ctx.Err() == nil {
			c.errors.Add(1)
			if p.firstFailure == nil {
				p.firstFailure = fmt.Errorf("confirm acks: %w", err)
			}
		}
	}
	if c.acked.Load() == c.sent.Load() {
		c.lastAck.Store(int64(time.Since(start)))
	}
	if after, err := usage(os.Getpid()); serr == nil && err == nil && c.acked.Load() > 0 {
		res.ToolCPUPerMsgUS = ptr(float64((after.cpu - self.cpu).Microseconds()) / float64(c.acked.Load()))
	}
	if after, err := usage(pid); pid != 0 && uerr == nil && err == nil && c.acked.Load() > 0 {
		n := float64(c.acked.Load())
		res.ServerPID = pid
		res.ServerCPUPerMsgUS = ptr(float64((after.cpu - before.cpu).Microseconds()) / n)
		res.ServerWritesPerMsg = ptr(float64(after.writes-before.writes) / n)
		res.ServerReadsPerMsg = ptr(float64(after.reads-before.reads) / n)
	}
	stop()
	for _, p := range pairs { // the phase ends: late callbacks change nothing
		p.mu.Lock()
		p.open = false
		p.mu.Unlock()
	}

	elapsed := time.Duration(c.lastAck.Load())
	res.Sent, res.Delivered, res.Acked = c.sent.Load(), c.delivered.Load(), c.acked.Load()
	res.Errors, res.Unmatched = c.errors.Load(), c.unmatched.Load()
	res.Retries = c.retries.Load()
	res.Elapsed = elapsed.Seconds()
	if elapsed > 0 {
		res.MsgsPerS = ptr(float64(res.Acked) / elapsed.Seconds())
	}
	if scenario == scenarioRate {
		res.MaxLagMS = ptr(ms(time.Duration(maxLag.Load())))
	}
	var sendLat, delLat []time.Duration
	for _, p := range pairs {
		sendLat = append(sendLat, p.sendLat...)
		delLat = append(delLat, p.deliveryLat...)
		if p.firstFailure != nil && err == nil {
			err = fmt.Errorf("pair %d: %w", p.idx, p.firstFailure)
		}
	}
	if o.Trace != "" {
		if werr := writeTrace(o.Trace, pairs); werr != nil && err == nil {
			err = werr
		}
	}
	res.P50, res.P99, res.Max = latencies(sendLat)
	res.DeliveryP50, res.DeliveryP99, res.DeliveryMax = latencies(delLat)
	if err != nil {
		b.progress("first failure: %v", err)
	}
	if res.Acked < res.Sent {
		return res, fmt.Errorf("%d of %d acknowledged Sends were not delivered and acked (stalled for %v)",
			res.Sent-res.Acked, res.Sent, stallTimeout)
	}
	return res, ctx.Err()
}

// pump keeps inflight Sends of the pair outstanding until it has sent
// them all, as a client with a queue of messages would: the responses'
// callbacks (on the connection's reader goroutine) return their slots, and
// each time the pump wakes it sends as many messages as there are free
// slots, in one write. No goroutine waits on a response: at the rates
// measured, every handoff between goroutines costs the two cores more than
// the rest of the tool's work on a message.
func (p *pair) pump(ctx context.Context, start time.Time, c *counters, inflight int) {
	var returned atomic.Int64
	wake := make(chan struct{}, 1)
	release := func() {
		returned.Add(1)
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	free := inflight
	for {
		free += int(returned.Swap(0))
		next := int(p.next.Load())
		if next >= p.total && free == inflight {
			return // all sent and answered
		}
		if k := min(free, p.total-next); k > 0 {
			p.next.Store(int64(next + k))
			free -= k
			p.sendBatch(ctx, start, next, k, c, release)
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}

// sendBatch sends messages [from, from+k) in one write, like send.
func (p *pair) sendBatch(ctx context.Context, start time.Time, from, k int, c *counters, then func()) {
	bodies := make([]proto.Message, k)
	t0 := time.Now()
	for i := range k {
		bodies[i] = p.pool[(from+i)%len(p.pool)]
		p.sentAt[from+i].Store(int64(t0.Sub(start)) + 1)
	}
	err := benchclient.StartBatch(ctx, p.senderAnon, bodies, func(_ int, _ *wirepb.Response, retried int, err error) {
		p.sent(ctx, c, time.Since(t0), retried, err)
		then()
	})
	if err != nil {
		for range k {
			p.sent(ctx, c, 0, 0, err)
			then()
		}
	}
}

// send sends message n (a copy of pool envelope n mod pool size) and
// records its outcome when the response comes; then, if it was sent, it
// calls then. The error says that it could not be sent (then is not
// called; the failure is counted).
func (p *pair) send(ctx context.Context, start time.Time, n int, c *counters, then func()) error {
	send := p.pool[n%len(p.pool)]
	t0 := time.Now()
	p.sentAt[n].Store(int64(t0.Sub(start)) + 1)
	err := benchclient.Start(ctx, p.senderAnon, send, func(_ *wirepb.Response, retried int, err error) {
		p.sent(ctx, c, time.Since(t0), retried, err)
		then()
	})
	if err != nil {
		p.sent(ctx, c, 0, 0, err)
	}
	return err
}

// sent records the outcome of one Send.
func (p *pair) sent(ctx context.Context, c *counters, lat time.Duration, retried int, err error) {
	c.retries.Add(int64(retried))
	if err != nil {
		if ctx.Err() == nil {
			c.errors.Add(1)
			p.fail(fmt.Errorf("send: %w", err))
		}
		return
	}
	c.sent.Add(1)
	p.mu.Lock()
	if p.open {
		p.sendLat = append(p.sendLat, lat)
	}
	p.mu.Unlock()
}

// fail records the pair's first failure.
func (p *pair) fail(err error) {
	p.mu.Lock()
	if p.firstFailure == nil && p.open {
		p.firstFailure = err
	}
	p.mu.Unlock()
}

// schedule sends the pair's messages at fixed intervals from start+offset,
// at most inflight at once, recording how late it was at worst; it returns
// once every Send it made is answered.
func (p *pair) schedule(ctx context.Context, start time.Time, offset, interval time.Duration, inflight int, c *counters, maxLag *atomic.Int64) {
	sem := make(chan struct{}, inflight)
	defer func() { // wait for the Sends in flight
		for range inflight {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	release := func() { <-sem }
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for n := range p.total {
		due := start.Add(offset + time.Duration(n)*interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		for lag := int64(time.Since(due)); ; {
			old := maxLag.Load()
			if lag <= old || maxLag.CompareAndSwap(old, lag) {
				break
			}
		}
		if p.send(ctx, start, n, c, release) != nil {
			release()
		}
	}
}

// receive takes one push to the receiver, on its connection's reader
// goroutine: it notes each envelope's delivery latency from the side
// table and queues the ids for a quiet Ack.
func (p *pair) receive(ctx context.Context, start time.Time, c *counters, push *wirepb.Push) {
	envs := push.GetEnvelopes().GetEnvelopes()
	if len(envs) == 0 {
		return
	}
	now := time.Since(start)
	ids := make([]uint64, len(envs))
	var lats, sentOf []time.Duration
	unmatched := 0
	for i, e := range envs {
		ids[i] = e.GetId()
		slot, found := p.slots[contentKey(e.GetContent())]
		if !found {
			unmatched++
			continue
		}
		n := p.cycles[slot]*len(p.pool) + slot
		p.cycles[slot]++
		if n >= len(p.sentAt) || p.sentAt[n].Load() == 0 {
			unmatched++
			continue
		}
		sent := time.Duration(p.sentAt[n].Load() - 1)
		lats = append(lats, now-sent)
		if p.tracing {
			sentOf = append(sentOf, sent)
		}
	}
	c.delivered.Add(int64(len(envs)))
	c.unmatched.Add(int64(unmatched))
	p.mu.Lock()
	if p.open {
		p.deliveryLat = append(p.deliveryLat, lats...)
		p.sentOf = append(p.sentOf, sentOf...)
	}
	p.mu.Unlock()
	p.queueAcks(ctx, start, c, ids)
}

// queueAcks acks as clients do: quiet Acks (no answer, nothing waited
// for), each gathering the ids pushed within wire.AckDelay of the first
// (up to wire.MaxAckIDs). confirmAck later proves they were carried out.
func (p *pair) queueAcks(ctx context.Context, start time.Time, c *counters, ids []uint64) {
	p.ackMu.Lock()
	p.ackBatch = append(p.ackBatch, ids...)
	first := len(p.ackBatch) == len(ids)
	full := len(p.ackBatch) > wire.MaxAckIDs-wire.MaxEnvelopesPerPush
	p.ackMu.Unlock()
	switch {
	case full: // the next push could overfill it
		p.flushAcks(ctx, start, c)
	case first:
		time.AfterFunc(wire.AckDelay, func() { p.flushAcks(ctx, start, c) })
	}
}

// flushAcks sends the gathered ids in one quiet Ack. A timer that finds the
// batch already sent sends what gathered since, a little early.
func (p *pair) flushAcks(ctx context.Context, start time.Time, c *counters) {
	p.ackMu.Lock()
	batch := p.ackBatch
	p.ackBatch = nil
	p.ackMu.Unlock()
	if len(batch) == 0 || ctx.Err() != nil {
		return
	}
	if err := p.recvAuth.Post(ctx, &wirepb.Ack{Ids: batch, Quiet: true}); err != nil {
		if ctx.Err() == nil {
			c.errors.Add(1)
			p.fail(fmt.Errorf("ack: %w", err))
		}
		return
	}
	for top := slices.Max(batch); ; {
		old := p.lastAckID.Load()
		if top <= old || p.lastAckID.CompareAndSwap(old, top) {
			break
		}
	}
	c.acked.Add(int64(len(batch)))
	c.lastAck.Store(int64(time.Since(start)))
}

// confirmAck waits until the server has carried out the pair's quiet
// acks: it acks the last id again, answered. The server queues a
// connection's acks for its store in the order it reads them, and the
// store commits them in that order, so the answer comes after the rest.
func (p *pair) confirmAck(ctx context.Context) error {
	last := p.lastAckID.Load()
	if last == 0 {
		return nil
	}
	_, err := benchclient.Do(ctx, p.recvAuth, &wirepb.Ack{Ids: []uint64{last}}, nil)
	return err
}

// writeTrace writes every delivered message of the timed phase as a CSV
// row of its send time and delivery latency, in milliseconds, by send time.
func writeTrace(path string, pairs []*pair) error {
	type point struct{ sent, lat time.Duration }
	var pts []point
	for _, p := range pairs {
		for i, lat := range p.deliveryLat {
			pts = append(pts, point{p.sentOf[i], lat})
		}
	}
	slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.sent, b.sent) })
	var b strings.Builder
	b.WriteString("sent_ms,delivery_ms\n")
	for _, pt := range pts {
		fmt.Fprintf(&b, "%.3f,%.3f\n", ms(pt.sent), ms(pt.lat))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("-trace: %w", err)
	}
	return nil
}
