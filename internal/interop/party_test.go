package interop

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/oracle"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/session"
	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/x3dh"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// sotto is a Sotto device in a differential test: an identity, prekeys and
// session records per peer address, driven through the session package.
type sotto struct {
	t       testing.TB
	rand    io.Reader
	addr    oracle.Address
	local   session.Local
	pre     *session.MemoryPreKeys
	records map[oracle.Address]*session.Record
	nextID  uint32
}

// uuidFor makes a stable UUID-shaped name (service ids are UUIDs).
func uuidFor(seed string, n int) string {
	b := make([]byte, 16)
	io.ReadFull(testkit.Rand(fmt.Sprint(seed, n)), b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func newSotto(t testing.TB, seed string, deviceID uint32, identity *keys.KeyPair) *sotto {
	t.Helper()
	rand := testkit.Rand(seed)
	var id keys.KeyPair
	if identity != nil {
		id = *identity
	} else {
		var err error
		if id, err = keys.GenerateKeyPair(rand); err != nil {
			t.Fatal(err)
		}
	}
	pre := session.NewMemoryPreKeys()
	return &sotto{
		t: t, rand: rand, pre: pre, records: map[oracle.Address]*session.Record{},
		addr:  oracle.Address{Name: uuidFor(seed, 0), DeviceID: deviceID},
		local: session.Local{Identity: id, RegistrationID: 0x1234, PreKeys: pre},
	}
}

func (s *sotto) record(peer oracle.Address) *session.Record {
	r, ok := s.records[peer]
	if !ok {
		r = &session.Record{}
		s.records[peer] = r
	}
	return r
}

// bundle publishes a Kyber-1024 bundle (what a libsignal peer can use), in
// the oracle's terms.
func (s *sotto) bundle(oneTime bool) oracle.Bundle {
	s.t.Helper()
	s.nextID++
	id := s.nextID
	spk, err := keys.GenerateSignedPreKey(s.rand, s.local.Identity.Private, keys.SignedPreKeyID(id), now)
	if err != nil {
		s.t.Fatal(err)
	}
	kpk, err := keys.GenerateKEMPreKey(s.rand, s.local.Identity.Private, keys.Kyber1024, keys.KEMPreKeyID(id+1000), now)
	if err != nil {
		s.t.Fatal(err)
	}
	s.pre.Signed[spk.ID], s.pre.KEM[kpk.ID] = spk, kpk
	b := oracle.Bundle{
		RegistrationID: s.local.RegistrationID, DeviceID: s.addr.DeviceID,
		SignedPreKeyID: uint32(spk.ID), SignedPreKey: spk.Key.Public.Bytes(), SignedPreKeySignature: spk.Signature[:],
		IdentityKey:   s.local.Identity.Public.Bytes(),
		KyberPreKeyID: uint32(kpk.ID), KyberPreKey: kpk.Key.Public.Bytes(), KyberPreKeySignature: kpk.Signature[:],
	}
	if oneTime {
		pk, err := keys.GeneratePreKey(s.rand, keys.PreKeyID(id+2000))
		if err != nil {
			s.t.Fatal(err)
		}
		s.pre.EC[pk.ID] = pk
		pid := uint32(pk.ID)
		b.PreKeyID, b.PreKey = &pid, pk.Key.Public.Bytes()
	}
	return b
}

// fromOracle converts a libsignal bundle into Sotto's, parsing every key.
func fromOracle(t testing.TB, b oracle.Bundle) *x3dh.Bundle {
	t.Helper()
	parse := func(raw []byte) keys.PublicKey {
		k, err := keys.ParsePublicKey(raw)
		if err != nil {
			t.Fatalf("libsignal key rejected: %v", err)
		}
		return k
	}
	kem, err := keys.ParseKEMPublicKey(b.KyberPreKey)
	if err != nil {
		t.Fatal(err)
	}
	xb := &x3dh.Bundle{
		RegistrationID: b.RegistrationID, DeviceID: b.DeviceID, IdentityKey: parse(b.IdentityKey),
		SignedPreKeyID: keys.SignedPreKeyID(b.SignedPreKeyID), SignedPreKey: parse(b.SignedPreKey),
		SignedPreKeySignature: b.SignedPreKeySignature,
		KEMPreKeyID:           keys.KEMPreKeyID(b.KyberPreKeyID), KEMPreKey: kem, KEMPreKeySignature: b.KyberPreKeySignature,
	}
	if b.PreKeyID != nil {
		xb.HasPreKey, xb.PreKeyID, xb.PreKey = true, keys.PreKeyID(*b.PreKeyID), parse(b.PreKey)
	}
	return xb
}

func (s *sotto) initiate(peer oracle.Address, b oracle.Bundle) {
	s.t.Helper()
	if err := s.record(peer).Initiate(s.rand, s.local.Identity, s.local.RegistrationID, fromOracle(s.t, b), now); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sotto) encrypt(peer oracle.Address, text string) oracle.Ciphertext {
	s.t.Helper()
	typ, body, err := s.record(peer).Encrypt([]byte(text), now)
	if err != nil {
		s.t.Fatalf("encrypt to %v: %v", peer, err)
	}
	return oracle.Ciphertext{Type: oracle.MessageType(typ), Body: body}
}

func (s *sotto) decrypt(peer oracle.Address, c oracle.Ciphertext) (string, error) {
	r := s.record(peer)
	switch ratchet.MessageType(c.Type) {
	case ratchet.TypePreKey:
		pm, err := ratchet.ParsePreKeyMessage(c.Body)
		if err != nil {
			return "", err
		}
		res, err := r.DecryptPreKey(s.rand, &s.local, pm)
		if err != nil {
			return "", err
		}
		if res.HasPreKey {
			delete(s.pre.EC, res.PreKeyID)
		}
		return string(res.Plaintext), nil
	case ratchet.TypeWhisper:
		m, err := ratchet.ParseMessage(c.Body)
		if err != nil {
			return "", err
		}
		pt, err := r.Decrypt(s.rand, m)
		return string(pt), err
	}
	return "", fmt.Errorf("message type %d", c.Type)
}

func (s *sotto) mustDecrypt(peer oracle.Address, c oracle.Ciphertext, want string) {
	s.t.Helper()
	got, err := s.decrypt(peer, c)
	if err != nil {
		s.t.Fatalf("Sotto decrypt of %q from %v: %v", want, peer, err)
	}
	if got != want {
		s.t.Fatalf("Sotto decrypted %q, want %q", got, want)
	}
}

func libsignalDecrypt(t testing.TB, p *oracle.Party, from oracle.Address, c oracle.Ciphertext, want string) {
	t.Helper()
	got, err := p.Decrypt(context.Background(), from, c)
	if err != nil {
		t.Fatalf("libsignal decrypt of %q: %v", want, err)
	}
	if string(got) != want {
		t.Fatalf("libsignal decrypted %q, want %q", got, want)
	}
}

func libsignalEncrypt(t testing.TB, p *oracle.Party, to oracle.Address, text string) oracle.Ciphertext {
	t.Helper()
	c, err := p.Encrypt(context.Background(), to, []byte(text))
	if err != nil {
		t.Fatalf("libsignal encrypt: %v", err)
	}
	return c
}
