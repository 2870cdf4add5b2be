package session

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/testkit"
)

func pair(t *testing.T) (*device, *device) {
	r := testkit.Rand(t.Name())
	return newDevice(t, r, "alice", nil), newDevice(t, r, "bob", nil)
}

func TestConversation(t *testing.T) {
	for _, oneTime := range []bool{true, false} {
		t.Run(fmt.Sprintf("oneTimePreKey=%v", oneTime), func(t *testing.T) {
			alice, bob := pair(t)
			alice.initiate(bob, oneTime)
			first := alice.send(bob, "hello")
			if first.typ != ratchet.TypePreKey {
				t.Fatalf("first message type %d, want PreKey", first.typ)
			}
			second := alice.send(bob, "again, before an answer")
			if second.typ != ratchet.TypePreKey {
				t.Fatal("messages before an answer must stay PreKey messages")
			}
			bob.mustReceive(first)
			if oneTime && len(bob.pre.EC) != 0 {
				t.Fatal("one-time prekey not consumed")
			}
			bob.mustReceive(second)
			reply := bob.send(alice, "hi")
			if reply.typ != ratchet.TypeWhisper {
				t.Fatal("Bob's reply must be a SignalMessage")
			}
			alice.mustReceive(reply)
			if m := alice.send(bob, "after the answer"); m.typ != ratchet.TypeWhisper {
				t.Fatal("after an answer Alice must send SignalMessages")
			} else {
				bob.mustReceive(m)
			}
			for i := range 1000 {
				from, to := alice, bob
				if rand.N(3) == 0 {
					from, to = bob, alice
				}
				to.mustReceive(from.send(to, fmt.Sprintf("message %d", i)))
			}
		})
	}
}

func TestOutOfOrder(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	bob.mustReceive(alice.send(bob, "start"))
	alice.mustReceive(bob.send(alice, "ok"))

	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 5 {
		var window []wireMsg
		for i := range 100 {
			window = append(window, alice.send(bob, fmt.Sprintf("r%d m%d", round, i)))
		}
		rng.Shuffle(len(window), func(i, j int) { window[i], window[j] = window[j], window[i] })
		for _, m := range window {
			bob.mustReceive(m)
		}
		alice.mustReceive(bob.send(alice, "ack"))
	}

	// A skip of exactly MaxSkippedKeys: the skipped ones all stay decryptable.
	var skipped []wireMsg
	for i := range ratchet.MaxSkippedKeys {
		skipped = append(skipped, alice.send(bob, fmt.Sprintf("skipped %d", i)))
	}
	bob.mustReceive(alice.send(bob, "after the skip"))
	for i := len(skipped) - 1; i >= 0; i-- {
		bob.mustReceive(skipped[i])
	}
}

func TestReplayAndDuplicateRejected(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	first := alice.send(bob, "first")
	bob.mustReceive(first)
	m := alice.send(bob, "once")
	bob.mustReceive(m)
	before := bob.snapshot("alice")
	if _, err := bob.receive(m); !errors.Is(err, ratchet.ErrDuplicate) {
		t.Fatalf("replay: %v, want ErrDuplicate", err)
	}
	if !bytes.Equal(before, bob.snapshot("alice")) {
		t.Fatal("replay changed the record")
	}
	// A replay of the first PreKey message, whose one-time prekey is gone.
	if _, err := bob.receive(first); err == nil {
		t.Fatal("replayed PreKey message decrypted again")
	}
	if !bytes.Equal(before, bob.snapshot("alice")) {
		t.Fatal("replayed PreKey message changed the record")
	}
}

func TestTamperingRejectedStateUnchanged(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	bob.mustReceive(alice.send(bob, "first"))
	alice.mustReceive(bob.send(alice, "reply"))
	m := alice.send(bob, "tamper with me")
	before := bob.snapshot("alice")
	for i := range len(m.body) * 8 {
		bad := m
		bad.body = bytes.Clone(m.body)
		bad.body[i/8] ^= 1 << (i % 8)
		if got, err := bob.receive(bad); err == nil {
			t.Fatalf("bit %d flipped: decrypted to %q", i, got)
		}
		if !bytes.Equal(before, bob.snapshot("alice")) {
			t.Fatalf("bit %d flipped: record changed", i)
		}
	}
	for n := range len(m.body) {
		bad := m
		bad.body = m.body[:n]
		if _, err := bob.receive(bad); err == nil {
			t.Fatalf("prefix of %d bytes decrypted", n)
		}
	}
	bob.mustReceive(m)
}

func TestTooFarAheadRejected(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	bob.mustReceive(alice.send(bob, "first"))
	for range ratchet.MaxForwardJump + 1 {
		alice.send(bob, "lost")
	}
	far := alice.send(bob, "too far")
	before := bob.snapshot("alice")
	if _, err := bob.receive(far); !errors.Is(err, ratchet.ErrTooFarAhead) {
		t.Fatalf("got %v, want ErrTooFarAhead", err)
	}
	if !bytes.Equal(before, bob.snapshot("alice")) {
		t.Fatal("rejected message changed the record")
	}
}

// Both devices start a session at once; each receives the other's PreKey
// message, and their records converge on one session after replies.
func TestSimultaneousInitiation(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	bob.initiate(alice, true)
	a1 := alice.send(bob, "from alice")
	b1 := bob.send(alice, "from bob")
	bob.mustReceive(a1)
	alice.mustReceive(b1)
	if alice.record("bob").Archived() != 1 || bob.record("alice").Archived() != 1 {
		t.Fatalf("archived sessions: %d, %d", alice.record("bob").Archived(), bob.record("alice").Archived())
	}
	// Alice now sends on the session Bob started; Bob's active session is
	// the one Alice started. Messages still decrypt, promoting the archived
	// session on Bob's side.
	for i := range 5 {
		bob.mustReceive(alice.send(bob, fmt.Sprintf("a%d", i)))
		alice.mustReceive(bob.send(alice, fmt.Sprintf("b%d", i)))
	}
	ab := alice.record("bob").Current().AliceBaseKey()
	ba := bob.record("alice").Current().AliceBaseKey()
	if !ab.Equal(ba) {
		t.Fatal("records did not converge on one session")
	}
}

func TestArchiveLimit(t *testing.T) {
	alice, bob := pair(t)
	for range MaxArchivedStates + 5 {
		alice.initiate(bob, false)
	}
	if n := alice.record("bob").Archived(); n != MaxArchivedStates {
		t.Fatalf("archived %d, want %d", n, MaxArchivedStates)
	}
}

func TestRecordSerialization(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	pending := alice.send(bob, "pending")
	// Round-trip Alice's record while the PreKey message is unanswered.
	var r Record
	if err := r.UnmarshalBinary(alice.snapshot("bob")); err != nil {
		t.Fatal(err)
	}
	alice.records["bob"] = &r
	again := alice.send(bob, "still pending")
	if again.typ != ratchet.TypePreKey {
		t.Fatal("pending prekey data lost in serialization")
	}
	bob.mustReceive(pending)
	bob.mustReceive(again)
	var skipped []wireMsg
	for i := range 50 {
		skipped = append(skipped, bob.send(alice, fmt.Sprintf("s%d", i)))
	}
	alice.mustReceive(skipped[49])
	var r2 Record
	if err := r2.UnmarshalBinary(alice.snapshot("bob")); err != nil {
		t.Fatal(err)
	}
	b1, _ := r2.MarshalBinary()
	if !bytes.Equal(b1, alice.snapshot("bob")) {
		t.Fatal("marshal(unmarshal(x)) != x")
	}
	alice.records["bob"] = &r2
	for _, m := range skipped[:49] {
		alice.mustReceive(m)
	}
}

func TestStaleUnacknowledgedSession(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	r := alice.record("bob")
	late := epoch.Add(ratchet.MaxUnacknowledgedSessionAge + 1)
	if r.HasUsableSession(late) {
		t.Fatal("stale session reported usable")
	}
	if _, _, err := r.Encrypt([]byte("x"), late); !errors.Is(err, ratchet.ErrStaleSession) {
		t.Fatalf("got %v, want ErrStaleSession", err)
	}
}

func TestUnknownPreKey(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	m := alice.send(bob, "hello")
	clear(bob.pre.KEM)
	if _, err := bob.receive(m); !errors.Is(err, ErrNoPreKey) {
		t.Fatalf("got %v, want ErrNoPreKey", err)
	}
}

func TestMLKEMAndKyberSessions(t *testing.T) {
	for _, kem := range []keys.KEMType{keys.Kyber1024, keys.MLKEM1024} {
		t.Run(kem.String(), func(t *testing.T) {
			alice, bob := pair(t)
			if err := alice.record("bob").Initiate(alice.rand, alice.local.Identity, 1, bob.bundle(true, kem), epoch); err != nil {
				t.Fatal(err)
			}
			m := alice.send(bob, "pq")
			pm, err := ratchet.ParsePreKeyMessage(m.body)
			if err != nil {
				t.Fatal(err)
			}
			if keys.KEMType(pm.KEMCiphertext[0]) != kem {
				t.Fatalf("KEM ciphertext type 0x%02x", pm.KEMCiphertext[0])
			}
			bob.mustReceive(m)
			alice.mustReceive(bob.send(alice, "ok"))
		})
	}
}

// A PreKeySignalMessage whose base or identity key is torsioned (a valid
// key plus a point of order 8) is refused at parsing, before any agreement.
func TestTorsionedKeysInPreKeyMessageRejected(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	m := alice.send(bob, "hello")
	pm, err := ratchet.ParsePreKeyMessage(m.body)
	if err != nil {
		t.Fatal(err)
	}
	order8 := edwardsPoint(t, "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	for name, k := range map[string]keys.PublicKey{"base key": pm.BaseKey, "identity key": pm.IdentityKey} {
		u := k.U()
		p := montgomeryToEdwards(t, u[:])
		torsioned := new(edwards25519.Point).Add(p, order8).BytesMontgomery()
		bad := bytes.Replace(m.body, k.Bytes(), append([]byte{keys.TypeDJB}, torsioned...), 1)
		if bytes.Equal(bad, m.body) {
			t.Fatalf("%s not found in the message", name)
		}
		if _, err := ratchet.ParsePreKeyMessage(bad); !errors.Is(err, keys.ErrTorsion) {
			t.Fatalf("torsioned %s: %v, want ErrTorsion", name, err)
		}
	}
	bob.mustReceive(m)
}

func edwardsPoint(t *testing.T, h string) *edwards25519.Point {
	t.Helper()
	b, _ := hex.DecodeString(h)
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// montgomeryToEdwards maps u to the Edwards point with y = (u−1)/(u+1).
func montgomeryToEdwards(t *testing.T, u []byte) *edwards25519.Point {
	t.Helper()
	var fu field.Element
	if _, err := fu.SetBytes(u); err != nil {
		t.Fatal(err)
	}
	one := new(field.Element).One()
	num := new(field.Element).Subtract(&fu, one)
	den := new(field.Element).Invert(new(field.Element).Add(&fu, one))
	p, err := new(edwards25519.Point).SetBytes(new(field.Element).Multiply(num, den).Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLargestMessage(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	bob.mustReceive(alice.send(bob, "first"))
	alice.mustReceive(bob.send(alice, "reply"))
	big := string(bytes.Repeat([]byte{'x'}, ratchet.MaxPlaintextSize))
	m := alice.send(bob, big)
	if len(m.body) > ratchet.MaxMessageSize {
		t.Fatalf("message of %d bytes exceeds MaxMessageSize", len(m.body))
	}
	bob.mustReceive(m)
	if _, _, err := alice.record("bob").Encrypt([]byte(big+"x"), epoch); !errors.Is(err, ratchet.ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}

// A repeat of Alice's PreKeySignalMessage with another identity key (a
// valid one) is a forgery: the session it names has another peer.
func TestRepeatPreKeyMessageWithOtherIdentityRejected(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	bob.mustReceive(alice.send(bob, "first"))
	second := alice.send(bob, "second")
	other, _ := keys.GenerateKeyPair(bob.rand)
	forged := second
	forged.body = bytes.Replace(second.body, alice.local.Identity.Public.Bytes(), other.Public.Bytes(), 1)
	before := bob.snapshot("alice")
	if _, err := bob.receive(forged); !errors.Is(err, ratchet.ErrPreKeyMismatch) {
		t.Fatalf("forged identity: %v, want ErrPreKeyMismatch", err)
	}
	if !bytes.Equal(before, bob.snapshot("alice")) {
		t.Fatal("forgery changed the record")
	}
	bob.mustReceive(second)
}
