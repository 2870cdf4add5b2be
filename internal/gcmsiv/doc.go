// Package gcmsiv implements AES-GCM-SIV, the nonce-misuse-resistant AEAD of
// [RFC 8452], on top of crypto/aes.
//
// Sotto needs it for sealed sender v2 (Signal's multi-recipient sealed
// sender), which seals the shared message with AEAD_AES_256_GCM_SIV. [New]
// returns a [crypto/cipher.AEAD]: AEAD_AES_128_GCM_SIV for a 16-byte key and
// AEAD_AES_256_GCM_SIV for a 32-byte key, with 12-byte nonces and a 16-byte
// tag appended to the ciphertext.
//
// For each nonce, the key-generating key derives a fresh message
// authentication key and message encryption key (RFC 8452, Section 4). The
// tag is AES, under the encryption key, of POLYVAL over the padded
// additional data, the padded plaintext and their bit lengths, XORed with
// the nonce; the plaintext is then encrypted in counter mode starting from
// the tag, with a 32-bit little-endian block counter in the first four bytes
// that wraps modulo 2^32.
//
// # Security
//
// Repeating a nonce under one key reveals only whether the same additional
// data and plaintext were sealed twice; it does not expose plaintext or
// allow forgeries as it does with AES-GCM. Nonces should still be unique
// where possible; sealed sender v2 uses a fixed all-zero nonce because each
// of its keys seals exactly one message.
//
// Open checks the tag with [crypto/subtle.ConstantTimeCompare] after
// decrypting, and on failure zeroes the output before returning
// [ErrOpen], so no unauthenticated plaintext is released. All failures of
// Open (short input, oversized input, wrong tag) return that one error.
//
// POLYVAL is written in portable Go without secret-dependent branches or
// table lookups: carry-less multiplication is built from masked integer
// multiplications (see polyval.go), which are constant-time on the 64-bit
// platforms Sotto targets. AES comes from crypto/aes, which is constant-time
// where the CPU has AES instructions (amd64 with AES-NI, arm64 with the ARMv8
// crypto extensions, s390x) and table-based otherwise.
//
// Derived keys live in Go memory that the runtime may copy and does not
// zero; keep the [crypto/cipher.AEAD] only as long as the key is needed.
// The size limits [MaxPlaintextSize] and [MaxAADSize] are RFC 8452's; Seal
// panics beyond them, like crypto/cipher's GCM, and Open rejects them.
//
// # Compatibility
//
// The output is byte-for-byte RFC 8452 (ciphertext || 16-byte tag) and
// matches the RFC's Appendix C vectors and Wycheproof's
// aes_gcm_siv_test.json, so it interoperates with libsignal (the RustCrypto
// aes-gcm-siv crate) and BoringSSL's EVP_aead_aes_256_gcm_siv. Only 16- and
// 32-byte keys, 12-byte nonces and 16-byte tags exist in the RFC, so there
// are no other parameters to negotiate.
//
// [RFC 8452]: https://www.rfc-editor.org/rfc/rfc8452
package gcmsiv
