package oracle

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// These tests prove the harness: two (or more) libsignal parties talk to each
// other through the Go driver. Sotto's own packages are checked against the
// oracle in their own tests.

func newParty(t *testing.T, o *Oracle, cfg PartyConfig) *Party {
	t.Helper()
	p, err := o.NewParty(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewParty: %v", err)
	}
	if len(p.IdentityKey) != 33 || p.IdentityKey[0] != 0x05 {
		t.Fatalf("identity key %x: want 33 bytes starting 0x05", p.IdentityKey)
	}
	return p
}

// connect has from process a fresh bundle of to.
func connect(t *testing.T, from, to *Party, oneTimePreKey bool) Bundle {
	t.Helper()
	ctx := t.Context()
	b, err := to.Bundle(ctx, oneTimePreKey)
	if err != nil {
		t.Fatalf("Bundle: %v", err)
	}
	if err := from.ProcessBundle(ctx, to.Address(), b); err != nil {
		t.Fatalf("ProcessBundle: %v", err)
	}
	return b
}

func send(t *testing.T, from, to *Party, plaintext string) Ciphertext {
	t.Helper()
	c, err := from.Encrypt(t.Context(), to.Address(), []byte(plaintext))
	if err != nil {
		t.Fatalf("Encrypt %s → %s: %v", from.Name, to.Name, err)
	}
	return c
}

func receive(t *testing.T, to, from *Party, c Ciphertext, want string) {
	t.Helper()
	got, err := to.Decrypt(t.Context(), from.Address(), c)
	if err != nil {
		t.Fatalf("Decrypt %s → %s (type %d): %v", from.Name, to.Name, c.Type, err)
	}
	if string(got) != want {
		t.Fatalf("Decrypt %s → %s = %q, want %q", from.Name, to.Name, got, want)
	}
}

func uuidBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		t.Fatalf("uuid %q: %v", s, err)
	}
	return b
}

func mustUUID(t *testing.T) string {
	t.Helper()
	id, err := randomUUID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// certs is a trust root, a server certificate and sender certificates.
type certs struct {
	trust  KeyPair
	server ServerCertificate
}

func newCerts(t *testing.T, o *Oracle) certs {
	t.Helper()
	ctx := t.Context()
	trust, err := o.TrustRoot(ctx)
	if err != nil {
		t.Fatalf("TrustRoot: %v", err)
	}
	server, err := o.ServerCertificate(ctx, ServerCertificateRequest{KeyID: 7, TrustRootPrivate: trust.Private})
	if err != nil {
		t.Fatalf("ServerCertificate: %v", err)
	}
	return certs{trust: trust, server: server}
}

func (c certs) sender(t *testing.T, o *Oracle, p *Party, e164 string, expires time.Time) []byte {
	t.Helper()
	cert, err := o.SenderCertificate(t.Context(), SenderCertificateRequest{
		SenderUUID:        p.Name,
		SenderE164:        e164,
		SenderDeviceID:    p.DeviceID,
		SenderKey:         p.IdentityKey,
		Expiration:        expires,
		ServerCertificate: c.server.Serialized,
		ServerKeyPrivate:  c.server.KeyPrivate,
	})
	if err != nil {
		t.Fatalf("SenderCertificate: %v", err)
	}
	return cert
}

func TestLibsignalHarness(t *testing.T) {
	o := Start(t)

	t.Run("PQXDH", func(t *testing.T) {
		for _, tc := range []struct {
			name          string
			oneTimePreKey bool
		}{
			{name: "with one-time prekey", oneTimePreKey: true},
			{name: "without one-time prekey", oneTimePreKey: false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				testPQXDH(t, o, tc.oneTimePreKey)
			})
		}
	})
	t.Run("X3DH", func(t *testing.T) { testX3DH(t, o) })
	t.Run("ImportRecords", func(t *testing.T) { testImportRecords(t, o) })
	t.Run("SealedSenderV1", func(t *testing.T) { testSealedV1(t, o) })
	t.Run("SealedSenderV2", func(t *testing.T) { testSealedV2(t, o) })
	t.Run("SenderKey", func(t *testing.T) { testSenderKey(t, o) })
	t.Run("Fingerprint", func(t *testing.T) { testFingerprint(t, o) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, o) })
	t.Run("AES256GCMSIV", func(t *testing.T) { testGCMSIV(t, o) })
	t.Run("Bench", func(t *testing.T) { testBench(t, o) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, o) })
}

func testPQXDH(t *testing.T, o *Oracle, oneTimePreKey bool) {
	ctx := t.Context()
	alice := newParty(t, o, PartyConfig{})
	bob := newParty(t, o, PartyConfig{RegistrationID: 4242})
	if bob.RegistrationID != 4242 {
		t.Fatalf("bob registration id = %d, want 4242", bob.RegistrationID)
	}

	b := connect(t, alice, bob, oneTimePreKey)
	switch {
	case len(b.IdentityKey) != 33, len(b.SignedPreKey) != 33, len(b.SignedPreKeySignature) != 64,
		len(b.KyberPreKey) != 1+1568, b.KyberPreKey[0] != 0x08, len(b.KyberPreKeySignature) != 64:
		t.Fatalf("bundle field sizes wrong: %+v", b)
	case (b.PreKeyID != nil) != oneTimePreKey, (len(b.PreKey) == 33) != oneTimePreKey:
		t.Fatalf("one-time prekey = (%v, %x), want present=%v", b.PreKeyID, b.PreKey, oneTimePreKey)
	case b.RegistrationID != bob.RegistrationID || b.DeviceID != bob.DeviceID || !bytes.Equal(b.IdentityKey, bob.IdentityKey):
		t.Fatalf("bundle identity fields %+v do not match bob", b)
	}

	info, err := alice.SessionInfo(ctx, bob.Address())
	if err != nil {
		t.Fatal(err)
	}
	if !info.Exists || !info.HasCurrentState || info.SessionVersion != 4 || info.RemoteRegistrationID != bob.RegistrationID ||
		!info.HasPendingPreKey || !info.HasPendingKyberPreKey || !bytes.Equal(info.RemoteIdentity, bob.IdentityKey) {
		t.Fatalf("alice's new session: %+v", info)
	}

	// 50 messages each way. Each round crosses a message in flight in both
	// directions, so each round is a ratchet turn; alice's message of round
	// 10 is held back until round 13. (libsignal keeps only five receiver
	// chains: a message delayed by five or more turns is lost for good.)
	const rounds = 50
	var held, last Ciphertext
	for i := range rounds {
		ca := send(t, alice, bob, fmt.Sprintf("a%d", i))
		if i == 0 {
			if ca.Type != MessagePreKey {
				t.Fatalf("first message type %d, want %d", ca.Type, MessagePreKey)
			}
			receive(t, bob, alice, ca, "a0")
			if ca.Body[0] != 0x44 {
				t.Fatalf("PQXDH message version byte %#x, want 0x44", ca.Body[0])
			}
		} else if ca.Type != MessageWhisper {
			t.Fatalf("message %d type %d, want %d", i, ca.Type, MessageWhisper)
		}
		cb := send(t, bob, alice, fmt.Sprintf("b%d", i))
		if cb.Type != MessageWhisper {
			t.Fatalf("bob's message %d type %d, want %d", i, cb.Type, MessageWhisper)
		}
		switch i {
		case 0:
		case 10:
			held = ca
		default:
			receive(t, bob, alice, ca, fmt.Sprintf("a%d", i))
		}
		last = ca
		if i == 13 {
			receive(t, bob, alice, held, "a10")
		}
		receive(t, alice, bob, cb, fmt.Sprintf("b%d", i))
	}

	// A replayed message is refused.
	if _, err := bob.Decrypt(ctx, alice.Address(), last); ErrorName(err) != "DuplicatedMessage" {
		t.Fatalf("replay: err = %v, want DuplicatedMessage", err)
	}

	for _, c := range []struct {
		p, peer *Party
	}{{alice, bob}, {bob, alice}} {
		info, err := c.p.SessionInfo(ctx, c.peer.Address())
		if err != nil {
			t.Fatal(err)
		}
		if !info.Exists || info.SessionVersion != 4 || info.HasPendingPreKey || info.HasPendingKyberPreKey ||
			info.LocalRegistrationID != c.p.RegistrationID || info.RemoteRegistrationID != c.peer.RegistrationID {
			t.Fatalf("%s's session after the exchange: %+v", c.p.Name, info)
		}
	}
	if id, err := bob.PeerIdentity(ctx, alice.Address()); err != nil || !bytes.Equal(id, alice.IdentityKey) {
		t.Fatalf("bob's stored identity for alice = %x, %v", id, err)
	}
}

// testX3DH: libsignal 0.72.1 still accepts a bundle without a Kyber prekey
// and then runs X3DH, session version 3.
func testX3DH(t *testing.T, o *Oracle) {
	ctx := t.Context()
	alice := newParty(t, o, PartyConfig{})
	bob := newParty(t, o, PartyConfig{})
	b, err := bob.BundleWith(ctx, BundleOptions{OneTimePreKey: true, NoKyber: true})
	if err != nil {
		t.Fatal(err)
	}
	if b.KyberPreKey != nil || b.KyberPreKeySignature != nil {
		t.Fatalf("bundle without Kyber has Kyber fields: %+v", b)
	}
	if err := alice.ProcessBundle(ctx, bob.Address(), b); err != nil {
		t.Fatalf("ProcessBundle: %v", err)
	}
	c := send(t, alice, bob, "x3dh")
	// Version byte: message version 3 ‖ current version 4.
	if c.Type != MessagePreKey || c.Body[0] != 0x34 {
		t.Fatalf("first message: type %d version byte %#x, want %d and 0x34", c.Type, c.Body[0], MessagePreKey)
	}
	receive(t, bob, alice, c, "x3dh")
	receive(t, alice, bob, send(t, bob, alice, "back"), "back")
	info, err := bob.SessionInfo(ctx, alice.Address())
	if err != nil || info.SessionVersion != 3 {
		t.Fatalf("session version %d (%v), want 3", info.SessionVersion, err)
	}
}

// testImportRecords hands libsignal prekeys whose key pairs were made
// outside it, as records built field by field (storage.proto:
// PreKeyRecordStructure, SignedPreKeyRecordStructure, which Kyber prekey
// records share), and runs PQXDH against them.
func testImportRecords(t *testing.T, o *Oracle) {
	ctx := t.Context()
	identity, err := o.KeyPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bob := newParty(t, o, PartyConfig{IdentityPrivate: identity.Private})
	alice := newParty(t, o, PartyConfig{})
	pre, err := o.KeyPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := o.KeyPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kem, err := o.KEMGenerate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	signedSig, err := o.XEdDSASign(ctx, identity.Private, signed.Public)
	if err != nil {
		t.Fatal(err)
	}
	kemSig, err := o.XEdDSASign(ctx, identity.Private, kem.Public)
	if err != nil {
		t.Fatal(err)
	}

	record := func(id uint32, public, private, signature []byte) []byte {
		var b []byte
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(id))
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, public)
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, private)
		if signature != nil {
			b = protowire.AppendTag(b, 4, protowire.BytesType)
			b = protowire.AppendBytes(b, signature)
			b = protowire.AppendTag(b, 5, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, uint64(time.Now().UnixMilli()))
		}
		return b
	}
	const preID, signedID, kyberID = 901, 902, 903
	err = bob.ImportRecords(ctx, Records{
		PreKeys:       [][]byte{record(preID, pre.Public, pre.Private, nil)},
		SignedPreKeys: [][]byte{record(signedID, signed.Public, signed.Private, signedSig)},
		KyberPreKeys:  [][]byte{record(kyberID, kem.Public, kem.Secret, kemSig)},
	})
	if err != nil {
		t.Fatalf("ImportRecords: %v", err)
	}
	id := uint32(preID)
	err = alice.ProcessBundle(ctx, bob.Address(), Bundle{
		RegistrationID: bob.RegistrationID, DeviceID: bob.DeviceID,
		PreKeyID: &id, PreKey: pre.Public,
		SignedPreKeyID: signedID, SignedPreKey: signed.Public, SignedPreKeySignature: signedSig,
		IdentityKey:   bob.IdentityKey,
		KyberPreKeyID: kyberID, KyberPreKey: kem.Public, KyberPreKeySignature: kemSig,
	})
	if err != nil {
		t.Fatalf("ProcessBundle: %v", err)
	}
	receive(t, bob, alice, send(t, alice, bob, "imported"), "imported")

	// A bundle whose Kyber signature does not verify is refused.
	carol := newParty(t, o, PartyConfig{})
	err = carol.ProcessBundle(ctx, bob.Address(), Bundle{
		RegistrationID: bob.RegistrationID, DeviceID: bob.DeviceID,
		SignedPreKeyID: signedID, SignedPreKey: signed.Public, SignedPreKeySignature: signedSig,
		IdentityKey:   bob.IdentityKey,
		KyberPreKeyID: kyberID, KyberPreKey: kem.Public, KyberPreKeySignature: flip(kemSig, 3),
	})
	if err == nil {
		t.Fatal("ProcessBundle accepted a bad Kyber prekey signature")
	}
}

func testSealedV1(t *testing.T, o *Oracle) {
	ctx := t.Context()
	now := time.Now()
	alice := newParty(t, o, PartyConfig{})
	bob := newParty(t, o, PartyConfig{DeviceID: 3})
	c := newCerts(t, o)
	expires := now.Add(time.Hour).Truncate(time.Millisecond)
	cert := c.sender(t, o, alice, "+14155550100", expires)

	info, err := o.ValidateSenderCertificate(ctx, cert, c.trust.Public, now)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Valid || info.SenderUUID != alice.Name || info.SenderE164 != "+14155550100" || info.SenderDeviceID != alice.DeviceID ||
		!bytes.Equal(info.SenderKey, alice.IdentityKey) || !info.Expiration.Equal(expires) || info.ServerKeyID != 7 ||
		!bytes.Equal(info.ServerKey, c.server.KeyPublic) || !bytes.Equal(info.ServerCertificate, c.server.Serialized) {
		t.Fatalf("certificate info: %+v", info)
	}
	if info, err := o.ValidateSenderCertificate(ctx, cert, c.trust.Public, expires.Add(time.Millisecond)); err != nil || info.Valid {
		t.Fatalf("expired certificate: valid=%v err=%v", info.Valid, err)
	}
	other, err := o.TrustRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := o.ValidateSenderCertificate(ctx, cert, other.Public, now); err != nil || info.Valid {
		t.Fatalf("certificate under another trust root: valid=%v err=%v", info.Valid, err)
	}

	connect(t, alice, bob, true)
	sealed, err := alice.SealedEncrypt(ctx, bob.Address(), SealedContent{SenderCertificate: cert, Plaintext: []byte("sealed hello")})
	if err != nil {
		t.Fatalf("SealedEncrypt: %v", err)
	}
	if sealed[0] != 0x11 {
		t.Fatalf("sealed v1 version byte %#x, want 0x11", sealed[0])
	}
	if _, err := bob.SealedDecrypt(ctx, sealed, other.Public, now); err == nil {
		t.Fatal("SealedDecrypt under the wrong trust root succeeded")
	}
	res, err := bob.SealedDecrypt(ctx, sealed, c.trust.Public, now)
	if err != nil {
		t.Fatalf("SealedDecrypt: %v", err)
	}
	if res.SenderUUID != alice.Name || res.SenderE164 != "+14155550100" || res.SenderDeviceID != alice.DeviceID || string(res.Plaintext) != "sealed hello" {
		t.Fatalf("SealedDecrypt = %+v", res)
	}

	// A second message, with a hint and group id, unwrapped step by step.
	groupID := bytes.Repeat([]byte{0x47}, 32)
	sealed, err = alice.SealedEncrypt(ctx, bob.Address(), SealedContent{
		SenderCertificate: cert, Plaintext: []byte("second"), ContentHint: HintResendable, GroupID: groupID,
	})
	if err != nil {
		t.Fatalf("SealedEncrypt with hint: %v", err)
	}
	u, err := bob.SealedDecryptToUSMC(ctx, sealed)
	if err != nil {
		t.Fatalf("SealedDecryptToUSMC: %v", err)
	}
	if u.Type != MessagePreKey || u.ContentHint != HintResendable || !bytes.Equal(u.GroupID, groupID) ||
		!bytes.Equal(u.SenderCertificate, cert) || u.SenderUUID != alice.Name {
		t.Fatalf("USMC = %+v", u)
	}
	receive(t, bob, alice, Ciphertext{Type: u.Type, Body: u.Contents}, "second")
}

func testSealedV2(t *testing.T, o *Oracle) {
	ctx := t.Context()
	now := time.Now()
	alice := newParty(t, o, PartyConfig{})
	bob := newParty(t, o, PartyConfig{})
	// Carol has two devices. They share her identity key, as every device
	// of a Signal account does; SSv2 derives one key per recipient from it.
	carolKey, err := o.KeyPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	carol1 := newParty(t, o, PartyConfig{IdentityPrivate: carolKey.Private})
	carol2 := newParty(t, o, PartyConfig{Name: carol1.Name, DeviceID: 2, IdentityPrivate: carolKey.Private})
	dave := newParty(t, o, PartyConfig{DeviceID: 5})
	devices := []*Party{bob, carol1, carol2, dave}
	c := newCerts(t, o)
	cert := c.sender(t, o, alice, "", now.Add(time.Hour))

	// Sessions with every device; the sender key goes out over them.
	distributionID := mustUUID(t)
	skdm, err := alice.SenderKeyDistribution(ctx, distributionID)
	if err != nil {
		t.Fatalf("SenderKeyDistribution: %v", err)
	}
	var recipients []Address
	for _, d := range devices {
		connect(t, alice, d, false)
		receive(t, d, alice, send(t, alice, d, string(skdm)), string(skdm))
		info, err := d.ProcessSenderKeyDistribution(ctx, alice.Address(), skdm)
		if err != nil {
			t.Fatalf("ProcessSenderKeyDistribution: %v", err)
		}
		if info.DistributionID != distributionID {
			t.Fatalf("distribution id %s, want %s", info.DistributionID, distributionID)
		}
		recipients = append(recipients, d.Address())
	}

	erin := mustUUID(t)
	groupID := bytes.Repeat([]byte{0x99}, 32)
	sent, err := alice.SealedMultiEncrypt(ctx, recipients, []string{erin}, SealedContent{
		SenderCertificate: cert, Plaintext: []byte("to the group"), DistributionID: distributionID,
		ContentHint: HintResendable, GroupID: groupID,
	})
	if err != nil {
		t.Fatalf("SealedMultiEncrypt: %v", err)
	}

	parsed, err := o.MultiRecipientParse(ctx, sent)
	if err != nil {
		t.Fatalf("MultiRecipientParse: %v", err)
	}
	want := []MultiRecipient{
		{ServiceID: bob.Name, DeviceIDs: []uint32{1}, RegistrationIDs: []uint32{bob.RegistrationID}},
		{ServiceID: carol1.Name, DeviceIDs: []uint32{1, 2}, RegistrationIDs: []uint32{carol1.RegistrationID, carol2.RegistrationID}},
		{ServiceID: dave.Name, DeviceIDs: []uint32{5}, RegistrationIDs: []uint32{dave.RegistrationID}},
	}
	if got := fmt.Sprint(parsed.Recipients); got != fmt.Sprint(want) {
		t.Fatalf("recipients = %v, want %v", got, want)
	}
	if len(parsed.Excluded) != 1 || parsed.Excluded[0] != erin {
		t.Fatalf("excluded = %v, want [%s]", parsed.Excluded, erin)
	}

	for _, d := range devices {
		received, crossChecked, err := o.MultiRecipientForSingle(ctx, sent, d.Name, d.DeviceID)
		if err != nil {
			t.Fatalf("MultiRecipientForSingle(%s): %v", d.Address(), err)
		}
		if crossChecked || received[0] != 0x22 {
			t.Fatalf("received message: crossChecked=%v version %#x", crossChecked, received[0])
		}
		res, err := d.SealedGroupDecrypt(ctx, received, c.trust.Public, now)
		if err != nil {
			t.Fatalf("SealedGroupDecrypt(%s): %v", d.Address(), err)
		}
		if res.SenderUUID != alice.Name || res.SenderDeviceID != alice.DeviceID || res.Type != MessageSenderKey ||
			res.ContentHint != HintResendable || !bytes.Equal(res.GroupID, groupID) || string(res.Plaintext) != "to the group" {
			t.Fatalf("SealedGroupDecrypt(%s) = %+v", d.Address(), res)
		}
	}
	if _, _, err := o.MultiRecipientForSingle(ctx, sent, erin, 0); ErrorName(err) != "NoRecord" {
		t.Fatalf("excluded recipient: err = %v, want NoRecord", err)
	}

	// The same kind of message with the SenderKeyMessage made beforehand and
	// passed as raw contents.
	body, err := alice.GroupEncrypt(ctx, distributionID, []byte("raw contents"))
	if err != nil {
		t.Fatal(err)
	}
	sent, err = alice.SealedMultiEncrypt(ctx, recipients, nil, SealedContent{
		SenderCertificate: cert, USMCType: MessageSenderKey, Contents: body, GroupID: groupID,
	})
	if err != nil {
		t.Fatalf("SealedMultiEncrypt of raw contents: %v", err)
	}
	for _, d := range devices {
		received, _, err := o.MultiRecipientForSingle(ctx, sent, d.Name, d.DeviceID)
		if err != nil {
			t.Fatal(err)
		}
		res, err := d.SealedGroupDecrypt(ctx, received, c.trust.Public, now)
		if err != nil || string(res.Plaintext) != "raw contents" || res.ContentHint != HintDefault {
			t.Fatalf("SealedGroupDecrypt(%s) of raw contents = %+v, %v", d.Address(), res, err)
		}
	}

	// One recipient, whisper contents: the split is cross-checked against
	// libsignal's single-recipient helper and opened by
	// sealedSenderDecryptMessage.
	sent, err = alice.SealedMultiEncrypt(ctx, []Address{bob.Address()}, nil, SealedContent{SenderCertificate: cert, Plaintext: []byte("just bob")})
	if err != nil {
		t.Fatalf("SealedMultiEncrypt to one: %v", err)
	}
	received, crossChecked, err := o.MultiRecipientForSingle(ctx, sent, bob.Name, 0)
	if err != nil || !crossChecked {
		t.Fatalf("MultiRecipientForSingle: crossChecked=%v err=%v", crossChecked, err)
	}
	res, err := bob.SealedDecrypt(ctx, received, c.trust.Public, now)
	if err != nil {
		t.Fatalf("SealedDecrypt of v2: %v", err)
	}
	if res.SenderUUID != alice.Name || string(res.Plaintext) != "just bob" {
		t.Fatalf("SealedDecrypt of v2 = %+v", res)
	}
}

func testSenderKey(t *testing.T, o *Oracle) {
	ctx := t.Context()
	alice := newParty(t, o, PartyConfig{})
	members := []*Party{newParty(t, o, PartyConfig{}), newParty(t, o, PartyConfig{DeviceID: 2})}
	distributionID := mustUUID(t)
	skdm, err := alice.SenderKeyDistribution(ctx, distributionID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if _, err := m.ProcessSenderKeyDistribution(ctx, alice.Address(), skdm); err != nil {
			t.Fatal(err)
		}
	}
	var msgs [][]byte
	for i := range 3 {
		body, err := alice.GroupEncrypt(ctx, distributionID, fmt.Appendf(nil, "group %d", i))
		if err != nil {
			t.Fatalf("GroupEncrypt: %v", err)
		}
		msgs = append(msgs, body)
	}
	for _, m := range members {
		for _, i := range []int{0, 2, 1} { // out of order
			got, err := m.GroupDecrypt(ctx, alice.Address(), msgs[i])
			if err != nil || string(got) != fmt.Sprintf("group %d", i) {
				t.Fatalf("GroupDecrypt %d = %q, %v", i, got, err)
			}
		}
		if _, err := m.GroupDecrypt(ctx, alice.Address(), msgs[1]); ErrorName(err) != "DuplicatedMessage" {
			t.Fatalf("replayed group message: err = %v, want DuplicatedMessage", err)
		}
		got, err := m.Decrypt(ctx, alice.Address(), Ciphertext{Type: MessageSenderKey, Body: msgs[0]})
		if err == nil {
			t.Fatalf("Decrypt of a replayed sender-key message = %q, want an error", got)
		}
	}
}

func testFingerprint(t *testing.T, o *Oracle) {
	ctx := t.Context()
	alice := newParty(t, o, PartyConfig{})
	bob := newParty(t, o, PartyConfig{})
	fp := func(local, remote *Party) Fingerprint {
		f, err := o.Fingerprint(ctx, FingerprintRequest{
			Iterations: 5200, Version: 2,
			LocalIdentifier: uuidBytes(t, local.Name), LocalKey: local.IdentityKey,
			RemoteIdentifier: uuidBytes(t, remote.Name), RemoteKey: remote.IdentityKey,
		})
		if err != nil {
			t.Fatalf("Fingerprint: %v", err)
		}
		return f
	}
	a, b := fp(alice, bob), fp(bob, alice)
	if len(a.DisplayString) != 60 || strings.Trim(a.DisplayString, "0123456789") != "" {
		t.Fatalf("display string %q: want 60 digits", a.DisplayString)
	}
	if a.DisplayString != b.DisplayString {
		t.Fatalf("display strings differ: %s vs %s", a.DisplayString, b.DisplayString)
	}
	if eq, err := o.CompareScannable(ctx, a.Scannable, b.Scannable); err != nil || !eq {
		t.Fatalf("CompareScannable(alice, bob) = %v, %v", eq, err)
	}
	carol := newParty(t, o, PartyConfig{})
	c := fp(alice, carol)
	if eq, err := o.CompareScannable(ctx, c.Scannable, b.Scannable); err != nil || eq {
		t.Fatalf("CompareScannable(alice–carol, bob–alice) = %v, %v", eq, err)
	}
}

func testKeys(t *testing.T, o *Oracle) {
	ctx := t.Context()
	k1, err := o.KeyPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := o.KeyPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1.Public) != 33 || k1.Public[0] != 0x05 || len(k1.Private) != 32 {
		t.Fatalf("key pair sizes: %d, %d", len(k1.Public), len(k1.Private))
	}

	msg := []byte("sign me")
	sig, err := o.XEdDSASign(ctx, k1.Private, msg)
	if err != nil || len(sig) != 64 {
		t.Fatalf("XEdDSASign = %x, %v", sig, err)
	}
	for _, tc := range []struct {
		name     string
		pub, msg []byte
		sig      []byte
		want     bool
	}{
		{name: "good", pub: k1.Public, msg: msg, sig: sig, want: true},
		{name: "other key", pub: k2.Public, msg: msg, sig: sig},
		{name: "other message", pub: k1.Public, msg: []byte("sign mE"), sig: sig},
		{name: "flipped signature", pub: k1.Public, msg: msg, sig: flip(sig, 10)},
		{name: "short signature", pub: k1.Public, msg: msg, sig: sig[:63]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := o.XEdDSAVerify(ctx, tc.pub, tc.msg, tc.sig)
			if err != nil || ok != tc.want {
				t.Fatalf("XEdDSAVerify = %v, %v; want %v", ok, err, tc.want)
			}
		})
	}

	s12, err := o.Agree(ctx, k1.Private, k2.Public)
	if err != nil {
		t.Fatal(err)
	}
	s21, err := o.Agree(ctx, k2.Private, k1.Public)
	if err != nil || len(s12) != 32 || !bytes.Equal(s12, s21) {
		t.Fatalf("Agree: %x vs %x (%v)", s12, s21, err)
	}

	kem, err := o.KEMGenerate(ctx)
	if err != nil || len(kem.Public) != 1+1568 || len(kem.Secret) != 1+3168 || kem.Public[0] != 0x08 || kem.Secret[0] != 0x08 {
		t.Fatalf("KEMGenerate: %d/%d bytes, %v", len(kem.Public), len(kem.Secret), err)
	}

	// A party can be given a fixed identity key.
	p := newParty(t, o, PartyConfig{IdentityPrivate: k1.Private})
	if !bytes.Equal(p.IdentityKey, k1.Public) {
		t.Fatalf("fixed identity: got %x, want %x", p.IdentityKey, k1.Public)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testGCMSIV(t *testing.T, o *Oracle) {
	ctx := t.Context()
	// RFC 8452, appendix C.2 (AES-256-GCM-SIV), the first two vectors.
	for _, tc := range []struct {
		name, key, nonce, plaintext, aad, want string
	}{
		{
			name:  "empty",
			key:   "0100000000000000000000000000000000000000000000000000000000000000",
			nonce: "030000000000000000000000",
			want:  "07f5f4169bbf55a8400cd47ea6fd400f",
		},
		{
			name:      "8 bytes",
			key:       "0100000000000000000000000000000000000000000000000000000000000000",
			nonce:     "030000000000000000000000",
			plaintext: "0100000000000000",
			want:      "c2ef328e5c71c83b843122130f7364b761e0b97427e3df28",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, nonce, aad := unhex(t, tc.key), unhex(t, tc.nonce), unhex(t, tc.aad)
			got, err := o.AES256GCMSIVEncrypt(ctx, key, nonce, aad, unhex(t, tc.plaintext))
			if err != nil || hex.EncodeToString(got) != tc.want {
				t.Fatalf("encrypt = %x, %v; want %s", got, err, tc.want)
			}
			pt, err := o.AES256GCMSIVDecrypt(ctx, key, nonce, aad, got)
			if err != nil || hex.EncodeToString(pt) != tc.plaintext {
				t.Fatalf("decrypt = %x, %v; want %s", pt, err, tc.plaintext)
			}
		})
	}

	key := bytes.Repeat([]byte{0x42}, 32)
	nonce := bytes.Repeat([]byte{0x24}, 12)
	aad := []byte("header")
	pt := bytes.Repeat([]byte("sotto "), 100)
	ct, err := o.AES256GCMSIVEncrypt(ctx, key, nonce, aad, pt)
	if err != nil || len(ct) != len(pt)+16 {
		t.Fatalf("encrypt: %d bytes, %v", len(ct), err)
	}
	got, err := o.AES256GCMSIVDecrypt(ctx, key, nonce, aad, ct)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := o.AES256GCMSIVDecrypt(ctx, key, nonce, aad, flip(ct, 5)); err == nil {
		t.Fatal("decrypt of a tampered ciphertext succeeded")
	}
	if _, err := o.AES256GCMSIVDecrypt(ctx, key, nonce, []byte("Header"), ct); err == nil {
		t.Fatal("decrypt with other associated data succeeded")
	}
}

func testBench(t *testing.T, o *Oracle) {
	r, err := o.Bench(t.Context(), BenchEncryptDecrypt1K, 20)
	if err != nil {
		t.Fatalf("Bench: %v", err)
	}
	if r.Op != BenchEncryptDecrypt1K || r.Iterations != 20 || r.Warmup != 2 || r.NsPerOp <= 0 {
		t.Fatalf("Bench = %+v", r)
	}
	t.Logf("libsignal %s: %.0f ns/op", r.Op, r.NsPerOp)
}

func testErrors(t *testing.T, o *Oracle) {
	ctx := t.Context()
	alice := newParty(t, o, PartyConfig{})
	bob := newParty(t, o, PartyConfig{})
	for _, tc := range []struct {
		name   string
		call   func() error
		method string
		want   string // Error.Name
	}{
		{
			name:   "unknown method",
			call:   func() error { return o.Call(ctx, "noSuchMethod", nil, nil) },
			method: "noSuchMethod", want: "UnknownMethod",
		},
		{
			name:   "bad base64",
			call:   func() error { return o.Call(ctx, "xeddsaSign", map[string]string{"private": "!!", "message": ""}, nil) },
			method: "xeddsaSign", want: "BadRequest",
		},
		{
			name:   "params not an object",
			call:   func() error { return o.Call(ctx, "ping", []int{1}, nil) },
			method: "ping", want: "BadRequest",
		},
		{
			name: "unknown party",
			call: func() error {
				_, err := (&Party{o: o, Name: mustUUID(t), DeviceID: 1}).Bundle(ctx, false)
				return err
			},
			method: "bundle", want: "UnknownParty",
		},
		{
			name: "no session",
			call: func() error {
				_, err := alice.Encrypt(ctx, bob.Address(), []byte("x"))
				return err
			},
			method: "encrypt", want: "LibSignalError", // SessionNotFound has no ErrorCode of its own
		},
		{
			name: "garbage message",
			call: func() error {
				_, err := alice.Decrypt(ctx, bob.Address(), Ciphertext{Type: MessageWhisper, Body: []byte{0x44, 1, 2, 3}})
				return err
			},
			method: "decrypt", want: "LibSignalError",
		},
		{
			name: "bad key",
			call: func() error {
				_, err := o.Agree(ctx, make([]byte, 32), []byte{0x06, 1, 2})
				return err
			},
			method: "agree", want: "LibSignalError",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if e.Method != tc.method || e.Name != tc.want {
				t.Fatalf("err = %+v, want method %s name %s", e, tc.method, tc.want)
			}
			t.Logf("%v", e)
		})
	}
	// The harness survives all of that.
	if v, err := o.Ping(ctx); err != nil || v != LibsignalVersion {
		t.Fatalf("Ping = %q, %v", v, err)
	}
}

// TestLibsignalHarnessConcurrent drives one harness from several goroutines
// and checks that responses reach the right callers.
func TestLibsignalHarnessConcurrent(t *testing.T) {
	o := Start(t)
	ctx := t.Context()
	k, err := o.KeyPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const workers, calls = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				msg := fmt.Appendf(nil, "worker %d call %d", w, i)
				sig, err := o.XEdDSASign(ctx, k.Private, msg)
				if err != nil {
					errs <- err
					return
				}
				ok, err := o.XEdDSAVerify(ctx, k.Public, msg, sig)
				if err != nil || !ok {
					errs <- fmt.Errorf("verify %q: %v, %w", msg, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLibsignalHarnessTimeout checks that a call gives up when its context
// ends, and that the harness keeps answering afterwards.
func TestLibsignalHarnessTimeout(t *testing.T) {
	o := Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	_, err := o.Bench(ctx, BenchPQXDHAlice, 200)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if _, err := o.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after a timed-out call: %v", err)
	}
}
