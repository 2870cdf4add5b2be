package ratchet

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"

	"github.com/sotto-chat/sotto/internal/keys"
)

// KDF labels and seeds, exactly as libsignal uses them.
const (
	ratchetInfo     = "WhisperRatchet"
	messageKeysInfo = "WhisperMessageKeys"
	messageKeySeed  = 0x01
	chainKeySeed    = 0x02
)

// chainKey is a sending or receiving chain key with its index (the counter of
// the next message it produces).
type chainKey struct {
	key   [32]byte
	index uint32
}

func hmacByte(key *[32]byte, b byte) [32]byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte{b})
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// seed returns the message key seed for this chain position.
func (c chainKey) seed() [32]byte { return hmacByte(&c.key, messageKeySeed) }

// next returns the following chain key.
func (c chainKey) next() chainKey {
	return chainKey{key: hmacByte(&c.key, chainKeySeed), index: c.index + 1}
}

// messageKeys are the per-message keys derived from a seed.
type messageKeys struct {
	cipher [32]byte
	mac    [32]byte
	iv     [16]byte
}

func deriveMessageKeys(seed [32]byte) messageKeys {
	okm, err := hkdf.Key(sha256.New, seed[:], nil, messageKeysInfo, 80)
	if err != nil {
		panic("ratchet: HKDF of 80 bytes cannot fail")
	}
	var mk messageKeys
	copy(mk.cipher[:], okm[:32])
	copy(mk.mac[:], okm[32:64])
	copy(mk.iv[:], okm[64:])
	return mk
}

// rootStep is KDF_RK: the DH output of our and their ratchet keys, salted
// with the root key, gives the next root key and a fresh chain key.
func rootStep(root [32]byte, ours keys.PrivateKey, theirs keys.PublicKey) ([32]byte, chainKey, error) {
	dh, err := ours.Agree(theirs)
	if err != nil {
		return root, chainKey{}, err
	}
	okm, err := hkdf.Key(sha256.New, dh[:], root[:], ratchetInfo, 64)
	if err != nil {
		return root, chainKey{}, err
	}
	var newRoot [32]byte
	var ck chainKey
	copy(newRoot[:], okm[:32])
	copy(ck.key[:], okm[32:])
	return newRoot, ck, nil
}
