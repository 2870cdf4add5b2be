package client

import (
	"bytes"
	"testing"
)

func TestProfileSealing(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a := AccountID{1}
	short, _ := sealProfile(key, a, Profile{Name: "Al"})
	long, _ := sealProfile(key, a, Profile{Name: "Alexandra Maximiliane"})
	if len(short) != len(long) {
		t.Fatalf("names of 2 and 21 bytes seal to %d and %d bytes", len(short), len(long))
	}
	if _, err := openProfile(key, AccountID{2}, short); err == nil {
		t.Fatal("a profile opened for another account")
	}
	other := bytes.Repeat([]byte{8}, 32)
	if _, err := openProfile(other, a, short); err == nil {
		t.Fatal("a profile opened with another key")
	}
	tampered := bytes.Clone(short)
	tampered[len(tampered)-1] ^= 1
	if _, err := openProfile(key, a, tampered); err == nil {
		t.Fatal("a tampered profile opened")
	}
	p, err := openProfile(key, a, long)
	if err != nil || p.Name != "Alexandra Maximiliane" || p.Avatar != nil {
		t.Fatalf("%+v, %v", p, err)
	}
}

// FuzzParseProfile: whatever a contact encrypted, decoding its plaintext
// fails cleanly or yields a profile within bounds.
func FuzzParseProfile(f *testing.F) {
	f.Add([]byte{0, 2, 'A', 'l', 0, 0, 0, 3, 1, 2, 3, 0, 0})
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseProfile(b)
		if err == nil && p.check() != nil {
			t.Fatalf("decoded an out-of-bounds profile: %v", p.check())
		}
	})
}
