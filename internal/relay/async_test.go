package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/store/sqlite"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// mailboxModes runs a test with the store's mailboxes in the queue (Sends
// and quiet acks handled without a goroutine, store.AsyncMailboxes) and in
// the database (every request on a worker).
func mailboxModes(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("queue", func(t *testing.T) {
		e := newEnv(t)
		if e.relay.async == nil {
			t.Fatal("the queue's mailboxes are not used without waiting")
		}
		test(t, e)
	})
	t.Run("table", func(t *testing.T) {
		e := newEnv(t, func(cfg *Config) {
			st, err := sqlite.Open(context.Background(), t.TempDir()+"/table.db", sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			cfg.Store = st
		})
		if e.relay.async != nil {
			t.Fatal("mailboxes in the database taken as asynchronous")
		}
		test(t, e)
	})
}

// nextEnvelopes returns the envelopes of the next push that carries some.
func nextEnvelopes(t *testing.T, c *wsclient.Conn) []*wirepb.Envelope {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p, ok := <-c.Pushes():
			if !ok {
				t.Fatalf("connection closed: %v", c.Err())
			}
			if envs := p.GetEnvelopes().GetEnvelopes(); len(envs) > 0 {
				return envs
			}
		case <-timeout:
			t.Fatal("no envelopes pushed within 10s")
		}
	}
}

func TestQuietAcks(t *testing.T) {
	mailboxModes(t, func(t *testing.T, e *env) {
		alice, bob := e.register("alice"), e.register("bob")
		alice.connect()
		bob.connect()
		for i := range 3 {
			if err := alice.sendTo(bob, fmt.Sprint("quiet ", i)); err != nil {
				t.Fatal(err)
			}
		}
		var ids []uint64
		for len(ids) < 3 {
			for _, env := range nextEnvelopes(t, bob.authConn) {
				ids = append(ids, env.Id)
			}
		}

		// A quiet ack that is carried out gets no answer at all.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := bob.authConn.Do(ctx, &wirepb.Ack{Ids: ids[:2], Quiet: true})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("quiet ack: %v, want no answer", err)
		}
		// An answered ack still is.
		do(t, bob.authConn, &wirepb.Ack{Ids: ids[2:]})

		// One the server refuses is answered with its error, quiet or not.
		_, err = alice.anon.Do(context.Background(), &wirepb.Ack{Ids: ids, Quiet: true})
		var se *wsclient.StatusError
		if !errors.As(err, &se) || se.Code != wirepb.Code_UNAUTHENTICATED {
			t.Fatalf("quiet ack on an anonymous connection: %v, want UNAUTHENTICATED", err)
		}

		// Carried out: nothing comes again on the next connection.
		bob.authConn.Close()
		<-bob.authConn.Done()
		c := bob.connect()
		for {
			select {
			case p := <-c.Pushes():
				if envs := p.GetEnvelopes().GetEnvelopes(); len(envs) > 0 {
					t.Fatalf("acked envelope %d pushed again", envs[0].Id)
				}
				if p.GetQueueEmpty() != nil {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no QueueEmpty")
			}
		}
	})
}

// TestSendsBeyondTheInFlightLimit keeps many more Sends outstanding on one
// connection than it may run at once: the ones past the limit wait in the
// connection's queue and run as the slots of the running ones free up
// (which, with asynchronous mailboxes, happens on the store's writer).
func TestSendsBeyondTheInFlightLimit(t *testing.T) {
	mailboxModes(t, func(t *testing.T, e *env) {
		alice, bob := e.register("alice"), e.register("bob")
		alice.connect()
		bob.connect()
		// The first message sets up the session and fills the
		// recipient cache; the rest are copies of a second one (the
		// server never looks inside).
		if err := alice.sendTo(bob, "first"); err != nil {
			t.Fatal(err)
		}
		nextEnvelopes(t, bob.authConn)
		send := alice.sealSend(bob, "copy")
		const n = 4 * MaxInFlightPerConn
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				if _, err := alice.anon.Do(context.Background(), send); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("send: %v", err)
		}
		var got []uint64
		for len(got) < n {
			for _, env := range nextEnvelopes(t, bob.authConn) {
				got = append(got, env.Id)
			}
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("pushed out of order: %v", got)
			}
		}
		if len(got) != n {
			t.Fatalf("%d envelopes pushed, want %d", len(got), n)
		}
	})
}
