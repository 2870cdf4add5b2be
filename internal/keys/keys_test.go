package keys

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"

	"github.com/sotto-chat/sotto/internal/testkit"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Known answers from libsignal's curve25519 unit tests (test_agreement).
func TestAgreementKnownAnswer(t *testing.T) {
	alicePriv := unhex(t, "c806439dc9d2c476ffed8f2580c0888d58ab406bf7ae3698879021b96bb4bf59")
	alicePub := unhex(t, "1bb75966f2e93a3691dfff942bb2a466a1c08b8d78ca3f4d6df8b8bfa2e4ee28")
	bobPriv := unhex(t, "b03b34c33a1c44f225b662d2bf4859b8135411fa7b0386d45fb75dc5b91b4466")
	bobPub := unhex(t, "653614993d2b15ee9e5fd3d86ce719ef4ec1daae1886a87b3f5fa9565a27a22f")
	shared := unhex(t, "325f239328941ced6e673b86ba41017448e99b649a9c3806c1dd7ca4c477e629")

	a, err := NewKeyPair(alicePriv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKeyPair(bobPriv)
	if err != nil {
		t.Fatal(err)
	}
	if u := a.Public.U(); !bytes.Equal(u[:], alicePub) {
		t.Errorf("alice public = %x, want %x", u, alicePub)
	}
	if u := b.Public.U(); !bytes.Equal(u[:], bobPub) {
		t.Errorf("bob public = %x, want %x", u, bobPub)
	}
	bp, err := ParsePublicKey(append([]byte{TypeDJB}, bobPub...))
	if err != nil {
		t.Fatal(err)
	}
	ap, err := PublicKeyFromU(alicePub)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := a.Private.Agree(bp)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Private.Agree(ap)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1[:], shared) || !bytes.Equal(s2[:], shared) {
		t.Errorf("shared = %x / %x, want %x", s1, s2, shared)
	}
}

// Known answer from libsignal's curve25519 unit tests (test_signature): a
// signature made by libsignal verifies, and every one-bit change fails.
func TestXEdDSAKnownAnswer(t *testing.T) {
	priv := unhex(t, "c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865")
	pub := unhex(t, "ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64")
	msg := unhex(t, "05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a")
	sig := unhex(t, "5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfb"+
		"ede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88")

	kp, err := NewKeyPair(priv)
	if err != nil {
		t.Fatal(err)
	}
	if u := kp.Public.U(); !bytes.Equal(u[:], pub) {
		t.Fatalf("public = %x, want %x", u, pub)
	}
	if !kp.Public.Verify(sig, msg) {
		t.Fatal("libsignal's signature does not verify")
	}
	if !kp.Public.Verify(sig, msg[:10], msg[10:]) {
		t.Fatal("signature over split message does not verify")
	}
	for i := range len(sig) * 8 {
		bad := bytes.Clone(sig)
		bad[i/8] ^= 1 << (i % 8)
		if kp.Public.Verify(bad, msg) {
			t.Fatalf("signature with bit %d flipped verifies", i)
		}
	}
	if kp.Public.Verify(sig[:63], msg) || kp.Public.Verify(append(bytes.Clone(sig), 0), msg) {
		t.Fatal("signature of wrong length verifies")
	}
}

func TestSignVerify(t *testing.T) {
	rand := testkit.Rand(t.Name())
	for i := range 64 {
		kp, err := GenerateKeyPair(rand)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte(fmt.Sprintf("message %d", i))
		sig, err := kp.Private.Sign(rand, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !kp.Public.Verify(sig[:], msg) {
			t.Fatalf("key %d: own signature does not verify", i)
		}
		if kp.Public.Verify(sig[:], append(msg, 0)) {
			t.Fatalf("key %d: signature verifies another message", i)
		}
		other, _ := GenerateKeyPair(rand)
		if other.Public.Verify(sig[:], msg) {
			t.Fatalf("key %d: signature verifies under another key", i)
		}
	}
}

// edwardsToU maps an Edwards point to its Montgomery u = (1+y)/(1−y).
func edwardsToU(p *edwards25519.Point) []byte {
	return p.BytesMontgomery()
}

func TestParsePublicKeyRejects(t *testing.T) {
	good, err := GenerateKeyPair(testkit.Rand(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	gu := good.Public.U()

	// A torsioned key: the good point plus a point of order 8.
	order8 := unhex(t, "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	t8, err := new(edwards25519.Point).SetBytes(order8)
	if err != nil {
		t.Fatal(err)
	}
	var fu field.Element
	fu.SetBytes(gu[:])
	gp, err := montgomeryToEdwards(&fu, 0)
	if err != nil {
		t.Fatal(err)
	}
	torsioned := edwardsToU(new(edwards25519.Point).Add(gp, t8))

	p := unhex(t, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	pPlus1 := unhex(t, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	topBit := append([]byte(nil), gu[:]...)
	topBit[31] |= 0x80
	twist := unhex(t, "0200000000000000000000000000000000000000000000000000000000000000") // u=2 is on the twist

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrKeyLength},
		{"wrong type", append([]byte{0x06}, gu[:]...), ErrKeyType},
		{"short", append([]byte{TypeDJB}, gu[:31]...), ErrKeyLength},
		{"long", append(append([]byte{TypeDJB}, gu[:]...), 0), ErrKeyLength},
		{"u=0 (order 2)", append([]byte{TypeDJB}, make([]byte, 32)...), ErrTorsion},
		{"u=1 (order 4)", append([]byte{TypeDJB}, unhex(t, "0100000000000000000000000000000000000000000000000000000000000000")...), ErrTorsion},
		{"u=p (non-canonical 0)", append([]byte{TypeDJB}, p...), ErrNonCanonical},
		{"u=p+1 (non-canonical 1)", append([]byte{TypeDJB}, pPlus1...), ErrNonCanonical},
		{"top bit set", append([]byte{TypeDJB}, topBit...), ErrNonCanonical},
		{"on the twist", append([]byte{TypeDJB}, twist...), ErrNotOnCurve},
		{"torsioned", append([]byte{TypeDJB}, torsioned...), ErrTorsion},
		{"order-8 point", append([]byte{TypeDJB}, edwardsToU(t8)...), ErrTorsion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicKey(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParsePublicKey = %v, want %v", err, tc.want)
			}
			// ParseStoredPublicKey skips only the subgroup and curve
			// checks: every malformed encoding is still refused.
			_, err = ParseStoredPublicKey(tc.in)
			switch tc.want {
			case ErrTorsion, ErrNotOnCurve:
				if err != nil && !errors.Is(err, ErrLowOrder) {
					t.Logf("ParseStoredPublicKey = %v", err)
				}
			default:
				if !errors.Is(err, tc.want) {
					t.Fatalf("ParseStoredPublicKey = %v, want %v", err, tc.want)
				}
			}
		})
	}
	for _, parse := range []func([]byte) (PublicKey, error){ParsePublicKey, ParseStoredPublicKey} {
		k, err := parse(good.Public.Bytes())
		if err != nil {
			t.Fatalf("good key rejected: %v", err)
		}
		if !k.Equal(good.Public) {
			t.Fatal("a parsed key differs from the original")
		}
	}
}

type x25519Test struct {
	testkit.WycheproofTest
	Public  testkit.Hex `json:"public"`
	Private testkit.Hex `json:"private"`
	Shared  testkit.Hex `json:"shared"`
}

type x25519Group struct {
	Curve string       `json:"curve"`
	Tests []x25519Test `json:"tests"`
}

// TestWycheproofX25519 runs every X25519 case. Sotto is stricter than
// X25519 itself: it accepts only canonical public keys of prime order. So
// every accepted key must give Wycheproof's shared secret; every low-order,
// twist or non-canonical key must be rejected; a valid case may be rejected
// only for torsion, and then the raw X25519 result must still match (the
// arithmetic underneath is right).
func TestWycheproofX25519(t *testing.T) {
	accepted := 0
	for _, g := range testkit.WycheproofGroups[x25519Group](t, "x25519_test.json") {
		for _, tc := range g.Tests {
			t.Run(tc.Name(), func(t *testing.T) {
				priv, err := NewPrivateKey(tc.Private)
				if err != nil {
					t.Fatal(err)
				}
				pub, err := PublicKeyFromU(tc.Public)
				if err == nil {
					accepted++
					s, err := priv.Agree(pub)
					if err != nil {
						t.Fatalf("Agree: %v", err)
					}
					if !bytes.Equal(s[:], tc.Shared) {
						t.Fatalf("shared = %x, want %x", s, tc.Shared)
					}
					for _, f := range []string{"LowOrderPublic", "Twist", "NonCanonicalPublic", "ZeroSharedSecret"} {
						if tc.HasFlag(f) {
							t.Fatalf("accepted a %s key", f)
						}
					}
					return
				}
				if tc.Result == testkit.WycheproofValid {
					// RFC 7748's own vectors use points on the twist,
					// which X25519 computes with but Sotto refuses.
					if !errors.Is(err, ErrTorsion) && !errors.Is(err, ErrNotOnCurve) {
						t.Fatalf("valid key rejected with %v", err)
					}
					raw, err := ecdh.X25519().NewPrivateKey(priv.Bytes())
					if err != nil {
						t.Fatal(err)
					}
					rp, err := ecdh.X25519().NewPublicKey(tc.Public)
					if err != nil {
						t.Fatal(err)
					}
					s, err := raw.ECDH(rp)
					if err != nil || !bytes.Equal(s, tc.Shared) {
						t.Fatalf("raw X25519 = %x, %v; want %x", s, err, tc.Shared)
					}
				}
			})
		}
	}
	if accepted < 10 {
		t.Errorf("only %d Wycheproof keys accepted; the prime-order ones should be", accepted)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	rand := testkit.Rand(t.Name())
	kp, err := GenerateKeyPair(rand)
	if err != nil {
		t.Fatal(err)
	}
	kem, err := GenerateKEMKeyPair(MLKEM1024, rand)
	if err != nil {
		t.Fatal(err)
	}
	secretHex := hex.EncodeToString(kp.Private.Bytes())
	kemHex := hex.EncodeToString(kem.Secret.Bytes()[1:])
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	log.Info("keys", "priv", kp.Private, "pair", kp, "kem", kem.Secret, "kempair", kem)
	for _, s := range []string{
		fmt.Sprint(kp.Private), fmt.Sprintf("%v %+v %#v %s", kp.Private, kp.Private, kp.Private, kp.Private),
		fmt.Sprintf("%v %+v %#v", kp, kp, kp), fmt.Sprintf("%v %+v %#v", kem.Secret, kem.Secret, kem.Secret),
		fmt.Sprintf("%v %+v %#v", kem, kem, kem), logs.String(),
	} {
		if strings.Contains(s, secretHex) || strings.Contains(s, kemHex[:16]) || strings.Contains(s, secretHex[:16]) {
			t.Errorf("secret material printed: %q", s)
		}
	}
}

func TestKEMRoundTrip(t *testing.T) {
	rand := testkit.Rand(t.Name())
	for _, typ := range []KEMType{Kyber1024, MLKEM1024} {
		t.Run(typ.String(), func(t *testing.T) {
			kp, err := GenerateKEMKeyPair(typ, rand)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ParseKEMPublicKey(kp.Public.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !pub.Equal(kp.Public) || pub.Type() != typ {
				t.Fatal("public key does not round-trip")
			}
			ct, ss, err := pub.Encapsulate(rand)
			if err != nil {
				t.Fatal(err)
			}
			if len(ct) != 1+KEMCiphertextSize || KEMType(ct[0]) != typ {
				t.Fatalf("ciphertext of %d bytes, type 0x%02x", len(ct), ct[0])
			}
			sk, err := ParseKEMSecretKey(kp.Secret.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			got, err := sk.Decapsulate(ct)
			if err != nil || got != ss {
				t.Fatalf("Decapsulate = %x, %v; want %x", got, err, ss)
			}
			bad := bytes.Clone(ct)
			bad[100] ^= 1
			if got, _ := sk.Decapsulate(bad); got == ss {
				t.Fatal("tampered ciphertext gives the same secret")
			}
			other := Kyber1024
			if typ == Kyber1024 {
				other = MLKEM1024
			}
			wrong := bytes.Clone(ct)
			wrong[0] = byte(other)
			if _, err := sk.Decapsulate(wrong); !errors.Is(err, ErrKeyType) {
				t.Fatalf("ciphertext of another type: %v", err)
			}
			if _, err := sk.Decapsulate(ct[:len(ct)-1]); !errors.Is(err, ErrKeyLength) {
				t.Fatalf("short ciphertext: %v", err)
			}
		})
	}
	if _, err := ParseKEMPublicKey(append([]byte{0x09}, make([]byte, KEMPublicKeySize)...)); !errors.Is(err, ErrKeyType) {
		t.Fatalf("unknown KEM type: %v", err)
	}
}

type mlkemTest struct {
	testkit.WycheproofTest
	Seed testkit.Hex `json:"seed"`
	EK   testkit.Hex `json:"ek"`
	M    testkit.Hex `json:"m"`
	C    testkit.Hex `json:"c"`
	K    testkit.Hex `json:"K"`
}

type mlkemGroup struct {
	Type         string      `json:"type"`
	ParameterSet string      `json:"parameterSet"`
	Tests        []mlkemTest `json:"tests"`
}

// TestWycheproofMLKEM1024 checks Sotto's ML-KEM-1024 keys (type 0x0A):
// keys from a seed, decapsulation, and rejection of malformed public keys.
func TestWycheproofMLKEM1024(t *testing.T) {
	n := 0
	for _, g := range testkit.WycheproofGroups[mlkemGroup](t, "mlkem_test.json") {
		if g.ParameterSet != "ML-KEM-1024" {
			continue
		}
		for _, tc := range g.Tests {
			n++
			t.Run(tc.Name(), func(t *testing.T) {
				switch g.Type {
				case "MLKEMTest":
					kp, err := NewKEMKeyPair(append([]byte{byte(MLKEM1024)}, tc.Seed...))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(kp.Public.Bytes()[1:], tc.EK) {
						t.Fatal("public key from seed differs")
					}
					ss, err := kp.Secret.Decapsulate(append([]byte{byte(MLKEM1024)}, tc.C...))
					if err != nil || !bytes.Equal(ss[:], tc.K) {
						t.Fatalf("Decapsulate = %x, %v; want %x", ss, err, tc.K)
					}
				case "MLKEMEncapsTest":
					_, err := ParseKEMPublicKey(append([]byte{byte(MLKEM1024)}, tc.EK...))
					if tc.Result == testkit.WycheproofInvalid && err == nil {
						t.Fatal("invalid public key accepted")
					}
					if tc.Result == testkit.WycheproofValid && err != nil {
						t.Fatalf("valid public key rejected: %v", err)
					}
				default:
					t.Fatalf("unknown group type %q", g.Type)
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("no ML-KEM-1024 vectors")
	}
}

func FuzzParsePublicKey(f *testing.F) {
	kp, _ := GenerateKeyPair(testkit.Rand("fuzz"))
	f.Add(kp.Public.Bytes())
	f.Add(append([]byte{TypeDJB}, make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePublicKey(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k.Bytes(), b) {
			t.Fatalf("re-encoding differs: %x vs %x", k.Bytes(), b)
		}
	})
}

func FuzzVerify(f *testing.F) {
	rand := testkit.Rand("fuzz")
	kp, _ := GenerateKeyPair(rand)
	sig, _ := kp.Private.Sign(rand, []byte("m"))
	f.Add(kp.Public.Bytes(), sig[:], []byte("m"))
	f.Fuzz(func(t *testing.T, pub, sig, msg []byte) {
		k, err := ParsePublicKey(pub)
		if err != nil {
			return
		}
		k.Verify(sig, msg) // must not panic
	})
}

func BenchmarkParsePublicKey(b *testing.B) {
	kp, _ := GenerateKeyPair(testkit.Rand("bench"))
	enc := kp.Public.Bytes()
	for b.Loop() {
		if _, err := ParsePublicKey(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	rand := testkit.Rand("bench")
	kp, _ := GenerateKeyPair(rand)
	msg := kp.Public.Bytes()
	for b.Loop() {
		if _, err := kp.Private.Sign(rand, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	rand := testkit.Rand("bench")
	kp, _ := GenerateKeyPair(rand)
	msg := kp.Public.Bytes()
	sig, _ := kp.Private.Sign(rand, msg)
	for b.Loop() {
		if !kp.Public.Verify(sig[:], msg) {
			b.Fatal("bad")
		}
	}
}
