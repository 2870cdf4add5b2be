package sealed

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
)

func TestV1RoundTrip(t *testing.T) {
	w := newWorld(t, "v1")
	bob := genKey(t, w.rand)
	for _, size := range []int{0, 1, 100, 10000} {
		u := w.usmc(t, TypeWhisper, bytes.Repeat([]byte{0xab}, size))
		ct, err := SealV1(w.rand, u, bob.Public, w.sender)
		if err != nil {
			t.Fatal(err)
		}
		if ct[0] != VersionV1 {
			t.Fatalf("version byte 0x%02x", ct[0])
		}
		got, err := Open(ct, bob)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		sameUSMC(t, got, u)
		if _, err := Open(ct, w.sender); !errors.Is(err, ErrBadMAC) {
			t.Fatalf("Open by the wrong recipient: %v", err)
		}
	}
}

// TestV1Layout checks the framing field by field and that the parts decrypt
// as libsignal's pseudocode says.
func TestV1Layout(t *testing.T) {
	w := newWorld(t, "v1 layout")
	bob := genKey(t, w.rand)
	u := w.usmc(t, TypePreKey, []byte("hello"))
	ct, err := SealV1(w.rand, u, bob.Public, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	var fields []pb.Field
	if err := pb.Walk(ct[1:], func(f pb.Field) error { fields = append(fields, f); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(fields) != 3 || fields[0].Num != 1 || fields[1].Num != 2 || fields[2].Num != 3 {
		t.Fatalf("fields %v", fields)
	}
	if len(fields[0].Bytes) != 33 || fields[0].Bytes[0] != keys.TypeDJB {
		t.Fatalf("ephemeral key %x", fields[0].Bytes)
	}
	if len(fields[1].Bytes) != 33+10 || len(fields[2].Bytes) != len(u.Bytes())+10 {
		t.Fatalf("ciphertext sizes %d %d", len(fields[1].Bytes), len(fields[2].Bytes))
	}
}

func TestV1SenderBinding(t *testing.T) {
	w := newWorld(t, "v1 binding")
	bob := genKey(t, w.rand)
	mallory := genKey(t, w.rand)
	u := w.usmc(t, TypeWhisper, []byte("hi"))
	if _, err := SealV1(w.rand, u, bob.Public, mallory); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("SealV1 with a key the certificate does not name: %v", err)
	}
	// Mallory seals Alice's certificate with her own identity key: the
	// message authenticates, but the certificate names another key.
	ct, err := sealV1(w.rand, u.Bytes(), bob.Public, mallory)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ct, bob); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("Open of a message bound to another key: %v", err)
	}
}

func TestV1Tamper(t *testing.T) {
	w := newWorld(t, "v1 tamper")
	bob := genKey(t, w.rand)
	ct, err := SealV1(w.rand, w.usmc(t, TypeWhisper, []byte("tamper with me")), bob.Public, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	// The low nibble of the version byte is not authenticated: libsignal
	// reads only the high one, so 0x10..0x1f (and 0x00..0x0f) all open.
	for _, v := range []byte{0x01, 0x10, 0x1f} {
		b := bytes.Clone(ct)
		b[0] = v
		if _, err := Open(b, bob); err != nil {
			t.Fatalf("version 0x%02x: %v", v, err)
		}
	}
	for _, v := range []byte{0x21, 0x31, 0xf1} {
		b := bytes.Clone(ct)
		b[0] = v
		if _, err := Open(b, bob); err == nil {
			t.Fatalf("version 0x%02x opened", v)
		}
	}
	for i := 1; i < len(ct); i++ {
		for _, mask := range []byte{0x01, 0x80} {
			b := bytes.Clone(ct)
			b[i] ^= mask
			if _, err := Open(b, bob); err == nil {
				t.Fatalf("byte %d ^ %#x: still opens", i, mask)
			}
		}
	}
	for n := range len(ct) {
		if _, err := Open(ct[:n], bob); err == nil {
			t.Fatalf("prefix of %d bytes opens", n)
		}
	}
	if _, err := Open(append(bytes.Clone(ct), 0), bob); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func TestV1Malformed(t *testing.T) {
	w := newWorld(t, "v1 malformed")
	bob := genKey(t, w.rand)
	eph := genKey(t, w.rand).Public.Bytes()
	msg := func(fs ...func([]byte) []byte) []byte {
		b := []byte{VersionV1}
		for _, f := range fs {
			b = f(b)
		}
		return b
	}
	e := func(k []byte) func([]byte) []byte { return func(b []byte) []byte { return pb.AppendBytes(b, 1, k) } }
	s := func(b []byte) []byte { return pb.AppendBytes(b, 2, make([]byte, 43)) }
	m := func(b []byte) []byte { return pb.AppendBytes(b, 3, make([]byte, 20)) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"version only", msg(), ErrMalformed},
		{"no ephemeral", msg(s, m), ErrMalformed},
		{"no static", msg(e(eph), m), ErrMalformed},
		{"no message", msg(e(eph), s), ErrMalformed},
		{"ephemeral 34 bytes", msg(e(append(eph, 0)), s, m), ErrMalformed},
		{"ephemeral type 0x06", msg(e(append([]byte{6}, eph[1:]...)), s, m), ErrMalformed},
		{"ephemeral low order", msg(e(append([]byte{5}, make([]byte, 32)...)), s, m), ErrMalformed},
		{"repeated field", msg(e(eph), s, s, m), ErrMalformed},
		{"forged MAC", msg(e(eph), s, m), ErrBadMAC},
		{"static too short", msg(e(eph), func(b []byte) []byte { return pb.AppendBytes(b, 2, make([]byte, 9)) }, m), ErrBadMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(tt.b, bob); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
