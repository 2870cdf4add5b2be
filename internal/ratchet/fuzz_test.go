package ratchet_test

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/x3dh"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// conversation is a pair of states set up through PQXDH, with the first
// messages each way, for seeding fuzz targets.
type conversation struct {
	alice, bob *ratchet.State
	preKey     []byte // Alice's first message (PreKeySignalMessage)
	toBob      []byte // a SignalMessage Alice → Bob, not yet delivered
	toAlice    []byte // a SignalMessage Bob → Alice, delivered
}

func newConversation(t testing.TB, rand io.Reader) *conversation {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	aliceID, err := keys.GenerateKeyPair(rand)
	must(err)
	bobID, err := keys.GenerateKeyPair(rand)
	must(err)
	spk, err := keys.GenerateSignedPreKey(rand, bobID.Private, 1, now)
	must(err)
	kpk, err := keys.GenerateKEMPreKey(rand, bobID.Private, keys.Kyber1024, 2, now)
	must(err)
	b := &x3dh.Bundle{
		RegistrationID: 7, DeviceID: 1, IdentityKey: bobID.Public,
		SignedPreKeyID: spk.ID, SignedPreKey: spk.Key.Public, SignedPreKeySignature: spk.Signature[:],
		KEMPreKeyID: kpk.ID, KEMPreKey: kpk.Key.Public, KEMPreKeySignature: kpk.Signature[:],
	}
	init, err := x3dh.Initiate(rand, aliceID, b)
	must(err)
	c := &conversation{}
	c.alice, err = ratchet.NewAlice(rand, &ratchet.Alice{Identity: aliceID, RegistrationID: 9, Bundle: b, Initiation: init, Now: now})
	must(err)
	_, c.preKey, err = c.alice.Encrypt([]byte("first"), now)
	must(err)
	pm, err := ratchet.ParsePreKeyMessage(c.preKey)
	must(err)
	secrets, err := x3dh.Respond(&x3dh.Responder{Identity: bobID, SignedPreKey: spk.Key, KEMPreKey: kpk.Key}, pm.IdentityKey, pm.BaseKey, pm.KEMCiphertext)
	must(err)
	c.bob = ratchet.NewBob(&ratchet.Bob{Identity: bobID, RegistrationID: 7, SignedPreKey: spk.Key, Secrets: secrets, Message: pm})
	if _, err := c.bob.Decrypt(rand, pm.Message); err != nil {
		t.Fatal(err)
	}
	_, c.toAlice, err = c.bob.Encrypt([]byte("reply"), now)
	must(err)
	m, err := ratchet.ParseMessage(c.toAlice)
	must(err)
	if _, err := c.alice.Decrypt(rand, m); err != nil {
		t.Fatal(err)
	}
	_, c.toBob, err = c.alice.Encrypt([]byte("second"), now)
	must(err)
	return c
}

// allocBound fails if fn allocates more than a small multiple of n bytes.
func allocBound(t *testing.T, n int, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(8*n+64<<10); got > limit {
		t.Fatalf("parsing %d bytes allocated %d bytes (limit %d)", n, got, limit)
	}
}

func FuzzParseMessage(f *testing.F) {
	c := newConversation(f, testkit.Rand("FuzzParseMessage"))
	f.Add(c.toBob)
	f.Add(c.toAlice)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m *ratchet.Message
		var err error
		allocBound(t, len(b), func() { m, err = ratchet.ParseMessage(b) })
		if err != nil {
			return
		}
		if !bytes.Equal(m.Bytes(), b) {
			t.Fatal("Bytes() differs from the input")
		}
		if canonicalMessage(m, b) {
			for i := range len(b) {
				if _, err := ratchet.ParseMessage(b[:i]); err == nil {
					t.Fatalf("strict prefix of %d/%d bytes parses", i, len(b))
				}
			}
		}
	})
}

// canonicalMessage reports whether b is the encoding Sotto and libsignal
// write for m's fields (ascending field order, minimal varints), the form in
// which no strict prefix may parse.
func canonicalMessage(m *ratchet.Message, b []byte) bool {
	return bytes.Equal(ratchet.EncodeMessageFields(m), b[1:len(b)-ratchet.MACSize])
}

func FuzzParsePreKeyMessage(f *testing.F) {
	c := newConversation(f, testkit.Rand("FuzzParsePreKeyMessage"))
	f.Add(c.preKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p *ratchet.PreKeyMessage
		var err error
		allocBound(t, len(b), func() { p, err = ratchet.ParsePreKeyMessage(b) })
		if err != nil {
			return
		}
		if !bytes.Equal(p.Bytes(), b) {
			t.Fatal("Bytes() differs from the input")
		}
		if bytes.Equal(ratchet.EncodePreKeyMessageFields(p), b[1:]) {
			for i := range len(b) {
				if _, err := ratchet.ParsePreKeyMessage(b[:i]); err == nil {
					t.Fatalf("strict prefix of %d/%d bytes parses", i, len(b))
				}
			}
		}
	})
}

// FuzzDecrypt feeds arbitrary SignalMessages to Bob: nothing but the genuine
// message may decrypt, and a failure leaves the state unchanged.
func FuzzDecrypt(f *testing.F) {
	rand := testkit.Rand("FuzzDecrypt")
	c := newConversation(f, rand)
	f.Add(c.toBob)
	flipped := bytes.Clone(c.toBob)
	flipped[len(flipped)-1] ^= 1
	f.Add(flipped)
	before, err := c.bob.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ratchet.ParseMessage(b)
		if err != nil {
			return
		}
		var bob ratchet.State
		if err := bob.UnmarshalBinary(before); err != nil {
			t.Fatal(err)
		}
		pt, err := bob.Decrypt(rand, m)
		if err == nil {
			if !bytes.Equal(b, c.toBob) || string(pt) != "second" {
				t.Fatalf("forged message decrypted to %q", pt)
			}
			return
		}
		after, _ := bob.MarshalBinary()
		if !bytes.Equal(before, after) {
			t.Fatal("failed decryption changed the state")
		}
	})
}

func FuzzUnmarshalState(f *testing.F) {
	c := newConversation(f, testkit.Rand("FuzzUnmarshalState"))
	for _, s := range []*ratchet.State{c.alice, c.bob} {
		b, err := s.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s ratchet.State
		var err error
		allocBound(t, len(b), func() { err = s.UnmarshalBinary(b) })
		if err != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var s2 ratchet.State
		if err := s2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-marshaled state does not decode: %v", err)
		}
		third, _ := s2.MarshalBinary()
		if !bytes.Equal(again, third) {
			t.Fatal("marshal is not stable")
		}
	})
}
