package keys

import (
	"bytes"
	"encoding"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/testkit"
)

type stored interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

func storedSamples(t testing.TB) map[string]stored {
	rand := testkit.Rand("records")
	id, err := GenerateKeyPair(rand)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	pk, _ := GeneratePreKey(rand, 7)
	spk, _ := GenerateSignedPreKey(rand, id.Private, 8, now)
	kyber, _ := GenerateKEMPreKey(rand, id.Private, Kyber1024, 9, now)
	mlkem, _ := GenerateKEMPreKey(rand, id.Private, MLKEM1024, 10, now)
	return map[string]stored{"identity": &id, "prekey": &pk, "signed": &spk, "kyber": &kyber, "mlkem": &mlkem}
}

func TestRecordsRoundTrip(t *testing.T) {
	for name, v := range storedSamples(t) {
		t.Run(name, func(t *testing.T) {
			b, err := v.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			fresh := map[string]stored{
				"identity": new(KeyPair), "prekey": new(PreKey), "signed": new(SignedPreKey),
				"kyber": new(KEMPreKey), "mlkem": new(KEMPreKey),
			}[name]
			if err := fresh.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			again, _ := fresh.MarshalBinary()
			if !bytes.Equal(again, b) {
				t.Fatal("does not round-trip")
			}
			for n := range len(b) {
				if err := fresh.UnmarshalBinary(b[:n]); err == nil {
					t.Fatalf("prefix of %d/%d bytes decodes", n, len(b))
				}
			}
			bad := bytes.Clone(b)
			bad[0] = 99
			if err := fresh.UnmarshalBinary(bad); err == nil {
				t.Fatal("unknown format version decodes")
			}
		})
	}
}

func TestSignedPreKeyMismatchRejected(t *testing.T) {
	s := storedSamples(t)
	b, _ := s["signed"].MarshalBinary()
	// Replace the public key with another valid key: the pair no longer matches.
	other, _ := GenerateKeyPair(testkit.Rand("other"))
	i := bytes.Index(b, s["signed"].(*SignedPreKey).Key.Public.Bytes())
	copy(b[i:], other.Public.Bytes())
	if err := new(SignedPreKey).UnmarshalBinary(b); err == nil {
		t.Fatal("mismatched key pair decodes")
	}
}

func FuzzUnmarshalRecords(f *testing.F) {
	for _, v := range storedSamples(f) {
		b, _ := v.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []stored{new(KeyPair), new(PreKey), new(SignedPreKey), new(KEMPreKey)} {
			if err := v.UnmarshalBinary(b); err != nil {
				continue
			}
			again, err := v.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if err := v.UnmarshalBinary(again); err != nil {
				t.Fatalf("%T: re-marshaled record does not decode: %v", v, err)
			}
		}
	})
}

func FuzzParseKEMPublicKey(f *testing.F) {
	rand := testkit.Rand("fuzz kem")
	for _, typ := range []KEMType{Kyber1024, MLKEM1024} {
		kp, _ := GenerateKEMKeyPair(typ, rand)
		f.Add(kp.Public.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKEMPublicKey(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k.Bytes(), b) {
			t.Fatal("re-encoding differs")
		}
	})
}
