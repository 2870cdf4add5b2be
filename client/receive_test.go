package client

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/testserver"
)

// TestRedeliveredEnvelopeIsSilent: an envelope handled once (stored, its
// ack lost) that comes again is dropped without a message or an error,
// although its message keys are gone.
func TestRedeliveredEnvelopeIsSilent(t *testing.T) {
	url := testserver.Start(t)
	ctx := t.Context()
	alice, err := Create(ctx, Options{Server: url, Store: NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := Create(ctx, Options{Server: url, Store: NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	// Alice seals a message for Bob's device without sending it.
	cert, err := alice.certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	anon, err := alice.anonConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := alice.contact(ctx, bob.Account())
	if err := alice.startSessions(ctx, anon, ct, 0); err != nil {
		t.Fatal(err)
	}
	plaintext, err := alice.encodeText(MessageID{1}, time.Now(), "once")
	if err != nil {
		t.Fatal(err)
	}
	req, err := alice.seal(ctx, ct, cert, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	env := req.GetEnvelopes()[0].GetContent()
	for i := range 2 {
		if _, err := bob.receive(ctx, env); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	if n := len(bob.events); n != 1 {
		t.Fatalf("%d events for one message delivered twice", n)
	}
	if m := (<-bob.events).(MessageEvent).Message; m.Text != "once" {
		t.Fatalf("got %q", m.Text)
	}
}

func TestPruneSeen(t *testing.T) {
	c := &Client{store: NewMemoryStore()}
	ctx := t.Context()
	now := time.Now()
	stamp := func(at time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(at.Unix())) }
	c.store.Apply(ctx, []Write{
		{prefixEnvelope + "old", stamp(now.Add(-seenRetention - time.Hour))},
		{prefixEnvelope + "new", stamp(now.Add(-time.Hour))},
	})
	if err := c.pruneSeen(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := c.store.Get(ctx, prefixEnvelope+"old"); err == nil {
		t.Fatal("an envelope hash past retention was kept")
	}
	if _, err := c.store.Get(ctx, prefixEnvelope+"new"); err != nil {
		t.Fatal("a recent envelope hash was pruned")
	}
}
