// Package symm provides the symmetric primitives exactly as libsignal
// composes them, built on the standard library.
//
// libsignal 0.72.1 uses three symmetric constructions besides AES-GCM-SIV
// (see package gcmsiv):
//
//   - AES-256-CBC with PKCS#7 padding ([EncryptCBC], [DecryptCBC]) for the
//     bodies of 1:1 Double Ratchet messages and sender-key group messages
//     (signal_crypto::aes_256_cbc_encrypt/decrypt). Those messages carry an
//     HMAC-SHA256 over the ciphertext, truncated to 8 bytes, which the
//     caller checks with [VerifyHMACSHA256] before decrypting.
//   - HMAC-SHA256 ([HMACSHA256]) for those MACs and for KDF chains.
//   - AES-256-CTR with a zero IV followed by HMAC-SHA256 over the
//     ciphertext, truncated to 10 bytes ([EncryptCTRHMAC],
//     [DecryptCTRHMAC]), which sealed sender v1 uses for the encrypted
//     sender key and message (protocol::crypto::aes256_ctr_hmacsha256_*).
//
// HKDF is the standard library's crypto/hkdf, called as
// hkdf.Key(sha256.New, ikm, salt, info, size); this package's tests pin it
// to the Wycheproof vectors.
//
// # Security
//
// CBC decryption is malleable and, given a padding oracle, decrypts
// anything. Callers must verify the message MAC over the ciphertext first,
// as libsignal does, and call [DecryptCBC] only on authentic ciphertext.
// As defence in depth DecryptCBC checks the padding in constant time and
// reports a bad length and bad padding as the one error [ErrBadPadding],
// which a caller passes on only as its own opaque decryption failure.
//
// [DecryptCTRHMAC] checks the MAC in constant time before decrypting and
// returns only [ErrBadMAC] for a short or forged ciphertext. Its zero IV is
// safe only because every key it is used with is derived for one message;
// never reuse a cipher key with it.
//
// Truncated MACs are as libsignal's: 8 bytes for messages, 10 for sealed
// sender v1. [VerifyHMACSHA256] refuses tags shorter than [MinMACSize].
//
// # Compatibility
//
// Every output is byte-for-byte libsignal's, so Sotto interoperates with
// Signal clients: PKCS#7 padding always adds 1 to 16 bytes; the CTR
// keystream is AES-256 of a 128-bit big-endian counter starting at zero
// (libsignal's Ctr32BE with a zero nonce, identical below 2^32 blocks,
// which [MaxCTRPlaintextSize] enforces).
package symm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

const (
	// KeySize is the AES-256 key length that every cipher here takes;
	// libsignal uses no other AES key size.
	KeySize = 32
	// IVSize is the CBC IV length: one AES block.
	IVSize = aes.BlockSize
	// MACSize is the length of an untruncated HMAC-SHA256.
	MACSize = sha256.Size
	// MinMACSize is the shortest truncated MAC VerifyHMACSHA256 accepts:
	// the 8 bytes of a Signal message MAC, the shortest libsignal uses.
	// Shorter tags would be forgeable by guessing.
	MinMACSize = 8
	// CTRHMACTagSize is the MAC length EncryptCTRHMAC appends: libsignal
	// keeps the first 10 bytes of HMAC-SHA256, and sealed sender v1's wire
	// format fixes that length.
	CTRHMACTagSize = 10
	// MaxCTRPlaintextSize is the longest CTR plaintext, 2^36 bytes (2^32
	// blocks). libsignal's Ctr32BE counter wraps in its low 32 bits there
	// while Go's carries into the upper bits, so beyond it the keystreams
	// would differ (and repeat, for libsignal).
	MaxCTRPlaintextSize = 1 << 36
)

var (
	// ErrKeySize means an AES key is not 32 bytes. It signals a
	// programming or state error, not a bad message.
	ErrKeySize = errors.New("symm: AES-256 key must be 32 bytes")
	// ErrIVSize means a CBC IV is not 16 bytes; like ErrKeySize it signals
	// a programming or state error.
	ErrIVSize = errors.New("symm: CBC IV must be 16 bytes")
	// ErrBadPadding is DecryptCBC's one error for malformed ciphertext: a
	// length that is zero or not a multiple of 16, or invalid PKCS#7
	// padding. The causes are deliberately not distinguished.
	ErrBadPadding = errors.New("symm: bad CBC ciphertext")
	// ErrBadMAC is DecryptCTRHMAC's one error for malformed ciphertext: too
	// short to hold the MAC, too long, or failing MAC verification.
	ErrBadMAC = errors.New("symm: bad MAC")
	// ErrTooLarge means a CTR plaintext exceeds MaxCTRPlaintextSize.
	ErrTooLarge = errors.New("symm: plaintext too large")
)

// newAES256 returns AES under key, which must be 32 bytes.
func newAES256(key []byte) (cipher.Block, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w, got %d", ErrKeySize, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("symm: %w", err)
	}
	return b, nil
}

// EncryptCBC returns plaintext encrypted with AES-256-CBC under key and iv
// after PKCS#7 padding, as libsignal's aes_256_cbc_encrypt does. The result
// is a new slice, 1 to 16 bytes longer than plaintext. It returns an error
// wrapping ErrKeySize or ErrIVSize for a key that is not 32 bytes or an iv
// that is not 16.
func EncryptCBC(key, iv, plaintext []byte) ([]byte, error) {
	if len(iv) != IVSize {
		return nil, fmt.Errorf("%w, got %d", ErrIVSize, len(iv))
	}
	b, err := newAES256(key)
	if err != nil {
		return nil, err
	}
	return cbcEncrypt(b, iv, plaintext), nil
}

// DecryptCBC reverses EncryptCBC: it decrypts ciphertext with AES-256-CBC
// under key and iv and removes the PKCS#7 padding, returning a new slice.
// It returns ErrBadPadding if ciphertext is empty, not a multiple of 16
// bytes, or badly padded, and errors wrapping ErrKeySize or ErrIVSize for
// bad key or iv lengths.
//
// CBC is unauthenticated: call DecryptCBC only after verifying the
// message's MAC over ciphertext (see the package documentation).
func DecryptCBC(key, iv, ciphertext []byte) ([]byte, error) {
	if len(iv) != IVSize {
		return nil, fmt.Errorf("%w, got %d", ErrIVSize, len(iv))
	}
	b, err := newAES256(key)
	if err != nil {
		return nil, err
	}
	return cbcDecrypt(b, iv, ciphertext)
}

// cbcEncrypt pads plaintext with PKCS#7 and CBC-encrypts it under b, whose
// block size must be 16, and iv.
func cbcEncrypt(b cipher.Block, iv, plaintext []byte) []byte {
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	out := make([]byte, len(plaintext)+pad)
	copy(out, plaintext)
	for i := len(plaintext); i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, out)
	return out
}

// cbcDecrypt CBC-decrypts ciphertext under b and iv and strips its PKCS#7
// padding, checking the padding in constant time.
func cbcDecrypt(b cipher.Block, iv, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, ErrBadPadding
	}
	out := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, ciphertext)
	n, ok := unpad(out)
	if !ok {
		clear(out)
		return nil, ErrBadPadding
	}
	return out[:n], nil
}

// unpad returns the length of b without its PKCS#7 padding and whether the
// padding is valid: the last byte p is in [1, 16] and the last p bytes all
// equal p. len(b) must be a non-zero multiple of 16. It reads the whole last
// block whatever p is, with no branch or index that depends on the
// contents.
func unpad(b []byte) (int, bool) {
	last := b[len(b)-aes.BlockSize:]
	p := int(last[aes.BlockSize-1])
	good := subtle.ConstantTimeLessOrEq(1, p) & subtle.ConstantTimeLessOrEq(p, aes.BlockSize)
	for i := range aes.BlockSize {
		// The byte i places from the end is padding if i < p.
		inPad := subtle.ConstantTimeLessOrEq(i+1, p)
		match := subtle.ConstantTimeByteEq(last[aes.BlockSize-1-i], byte(p))
		good &= (1 ^ inPad) | match
	}
	return len(b) - p, good == 1
}

// HMACSHA256 returns HMAC-SHA256 under key of the concatenation of parts.
// key may have any length.
func HMACSHA256(key []byte, parts ...[]byte) [MACSize]byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	var out [MACSize]byte
	m.Sum(out[:0])
	return out
}

// VerifyHMACSHA256 reports, in constant time, whether tag is
// HMAC-SHA256 under key of the concatenation of parts, or a prefix of it of
// at least MinMACSize bytes (a truncated MAC, as Signal messages carry).
// Only tag's length, which is public, affects the timing.
func VerifyHMACSHA256(key, tag []byte, parts ...[]byte) bool {
	if len(tag) < MinMACSize || len(tag) > MACSize {
		return false
	}
	mac := HMACSHA256(key, parts...)
	return hmac.Equal(mac[:len(tag)], tag)
}

// EncryptCTRHMAC encrypts plaintext with AES-256-CTR under cipherKey and an
// all-zero IV, and appends the first CTRHMACTagSize bytes of HMAC-SHA256
// under macKey of that ciphertext, as libsignal's
// aes256_ctr_hmacsha256_encrypt does. The result is a new slice.
//
// cipherKey must be used for this one message: the IV is fixed. It returns
// an error wrapping ErrKeySize for a cipherKey that is not 32 bytes, and
// ErrTooLarge beyond MaxCTRPlaintextSize. macKey may have any length.
func EncryptCTRHMAC(cipherKey, macKey, plaintext []byte) ([]byte, error) {
	b, err := newAES256(cipherKey)
	if err != nil {
		return nil, err
	}
	if uint64(len(plaintext)) > MaxCTRPlaintextSize {
		return nil, ErrTooLarge
	}
	out := make([]byte, len(plaintext), len(plaintext)+CTRHMACTagSize)
	ctrXOR(b, out, plaintext)
	mac := HMACSHA256(macKey, out)
	return append(out, mac[:CTRHMACTagSize]...), nil
}

// DecryptCTRHMAC reverses EncryptCTRHMAC, as libsignal's
// aes256_ctr_hmacsha256_decrypt does: it verifies the truncated MAC over
// the ciphertext in constant time and only then decrypts, returning a new
// slice. It returns ErrBadMAC if ciphertext is shorter than the MAC, longer
// than MaxCTRPlaintextSize plus the MAC, or fails verification, and an
// error wrapping ErrKeySize for a cipherKey that is not 32 bytes.
func DecryptCTRHMAC(cipherKey, macKey, ciphertext []byte) ([]byte, error) {
	b, err := newAES256(cipherKey)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < CTRHMACTagSize ||
		uint64(len(ciphertext)) > MaxCTRPlaintextSize+CTRHMACTagSize {
		return nil, ErrBadMAC
	}
	body := ciphertext[:len(ciphertext)-CTRHMACTagSize]
	mac := HMACSHA256(macKey, body)
	if !hmac.Equal(mac[:CTRHMACTagSize], ciphertext[len(body):]) {
		return nil, ErrBadMAC
	}
	out := make([]byte, len(body))
	ctrXOR(b, out, body)
	return out, nil
}

// ctrXOR XORs src with the AES-CTR keystream of b from a zero counter block
// into dst.
func ctrXOR(b cipher.Block, dst, src []byte) {
	var iv [aes.BlockSize]byte
	cipher.NewCTR(b, iv[:]).XORKeyStream(dst, src)
}
