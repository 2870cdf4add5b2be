package storetest

import (
	"bytes"
	"sync"
	"testing"

	"github.com/sotto-chat/sotto/internal/store"
)

// Key ids uploadKeys uses.
const (
	signedID     = 7
	lastResortID = 9
	ecBase       = 100 // one-time EC prekeys are ecBase+1…
	kemBase      = 200 // one-time KEM prekeys are kemBase+1…
)

func signedKey(id uint32, tag string) store.SignedPreKey {
	return store.SignedPreKey{ID: id, Key: key(tag, int(id), 33), Signature: key("sig"+tag, int(id), 64)}
}

func ecKeys(from, n int) []store.PreKey {
	var ks []store.PreKey
	for i := from; i < from+n; i++ {
		ks = append(ks, store.PreKey{ID: uint32(ecBase + i), Key: key("ec", i, 33)})
	}
	return ks
}

func kemKeys(from, n int) []store.SignedPreKey {
	var ks []store.SignedPreKey
	for i := from; i < from+n; i++ {
		ks = append(ks, signedKey(uint32(kemBase+i), "kem"))
	}
	return ks
}

// uploadKeys gives a device a signed prekey, a last-resort KEM prekey, and
// nEC and nKEM one-time prekeys with ids 1…n above ecBase and kemBase.
func uploadKeys(t *testing.T, s store.Store, id store.AccountID, dev store.DeviceID, nEC, nKEM int) {
	t.Helper()
	ctx := t.Context()
	must(t, "SetSignedPreKey", s.SetSignedPreKey(ctx, id, dev, signedKey(signedID, "spk")))
	must(t, "SetLastResortKEMPreKey", s.SetLastResortKEMPreKey(ctx, id, dev, signedKey(lastResortID, "lr")))
	must(t, "AddPreKeys", s.AddPreKeys(ctx, id, dev, ecKeys(1, nEC), kemKeys(1, nKEM)))
}

func signedEqual(a, b store.SignedPreKey) bool {
	return a.ID == b.ID && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Signature, b.Signature)
}

func wantCounts(t *testing.T, s store.Store, id store.AccountID, dev store.DeviceID, ec, kem int) {
	t.Helper()
	gotEC, gotKEM, err := s.CountPreKeys(t.Context(), id, dev)
	if err != nil || gotEC != ec || gotKEM != kem {
		t.Fatalf("CountPreKeys(%d) = %d, %d, %v; want %d, %d", dev, gotEC, gotKEM, err, ec, kem)
	}
}

func testPreKeysNotFound(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	missing := accountID(2)
	for _, c := range []struct {
		a   store.AccountID
		dev store.DeviceID
	}{{id, 2}, {missing, 1}} {
		wantErr(t, "SetSignedPreKey", s.SetSignedPreKey(ctx, c.a, c.dev, signedKey(1, "spk")), store.ErrNotFound)
		wantErr(t, "SetLastResortKEMPreKey", s.SetLastResortKEMPreKey(ctx, c.a, c.dev, signedKey(1, "lr")), store.ErrNotFound)
		wantErr(t, "AddPreKeys", s.AddPreKeys(ctx, c.a, c.dev, ecKeys(1, 1), kemKeys(1, 1)), store.ErrNotFound)
		_, _, err := s.CountPreKeys(ctx, c.a, c.dev)
		wantErr(t, "CountPreKeys", err, store.ErrNotFound)
		_, err = s.TakeBundles(ctx, c.a, c.dev)
		wantErr(t, "TakeBundles", err, store.ErrNotFound)
	}
	_, err := s.TakeBundles(ctx, missing, 0)
	wantErr(t, "TakeBundles(missing, 0)", err, store.ErrNotFound)
}

func testAddPreKeys(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	wantCounts(t, s, id, 1, 0, 0)
	must(t, "AddPreKeys", s.AddPreKeys(ctx, id, 1, ecKeys(1, 5), kemKeys(1, 3)))
	wantCounts(t, s, id, 1, 5, 3)
	must(t, "AddPreKeys EC only", s.AddPreKeys(ctx, id, 1, ecKeys(6, 2), nil))
	must(t, "AddPreKeys KEM only", s.AddPreKeys(ctx, id, 1, nil, kemKeys(4, 2)))
	must(t, "AddPreKeys nothing", s.AddPreKeys(ctx, id, 1, nil, nil))
	wantCounts(t, s, id, 1, 7, 5)

	// A stored id, or one repeated in the call, refuses the whole call.
	err := s.AddPreKeys(ctx, id, 1, ecKeys(20, 2), kemKeys(5, 2))
	wantErr(t, "AddPreKeys stored KEM id", err, store.ErrExists)
	err = s.AddPreKeys(ctx, id, 1, ecKeys(7, 2), kemKeys(20, 2))
	wantErr(t, "AddPreKeys stored EC id", err, store.ErrExists)
	err = s.AddPreKeys(ctx, id, 1, append(ecKeys(30, 2), ecKeys(30, 1)...), nil)
	wantErr(t, "AddPreKeys repeated id", err, store.ErrExists)
	wantCounts(t, s, id, 1, 7, 5)

	// EC and KEM ids are separate, and so are devices.
	must(t, "AddPreKeys same id, other kind", s.AddPreKeys(ctx, id, 1,
		[]store.PreKey{{ID: kemBase + 1, Key: key("ec", 99, 33)}}, nil))
	addDevice(t, s, id, 2)
	must(t, "AddPreKeys same ids, other device", s.AddPreKeys(ctx, id, 2, ecKeys(1, 5), kemKeys(1, 3)))
	wantCounts(t, s, id, 1, 8, 5)
	wantCounts(t, s, id, 2, 5, 3)
}

func testMaxOneTimePreKeys(t *testing.T, open Opener) {
	l := store.DefaultLimits()
	l.MaxOneTimePreKeys = 5
	s := open(t, l)
	ctx := t.Context()
	id := newAccount(t, s, 1)
	must(t, "AddPreKeys", s.AddPreKeys(ctx, id, 1, ecKeys(1, 3), kemKeys(1, 3)))
	err := s.AddPreKeys(ctx, id, 1, ecKeys(4, 3), kemKeys(4, 1))
	wantErr(t, "AddPreKeys over the EC limit", err, store.ErrLimit)
	err = s.AddPreKeys(ctx, id, 1, ecKeys(4, 1), kemKeys(4, 3))
	wantErr(t, "AddPreKeys over the KEM limit", err, store.ErrLimit)
	wantCounts(t, s, id, 1, 3, 3)
	must(t, "AddPreKeys up to the limit", s.AddPreKeys(ctx, id, 1, ecKeys(4, 2), kemKeys(4, 2)))
	wantCounts(t, s, id, 1, 5, 5)
	err = s.AddPreKeys(ctx, id, 1, ecKeys(6, 1), nil)
	wantErr(t, "AddPreKeys at the limit", err, store.ErrLimit)

	// Taken keys make room again.
	must(t, "SetSignedPreKey", s.SetSignedPreKey(ctx, id, 1, signedKey(signedID, "spk")))
	if _, err := s.TakeBundles(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	must(t, "AddPreKeys after a take", s.AddPreKeys(ctx, id, 1, ecKeys(6, 1), kemKeys(6, 1)))
	wantCounts(t, s, id, 1, 5, 5)

	// One call over the limit on an empty device.
	addDevice(t, s, id, 2)
	wantErr(t, "AddPreKeys too many at once", s.AddPreKeys(ctx, id, 2, ecKeys(1, 6), nil), store.ErrLimit)
	wantCounts(t, s, id, 2, 0, 0)
}

func testTakeBundles(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 3)
	uploadKeys(t, s, id, 1, 2, 2)
	uploadKeys(t, s, id, 3, 2, 2)

	bs, err := s.TakeBundles(ctx, id, 0)
	must(t, "TakeBundles", err)
	if len(bs) != 2 || bs[0].Device != 1 || bs[1].Device != 3 {
		t.Fatalf("TakeBundles = %+v, want devices 1 and 3", bs)
	}
	wantRegs := []uint32{1001, 10}
	for i, b := range bs {
		if b.RegistrationID != wantRegs[i] {
			t.Errorf("device %d: RegistrationID %d, want %d", b.Device, b.RegistrationID, wantRegs[i])
		}
		if !signedEqual(b.SignedPreKey, signedKey(signedID, "spk")) {
			t.Errorf("device %d: SignedPreKey %+v", b.Device, b.SignedPreKey)
		}
		if b.PreKey == nil || b.PreKey.ID <= ecBase || b.PreKey.ID > ecBase+2 ||
			!bytes.Equal(b.PreKey.Key, key("ec", int(b.PreKey.ID-ecBase), 33)) {
			t.Errorf("device %d: PreKey %+v", b.Device, b.PreKey)
		}
		if b.KEMLastResort || b.KEMPreKey.ID <= kemBase || b.KEMPreKey.ID > kemBase+2 ||
			!signedEqual(b.KEMPreKey, signedKey(b.KEMPreKey.ID, "kem")) {
			t.Errorf("device %d: KEMPreKey %+v, last resort %v", b.Device, b.KEMPreKey, b.KEMLastResort)
		}
	}
	wantCounts(t, s, id, 1, 1, 1)
	wantCounts(t, s, id, 3, 1, 1)

	// One device only.
	bs2, err := s.TakeBundles(ctx, id, 3)
	must(t, "TakeBundles(3)", err)
	if len(bs2) != 1 || bs2[0].Device != 3 {
		t.Fatalf("TakeBundles(3) = %+v", bs2)
	}
	if bs2[0].PreKey == nil || bs2[0].PreKey.ID == bs[1].PreKey.ID || bs2[0].KEMPreKey.ID == bs[1].KEMPreKey.ID {
		t.Errorf("a one-time key was handed out twice: %+v then %+v", bs[1], bs2[0])
	}
	wantCounts(t, s, id, 1, 1, 1)
	wantCounts(t, s, id, 3, 0, 0)

	// Device 3 has run out: no EC prekey, the last-resort KEM key.
	for range 2 {
		bs3, err := s.TakeBundles(ctx, id, 3)
		must(t, "TakeBundles(3) when out", err)
		if len(bs3) != 1 {
			t.Fatalf("TakeBundles(3) = %+v", bs3)
		}
		b := bs3[0]
		if b.PreKey != nil || !b.KEMLastResort || !signedEqual(b.KEMPreKey, signedKey(lastResortID, "lr")) {
			t.Errorf("out of keys: PreKey %+v, KEMPreKey %+v, last resort %v", b.PreKey, b.KEMPreKey, b.KEMLastResort)
		}
	}
}

func testTakeBundlesLastResort(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	uploadKeys(t, s, id, 1, 3, 1)

	var ecSeen []uint32
	for i := range 3 {
		bs, err := s.TakeBundles(ctx, id, 0)
		must(t, "TakeBundles", err)
		if len(bs) != 1 || bs[0].PreKey == nil {
			t.Fatalf("take %d: %+v", i, bs)
		}
		ecSeen = append(ecSeen, bs[0].PreKey.ID)
		// The first take gets the one-time KEM key, later ones the last
		// resort, which stays.
		if lr := bs[0].KEMLastResort; lr != (i > 0) {
			t.Errorf("take %d: KEMLastResort = %v", i, lr)
		}
		if i > 0 && !signedEqual(bs[0].KEMPreKey, signedKey(lastResortID, "lr")) {
			t.Errorf("take %d: KEMPreKey = %+v, want the last-resort key", i, bs[0].KEMPreKey)
		}
	}
	if !distinct(ecSeen) {
		t.Errorf("EC one-time keys handed out twice: %v", ecSeen)
	}
	wantCounts(t, s, id, 1, 0, 0)

	// A new last-resort key replaces the old one.
	must(t, "SetLastResortKEMPreKey", s.SetLastResortKEMPreKey(ctx, id, 1, signedKey(lastResortID+1, "lr2")))
	bs, err := s.TakeBundles(ctx, id, 1)
	must(t, "TakeBundles", err)
	if len(bs) != 1 || !bs[0].KEMLastResort || !signedEqual(bs[0].KEMPreKey, signedKey(lastResortID+1, "lr2")) {
		t.Errorf("TakeBundles after replacing the last resort = %+v", bs)
	}
}

func distinct[T comparable](xs []T) bool {
	seen := make(map[T]bool, len(xs))
	for _, x := range xs {
		if seen[x] {
			return false
		}
		seen[x] = true
	}
	return true
}

func testTakeBundlesSkipsDevices(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	addDevice(t, s, id, 3)
	addDevice(t, s, id, 4)
	uploadKeys(t, s, id, 1, 1, 1)
	// Device 2: one-time keys and a last resort, but no signed prekey.
	must(t, "SetLastResortKEMPreKey", s.SetLastResortKEMPreKey(ctx, id, 2, signedKey(lastResortID, "lr")))
	must(t, "AddPreKeys", s.AddPreKeys(ctx, id, 2, ecKeys(1, 2), kemKeys(1, 2)))
	// Device 3: a signed prekey and EC keys, but no KEM key at all.
	must(t, "SetSignedPreKey", s.SetSignedPreKey(ctx, id, 3, signedKey(signedID, "spk")))
	must(t, "AddPreKeys", s.AddPreKeys(ctx, id, 3, ecKeys(1, 2), nil))
	// Device 4: nothing.

	bs, err := s.TakeBundles(ctx, id, 0)
	must(t, "TakeBundles", err)
	if len(bs) != 1 || bs[0].Device != 1 {
		t.Fatalf("TakeBundles = %+v, want device 1 only", bs)
	}
	// Skipped devices keep their keys.
	wantCounts(t, s, id, 2, 2, 2)
	wantCounts(t, s, id, 3, 2, 0)
	for _, dev := range []store.DeviceID{2, 3, 4} {
		bs, err := s.TakeBundles(ctx, id, dev)
		if err != nil || len(bs) != 0 {
			t.Errorf("TakeBundles(%d) = %+v, %v; want none", dev, bs, err)
		}
	}
	wantCounts(t, s, id, 2, 2, 2)
	wantCounts(t, s, id, 3, 2, 0)

	// A one-time KEM key alone (no last resort) makes device 3 usable.
	must(t, "AddPreKeys", s.AddPreKeys(ctx, id, 3, nil, kemKeys(1, 1)))
	bs, err = s.TakeBundles(ctx, id, 3)
	must(t, "TakeBundles(3)", err)
	if len(bs) != 1 || bs[0].KEMLastResort || bs[0].PreKey == nil {
		t.Fatalf("TakeBundles(3) = %+v", bs)
	}
	wantCounts(t, s, id, 3, 1, 0)
	bs, err = s.TakeBundles(ctx, id, 3)
	if err != nil || len(bs) != 0 {
		t.Errorf("TakeBundles(3) with no KEM key left = %+v, %v; want none", bs, err)
	}
	wantCounts(t, s, id, 3, 1, 0)
}

func testTakeBundlesReplacedKeys(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	uploadKeys(t, s, id, 1, 0, 0)
	must(t, "SetSignedPreKey", s.SetSignedPreKey(ctx, id, 1, signedKey(signedID+10, "spk2")))
	bs, err := s.TakeBundles(ctx, id, 0)
	must(t, "TakeBundles", err)
	if len(bs) != 1 || !signedEqual(bs[0].SignedPreKey, signedKey(signedID+10, "spk2")) {
		t.Fatalf("TakeBundles = %+v, want the replaced signed prekey", bs)
	}
	if bs[0].PreKey != nil || !bs[0].KEMLastResort {
		t.Errorf("TakeBundles = %+v, want no EC prekey and the last resort", bs[0])
	}
}

func testTakeBundlesConcurrent(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	const (
		goroutines = 50
		takes      = 3 // per goroutine
		total      = goroutines * takes
		// Device 1 has fewer one-time keys than there are takes; device
		// 2 has exactly one of each kind per take, so none of its
		// bundles may lack a one-time key.
		nEC  = 60
		nKEM = 45
	)
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	uploadKeys(t, s, id, 1, nEC, nKEM)
	uploadKeys(t, s, id, 2, total, total)

	type got struct {
		ec, kem []uint32 // device<<16 | key id
		lr      [3]int   // last-resort bundles per device
		noEC    [3]int   // bundles without an EC prekey per device
		err     error
	}
	results := make([]got, goroutines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			<-start
			r := &results[g]
			for range takes {
				bs, err := s.TakeBundles(ctx, id, 0)
				if err != nil {
					r.err = err
					return
				}
				if len(bs) != 2 {
					r.err = errTakeCount
					return
				}
				for _, b := range bs {
					if b.PreKey != nil {
						r.ec = append(r.ec, uint32(b.Device)<<16|b.PreKey.ID)
					} else {
						r.noEC[b.Device]++
					}
					if b.KEMLastResort {
						r.lr[b.Device]++
					} else {
						r.kem = append(r.kem, uint32(b.Device)<<16|b.KEMPreKey.ID)
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()

	var ec, kem []uint32
	var lr, noEC [3]int
	for _, r := range results {
		must(t, "TakeBundles", r.err)
		ec = append(ec, r.ec...)
		kem = append(kem, r.kem...)
		for d := range lr {
			lr[d] += r.lr[d]
			noEC[d] += r.noEC[d]
		}
	}
	if !distinct(ec) || !distinct(kem) {
		t.Fatal("a one-time prekey was handed out twice")
	}
	if len(ec) != nEC+total || len(kem) != nKEM+total {
		t.Errorf("handed out %d EC and %d KEM one-time keys, want %d and %d", len(ec), len(kem), nEC+total, nKEM+total)
	}
	if lr[1] != total-nKEM || noEC[1] != total-nEC {
		t.Errorf("device 1: %d last-resort bundles and %d without an EC key, want %d and %d", lr[1], noEC[1], total-nKEM, total-nEC)
	}
	if lr[2] != 0 || noEC[2] != 0 {
		t.Errorf("device 2: %d last-resort bundles and %d without an EC key while one-time keys remained", lr[2], noEC[2])
	}
	wantCounts(t, s, id, 1, 0, 0)
	wantCounts(t, s, id, 2, 0, 0)
}

type suiteError string

func (e suiteError) Error() string { return string(e) }

// errTakeCount reports a TakeBundles that left out a device with keys.
const errTakeCount = suiteError("TakeBundles did not return a bundle for every device")
