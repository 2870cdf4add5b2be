package ratchet

import (
	"encoding/hex"
	"testing"
)

// Known answers from libsignal's ratchet/keys.rs (test_chain_key_derivation).
func TestChainKeyKnownAnswer(t *testing.T) {
	unhex := func(s string) (b [32]byte) {
		raw, err := hex.DecodeString(s)
		if err != nil || len(raw) != 32 {
			t.Fatalf("bad hex %s", s)
		}
		copy(b[:], raw)
		return b
	}
	seed := unhex("8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f")
	ck := chainKey{key: seed}
	mk := deriveMessageKeys(ck.seed())
	if want := unhex("bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217"); mk.cipher != want {
		t.Errorf("cipher key = %x, want %x", mk.cipher, want)
	}
	if want := unhex("c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b"); mk.mac != want {
		t.Errorf("MAC key = %x, want %x", mk.mac, want)
	}
	next := ck.next()
	if want := unhex("28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d"); next.key != want {
		t.Errorf("next chain key = %x, want %x", next.key, want)
	}
	if ck.index != 0 || next.index != 1 {
		t.Errorf("indexes %d, %d", ck.index, next.index)
	}
}
