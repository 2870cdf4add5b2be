package bus

import "testing"

func TestLocal(t *testing.T) {
	var b Local
	d := Device{Account: [16]byte{1}, Device: 1}
	other := Device{Account: [16]byte{2}, Device: 1}
	var n1, n2 int
	cancel1 := b.Subscribe(d, func() { n1++ })
	cancel2 := b.Subscribe(d, func() { n2++ })
	b.Notify(d, other)
	if n1 != 1 || n2 != 1 {
		t.Fatalf("signals %d, %d", n1, n2)
	}
	cancel1()
	cancel1()
	b.Notify(d)
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
	b.Notify(d) // no subscribers: nothing happens
	// A callback may cancel its own subscription.
	var cancel3 func()
	cancel3 = b.Subscribe(d, func() { cancel3() })
	b.Notify(d)
	if b.Subscribers() != 0 {
		t.Fatal("self-cancel failed")
	}
}
