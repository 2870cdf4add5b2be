package relay

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// TestIdleConnectionsHoldNoGoroutines: authenticated connections with
// nothing to do leave no goroutine behind in the server (the poller reads
// them; writers and mailbox readers end when their work does).
func TestIdleConnectionsHoldNoGoroutines(t *testing.T) {
	e := newEnv(t)
	devs := make([]*device, 0, 20)
	for i := range cap(devs) {
		devs = append(devs, e.register("idle"+string(rune('a'+i))))
	}
	// Each register above opened two connections per device; open 100
	// more authenticated connections.
	for i := range 100 {
		devs[i%len(devs)].connect()
	}
	// Count the goroutines running server code once the connections
	// have settled; the poller's loops (one per CPU) and the ping loop
	// are the relay's fixed cost. Idle workers (at most maxIdleWorkers,
	// however many connections) end once they stay idle between two
	// trims: trim twice, as two trim periods of quiet would.
	fixed := runtime.GOMAXPROCS(0) + 1
	var server []string
	for range 100 {
		time.Sleep(20 * time.Millisecond)
		e.relay.workers.trim()
		e.relay.workers.trim()
		server = serverGoroutines()
		if len(server) <= fixed {
			return
		}
	}
	t.Fatalf("%d server goroutines for 140 idle connections, want %d:\n%s", len(server), fixed, strings.Join(server, "\n\n"))
}

// serverGoroutines returns the stacks of goroutines running the relay's,
// the poller's or net/http's server code.
func serverGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") {
			continue // the test itself
		}
		if strings.Contains(g, "internal/relay.") || strings.Contains(g, "internal/netpoll.") ||
			strings.Contains(g, "net/http.(*conn).serve") {
			out = append(out, g)
		}
	}
	return out
}

// TestSlowReaderBounded: a device that stops reading while its mailbox is
// large does not make the server queue its mailbox in memory.
func TestSlowReaderBounded(t *testing.T) {
	e := newEnv(t)
	bob := e.register("bob")
	ctx := context.Background()
	// 200 envelopes of 60 KiB (12 MB) wait for bob's device: more than
	// both socket buffers hold.
	content := make([]byte, 60<<10)
	for i := 0; i < 200; i += 10 {
		envs := make([]*store.Envelope, 10)
		for j := range envs {
			envs[j] = &store.Envelope{Account: bob.account, Device: bob.id, Content: content, Expires: 1 << 30}
		}
		if err := e.store.Append(ctx, envs); err != nil {
			t.Fatal(err)
		}
	}
	// Bob authenticates, then never reads again.
	slow := bob.connectRaw()
	deadline := time.Now().Add(2 * time.Second)
	var worst int
	for time.Now().Before(deadline) {
		e.relay.mu.Lock()
		for c := range e.relay.conns {
			c.out.Lock()
			worst = max(worst, len(c.outBuf)+c.pendingBytes)
			c.out.Unlock()
		}
		e.relay.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	if limit := pushHighWater + pushBudget; worst > limit {
		t.Fatalf("%d bytes queued for a peer that does not read, limit %d", worst, limit)
	}
	if worst == 0 {
		t.Fatal("nothing queued: the test did not exercise back-pressure")
	}
	slow.CloseNow()
}

// connectRaw authenticates a connection as d and returns it without a
// reader: nothing more is read from it.
func (d *device) connectRaw() *websocket.Conn {
	d.t.Helper()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, d.e.url, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	c.SetReadLimit(-1)
	roundTrip := func(id uint64, body proto.Message) *wirepb.Response {
		b, err := wire.Encode(wire.NewRequest(id, body))
		if err != nil {
			d.t.Fatal(err)
		}
		if err := c.Write(ctx, websocket.MessageBinary, b); err != nil {
			d.t.Fatal(err)
		}
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				d.t.Fatal(err)
			}
			f, err := wire.Decode(b)
			if err != nil {
				d.t.Fatal(err)
			}
			if r := f.GetResponse(); r != nil && r.Id == id {
				return r
			}
		}
	}
	nonce := roundTrip(1, &wirepb.GetChallenge{}).GetChallenge().Nonce
	sig, _ := d.auth.Private.Sign(d.rand, wire.AuthMessage(nonce, d.account[:], uint32(d.id)))
	if r := roundTrip(2, &wirepb.Authenticate{AccountId: d.account[:], DeviceId: uint32(d.id), Signature: sig[:]}); r.GetStatus().GetCode() != wirepb.Code_OK {
		d.t.Fatalf("authenticate: %v", r.GetStatus())
	}
	return c
}

// TestLivePushesInOrder: envelopes sent while the device is connected come
// in id order with no gaps and none twice, whether pushed directly or read
// from the store.
func TestLivePushesInOrder(t *testing.T) {
	e := newEnv(t)
	bob := e.register("bob")
	ctx := context.Background()
	const n = 2000
	go func() {
		// Four concurrent senders: ids interleave between them.
		for w := range 4 {
			go func() {
				for i := w; i < n; i += 4 {
					env := &store.Envelope{Account: bob.account, Device: bob.id, Content: []byte{byte(i)}, Expires: 1 << 30}
					if err := e.store.Append(ctx, []*store.Envelope{env}); err != nil {
						return
					}
					e.relay.deliver([]*store.Envelope{env})
				}
			}()
		}
	}()
	// Acks go from a goroutine of their own: a reader that waited for
	// each ack's response would stop reading pushes, and the client's
	// push buffer would fill ahead of the response.
	acks := make(chan []uint64, n)
	ackErr := make(chan error, 1)
	go func() {
		for ids := range acks {
			if _, err := bob.authConn.Do(ctx, &wirepb.Ack{Ids: ids}); err != nil {
				ackErr <- err
				return
			}
		}
		close(ackErr)
	}()
	var last uint64
	got := 0
	timeout := time.After(20 * time.Second)
	for got < n {
		select {
		case p := <-bob.authConn.Pushes():
			envs := p.GetEnvelopes()
			if envs == nil {
				continue
			}
			ids := make([]uint64, 0, len(envs.Envelopes))
			for _, env := range envs.Envelopes {
				if env.Id <= last {
					t.Fatalf("envelope %d after %d", env.Id, last)
				}
				last = env.Id
				ids = append(ids, env.Id)
				got++
			}
			acks <- ids
		case err := <-ackErr:
			t.Fatalf("ack: %v", err)
		case <-timeout:
			t.Fatalf("%d of %d envelopes pushed", got, n)
		}
	}
	close(acks)
	if err := <-ackErr; err != nil {
		t.Fatalf("ack: %v", err)
	}
	if want := e.relay.m.envelopesOut.Value(); want != n {
		t.Fatalf("%d envelopes pushed, want %d", want, n)
	}
}
