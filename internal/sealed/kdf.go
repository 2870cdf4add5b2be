package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
)

// Symmetric building blocks shared by v1 and v2. They stay private here until
// internal/symm lands with the same construction; see libsignal's
// rust/protocol/src/crypto.rs.

// v1MACSize is the HMAC-SHA256 truncation libsignal's
// aes256_ctr_hmacsha256_encrypt appends: 10 bytes.
const v1MACSize = 10

// aesCTR XORs in with AES-256-CTR keystream from an all-zero initial counter
// block. libsignal increments only the low 32 bits (big-endian) of the block,
// Go's CTR all 128; the two agree for the first 2³² blocks (64 GiB), far
// beyond [MaxMessageSize].
func aesCTR(dst, in []byte, key *[32]byte) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("sealed: AES-256 rejected a 32-byte key") // cannot happen
	}
	var iv [aes.BlockSize]byte
	cipher.NewCTR(block, iv[:]).XORKeyStream(dst, in)
}

// ctrHMACSeal appends AES-256-CTR(msg) ‖ HMAC-SHA256(macKey, ciphertext)[:10]
// to dst.
func ctrHMACSeal(dst, msg []byte, cipherKey, macKey *[32]byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, len(msg))...)
	aesCTR(dst[n:], msg, cipherKey)
	m := hmac.New(sha256.New, macKey[:])
	m.Write(dst[n:])
	var sum [sha256.Size]byte
	return append(dst, m.Sum(sum[:0])[:v1MACSize]...)
}

// ctrHMACOpen checks the truncated MAC in constant time and decrypts. The
// result is a new slice. Every failure is [ErrBadMAC].
func ctrHMACOpen(ct []byte, cipherKey, macKey *[32]byte) ([]byte, error) {
	if len(ct) < v1MACSize {
		return nil, fmt.Errorf("%d-byte ciphertext: %w", len(ct), ErrBadMAC)
	}
	body, tag := ct[:len(ct)-v1MACSize], ct[len(ct)-v1MACSize:]
	m := hmac.New(sha256.New, macKey[:])
	m.Write(body)
	var sum [sha256.Size]byte
	if subtle.ConstantTimeCompare(m.Sum(sum[:0])[:v1MACSize], tag) != 1 {
		return nil, ErrBadMAC
	}
	out := make([]byte, len(body))
	aesCTR(out, body, cipherKey)
	return out, nil
}

// hkdfSHA256 is HKDF-SHA256 (RFC 5869). A nil salt means HashLen zero bytes,
// as in libsignal's Hkdf::new(None, ...).
func hkdfSHA256(secret, salt []byte, info string, n int) []byte {
	out, err := hkdf.Key(sha256.New, secret, salt, info, n)
	if err != nil {
		panic("sealed: HKDF output length out of range") // n is a constant ≤ 96
	}
	return out
}
