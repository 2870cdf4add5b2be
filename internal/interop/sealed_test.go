package interop

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/oracle"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/senderkey"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// pki is a trust root and a server certificate, made by Sotto.
type pki struct {
	root      keys.KeyPair
	server    *sealed.ServerCertificate
	serverKey keys.KeyPair
	trust     sealed.Trust
}

func newPKI(t testing.TB, seed string) *pki {
	t.Helper()
	rand := testkit.Rand(seed)
	root, _ := keys.GenerateKeyPair(rand)
	serverKey, _ := keys.GenerateKeyPair(rand)
	server, err := sealed.NewServerCertificate(rand, root.Private, 42, serverKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{root: root, server: server, serverKey: serverKey, trust: sealed.Trust{Roots: []keys.PublicKey{root.Public}}}
}

// senderCert certifies a sender for a day from now.
func (p *pki) senderCert(t testing.TB, uuid string, device uint32, identity keys.PublicKey) *sealed.SenderCertificate {
	t.Helper()
	c, err := sealed.NewSenderCertificate(testkit.Rand(uuid), p.server, p.serverKey.Private,
		sealed.Sender{UUID: uuid, Device: sealed.DeviceID(device), IdentityKey: identity}, now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *sotto) sealedLocal(t testing.TB) sealed.Local {
	t.Helper()
	aci, err := sealed.ParseServiceID(s.addr.Name)
	if err != nil {
		t.Fatal(err)
	}
	return sealed.Local{Identity: s.local.Identity, ACI: aci, Device: sealed.DeviceID(s.addr.DeviceID)}
}

// TestLibsignalCertificates: certificates made by either library validate
// in the other, byte for byte, and the chain is enforced on both sides.
func TestLibsignalCertificates(t *testing.T) {
	ctx := context.Background()
	o := oracle.Start(t)
	p := newPKI(t, t.Name())
	s := newSotto(t, t.Name(), 3, nil)
	cert := p.senderCert(t, s.addr.Name, 3, s.local.Identity.Public)

	info, err := o.ValidateSenderCertificate(ctx, cert.Bytes(), p.root.Public.Bytes(), now)
	if err != nil || !info.Valid {
		t.Fatalf("libsignal rejects Sotto's sender certificate: %+v, %v", info, err)
	}
	if info.SenderUUID != s.addr.Name || info.SenderDeviceID != 3 || info.ServerKeyID != 42 ||
		!bytes.Equal(info.SenderKey, s.local.Identity.Public.Bytes()) || !info.Expiration.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("libsignal reads %+v", info)
	}
	if info, _ := o.ValidateSenderCertificate(ctx, cert.Bytes(), p.root.Public.Bytes(), now.Add(25*time.Hour)); info.Valid {
		t.Fatal("libsignal accepts an expired certificate")
	}
	other, _ := keys.GenerateKeyPair(testkit.Rand("other root"))
	if info, _ := o.ValidateSenderCertificate(ctx, cert.Bytes(), other.Public.Bytes(), now); info.Valid {
		t.Fatal("libsignal accepts a certificate under another trust root")
	}

	// libsignal's certificates, validated by Sotto.
	root, err := o.TrustRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	server, err := o.ServerCertificate(ctx, oracle.ServerCertificateRequest{KeyID: 7, TrustRootPrivate: root.Private})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := o.SenderCertificate(ctx, oracle.SenderCertificateRequest{
		SenderUUID: s.addr.Name, SenderE164: "+15550100", SenderDeviceID: 3, SenderKey: s.local.Identity.Public.Bytes(),
		Expiration: now.Add(time.Hour), ServerCertificate: server.Serialized, ServerKeyPrivate: server.KeyPrivate,
	})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := sealed.ParseSenderCertificate(raw)
	if err != nil {
		t.Fatalf("Sotto rejects libsignal's sender certificate: %v", err)
	}
	if !bytes.Equal(lc.Bytes(), raw) {
		t.Fatal("certificate bytes not kept")
	}
	rootKey, _ := keys.ParsePublicKey(root.Public)
	trust := sealed.Trust{Roots: []keys.PublicKey{rootKey}}
	if err := lc.Validate(trust, now); err != nil {
		t.Fatalf("Sotto: %v", err)
	}
	if e164, ok := lc.E164(); !ok || e164 != "+15550100" || lc.UUID() != s.addr.Name || lc.Signer().KeyID() != 7 {
		t.Fatalf("Sotto reads %v %q %s %d", ok, e164, lc.UUID(), lc.Signer().KeyID())
	}
	if err := lc.Validate(trust, now.Add(2*time.Hour)); err == nil {
		t.Fatal("Sotto accepts an expired libsignal certificate")
	}
	if err := lc.Validate(p.trust, now); err == nil {
		t.Fatal("Sotto accepts a libsignal certificate under another trust root")
	}
}

// established returns a Sotto device and a libsignal party with a session
// in both directions.
func established(t *testing.T, o *oracle.Oracle, s *sotto, name string, device uint32, identity []byte) *oracle.Party {
	t.Helper()
	ctx := context.Background()
	l, err := o.NewParty(ctx, oracle.PartyConfig{Name: name, DeviceID: device, IdentityPrivate: identity})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Bundle(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	s.initiate(l.Address(), b)
	libsignalDecrypt(t, l, s.addr, s.encrypt(l.Address(), "hello"), "hello")
	s.mustDecrypt(l.Address(), libsignalEncrypt(t, l, s.addr, "hi"), "hi")
	return l
}

// TestLibsignalSealedSenderV1 sends sealed messages both ways: the first
// messages of a session (PreKeySignalMessage inside) and later ones.
func TestLibsignalSealedSenderV1(t *testing.T) {
	ctx := context.Background()
	o := oracle.Start(t)
	p := newPKI(t, t.Name())
	s := newSotto(t, t.Name(), 1, nil)
	l := newLibsignal(t, o, t.Name())
	b, err := l.Bundle(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	s.initiate(l.Address(), b)
	sCert := p.senderCert(t, s.addr.Name, s.addr.DeviceID, s.local.Identity.Public)
	lIdentity, _ := keys.ParsePublicKey(l.IdentityKey)
	raw, err := o.SenderCertificate(ctx, oracle.SenderCertificateRequest{
		SenderUUID: l.Name, SenderDeviceID: l.DeviceID, SenderKey: l.IdentityKey, Expiration: now.Add(time.Hour),
		ServerCertificate: p.server.Bytes(), ServerKeyPrivate: p.serverKey.Private.Bytes(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		// Sotto → libsignal.
		text := fmt.Sprintf("sealed from Sotto %d", i)
		c := s.encrypt(l.Address(), text)
		usmc, err := sealed.NewUSMC(protoType(ratchet.MessageType(c.Type)), sCert, c.Body, sealed.HintResendable, nil)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := sealed.SealV1(s.rand, usmc, lIdentity, s.local.Identity)
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.SealedDecrypt(ctx, msg, p.root.Public.Bytes(), now)
		if err != nil {
			t.Fatalf("libsignal cannot open Sotto's sealed message %d: %v", i, err)
		}
		if string(res.Plaintext) != text || res.SenderUUID != s.addr.Name || res.SenderDeviceID != s.addr.DeviceID {
			t.Fatalf("libsignal opened %+v", res)
		}

		// libsignal → Sotto.
		text = fmt.Sprintf("sealed from libsignal %d", i)
		body, err := l.SealedEncrypt(ctx, s.addr, oracle.SealedContent{SenderCertificate: raw, Plaintext: []byte(text)})
		if err != nil {
			t.Fatal(err)
		}
		if body[0] != sealed.VersionV1 {
			t.Fatalf("libsignal's v1 version byte 0x%02x", body[0])
		}
		sender, u, err := sealed.Unseal(body, s.sealedLocal(t), p.trust, now)
		if err != nil {
			t.Fatalf("Sotto cannot open libsignal's sealed message %d: %v", i, err)
		}
		if sender.UUID != l.Name || sender.Device != sealed.DeviceID(l.DeviceID) || !sender.IdentityKey.Equal(lIdentity) {
			t.Fatalf("Sotto reads sender %+v", sender)
		}
		s.mustDecrypt(l.Address(), oracle.Ciphertext{Type: fromProtoType(u.Type()), Body: u.Contents()}, text)
	}
}

// fromProtoType maps the sealed-sender message type to libsignal's
// CiphertextMessageType (they number a PreKey message differently).
func fromProtoType(t sealed.MessageType) oracle.MessageType {
	switch t {
	case sealed.TypePreKey:
		return oracle.MessagePreKey
	case sealed.TypeWhisper:
		return oracle.MessageWhisper
	case sealed.TypeSenderKey:
		return oracle.MessageSenderKey
	}
	return oracle.MessageType(t)
}

const v2Recipients = 12 // accounts; every third has a second device

// TestLibsignalSealedSenderV2FromSotto: Sotto sends one sender-key group
// message as a multi-recipient upload to 12 libsignal accounts (16
// devices); Sotto's split matches libsignal's byte for byte and every
// device opens its copy with libsignal.
func TestLibsignalSealedSenderV2FromSotto(t *testing.T) {
	ctx := context.Background()
	o := oracle.Start(t)
	p := newPKI(t, t.Name())
	s := newSotto(t, t.Name(), 1, nil)
	cert := p.senderCert(t, s.addr.Name, 1, s.local.Identity.Public)
	dist, _ := senderkey.ParseDistributionID("0f3c2b1a-9d8e-4f70-a1b2-c3d4e5f60718")
	var group senderkey.Record
	skdm, err := group.Create(s.rand, dist)
	if err != nil {
		t.Fatal(err)
	}

	var recipients []sealed.Recipient
	var parties []*oracle.Party
	for i := range v2Recipients {
		name := uuidFor(t.Name(), i+10)
		identity, _ := keys.GenerateKeyPair(testkit.Rand(name))
		devices := []uint32{1}
		if i%3 == 0 {
			devices = append(devices, 2)
		}
		r := sealed.Recipient{IdentityKey: identity.Public}
		r.ServiceID, _ = sealed.ParseServiceID(name)
		for _, d := range devices {
			l := established(t, o, s, name, d, identity.Private.Bytes())
			if _, err := l.ProcessSenderKeyDistribution(ctx, s.addr, skdm.Marshal()); err != nil {
				t.Fatal(err)
			}
			reg := s.record(l.Address()).Current().RemoteRegistrationID()
			r.Devices = append(r.Devices, sealed.Device{ID: sealed.DeviceID(d), RegistrationID: sealed.RegistrationID(reg)})
			parties = append(parties, l)
		}
		recipients = append(recipients, r)
	}
	excluded, _ := sealed.ParseServiceID(uuidFor(t.Name(), 99))

	text := "one group message, sealed for everyone"
	contents, err := group.Encrypt(s.rand, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	groupID := bytes.Repeat([]byte{7}, 32)
	usmc, err := sealed.NewUSMC(sealed.TypeSenderKey, cert, contents, sealed.HintImplicit, groupID)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := sealed.SealV2(s.rand, usmc, recipients, []sealed.ServiceID{excluded}, s.local.Identity)
	if err != nil {
		t.Fatal(err)
	}
	parsedByLib, err := o.MultiRecipientParse(ctx, sent)
	if err != nil {
		t.Fatalf("libsignal cannot parse Sotto's SentMessage: %v", err)
	}
	if len(parsedByLib.Recipients) != v2Recipients || len(parsedByLib.Excluded) != 1 {
		t.Fatalf("libsignal parsed %d recipients, %d excluded", len(parsedByLib.Recipients), len(parsedByLib.Excluded))
	}
	split, err := sealed.ParseSentMessage(sent)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range parties {
		id, _ := sealed.ParseServiceID(l.Name)
		ours, err := split.ForRecipient(id)
		if err != nil {
			t.Fatal(err)
		}
		theirs, _, err := o.MultiRecipientForSingle(ctx, sent, l.Name, l.DeviceID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("Sotto's split for %s differs from libsignal's", l.Name)
		}
		res, err := l.SealedGroupDecrypt(ctx, ours, p.root.Public.Bytes(), now)
		if err != nil {
			t.Fatalf("libsignal device %v cannot open its copy: %v", l.Address(), err)
		}
		if string(res.Plaintext) != text || res.SenderUUID != s.addr.Name || !bytes.Equal(res.GroupID, groupID) ||
			res.ContentHint != oracle.ContentHint(sealed.HintImplicit) {
			t.Fatalf("libsignal opened %+v", res)
		}
	}
}

// TestLibsignalSealedSenderV2ToSotto: libsignal sends a sender-key group
// message as a multi-recipient upload to 12 Sotto accounts (16 devices);
// Sotto's server-side split matches libsignal's and every Sotto device
// opens and decrypts its copy.
func TestLibsignalSealedSenderV2ToSotto(t *testing.T) {
	ctx := context.Background()
	o := oracle.Start(t)
	p := newPKI(t, t.Name())
	l := newLibsignal(t, o, t.Name())
	raw, err := o.SenderCertificate(ctx, oracle.SenderCertificateRequest{
		SenderUUID: l.Name, SenderDeviceID: l.DeviceID, SenderKey: l.IdentityKey, Expiration: now.Add(time.Hour),
		ServerCertificate: p.server.Bytes(), ServerKeyPrivate: p.serverKey.Private.Bytes(),
	})
	if err != nil {
		t.Fatal(err)
	}
	const dist = "5a7c9e1b-3d5f-4a6b-8c9d-0e1f2a3b4c5d"
	skdmRaw, err := l.SenderKeyDistribution(ctx, dist)
	if err != nil {
		t.Fatal(err)
	}
	skdm, err := senderkey.ParseDistributionMessage(skdmRaw)
	if err != nil {
		t.Fatal(err)
	}

	var devices []*sotto
	var addrs []oracle.Address
	for i := range v2Recipients {
		seed := fmt.Sprint(t.Name(), i)
		identity, _ := keys.GenerateKeyPair(testkit.Rand(seed))
		n := 1
		if i%3 == 0 {
			n = 2
		}
		for d := range n {
			s := newSotto(t, seed, uint32(d+1), &identity)
			if err := l.ProcessBundle(ctx, s.addr, s.bundle(d == 0)); err != nil {
				t.Fatal(err)
			}
			devices = append(devices, s)
			addrs = append(addrs, s.addr)
		}
	}
	text := "a group message from libsignal to Sotto"
	sent, err := l.SealedMultiEncrypt(ctx, addrs, nil, oracle.SealedContent{
		SenderCertificate: raw, Plaintext: []byte(text), DistributionID: dist, ContentHint: oracle.ContentHint(sealed.HintResendable),
	})
	if err != nil {
		t.Fatal(err)
	}
	split, err := sealed.ParseSentMessage(sent)
	if err != nil {
		t.Fatalf("Sotto cannot parse libsignal's SentMessage: %v", err)
	}
	if len(split.Recipients) != v2Recipients {
		t.Fatalf("%d recipients", len(split.Recipients))
	}
	for _, s := range devices {
		id, _ := sealed.ParseServiceID(s.addr.Name)
		ours, err := split.ForRecipient(id)
		if err != nil {
			t.Fatal(err)
		}
		theirs, _, err := o.MultiRecipientForSingle(ctx, sent, s.addr.Name, s.addr.DeviceID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatal("Sotto's split differs from libsignal's")
		}
		sender, u, err := sealed.Unseal(ours, s.sealedLocal(t), p.trust, now)
		if err != nil {
			t.Fatalf("Sotto device %v cannot open its copy: %v", s.addr, err)
		}
		if sender.UUID != l.Name || u.Type() != sealed.TypeSenderKey || u.ContentHint() != sealed.HintResendable {
			t.Fatalf("Sotto reads %+v, type %d, hint %d", sender, u.Type(), u.ContentHint())
		}
		var rec senderkey.Record
		if err := rec.Process(skdm); err != nil {
			t.Fatal(err)
		}
		pt, err := rec.Decrypt(u.Contents())
		if err != nil || string(pt) != text {
			t.Fatalf("Sotto decrypts %q, %v", pt, err)
		}
	}
}

// protoType maps libsignal's CiphertextMessageType to the sealed-sender proto's
// numbering.
func protoType(t ratchet.MessageType) sealed.MessageType {
	if t == ratchet.TypePreKey {
		return sealed.TypePreKey
	}
	return sealed.TypeWhisper
}

// sealedSeeds returns libsignal's sealed-sender messages and certificates
// as fuzz seeds: a v1 message, a v2 upload and its per-recipient form, and
// the certificates in them.
func sealedSeeds(t *testing.T, o *oracle.Oracle, l *oracle.Party) []seed {
	t.Helper()
	ctx := context.Background()
	p := newPKI(t, "seeds")
	s := newSotto(t, "sealed seeds", 1, nil)
	if err := l.ProcessBundle(ctx, s.addr, s.bundle(true)); err != nil {
		t.Fatal(err)
	}
	raw, err := o.SenderCertificate(ctx, oracle.SenderCertificateRequest{
		SenderUUID: l.Name, SenderDeviceID: l.DeviceID, SenderKey: l.IdentityKey, Expiration: now.Add(time.Hour),
		ServerCertificate: p.server.Bytes(), ServerKeyPrivate: p.serverKey.Private.Bytes(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := sealed.ParseSenderCertificate(raw)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := l.SealedEncrypt(ctx, s.addr, oracle.SealedContent{SenderCertificate: raw, Plaintext: []byte("sealed v1 seed")})
	if err != nil {
		t.Fatal(err)
	}
	const dist = "2b4d6f80-1a3c-4e5f-9a7b-c8d9e0f1a2b3"
	if _, err := l.SenderKeyDistribution(ctx, dist); err != nil {
		t.Fatal(err)
	}
	sent, err := l.SealedMultiEncrypt(ctx, []oracle.Address{s.addr}, nil, oracle.SealedContent{
		SenderCertificate: raw, Plaintext: []byte("sealed v2 seed"), DistributionID: dist,
	})
	if err != nil {
		t.Fatal(err)
	}
	received, _, err := o.MultiRecipientForSingle(ctx, sent, s.addr.Name, s.addr.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	open := func(b []byte) error {
		_, err := sealed.Open(b, s.local.Identity)
		return err
	}
	return []seed{
		{"sealed/testdata/fuzz/FuzzParseSenderCertificate", "libsignal", raw, func(b []byte) error {
			_, err := sealed.ParseSenderCertificate(b)
			return err
		}},
		{"sealed/testdata/fuzz/FuzzParseServerCertificate", "libsignal", cert.Signer().Bytes(), func(b []byte) error {
			_, err := sealed.ParseServerCertificate(b)
			return err
		}},
		{"sealed/testdata/fuzz/FuzzOpenV1", "libsignal", v1, open},
		{"sealed/testdata/fuzz/FuzzOpenV2", "libsignal", received, open},
		{"sealed/testdata/fuzz/FuzzParseSentMessage", "libsignal", sent, func(b []byte) error {
			_, err := sealed.ParseSentMessage(b)
			return err
		}},
	}
}
