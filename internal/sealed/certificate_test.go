package sealed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// TestLibsignalLosslessRoundTrip is libsignal's test_lossless_round_trip
// (sealed_sender.rs): a sender certificate made by libsignal with an extra,
// unknown field 999, signed by a server certificate signed by the trust root
// whose private key is 32 zero bytes (clamped). It must parse, keep its
// bytes, and validate until its expiration at 31337 ms.
func TestLibsignalLosslessRoundTrip(t *testing.T) {
	certData := unhex(t, "100119697a0000000000002221056c9d1f8deb82b9a898f9c277a1b74989ec009afb5c0acb5e8e69e3d5ca29d6322a690a2508011221053b03ca070e6f6b2f271d32f27321689cdf4e59b106c10b58fbe15063ed868a5a124024bc92954e52ad1a105b5bda85c9db410dcfeb42a671b45a523b3a46e9594a8bde0efc671d8e8e046b32c67f59b80a46ffdf24071850779bc21325107902af89322461616161616161612d373030302d313165622d623332612d333362386138613438376136ba3e136372617368696e6720726967687420646f776e")
	sig := unhex(t, "a22d8f86f5d00794f319add821e342c6ffffb6b34f741e569f8b321ab0255f2d1757ecf648e53a3602cae8f09b3fc80dcf27534d67efd272b6739afc31f75c8c")
	encoded := pb.AppendBytes(pb.AppendBytes(nil, 1, certData), 2, sig)

	rootPriv, err := keys.NewPrivateKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	trust := Trust{Roots: []keys.PublicKey{rootPriv.PublicKey()}}

	c, err := ParseSenderCertificate(encoded)
	if err != nil {
		t.Fatalf("ParseSenderCertificate: %v", err)
	}
	if !bytes.Equal(c.Bytes(), encoded) || !bytes.Equal(c.Certificate(), certData) || !bytes.Equal(c.Signature(), sig) {
		t.Fatal("parsed certificate does not keep its bytes")
	}
	if c.UUID() != "aaaaaaaa-7000-11eb-b32a-33b8a8a487a6" || c.Device() != 1 || c.ExpiresMillis() != 31337 {
		t.Fatalf("fields: %q %d %d", c.UUID(), c.Device(), c.ExpiresMillis())
	}
	if _, ok := c.E164(); ok {
		t.Fatal("certificate has no E.164")
	}
	if c.Signer().KeyID() != 1 {
		t.Fatalf("signer key id %d", c.Signer().KeyID())
	}
	for _, tt := range []struct {
		ms   int64
		want error
	}{{31336, nil}, {31337, nil}, {31338, ErrExpired}} {
		if err := c.Validate(trust, time.UnixMilli(tt.ms)); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("Validate at %d ms: %v, want %v", tt.ms, err, tt.want)
		}
	}
	other := Trust{Roots: []keys.PublicKey{genKey(t, testkit.Rand("other")).Public}}
	if err := c.Validate(other, time.UnixMilli(31336)); !errors.Is(err, ErrUntrusted) {
		t.Errorf("Validate with another root: %v", err)
	}
	revoked := Trust{Roots: trust.Roots, RevokedServerKeyIDs: []uint32{7, 1}}
	if err := c.Validate(revoked, time.UnixMilli(31336)); !errors.Is(err, ErrRevoked) {
		t.Errorf("Validate with key id 1 revoked: %v", err)
	}
}

// TestCertificateEncoding checks the exact bytes New*Certificate produce,
// field by field, in prost's order.
func TestCertificateEncoding(t *testing.T) {
	w := newWorld(t, "encoding")
	sc := w.serverCert
	wantCert := append([]byte{0x08, 0x01, 0x12, 0x21}, w.server.Public.Bytes()...)
	if !bytes.Equal(sc.Certificate(), wantCert) {
		t.Fatalf("server certificate body\n got %x\nwant %x", sc.Certificate(), wantCert)
	}
	if !bytes.Equal(sc.Bytes(), append(append(append([]byte{0x0a, byte(len(wantCert))}, wantCert...), 0x12, 0x40), sc.Signature()...)) {
		t.Fatalf("server certificate encoding %x", sc.Bytes())
	}

	var want []byte
	want = append(want, 0x0a, byte(len(aliceE164)))
	want = append(want, aliceE164...)
	want = append(want, 0x10, byte(aliceDevice))
	want = append(want, 0x19)
	want = binary.LittleEndian.AppendUint64(want, uint64(testExpires.UnixMilli()))
	want = append(want, 0x22, 0x21)
	want = append(want, w.sender.Public.Bytes()...)
	want = append(want, 0x2a, byte(len(sc.Bytes())))
	want = append(want, sc.Bytes()...)
	want = append(want, 0x32, byte(len(aliceUUID)))
	want = append(want, aliceUUID...)
	if !bytes.Equal(w.senderCert.Certificate(), want) {
		t.Fatalf("sender certificate body\n got %x\nwant %x", w.senderCert.Certificate(), want)
	}

	// Without an E.164 the field is left out entirely.
	c, err := NewSenderCertificate(w.rand, sc, w.server.Private, Sender{UUID: bobUUID, Device: 0, IdentityKey: w.sender.Public}, time.UnixMilli(0))
	if err != nil {
		t.Fatal(err)
	}
	if body := c.Certificate(); body[0] != 0x10 || body[1] != 0x00 {
		t.Fatalf("certificate without E.164 starts %x", body[:2])
	}
}

func TestCertificateRoundTrip(t *testing.T) {
	w := newWorld(t, "round trip")
	sc, err := ParseServerCertificate(w.serverCert.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sc.Bytes(), w.serverCert.Bytes()) || sc.KeyID() != 1 || !sc.Key().Equal(w.server.Public) {
		t.Fatal("server certificate round trip")
	}
	if err := sc.Validate(w.trust); err != nil {
		t.Fatal(err)
	}
	c, err := ParseSenderCertificate(w.senderCert.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Bytes(), w.senderCert.Bytes()) {
		t.Fatal("sender certificate round trip")
	}
	s := c.Sender()
	if s.UUID != aliceUUID || s.E164 != aliceE164 || s.Device != aliceDevice || !s.IdentityKey.Equal(w.sender.Public) {
		t.Fatalf("Sender() = %+v", s)
	}
	if !c.Expires().Equal(testExpires) || !bytes.Equal(c.Signer().Bytes(), w.serverCert.Bytes()) {
		t.Fatal("expiry or signer")
	}
	if err := c.Validate(w.trust, testExpires); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(w.trust, testExpires.Add(time.Millisecond)); !errors.Is(err, ErrExpired) {
		t.Fatalf("one millisecond late: %v", err)
	}
	// Any of several roots will do.
	many := Trust{Roots: []keys.PublicKey{{}, genKey(t, w.rand).Public, w.root.Public}}
	if err := c.Validate(many, testExpires); err != nil {
		t.Fatalf("second root: %v", err)
	}
}

func TestCertificateRejections(t *testing.T) {
	w := newWorld(t, "rejections")
	other := genKey(t, w.rand)
	sender := Sender{UUID: aliceUUID, Device: 1, IdentityKey: w.sender.Public}

	revokedServer, err := NewServerCertificate(w.rand, w.root.Private, RevokedTestServerKeyID, w.server.Public)
	if err != nil {
		t.Fatal(err)
	}
	revokedCert, err := NewSenderCertificate(w.rand, revokedServer, w.server.Private, sender, testExpires)
	if err != nil {
		t.Fatal(err)
	}
	otherRootServer, err := NewServerCertificate(w.rand, other.Private, 1, w.server.Public)
	if err != nil {
		t.Fatal(err)
	}
	otherRootCert, err := NewSenderCertificate(w.rand, otherRootServer, w.server.Private, sender, testExpires)
	if err != nil {
		t.Fatal(err)
	}
	// A sender certificate signed by some other server key than the one its
	// server certificate names: re-sign a good one.
	sig, err := other.Private.Sign(w.rand, w.senderCert.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	wrongServerKey, err := ParseSenderCertificate(appendSigned(nil, w.senderCert.Certificate(), sig[:]))
	if err != nil {
		t.Fatal(err)
	}
	// A truncated signature parses (as in libsignal) but never validates.
	shortSig, err := ParseSenderCertificate(appendSigned(nil, w.senderCert.Certificate(), w.senderCert.Signature()[:63]))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		cert  *SenderCertificate
		trust Trust
		now   time.Time
		want  error
	}{
		{"expired", w.senderCert, w.trust, testExpires.Add(11 * time.Millisecond), ErrExpired},
		{"wrong trust root", w.senderCert, Trust{Roots: []keys.PublicKey{other.Public}}, testExpires, ErrUntrusted},
		{"no trust roots", w.senderCert, Trust{}, testExpires, ErrUntrusted},
		{"server certificate from another root", otherRootCert, w.trust, testExpires, ErrUntrusted},
		{"revoked by caller", w.senderCert, Trust{Roots: w.trust.Roots, RevokedServerKeyIDs: []uint32{1}}, testExpires, ErrRevoked},
		{"libsignal's revoked test id", revokedCert, w.trust, testExpires, ErrRevoked},
		{"signed by another server key", wrongServerKey, w.trust, testExpires, ErrUntrusted},
		{"short signature", shortSig, w.trust, testExpires, ErrUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cert.Validate(tt.trust, tt.now); !errors.Is(err, tt.want) {
				t.Fatalf("Validate: %v, want %v", err, tt.want)
			}
		})
	}
	if err := revokedServer.Validate(w.trust); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked server certificate: %v", err)
	}

	if _, err := NewSenderCertificate(w.rand, w.serverCert, other.Private, sender, testExpires); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("NewSenderCertificate with the wrong server key: %v", err)
	}
	for name, s := range map[string]Sender{
		"bad UTF-8 UUID": {UUID: "\xff", IdentityKey: w.sender.Public},
		"bad UTF-8 E164": {UUID: aliceUUID, E164: "+1\xc0", IdentityKey: w.sender.Public},
		"no key":         {UUID: aliceUUID},
	} {
		if _, err := NewSenderCertificate(w.rand, w.serverCert, w.server.Private, s, testExpires); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewSenderCertificate(w.rand, w.serverCert, w.server.Private, sender, time.UnixMilli(-1)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("expiry before 1970: %v", err)
	}
	if _, err := NewServerCertificate(w.rand, keys.PrivateKey{}, 1, w.server.Public); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("zero trust root: %v", err)
	}
}

// TestCertificateBitFlips is libsignal's test_server_cert/test_sender_cert:
// with any single bit flipped, a certificate either fails to parse or fails
// to validate.
func TestCertificateBitFlips(t *testing.T) {
	w := newWorld(t, "bit flips")
	flip := func(t *testing.T, enc []byte, check func([]byte) error) {
		t.Helper()
		for i := range len(enc) * 8 {
			b := bytes.Clone(enc)
			b[i/8] ^= 1 << (i % 8)
			if err := check(b); err == nil {
				t.Fatalf("bit %d flipped: still valid", i)
			}
		}
	}
	t.Run("server", func(t *testing.T) {
		flip(t, w.serverCert.Bytes(), func(b []byte) error {
			c, err := ParseServerCertificate(b)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("parse error %v is not ErrMalformed", err)
				}
				return err
			}
			return c.Validate(w.trust)
		})
	})
	t.Run("sender", func(t *testing.T) {
		flip(t, w.senderCert.Bytes(), func(b []byte) error {
			c, err := ParseSenderCertificate(b)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("parse error %v is not ErrMalformed", err)
				}
				return err
			}
			return c.Validate(w.trust, testExpires)
		})
	})
}

func TestCertificateMalformed(t *testing.T) {
	w := newWorld(t, "malformed")
	sc := w.serverCert
	key := w.sender.Public.Bytes()
	signer := sc.Bytes()
	uuid := []byte(aliceUUID)

	// senderBody builds a sender certificate body from field-appending steps.
	type field func([]byte) []byte
	e164 := func(b []byte) []byte { return pb.AppendBytes(b, 1, []byte(aliceE164)) }
	device := func(b []byte) []byte { return pb.AppendUint(b, 2, 1) }
	expires := func(b []byte) []byte { return pb.AppendFixed64(b, 3, 1) }
	ikey := func(b []byte) []byte { return pb.AppendBytes(b, 4, key) }
	sign := func(b []byte) []byte { return pb.AppendBytes(b, 5, signer) }
	uid := func(b []byte) []byte { return pb.AppendBytes(b, 6, uuid) }
	body := func(fs ...field) []byte {
		var b []byte
		for _, f := range fs {
			b = f(b)
		}
		return appendSigned(nil, b, make([]byte, 64))
	}
	if _, err := ParseSenderCertificate(body(e164, device, expires, ikey, sign, uid)); err != nil {
		t.Fatalf("the complete certificate should parse: %v", err)
	}
	senderCases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no signature", pb.AppendBytes(nil, 1, []byte{})},
		{"no certificate", pb.AppendBytes(nil, 2, make([]byte, 64))},
		{"no device", body(expires, ikey, sign, uid)},
		{"no expiry", body(device, ikey, sign, uid)},
		{"no key", body(device, expires, sign, uid)},
		{"no signer", body(device, expires, ikey, uid)},
		{"no uuid", body(device, expires, ikey, sign)},
		{"repeated field", body(device, device, expires, ikey, sign, uid)},
		{"device not a varint", body(func(b []byte) []byte { return pb.AppendFixed64(b, 2, 1) }, expires, ikey, sign, uid)},
		{"device over 32 bits", body(func(b []byte) []byte { return pb.AppendUint(b, 2, 1<<32) }, expires, ikey, sign, uid)},
		{"expiry a varint", body(device, func(b []byte) []byte { return pb.AppendUint(b, 3, 1) }, ikey, sign, uid)},
		{"key with trailing byte", body(device, expires, func(b []byte) []byte { return pb.AppendBytes(b, 4, append(key, 0)) }, sign, uid)},
		{"key type 0x06", body(device, expires, func(b []byte) []byte { return pb.AppendBytes(b, 4, append([]byte{6}, key[1:]...)) }, sign, uid)},
		{"uuid not UTF-8", body(device, expires, ikey, sign, func(b []byte) []byte { return pb.AppendBytes(b, 6, []byte{0xff}) })},
		{"e164 not UTF-8", body(func(b []byte) []byte { return pb.AppendBytes(b, 1, []byte{0xc3}) }, device, expires, ikey, sign, uid)},
		{"signer garbage", body(device, expires, ikey, func(b []byte) []byte { return pb.AppendBytes(b, 5, []byte{1, 2, 3}) }, uid)},
		{"signer without key", body(device, expires, ikey, func(b []byte) []byte {
			return pb.AppendBytes(b, 5, appendSigned(nil, pb.AppendUint(nil, 1, 1), make([]byte, 64)))
		}, uid)},
		{"too large", body(device, expires, ikey, sign, uid, func(b []byte) []byte { return pb.AppendBytes(b, 40, make([]byte, MaxCertificateSize)) })},
		{"group wire type", append(body(device, expires, ikey, sign, uid), 0x0b)},
	}
	for _, tt := range senderCases {
		t.Run("sender/"+tt.name, func(t *testing.T) {
			if _, err := ParseSenderCertificate(tt.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}

	serverBody := func(b []byte) []byte { return appendSigned(nil, b, make([]byte, 64)) }
	serverCases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no id", serverBody(pb.AppendBytes(nil, 2, key))},
		{"no key", serverBody(pb.AppendUint(nil, 1, 1))},
		{"short key", serverBody(pb.AppendBytes(pb.AppendUint(nil, 1, 1), 2, key[:32]))},
		{"id over 32 bits", serverBody(pb.AppendBytes(pb.AppendUint(nil, 1, 1<<32), 2, key))},
		{"no signature", pb.AppendBytes(nil, 1, pb.AppendBytes(pb.AppendUint(nil, 1, 1), 2, key))},
		{"truncated", sc.Bytes()[:len(sc.Bytes())-1]},
	}
	for _, tt := range serverCases {
		t.Run("server/"+tt.name, func(t *testing.T) {
			if _, err := ParseServerCertificate(tt.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}

	// Unknown fields are skipped; field order does not matter for parsing.
	swapped := pb.AppendBytes(pb.AppendBytes(pb.AppendUint(nil, 9, 5), 2, sc.Signature()), 1, sc.Certificate())
	c, err := ParseServerCertificate(swapped)
	if err != nil {
		t.Fatalf("reordered certificate with an unknown field: %v", err)
	}
	if err := c.Validate(w.trust); err != nil || !bytes.Equal(c.Bytes(), swapped) {
		t.Fatalf("reordered certificate: %v", err)
	}
}

// TestNoPrefixParses: no strict prefix of a certificate parses.
func TestCertificateNoPrefixParses(t *testing.T) {
	w := newWorld(t, "prefix")
	for _, enc := range [][]byte{w.serverCert.Bytes(), w.senderCert.Bytes()} {
		for n := range len(enc) {
			if _, err := ParseServerCertificate(enc[:n]); err == nil && bytes.Equal(enc, w.serverCert.Bytes()) {
				t.Fatalf("server certificate prefix of %d bytes parses", n)
			}
			if _, err := ParseSenderCertificate(enc[:n]); err == nil {
				t.Fatalf("certificate prefix of %d bytes parses as a sender certificate", n)
			}
		}
	}
}
