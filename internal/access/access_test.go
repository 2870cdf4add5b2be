package access

import (
	"bytes"
	"crypto/aes"
	"testing"
)

func TestDerive(t *testing.T) {
	pk := bytes.Repeat([]byte{0x42}, ProfileKeySize)
	k, err := Derive(pk)
	if err != nil {
		t.Fatal(err)
	}
	// GCM's first ciphertext block for a zero nonce is AES_k(0^12 ‖ 0x00000002)
	// XOR plaintext; with a zero plaintext, that is the block itself.
	block, _ := aes.NewCipher(pk)
	var ctr, want [16]byte
	ctr[15] = 2
	block.Encrypt(want[:], ctr[:])
	if k != want {
		t.Fatalf("Derive = %x, want %x", k, want)
	}
	k2, _ := Derive(bytes.Repeat([]byte{0x43}, ProfileKeySize))
	if k == k2 {
		t.Fatal("different profile keys give one access key")
	}
	if _, err := Derive(pk[:16]); err == nil {
		t.Fatal("short profile key accepted")
	}
}

func TestCombineAndEqual(t *testing.T) {
	a, _ := Derive(bytes.Repeat([]byte{1}, 32))
	b, _ := Derive(bytes.Repeat([]byte{2}, 32))
	ab := Combine(a, b)
	if Combine(ab, b) != a {
		t.Fatal("XOR does not cancel")
	}
	if !Equal(ab[:], Combine(b, a)) || Equal(a[:], b) || Equal(a[:8], a) {
		t.Fatal("Equal")
	}
}
