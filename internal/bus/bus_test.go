package bus

import "testing"

func TestLocal(t *testing.T) {
	var b Local
	d := Device{Account: [16]byte{1}, Device: 1}
	other := Device{Account: [16]byte{2}, Device: 1}
	ch1, cancel1 := b.Subscribe(d)
	ch2, cancel2 := b.Subscribe(d)
	b.Notify(d, d, other)
	for _, ch := range []<-chan struct{}{ch1, ch2} {
		select {
		case <-ch:
		default:
			t.Fatal("no signal")
		}
		select {
		case <-ch:
			t.Fatal("signals did not coalesce")
		default:
		}
	}
	cancel1()
	cancel1()
	if b.Subscribers() != 1 {
		t.Fatalf("%d subscribers", b.Subscribers())
	}
	cancel2()
	if b.Subscribers() != 0 || len(b.subs) != 0 {
		t.Fatal("subscription leaked")
	}
	b.Notify(d) // no subscribers: nothing blocks
}
