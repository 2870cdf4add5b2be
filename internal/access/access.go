// Package access implements Signal's unidentified-access (delivery token)
// scheme, which decides who may send sealed messages to an account without
// the server learning who they are.
//
// Each account has a 32-byte profile key that it shares only with its
// contacts (inside end-to-end encrypted messages). From it both sides derive
// a 16-byte access key; the account registers the key with the server, and a
// sender presents it with every sealed send. Knowing the key shows the sender
// is a contact, and tells the server nothing about which one.
//
//	accessKey = AES-256-GCM(key = profileKey, nonce = 0^12, plaintext = 0^16)[:16]
//
// For a multi-recipient (sealed sender v2) send, the sender presents the XOR
// of every recipient's access key, as Signal does.
//
// # Security
//
// Keys are compared in constant time. The server stores access keys, which
// reveal nothing about the profile key (AES as a PRF).
package access

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
)

const (
	// ProfileKeySize is the size of a profile key.
	ProfileKeySize = 32
	// KeySize is the size of an access key.
	KeySize = 16
)

// ErrKeySize is returned for a profile or access key of the wrong size.
var ErrKeySize = errors.New("access: wrong key size")

// Derive returns the access key of a profile key.
func Derive(profileKey []byte) ([KeySize]byte, error) {
	var out [KeySize]byte
	if len(profileKey) != ProfileKeySize {
		return out, fmt.Errorf("%w: profile key of %d bytes", ErrKeySize, len(profileKey))
	}
	block, err := aes.NewCipher(profileKey)
	if err != nil {
		return out, fmt.Errorf("access: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return out, fmt.Errorf("access: %w", err)
	}
	var nonce [12]byte
	var zero [KeySize]byte
	ct := gcm.Seal(nil, nonce[:], zero[:], nil)
	copy(out[:], ct[:KeySize])
	return out, nil
}

// Combine XORs access keys, for a multi-recipient send.
func Combine(keys ...[KeySize]byte) [KeySize]byte {
	var out [KeySize]byte
	for _, k := range keys {
		subtle.XORBytes(out[:], out[:], k[:])
	}
	return out
}

// Equal compares a presented key with the expected one in constant time.
func Equal(presented []byte, expected [KeySize]byte) bool {
	return len(presented) == KeySize && subtle.ConstantTimeCompare(presented, expected[:]) == 1
}
