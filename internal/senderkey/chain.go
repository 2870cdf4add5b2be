package senderkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
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

// encryptCBC is AES-256-CBC with PKCS#7 padding; the result is a fresh
// slice of len(plaintext)/16*16+16 bytes.
func encryptCBC(key *[cipherKeySize]byte, iv *[ivSize]byte, plaintext []byte) []byte {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("senderkey: aes: " + err.Error()) // 32-byte keys are always valid
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	out := make([]byte, len(plaintext)+pad)
	copy(out, plaintext)
	for i := len(plaintext); i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(out, out)
	return out
}

var errPadding = errors.New("bad ciphertext length or padding")

// decryptCBC reverses encryptCBC. The padding check does not branch on the
// padding bytes, although only an authenticated sender can reach it.
func decryptCBC(key *[cipherKeySize]byte, iv *[ivSize]byte, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, errPadding
	}
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("senderkey: aes: " + err.Error())
	}
	out := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(out, ciphertext)
	last := out[len(out)-aes.BlockSize:]
	pad := last[aes.BlockSize-1]
	good := subtle.ConstantTimeLessOrEq(1, int(pad)) & subtle.ConstantTimeLessOrEq(int(pad), aes.BlockSize)
	for i := range aes.BlockSize {
		// Byte i of the last block is padding if i ≥ 16 − pad.
		inPad := subtle.ConstantTimeLessOrEq(aes.BlockSize-int(pad), i)
		good &= subtle.ConstantTimeSelect(inPad, subtle.ConstantTimeByteEq(last[i], pad), 1)
	}
	if good != 1 {
		return nil, errPadding
	}
	return out[:len(out)-int(pad)], nil
}
