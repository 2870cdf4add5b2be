package senderkey

import (
	"bytes"
	"os"
	"testing"

	"github.com/sotto-chat/sotto/internal/testkit"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureRecordFor(t testing.TB) *Record {
	t.Helper()
	var r Record
	if err := r.UnmarshalBinary(readFixture(t, fixtureRecord)); err != nil {
		t.Fatal(err)
	}
	return &r
}

func FuzzParseMessage(f *testing.F) {
	msg := readFixture(f, fixtureMessage)
	f.Add(msg)
	alice, _ := pair(f, "fuzz")
	for _, pt := range []string{"", "hello", "a longer message that spans several AES blocks"} {
		f.Add(encrypt(f, alice, "x", pt))
	}
	base := fixtureRecordFor(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		// Decryption never panics and a failure changes nothing.
		r := base.Clone()
		before := mustMarshal(t, r)
		if _, err := r.Decrypt(b); err != nil && !bytes.Equal(before, mustMarshal(t, r)) {
			t.Fatal("failed decryption changed the record")
		}
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Bytes(), b) {
			t.Fatal("Bytes differ from input")
		}
		// The canonical encoding, rebuilt from the fields, is the input.
		var hb [messageHeaderMax]byte
		want := append(append([]byte{versionByte}, appendMessageHeader(hb[:0], m.DistributionID(), m.ChainID(), m.Iteration(), len(m.ciphertext))...), m.ciphertext...)
		if !bytes.Equal(want, b[:len(b)-SignatureSize]) {
			t.Fatalf("re-encoded %x, input %x", want, b)
		}
		for i := range len(b) {
			if _, err := ParseMessage(b[:i]); err == nil {
				t.Fatalf("strict prefix %x of %x parses", b[:i], b)
			}
		}
	})
}

func FuzzParseDistributionMessage(f *testing.F) {
	f.Add(mustHex(f, testDistributionMessageHex))
	for _, seed := range []string{"a", "b"} {
		dm, err := new(Record).Create(testkit.Rand(seed), testID(f))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(dm.Marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseDistributionMessage(b)
		if err != nil {
			return
		}
		if got := m.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-marshal %x != input %x", got, b)
		}
		for i := range len(b) {
			if _, err := ParseDistributionMessage(b[:i]); err == nil {
				t.Fatalf("strict prefix %x of %x parses", b[:i], b)
			}
		}
		var r Record
		if err := r.Process(m); err != nil {
			t.Fatalf("Process of a parsed message: %v", err)
		}
	})
}

func FuzzRecord(f *testing.F) {
	rec := readFixture(f, fixtureRecord)
	f.Add(rec)
	f.Add(rec[1:]) // the libsignal form, for NewRecordFromLibsignal
	alice, _ := pair(f, "fuzz record")
	f.Add(mustMarshal(f, alice))
	f.Add(alice.Libsignal())
	f.Add(libsignalSenderRecord(f, 7, make([]byte, 32)))
	msg := readFixture(f, fixtureMessage)
	id := testID(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if lr, err := NewRecordFromLibsignal(id, b); err == nil {
			if !bytes.Equal(lr.Libsignal(), b) {
				t.Fatal("libsignal form does not round-trip")
			}
			_, _ = lr.Decrypt(msg)
		}
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		if got := mustMarshal(t, &r); !bytes.Equal(got, b) {
			t.Fatalf("re-marshal %x != input %x", got, b)
		}
		for i := range len(b) {
			var p Record
			if err := p.UnmarshalBinary(b[:i]); err == nil {
				t.Fatalf("strict prefix of length %d parses", i)
			}
		}
		// A decoded record is usable: these must not panic.
		_, _ = r.Decrypt(msg)
		_, _ = r.Encrypt(testkit.Rand("x"), []byte("hi"))
		_, _ = r.Create(testkit.Rand("x"), id)
		_ = r.String()
	})
}

func benchmarkPair(b *testing.B) (alice, bob *Record, pt []byte) {
	alice, bob = pair(b, "bench")
	pt = make([]byte, 1024)
	testkit.Rand("pt").Read(pt)
	return alice, bob, pt
}

func BenchmarkEncrypt1KiB(b *testing.B) {
	alice, _, pt := benchmarkPair(b)
	rnd := testkit.Rand("bench")
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := alice.Encrypt(rnd, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt1KiB(b *testing.B) {
	alice, bob, pt := benchmarkPair(b)
	rnd := testkit.Rand("bench")
	cts := make([][]byte, b.N)
	for i := range cts {
		var err error
		if cts[i], err = alice.Encrypt(rnd, pt); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := bob.Decrypt(cts[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptMaxJump is the worst case a sender can cause with one
// message: a jump of MaxForwardJump iterations.
func BenchmarkDecryptMaxJump(b *testing.B) {
	alice, bob, pt := benchmarkPair(b)
	advance(b, alice, MaxForwardJump)
	ct := encrypt(b, alice, "x", string(pt))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bob.Clone().Decrypt(ct); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalFullRecord(b *testing.B) {
	alice, bob, _ := benchmarkPair(b)
	advance(b, alice, MaxMessageKeys)
	if _, err := bob.Decrypt(encrypt(b, alice, "x", "m")); err != nil {
		b.Fatal(err)
	}
	data := mustMarshal(b, bob)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var r Record
		if err := r.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}
