package sealed

import (
	"crypto/hkdf"
	"crypto/sha256"
)

// hkdfSHA256 is HKDF-SHA256 (RFC 5869). A nil salt means HashLen zero bytes,
// as in libsignal's Hkdf::new(None, ...).
func hkdfSHA256(secret, salt []byte, info string, n int) []byte {
	out, err := hkdf.Key(sha256.New, secret, salt, info, n)
	if err != nil {
		panic("sealed: HKDF output length out of range") // n is a constant ≤ 96
	}
	return out
}
