package senderkey

import (
	"crypto/aes"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"

	"github.com/sotto-chat/sotto/internal/symm"
)

// Chain derivation constants (libsignal's SenderChainKey and
// SenderMessageKey).
const (
	// messageKeySeed is the HMAC input that turns a chain key into its
	// iteration's message seed.
	messageKeySeed byte = 0x01
	// chainKeySeed is the HMAC input that turns a chain key into the next.
	chainKeySeed byte = 0x02
	// messageKeyInfo is the HKDF info string for a message seed.
	messageKeyInfo = "WhisperGroup"

	ivSize        = aes.BlockSize // first 16 bytes of the HKDF output
	cipherKeySize = 32            // next 32 bytes: an AES-256 key
)

// chainKey is a chain key at an iteration.
type chainKey struct {
	iteration uint32
	key       [ChainKeySize]byte
}

// derive returns HMAC-SHA256(key, label) (RFC 2104), written out over
// sha256.Sum256 so that stepping a chain allocates nothing: a forward jump
// of MaxForwardJump takes twice that many HMACs, and crypto/hmac allocates
// for each new key. The test vectors check it against an independent HMAC.
func derive(key *[ChainKeySize]byte, label byte) [ChainKeySize]byte {
	const blockSize = sha256.BlockSize // the 32-byte key is zero-padded to a block
	var inner [blockSize + 1]byte
	var outer [blockSize + sha256.Size]byte
	for i := range blockSize {
		var k byte
		if i < ChainKeySize {
			k = key[i]
		}
		inner[i] = k ^ 0x36
		outer[i] = k ^ 0x5c
	}
	inner[blockSize] = label
	ih := sha256.Sum256(inner[:])
	copy(outer[blockSize:], ih[:])
	return sha256.Sum256(outer[:])
}

// seed returns the message seed for c's iteration.
func (c *chainKey) seed() messageKey {
	return messageKey{iteration: c.iteration, seed: derive(&c.key, messageKeySeed)}
}

// next returns the chain key of the following iteration. A chain ends at
// iteration 2³²−1, as in libsignal: next fails there.
func (c *chainKey) next() (chainKey, error) {
	if c.iteration == ^uint32(0) {
		return chainKey{}, fmt.Errorf("%w: chain exhausted at iteration %d", ErrInvalidState, c.iteration)
	}
	return chainKey{iteration: c.iteration + 1, key: derive(&c.key, chainKeySeed)}, nil
}

// messageKey is the seed of one iteration's message key, the form in which
// libsignal stores skipped keys.
type messageKey struct {
	iteration uint32
	seed      [ChainKeySize]byte
}

// keys expands the seed into the AES-CBC IV and key.
func (k *messageKey) keys() (iv [ivSize]byte, key [cipherKeySize]byte) {
	out, err := hkdf.Key(sha256.New, k.seed[:], nil, messageKeyInfo, ivSize+cipherKeySize)
	if err != nil {
		// Only possible for an output longer than 255 hash blocks.
		panic("senderkey: hkdf: " + err.Error())
	}
	copy(iv[:], out[:ivSize])
	copy(key[:], out[ivSize:])
	return iv, key
}

// encryptCBC is AES-256-CBC with PKCS#7 padding (package symm, as
// libsignal's aes_256_cbc_encrypt).
func encryptCBC(key *[cipherKeySize]byte, iv *[ivSize]byte, plaintext []byte) ([]byte, error) {
	return symm.EncryptCBC(key[:], iv[:], plaintext)
}

// decryptCBC reverses encryptCBC. symm checks the padding in constant time,
// although only an authenticated sender can reach it here.
func decryptCBC(key *[cipherKeySize]byte, iv *[ivSize]byte, ciphertext []byte) ([]byte, error) {
	return symm.DecryptCBC(key[:], iv[:], ciphertext)
}
