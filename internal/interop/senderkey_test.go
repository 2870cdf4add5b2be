package interop

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/sotto-chat/sotto/internal/oracle"
	"github.com/sotto-chat/sotto/internal/senderkey"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// TestLibsignalSenderKeys: a group with one Sotto and one libsignal member,
// each sending with its own sender key to the other (distribution messages
// and group messages in both directions), with messages out of order.
func TestLibsignalSenderKeys(t *testing.T) {
	ctx := context.Background()
	o := oracle.Start(t)
	l := newLibsignal(t, o, t.Name())
	rand := testkit.Rand(t.Name())
	sottoAddr := oracle.Address{Name: uuidFor(t.Name(), 9), DeviceID: 2}
	dist, err := senderkey.ParseDistributionID("d1b5a0b7-9b7e-4f3b-8d57-3f0e0a2b9c11")
	if err != nil {
		t.Fatal(err)
	}

	// Sotto → libsignal.
	var mine senderkey.Record
	skdm, err := mine.Create(rand, dist)
	if err != nil {
		t.Fatal(err)
	}
	info, err := l.ProcessSenderKeyDistribution(ctx, sottoAddr, skdm.Marshal())
	if err != nil {
		t.Fatalf("libsignal rejects Sotto's distribution message: %v", err)
	}
	if info.DistributionID != dist.String() || info.ChainID != uint32(skdm.ChainID) {
		t.Fatalf("libsignal read %+v", info)
	}
	var held [][]byte
	for i := range 300 {
		msg, err := mine.Encrypt(rand, []byte(fmt.Sprintf("group message %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			held = append(held, msg) // delivered late
			continue
		}
		got, err := l.GroupDecrypt(ctx, sottoAddr, msg)
		if err != nil || string(got) != fmt.Sprintf("group message %d", i) {
			t.Fatalf("libsignal group decrypt %d: %q, %v", i, got, err)
		}
	}
	for j := len(held) - 1; j >= 0; j-- {
		got, err := l.GroupDecrypt(ctx, sottoAddr, held[j])
		if err != nil || string(got) != fmt.Sprintf("group message %d", 3*j) {
			t.Fatalf("libsignal late group decrypt %d: %q, %v", 3*j, got, err)
		}
	}

	// libsignal → Sotto.
	raw, err := l.SenderKeyDistribution(ctx, dist.String())
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := senderkey.ParseDistributionMessage(raw)
	if err != nil {
		t.Fatalf("Sotto rejects libsignal's distribution message: %v", err)
	}
	if !bytes.Equal(theirs.Marshal(), raw) {
		t.Fatal("re-encoded distribution message differs from libsignal's bytes")
	}
	var fromLib senderkey.Record
	if err := fromLib.Process(theirs); err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	for i := range 300 {
		m, err := l.GroupEncrypt(ctx, dist.String(), []byte(fmt.Sprintf("from libsignal %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	order := []int{299}
	for i := range 299 {
		order = append(order, i)
	}
	for _, i := range order {
		parsed, err := senderkey.ParseMessage(msgs[i])
		if err != nil {
			t.Fatalf("parse libsignal group message %d: %v", i, err)
		}
		if !parsed.Verify(theirs.SigningKey) {
			t.Fatalf("signature of libsignal group message %d does not verify", i)
		}
		got, err := fromLib.Decrypt(msgs[i])
		if err != nil || string(got) != fmt.Sprintf("from libsignal %d", i) {
			t.Fatalf("Sotto group decrypt %d: %q, %v", i, got, err)
		}
	}
	if _, err := fromLib.Decrypt(msgs[10]); err == nil {
		t.Fatal("Sotto accepted a duplicate group message")
	}
}
