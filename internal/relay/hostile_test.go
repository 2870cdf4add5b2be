package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/ws"
)

// TestTenThousandMalformedFrames sends 10,000 malformed frames of several
// kinds: frames whose request id can be read get an error response on a
// connection that stays open; the server's heap stays bounded; other clients
// are unaffected (goroutine leaks are caught by TestMain's goleak).
func TestTenThousandMalformedFrames(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice")
	ctx := context.Background()

	frame := func(id uint64, body proto.Message) []byte {
		b, err := proto.Marshal(wire.NewRequest(id, body)) // bypasses Encode's validation
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	kinds := [][]byte{
		frame(1<<40+1, &wirepb.LookupUsername{Hash: []byte("too short")}),                  // bad size
		frame(1<<40+2, &wirepb.Ack{Ids: []uint64{0}}),                                      // bad value
		frame(1<<40+3, &wirepb.Send{Recipient: make([]byte, 16)}),                          // missing envelopes
		frame(1<<40+4, &wirepb.Register{Seed: make([]byte, 32)}),                           // missing fields
		append(frame(1<<40+5, &wirepb.GetChallenge{}), 0xff),                               // trailing garbage
		frame(1<<40+6, &wirepb.SetUsername{Hash: append(make([]byte, 32), "\xc3\x28"...)}), // wrong size
	}
	c := e.dial()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 10_000 {
		if err := c.WriteRaw(ctx, kinds[i%len(kinds)]); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	// The connection is still open and answers a valid request after all
	// of them (wsclient drops the error responses: it did not send their
	// ids).
	do(t, c, &wirepb.GetChallenge{})
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	testkit.Summary(t, fmt.Sprintf("malformed frames: 10,000 refused, the connection answers after them, heap grew %.1f MB (bound 16)", float64(max(grew, 0))/(1<<20)))
	if grew > 16<<20 {
		t.Fatalf("heap grew by %d bytes over 10,000 malformed frames", grew)
	}
	if got := e.relay.m.badFrames.Value(); got < 10_000 {
		t.Fatalf("%d frames counted as malformed, want 10,000", got)
	}
	do(t, alice.authConn, &wirepb.ListDevices{})

	// Oversize frames close the connection with 1009 (message too big).
	big := e.dial()
	// The server refuses the frame from its header and closes without
	// reading the rest, so the write itself may fail (broken pipe or
	// reset): only the close matters.
	_ = big.WriteRaw(ctx, make([]byte, wire.MaxFrameSize+1))
	select {
	case <-big.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("oversize frame did not close the connection")
	}
}

// stallingStore is a store whose Ack waits until its context ends, as a
// stuck database would.
type stallingStore struct {
	store.Store
	canceled chan error
}

func (s *stallingStore) Ack(ctx context.Context, a store.AccountID, d store.DeviceID, ids []store.EnvelopeID) error {
	<-ctx.Done()
	s.canceled <- ctx.Err()
	return ctx.Err()
}

// TestStuckRequestClosesConnection: a request that outruns the handler
// timeout gets its connection closed with 1011, and its context ends, so
// a stuck store holds nothing for long; other connections go on.
func TestStuckRequestClosesConnection(t *testing.T) {
	const timeout = 300 * time.Millisecond
	var stall *stallingStore
	e := newEnv(t, func(c *Config) {
		stall = &stallingStore{Store: c.Store, canceled: make(chan error, 1)}
		c.Store = stall
		c.HandlerTimeout = timeout
	})
	d := e.register("stuck")
	c := d.connect()
	start := time.Now()
	_, err := c.Do(context.Background(), &wirepb.Ack{Ids: []uint64{1}})
	took := time.Since(start)
	if code := ws.CloseStatus(err); code != ws.StatusInternalError {
		t.Fatalf("a stuck request ended with %v (close code %v), want a 1011 close", err, code)
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Fatalf("the connection closed after %v, want about %v", took, timeout)
	}
	select {
	case err := <-stall.canceled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the stuck request's context ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck request's context never ended")
	}
	// The relay goes on serving.
	other := e.dial()
	if ch := do(t, other, &wirepb.GetChallenge{}).GetChallenge(); len(ch.GetNonce()) == 0 {
		t.Fatal("no challenge after a stuck request")
	}
}

// TestNetworkErrorsLoggedWithoutAddresses: what the relay logs of a
// network error names neither end of the connection.
func TestNetworkErrorsLoggedWithoutAddresses(t *testing.T) {
	peer := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 146), Port: 56607}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	err := fmt.Errorf("reading: %w", &net.OpError{Op: "read", Net: "tcp", Source: local, Addr: peer, Err: syscall.ECONNRESET})
	got := withoutAddrs(err).Error()
	if strings.Contains(got, "192.0.2.146") || strings.Contains(got, "127.0.0.1") || !strings.Contains(got, "connection reset") {
		t.Fatalf("logged as %q", got)
	}
	if !errors.Is(withoutAddrs(err), syscall.ECONNRESET) {
		t.Fatal("the cause is lost")
	}
}
