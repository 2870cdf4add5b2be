package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"testing"

	"github.com/sotto-chat/sotto/internal/gcmsiv"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// Round trips cannot catch a mistake made the same way on both sides (two
// labels swapped in Seal and Open alike). These tests recompute the sender's
// output from libsignal's description with the standard library only —
// string literals, explicit concatenations, crypto/ecdh, crypto/hkdf — and
// compare bytes. The randomness is replayed to learn the ephemeral secrets.

func specDH(t *testing.T, priv []byte, pub keys.PublicKey) []byte {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	u := pub.U()
	p, err := ecdh.X25519().NewPublicKey(u[:])
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.ECDH(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func specHKDF(t *testing.T, ikm, salt []byte, info string, n int) []byte {
	t.Helper()
	out, err := hkdf.Key(sha256.New, ikm, salt, info, n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestV1AgainstSpec(t *testing.T) {
	w := newWorld(t, "v1 spec")
	bob := genKey(t, w.rand)
	u := w.usmc(t, TypeWhisper, []byte("spec"))
	ct, err := SealV1(testkit.Rand("v1 spec eph"), u, bob.Public, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	ePriv := make([]byte, 32)
	if _, err := io.ReadFull(testkit.Rand("v1 spec eph"), ePriv); err != nil {
		t.Fatal(err)
	}
	e, err := keys.NewPrivateKey(ePriv)
	if err != nil {
		t.Fatal(err)
	}
	ePub := e.PublicKey().Bytes()

	ctr := func(key, in []byte) []byte {
		b, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, len(in))
		cipher.NewCTR(b, make([]byte, 16)).XORKeyStream(out, in)
		return out
	}
	mac10 := func(key, in []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(in)
		return m.Sum(nil)[:10]
	}

	// e_chain, e_cipherKey, e_macKey = HKDF(salt = "UnidentifiedDelivery" ‖ R ‖ E, ikm = DH(e, R))
	ek := specHKDF(t, specDH(t, e.Bytes(), bob.Public), cat([]byte("UnidentifiedDelivery"), bob.Public.Bytes(), ePub), "", 96)
	eCT := ctr(ek[32:64], w.sender.Public.Bytes())
	static := cat(eCT, mac10(ek[64:96], eCT))
	// s_cipherKey, s_macKey = HKDF(salt = e_chain ‖ static, ikm = DH(S, R))[32:96]
	sk := specHKDF(t, specDH(t, w.sender.Private.Bytes(), bob.Public), cat(ek[:32], static), "", 96)
	sCT := ctr(sk[32:64], u.Bytes())
	message := cat(sCT, mac10(sk[64:96], sCT))

	want := []byte{0x11}
	want = pb.AppendBytes(want, 1, ePub)
	want = pb.AppendBytes(want, 2, static)
	want = pb.AppendBytes(want, 3, message)
	if !bytes.Equal(ct, want) {
		t.Fatalf("SealV1\n got %x\nwant %x", ct, want)
	}
}

func TestV2AgainstSpec(t *testing.T) {
	w := newWorld(t, "v2 spec")
	ps := makeParties(t, w, 3)
	u := w.usmc(t, TypeSenderKey, []byte("spec"))
	excluded := PNI(numberedUUID(77))
	sent, err := SealV2(testkit.Rand("v2 spec M"), u, recipientsOf(ps), []ServiceID{excluded}, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	m := make([]byte, 32)
	if _, err := io.ReadFull(testkit.Rand("v2 spec M"), m); err != nil {
		t.Fatal(err)
	}
	// r = KDF(label_r, M), K = KDF(label_K, M), E = DeriveKeyPair(r)
	r := specHKDF(t, m, nil, "Sealed Sender v2: r (2023-08)", 32)
	k := specHKDF(t, m, nil, "Sealed Sender v2: K", 32)
	eKey, err := ecdh.X25519().NewPrivateKey(r)
	if err != nil {
		t.Fatal(err)
	}
	eU := eKey.PublicKey().Bytes()
	ePub := cat([]byte{5}, eU)
	sPub := w.sender.Public.Bytes()

	aead, err := gcmsiv.New(k)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x23, byte(len(ps) + 1)}
	for _, p := range ps {
		fw := p.id.FixedWidth()
		want = append(want, fw[:]...)
		for j, d := range p.devices {
			v := uint16(d.RegistrationID)
			if j+1 < len(p.devices) {
				v |= 0x8000
			}
			want = append(want, byte(d.ID))
			want = binary.BigEndian.AppendUint16(want, v)
		}
		rPub := p.key.Public.Bytes()
		// C_i = KDF(label_DH, DH(E, R_i) ‖ E.public ‖ R_i.public) XOR M
		c := specHKDF(t, cat(specDH(t, r, p.key.Public), ePub, rPub), nil, "Sealed Sender v2: DH", 32)
		for i := range c {
			c[i] ^= m[i]
		}
		// AT_i = KDF(label_DH_s, DH(S, R_i) ‖ E.public ‖ C_i ‖ S.public ‖ R_i.public, len = 16)
		at := specHKDF(t, cat(specDH(t, w.sender.Private.Bytes(), p.key.Public), ePub, c, sPub, rPub), nil, "Sealed Sender v2: DH-sender", 16)
		want = append(want, c...)
		want = append(want, at...)
	}
	fw := excluded.FixedWidth()
	want = append(want, fw[:]...)
	want = append(want, 0)
	want = append(want, eU...)
	want = aead.Seal(want, make([]byte, 12), u.Bytes(), nil)
	if !bytes.Equal(sent, want) {
		t.Fatalf("SealV2\n got %x\nwant %x", sent, want)
	}
}
