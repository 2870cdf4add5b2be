package client_test

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/testserver"
)

// probeReceipts is the count of probing receipts.
const probeReceipts = 1_000

// TestSilentReceiptProbing: a stranger (not Alice's contact) sends Alice
// 1,000 receipts for message ids she never sent (the "Careless Whisper"
// probe, which times a device's automatic answers to learn whether it is
// online). Alice's device answers nothing at all: nothing arrives in the
// stranger's mailbox, and Alice sees no receipt.
func TestSilentReceiptProbing(t *testing.T) {
	srv := testserver.New(t)
	ctx := testContext(t)
	alice, mallory := newAccount(t, srv.URL()), newAccount(t, srv.URL())
	if err := alice.SetUsername(ctx, "alice_probe"); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.AddContact(ctx, "alice_probe"); err != nil {
		t.Fatal(err)
	}
	mallory.stop() // Mallory only sends; what reaches her stays in her mailbox
	sender, err := client.Open(ctx, client.Options{Server: srv.URL(), Store: mallory.store})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	// One id per receipt, each a fresh guess: 1,000 probes.
	for i := range probeReceipts {
		var id client.MessageID
		rand.Read(id[:])
		if err := client.SendReceiptForTest(ctx, sender, alice.Account(), []client.MessageID{id}); err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
	}
	// Alice's device drains every probe (her mailbox empties), and not
	// one envelope goes back to Mallory's.
	st := srv.Store()
	held := func(d *device) int {
		envs, err := st.Read(ctx, store.AccountID(d.Account()), store.DeviceID(d.Device()), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(envs)
	}
	for deadline := time.Now().Add(20 * time.Second); held(alice) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Alice's device did not drain the probes: %d+ envelopes left", held(alice))
		}
	}
	none[client.ReceiptEvent](t, alice, 200*time.Millisecond) // answers, if any, have left by now
	n := held(mallory)
	testkit.Summary(t, fmt.Sprintf("silent-receipt probe: %d receipts for unknown ids from a stranger, answers = %d", probeReceipts, n))
	if n != 0 {
		t.Fatalf("Mallory's mailbox holds %d envelopes after the probe, want 0", n)
	}
}
