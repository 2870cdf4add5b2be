package session

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"pgregory.net/rapid"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// model is a network of four devices — alice1, alice2 (one identity) and
// bob1, bob2 (another) — that send to each other in any pattern while the
// network drops, reorders, duplicates and corrupts messages.
type model struct {
	t        *rapid.T
	devices  []*device
	byName   map[string]*device
	inFlight []*flight
	done     []*flight // delivered messages, for replays
	// keysOf lists, per directed pair, the sender's ratchet keys in the order
	// it first used them, and which of them the receiver has seen.
	keysOf map[string]*keyLog
	count  int
}

type flight struct {
	wireMsg
	key []byte // the sender's ratchet key in the message
}

type keyLog struct {
	order     [][]byte
	delivered map[string]bool
}

func (l *keyLog) position(k []byte) int {
	for i, o := range l.order {
		if bytes.Equal(o, k) {
			return i
		}
	}
	l.order = append(l.order, k)
	return len(l.order) - 1
}

// deliverable reports whether the receiver still keeps the chain of key k:
// libsignal (and Sotto) keep ratchet.MaxReceiverChains chains, so a message
// held back past that many newer chains is undecryptable by design. The
// network model does not deliver such messages (it treats them as lost).
func (l *keyLog) deliverable(k []byte) bool {
	p := l.position(k)
	newer := 0
	for i := p + 1; i < len(l.order); i++ {
		if l.delivered[string(l.order[i])] {
			newer++
		}
	}
	return newer < ratchet.MaxReceiverChains-1
}

func pairKey(from, to string) string { return from + "→" + to }

func ratchetKeyOf(m wireMsg) []byte {
	if m.typ == ratchet.TypePreKey {
		pm, err := ratchet.ParsePreKeyMessage(m.body)
		if err != nil {
			panic(err)
		}
		return pm.Message.RatchetKey
	}
	sm, err := ratchet.ParseMessage(m.body)
	if err != nil {
		panic(err)
	}
	return sm.RatchetKey
}

func (m *model) init(t *rapid.T) {
	rand := testkit.Rand(fmt.Sprint("model", rapid.Int().Draw(t, "seed")))
	aliceID, _ := keys.GenerateKeyPair(rand)
	bobID, _ := keys.GenerateKeyPair(rand)
	m.byName = map[string]*device{}
	m.keysOf = map[string]*keyLog{}
	for _, d := range []*device{
		newDevice(t, rand, "alice1", &aliceID), newDevice(t, rand, "alice2", &aliceID),
		newDevice(t, rand, "bob1", &bobID), newDevice(t, rand, "bob2", &bobID),
	} {
		m.devices = append(m.devices, d)
		m.byName[d.name] = d
	}
}

func (m *model) send(t *rapid.T) {
	from := rapid.SampledFrom(m.devices).Draw(t, "from")
	to := rapid.SampledFrom(m.devices).Filter(func(d *device) bool { return d != from }).Draw(t, "to")
	if !from.record(to.name).HasUsableSession(epoch) {
		from.initiate(to, rapid.Bool().Draw(t, "oneTimePreKey"))
	}
	m.count++
	msg := from.send(to, fmt.Sprintf("#%d %s→%s", m.count, from.name, to.name))
	f := &flight{wireMsg: msg, key: ratchetKeyOf(msg)}
	log := m.log(from.name, to.name)
	log.position(f.key)
	m.inFlight = append(m.inFlight, f)
}

func (m *model) log(from, to string) *keyLog {
	l, ok := m.keysOf[pairKey(from, to)]
	if !ok {
		l = &keyLog{delivered: map[string]bool{}}
		m.keysOf[pairKey(from, to)] = l
	}
	return l
}

func (m *model) deliver(t *rapid.T) {
	if len(m.inFlight) == 0 {
		t.Skip("nothing in flight")
	}
	i := rapid.IntRange(0, len(m.inFlight)-1).Draw(t, "which")
	f := m.inFlight[i]
	m.inFlight = append(m.inFlight[:i], m.inFlight[i+1:]...)
	log := m.log(f.from, f.to)
	if !log.deliverable(f.key) {
		return // lost: too late to be decryptable by design
	}
	to := m.byName[f.to]
	got, err := to.receive(f.wireMsg)
	if err != nil {
		t.Fatalf("%s: %v", f.text, err)
	}
	if got != f.text {
		t.Fatalf("decrypted %q, want %q", got, f.text)
	}
	log.delivered[string(f.key)] = true
	m.done = append(m.done, f)
}

func (m *model) drop(t *rapid.T) {
	if len(m.inFlight) == 0 {
		t.Skip("nothing in flight")
	}
	i := rapid.IntRange(0, len(m.inFlight)-1).Draw(t, "which")
	m.inFlight = append(m.inFlight[:i], m.inFlight[i+1:]...)
}

// replay re-delivers a delivered message, both to the live record and to a
// copy restored from its serialized form (a thief's copy): it must not
// decrypt, and the record must not change.
func (m *model) replay(t *rapid.T) {
	if len(m.done) == 0 {
		t.Skip("nothing delivered")
	}
	f := rapid.SampledFrom(m.done).Draw(t, "replayed")
	to := m.byName[f.to]
	before := to.snapshot(f.from)
	if _, err := to.receive(f.wireMsg); err == nil {
		t.Fatalf("replay of %s decrypted", f.text)
	}
	if !bytes.Equal(before, to.snapshot(f.from)) {
		t.Fatalf("replay of %s changed the record", f.text)
	}
	var stolen Record
	if err := stolen.UnmarshalBinary(before); err != nil {
		t.Fatal(err)
	}
	live := to.records[f.from]
	to.records[f.from] = &stolen
	_, err := to.receive(f.wireMsg)
	to.records[f.from] = live
	if err == nil {
		t.Fatalf("used message key of %s still in the stored state", f.text)
	}
}

// corrupt delivers an in-flight message with one bit flipped: it must be
// rejected without changing the record, and the original still decrypts
// later.
func (m *model) corrupt(t *rapid.T) {
	if len(m.inFlight) == 0 {
		t.Skip("nothing in flight")
	}
	f := rapid.SampledFrom(m.inFlight).Draw(t, "corrupted")
	bit := rapid.IntRange(0, len(f.body)*8-1).Filter(func(bit int) bool {
		return !inRegistrationID(f.wireMsg, bit/8)
	}).Draw(t, "bit")
	bad := f.wireMsg
	bad.body = bytes.Clone(f.body)
	bad.body[bit/8] ^= 1 << (bit % 8)
	to := m.byName[f.to]
	before := to.snapshot(f.from)
	if got, err := to.receive(bad); err == nil {
		t.Fatalf("bit %d of %s flipped: decrypted to %q", bit, f.text, got)
	}
	if !bytes.Equal(before, to.snapshot(f.from)) {
		t.Fatalf("bit %d of %s flipped: record changed", bit, f.text)
	}
}

// propertyRounds multiplies rapid's default 100 runs: the model's rarer
// paths (a flipped bit that still yields a valid key, say) need many.
const propertyRounds = 5

func TestPropertyDeliveryModel(t *testing.T) {
	for range propertyRounds {
		checkDeliveryModel(t)
	}
}

func checkDeliveryModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := &model{t: t}
		m.init(t)
		t.Repeat(map[string]func(*rapid.T){
			"send":    m.send,
			"deliver": m.deliver,
			"drop":    m.drop,
			"replay":  m.replay,
			"corrupt": m.corrupt,
		})
	})
}

// TestPostCompromiseSecurity: a thief who copies Bob's state can read what
// follows only until the next DH ratchet step, which needs a private key the
// copy does not have.
func TestPostCompromiseSecurity(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	bob.mustReceive(alice.send(bob, "hello"))
	alice.mustReceive(bob.send(alice, "hi"))

	var stolen Record
	if err := stolen.UnmarshalBinary(bob.snapshot("alice")); err != nil {
		t.Fatal(err)
	}
	thief := newDevice(t, testkit.Rand("thief"), "bob", &bob.local.Identity)
	thief.records["alice"] = &stolen

	m1 := alice.send(bob, "before the step") // same chain as "hello"
	bob.mustReceive(m1)
	thief.mustReceive(m1) // the copy is current: it reads this one

	m2 := bob.send(alice, "bob's new ratchet key")
	alice.mustReceive(m2)
	m3 := alice.send(bob, "after the step")
	bob.mustReceive(m3)
	if got, err := thief.receive(m3); err == nil {
		t.Fatalf("stolen state decrypted a message after the DH ratchet step: %q", got)
	} else if !errors.Is(err, ratchet.ErrInvalidMessage) {
		t.Fatalf("unexpected error %v", err)
	}
}

// inRegistrationID reports whether byte i of a PreKeySignalMessage is in
// the value of its registration id, the one field the protocol leaves
// unauthenticated (see ratchet.PreKeyMessage; TestRegistrationIDMalleable).
func inRegistrationID(m wireMsg, i int) bool {
	if m.typ != ratchet.TypePreKey {
		return false
	}
	start, end := registrationIDSpan(m.body)
	return i >= start && i < end
}

// registrationIDSpan finds the value bytes of field 5 (tag 0x28).
func registrationIDSpan(b []byte) (int, int) {
	pos := 1
	for pos < len(b) {
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			return 0, 0
		}
		pos += n
		m := protowire.ConsumeFieldValue(num, typ, b[pos:])
		if m < 0 {
			return 0, 0
		}
		if num == 5 {
			return pos, pos + m
		}
		pos += m
	}
	return 0, 0
}

// TestRegistrationIDMalleable pins down the one unauthenticated field of a
// PreKeySignalMessage: rewriting the registration id still decrypts (as it
// does in libsignal) and only changes the id recorded for the peer.
func TestRegistrationIDMalleable(t *testing.T) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	m := alice.send(bob, "hello")
	start, end := registrationIDSpan(m.body)
	if end != start+1 {
		t.Fatalf("registration id spans %d bytes", end-start)
	}
	m.body = bytes.Clone(m.body)
	m.body[start] ^= 0x01
	bob.mustReceive(m)
	if got := bob.record("alice").Current().RemoteRegistrationID(); got == alice.local.RegistrationID {
		t.Fatal("expected the rewritten id")
	}
}
