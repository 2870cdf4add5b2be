package bus

import (
	"testing"

	"github.com/sotto-chat/sotto/internal/store"
)

func TestLocal(t *testing.T) {
	var b Local
	d := Device{Account: [16]byte{1}, Device: 1}
	other := Device{Account: [16]byte{2}, Device: 1}
	var n1, n2 int
	var last store.EnvelopeID
	cancel1 := b.Subscribe(d, func(l store.EnvelopeID) { n1++; last = l })
	cancel2 := b.Subscribe(d, func(store.EnvelopeID) { n2++ })
	b.Notify(Signal{d, 7}, Signal{other, 9})
	if n1 != 1 || n2 != 1 {
		t.Fatalf("signals %d, %d", n1, n2)
	}
	if last != 7 {
		t.Fatalf("last id %d, want 7", last)
	}
	cancel1()
	cancel1()
	b.Notify(Signal{d, 8})
	if n1 != 1 || n2 != 2 {
		t.Fatalf("after cancel: %d, %d", n1, n2)
	}
	if b.Subscribers() != 1 {
		t.Fatalf("%d subscribers", b.Subscribers())
	}
	cancel2()
	if b.Subscribers() != 0 || len(b.subs) != 0 {
		t.Fatal("subscription leaked")
	}
	b.Notify(Signal{d, 9}) // no subscribers: nothing happens
	// A callback may cancel its own subscription.
	var cancel3 func()
	cancel3 = b.Subscribe(d, func(store.EnvelopeID) { cancel3() })
	b.Notify(Signal{d, 10})
	if b.Subscribers() != 0 {
		t.Fatal("self-cancel failed")
	}
}
