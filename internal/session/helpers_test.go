package session

import (
	"fmt"
	"io"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/x3dh"
)

// tb is what the helpers need of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// device is one test device with its identity, prekeys and records.
type device struct {
	t       tb
	rand    io.Reader
	name    string
	local   Local
	pre     *MemoryPreKeys
	records map[string]*Record
	nextID  uint32
}

var epoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newDevice(t tb, rand io.Reader, name string, identity *keys.KeyPair) *device {
	t.Helper()
	var id keys.KeyPair
	if identity != nil {
		id = *identity
	} else {
		var err error
		if id, err = keys.GenerateKeyPair(rand); err != nil {
			t.Fatal(err)
		}
	}
	pre := NewMemoryPreKeys()
	return &device{
		t: t, rand: rand, name: name, pre: pre, records: map[string]*Record{},
		local: Local{Identity: id, RegistrationID: uint32(len(name)) + 100, PreKeys: pre},
	}
}

// bundle publishes a fresh bundle (with or without a one-time prekey).
func (d *device) bundle(oneTime bool, kem keys.KEMType) *x3dh.Bundle {
	d.t.Helper()
	d.nextID++
	id := d.nextID
	spk, err := keys.GenerateSignedPreKey(d.rand, d.local.Identity.Private, keys.SignedPreKeyID(id), epoch)
	if err != nil {
		d.t.Fatal(err)
	}
	kpk, err := keys.GenerateKEMPreKey(d.rand, d.local.Identity.Private, kem, keys.KEMPreKeyID(id), epoch)
	if err != nil {
		d.t.Fatal(err)
	}
	d.pre.Signed[spk.ID], d.pre.KEM[kpk.ID] = spk, kpk
	b := &x3dh.Bundle{
		RegistrationID: d.local.RegistrationID, DeviceID: 1, IdentityKey: d.local.Identity.Public,
		SignedPreKeyID: spk.ID, SignedPreKey: spk.Key.Public, SignedPreKeySignature: spk.Signature[:],
		KEMPreKeyID: kpk.ID, KEMPreKey: kpk.Key.Public, KEMPreKeySignature: kpk.Signature[:],
	}
	if oneTime {
		pk, err := keys.GeneratePreKey(d.rand, keys.PreKeyID(id))
		if err != nil {
			d.t.Fatal(err)
		}
		d.pre.EC[pk.ID] = pk
		b.HasPreKey, b.PreKeyID, b.PreKey = true, pk.ID, pk.Key.Public
	}
	return b
}

func (d *device) record(peer string) *Record {
	r, ok := d.records[peer]
	if !ok {
		r = &Record{}
		d.records[peer] = r
	}
	return r
}

func (d *device) initiate(peer *device, oneTime bool) {
	d.t.Helper()
	if err := d.record(peer.name).Initiate(d.rand, d.local.Identity, d.local.RegistrationID, peer.bundle(oneTime, keys.DefaultKEM), epoch); err != nil {
		d.t.Fatal(err)
	}
}

type wireMsg struct {
	from, to string
	typ      ratchet.MessageType
	body     []byte
	text     string
}

func (d *device) send(peer *device, text string) wireMsg {
	d.t.Helper()
	typ, body, err := d.record(peer.name).Encrypt([]byte(text), epoch)
	if err != nil {
		d.t.Fatalf("%s → %s: %v", d.name, peer.name, err)
	}
	return wireMsg{from: d.name, to: peer.name, typ: typ, body: body, text: text}
}

// receive decrypts m, consuming one-time prekeys like a client would.
func (d *device) receive(m wireMsg) (string, error) {
	r := d.record(m.from)
	switch m.typ {
	case ratchet.TypePreKey:
		pm, err := ratchet.ParsePreKeyMessage(m.body)
		if err != nil {
			return "", err
		}
		res, err := r.DecryptPreKey(d.rand, &d.local, pm)
		if err != nil {
			return "", err
		}
		if res.HasPreKey {
			delete(d.pre.EC, res.PreKeyID)
		}
		return string(res.Plaintext), nil
	case ratchet.TypeWhisper:
		sm, err := ratchet.ParseMessage(m.body)
		if err != nil {
			return "", err
		}
		pt, err := r.Decrypt(d.rand, sm)
		return string(pt), err
	}
	return "", fmt.Errorf("unknown type %d", m.typ)
}

func (d *device) mustReceive(m wireMsg) {
	d.t.Helper()
	got, err := d.receive(m)
	if err != nil {
		d.t.Fatalf("%s ← %s %q: %v", d.name, m.from, m.text, err)
	}
	if got != m.text {
		d.t.Fatalf("%s ← %s: got %q, want %q", d.name, m.from, got, m.text)
	}
}

func (d *device) snapshot(peer string) []byte {
	d.t.Helper()
	b, err := d.record(peer).MarshalBinary()
	if err != nil {
		d.t.Fatal(err)
	}
	return b
}
