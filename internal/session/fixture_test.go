package session

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the stored-format fixtures in testdata/")

// storedFixture is a record as some version of Sotto stored it, with a
// message that record must still decrypt, and prekeys in their stored form.
type storedFixture struct {
	Record       testkit.Hex `json:"record"`
	Message      testkit.Hex `json:"message"` // a SignalMessage the record has a skipped key for
	Plaintext    string      `json:"plaintext"`
	PreKey       testkit.Hex `json:"preKey"`
	SignedPreKey testkit.Hex `json:"signedPreKey"`
	KEMPreKey    testkit.Hex `json:"kemPreKey"`
	Identity     testkit.Hex `json:"identity"`
}

// TestStoredFormatV1 keeps format version 1 readable forever: the fixture
// was written by the first version of the code and must decode, re-encode
// identically, and decrypt the message it was saved with.
func TestStoredFormatV1(t *testing.T) {
	path := filepath.Join("testdata", "stored-v1.json")
	if *update {
		writeFixture(t, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fx storedFixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := r.UnmarshalBinary(fx.Record); err != nil {
		t.Fatal(err)
	}
	if again, _ := r.MarshalBinary(); !bytes.Equal(again, fx.Record) {
		t.Fatal("record does not re-encode to the stored bytes")
	}
	if r.Archived() != 1 || r.Current() == nil {
		t.Fatalf("record shape: current=%v archived=%d", r.Current() != nil, r.Archived())
	}
	m, err := ratchet.ParseMessage(fx.Message)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := r.Decrypt(testkit.Rand("fixture"), m)
	if err != nil || string(pt) != fx.Plaintext {
		t.Fatalf("stored record decrypts %q, %v; want %q", pt, err, fx.Plaintext)
	}
	var pk keys.PreKey
	var spk keys.SignedPreKey
	var kpk keys.KEMPreKey
	var id keys.KeyPair
	for _, c := range []struct {
		b []byte
		v interface {
			UnmarshalBinary([]byte) error
			MarshalBinary() ([]byte, error)
		}
	}{{fx.PreKey, &pk}, {fx.SignedPreKey, &spk}, {fx.KEMPreKey, &kpk}, {fx.Identity, &id}} {
		if err := c.v.UnmarshalBinary(c.b); err != nil {
			t.Fatalf("%T: %v", c.v, err)
		}
		if again, _ := c.v.MarshalBinary(); !bytes.Equal(again, c.b) {
			t.Fatalf("%T does not re-encode to the stored bytes", c.v)
		}
	}
	if err := keys.VerifySignedPreKey(id.Public, spk.Key.Public, spk.Signature[:]); err != nil {
		t.Fatal(err)
	}
	if err := keys.VerifyKEMPreKey(id.Public, kpk.Key.Public, kpk.Signature[:]); err != nil {
		t.Fatal(err)
	}
}

func writeFixture(t *testing.T, path string) {
	alice, bob := pair(t)
	alice.initiate(bob, true)
	bob.mustReceive(alice.send(bob, "one"))
	alice.mustReceive(bob.send(alice, "two"))
	bob.initiate(alice, false) // a second session: the first is archived
	alice.mustReceive(bob.send(alice, "three"))
	bob.mustReceive(alice.send(bob, "ack"))
	late := bob.send(alice, "late")
	alice.mustReceive(bob.send(alice, "four"))
	fx := storedFixture{Record: alice.snapshot("bob"), Message: late.body, Plaintext: late.text}
	for _, k := range bob.pre.Signed {
		fx.SignedPreKey, _ = k.MarshalBinary()
	}
	for _, k := range bob.pre.KEM {
		fx.KEMPreKey, _ = k.MarshalBinary()
		break
	}
	pk, _ := keys.GeneratePreKey(bob.rand, 99)
	fx.PreKey, _ = pk.MarshalBinary()
	fx.Identity, _ = bob.local.Identity.MarshalBinary()
	out, err := json.MarshalIndent(fx, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func FuzzUnmarshalRecord(f *testing.F) {
	if raw, err := os.ReadFile(filepath.Join("testdata", "stored-v1.json")); err == nil {
		var fx storedFixture
		if json.Unmarshal(raw, &fx) == nil {
			f.Add([]byte(fx.Record))
		}
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var r2 Record
		if err := r2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-marshaled record does not decode: %v", err)
		}
	})
}
