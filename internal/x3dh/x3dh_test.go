package x3dh

import (
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/testkit"
)

func pub(t *testing.T, s string) keys.PublicKey {
	t.Helper()
	b, _ := hex.DecodeString(s)
	k, err := keys.ParsePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pair(t *testing.T, private, public string) keys.KeyPair {
	t.Helper()
	b, _ := hex.DecodeString(private)
	kp, err := keys.NewKeyPair(b)
	if err != nil {
		t.Fatal(err)
	}
	if !kp.Public.Equal(pub(t, public)) {
		t.Fatalf("private key %s… does not match its public key", private[:8])
	}
	return kp
}

// The fixed-key cases of libsignal's tests/ratchet.rs. They predate the
// KEM (session version 3, info "WhisperText"), so they pin down the part of
// the agreement that PQXDH shares with X3DH: the discontinuity bytes, the
// order of the DH outputs and the HKDF split. Sotto never makes such a
// session; only the derivation is exercised here.
func TestKnownAnswersFromRatchetRS(t *testing.T) {
	const x3dhInfo = "WhisperText"
	t.Run("bob", func(t *testing.T) {
		bobIdentity := pair(t, "4875cc69ddf8ea0719ec947d61081135868d5fd801f02c0225e516df2156605e",
			"05f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626")
		bobSigned := pair(t, "583900131fb727998b7803fe6ac22cc591f342e4e42a8c8d5d78194209b8d253",
			"05ac248a8f263be6863576eb0362e28c828f0107a3379d34bab1586bf8c770cd67")
		aliceBase := pub(t, "05472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950")
		aliceIdentity := pub(t, "05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a")
		ikm, err := agreements(
			dh{bobSigned.Private, aliceIdentity},
			dh{bobIdentity.Private, aliceBase},
			dh{bobSigned.Private, aliceBase},
			dh{pub: aliceBase},
		)
		if err != nil {
			t.Fatal(err)
		}
		s, err := derive(ikm, x3dhInfo)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := hex.EncodeToString(s.ChainKey[:]), "9797caca53c989bbe229a40ca7727010eb2604fc14945d77958a0aeda088b44d"; got != want {
			t.Fatalf("Bob's first sending chain key = %s, want %s", got, want)
		}
	})
	t.Run("alice", func(t *testing.T) {
		aliceIdentity := pair(t, "9040f0d4e09cf38f6dc7c13779c908c015a1da4fa78737a080eb0a6f4f5f8f58",
			"05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a")
		// libsignal's test pairs this base private key with a public key
		// that is not its own (its comment: "differs from the Java test");
		// only the private key enters the agreement.
		baseRaw, _ := hex.DecodeString("11ae7c64d1e61cd596b76a0db5012673391cae66edbfcf073b4da80516a47449")
		aliceBase, err := keys.NewKeyPair(baseRaw)
		if err != nil {
			t.Fatal(err)
		}
		bobIdentity := pub(t, "05f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626")
		bobSigned := pub(t, "05ac248a8f263be6863576eb0362e28c828f0107a3379d34bab1586bf8c770cd67")
		ikm, err := agreements(
			dh{aliceIdentity.Private, bobSigned},
			dh{aliceBase.Private, bobIdentity},
			dh{aliceBase.Private, bobSigned},
		)
		if err != nil {
			t.Fatal(err)
		}
		s, err := derive(ikm, x3dhInfo)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := hex.EncodeToString(s.ChainKey[:]), "ab9be50e5cb22a925446ab90ee5670545f4fd32902459ec274b6ad0ae5d6031a"; got != want {
			t.Fatalf("Alice's first receiving chain key = %s, want %s", got, want)
		}
	})
}

type bob struct {
	identity keys.KeyPair
	spk      keys.SignedPreKey
	opk      keys.PreKey
	kem      keys.KEMPreKey
}

func newBob(t *testing.T, kem keys.KEMType) (*bob, *Bundle) {
	t.Helper()
	rand := testkit.Rand(t.Name())
	var b bob
	var err error
	now := time.Unix(1_800_000_000, 0)
	if b.identity, err = keys.GenerateKeyPair(rand); err != nil {
		t.Fatal(err)
	}
	if b.spk, err = keys.GenerateSignedPreKey(rand, b.identity.Private, 1, now); err != nil {
		t.Fatal(err)
	}
	if b.opk, err = keys.GeneratePreKey(rand, 2); err != nil {
		t.Fatal(err)
	}
	if b.kem, err = keys.GenerateKEMPreKey(rand, b.identity.Private, kem, 3, now); err != nil {
		t.Fatal(err)
	}
	return &b, &Bundle{
		IdentityKey:    b.identity.Public,
		SignedPreKeyID: b.spk.ID, SignedPreKey: b.spk.Key.Public, SignedPreKeySignature: b.spk.Signature[:],
		HasPreKey: true, PreKeyID: b.opk.ID, PreKey: b.opk.Key.Public,
		KEMPreKeyID: b.kem.ID, KEMPreKey: b.kem.Key.Public, KEMPreKeySignature: b.kem.Signature[:],
	}
}

func TestAgreement(t *testing.T) {
	for _, kem := range []keys.KEMType{keys.Kyber1024, keys.MLKEM1024} {
		for _, oneTime := range []bool{true, false} {
			t.Run(kem.String(), func(t *testing.T) {
				b, bundle := newBob(t, kem)
				bundle.HasPreKey = oneTime
				rand := testkit.Rand("alice")
				alice, _ := keys.GenerateKeyPair(rand)
				init, err := Initiate(rand, alice, bundle)
				if err != nil {
					t.Fatal(err)
				}
				r := &Responder{Identity: b.identity, SignedPreKey: b.spk.Key, KEMPreKey: b.kem.Key}
				if oneTime {
					r.OneTimePreKey = &b.opk.Key
				}
				got, err := Respond(r, alice.Public, init.BaseKey.Public, init.KEMCiphertext)
				if err != nil {
					t.Fatal(err)
				}
				if got != init.Secrets {
					t.Fatal("Alice and Bob derive different secrets")
				}
				// Every input matters: without the one-time prekey, with
				// another KEM secret, the secrets differ.
				r2 := *r
				if oneTime {
					r2.OneTimePreKey = nil
				} else {
					r2.OneTimePreKey = &b.opk.Key
				}
				if other, _ := Respond(&r2, alice.Public, init.BaseKey.Public, init.KEMCiphertext); other == init.Secrets {
					t.Fatal("one-time prekey does not change the secrets")
				}
				bad := append([]byte(nil), init.KEMCiphertext...)
				bad[10] ^= 1
				if other, _ := Respond(r, alice.Public, init.BaseKey.Public, bad); other == init.Secrets {
					t.Fatal("KEM ciphertext does not change the secrets")
				}
			})
		}
	}
}

func TestBundleVerify(t *testing.T) {
	_, good := newBob(t, keys.Kyber1024)
	if err := good.Verify(); err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte) []byte { c := append([]byte(nil), b...); c[5] ^= 1; return c }
	tests := []struct {
		name   string
		mutate func(b *Bundle)
		want   error
	}{
		{"signed prekey signature", func(b *Bundle) { b.SignedPreKeySignature = flip(b.SignedPreKeySignature) }, keys.ErrBadSignature},
		{"KEM prekey signature", func(b *Bundle) { b.KEMPreKeySignature = flip(b.KEMPreKeySignature) }, keys.ErrBadSignature},
		{"signature swapped", func(b *Bundle) { b.KEMPreKeySignature = b.SignedPreKeySignature }, keys.ErrBadSignature},
		{"no KEM prekey", func(b *Bundle) { b.KEMPreKey = keys.KEMPublicKey{} }, ErrNoKEMPreKey},
		{"no identity", func(b *Bundle) { b.IdentityKey = keys.PublicKey{} }, keys.ErrKeyLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, b := newBob(t, keys.Kyber1024)
			tc.mutate(b)
			if err := b.Verify(); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if _, err := Initiate(testkit.Rand("x"), b.identityPair(t), b); err == nil {
				t.Fatal("Initiate accepted a bad bundle")
			}
		})
	}
}

func (b *Bundle) identityPair(t *testing.T) keys.KeyPair {
	kp, err := keys.GenerateKeyPair(testkit.Rand(t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	return kp
}
