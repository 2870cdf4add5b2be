package x3dh

import (
	"github.com/sotto-chat/sotto/internal/keys"
)

// Bundle is the public prekey material of one device, as a directory hands
// it out: everything Alice needs to start a session with that device.
type Bundle struct {
	RegistrationID uint32
	DeviceID       uint32

	IdentityKey keys.PublicKey

	SignedPreKeyID        keys.SignedPreKeyID
	SignedPreKey          keys.PublicKey
	SignedPreKeySignature []byte

	// HasPreKey tells whether the bundle carries a one-time EC prekey; the
	// directory omits it when the device has run out.
	HasPreKey bool
	PreKeyID  keys.PreKeyID
	PreKey    keys.PublicKey

	KEMPreKeyID        keys.KEMPreKeyID
	KEMPreKey          keys.KEMPublicKey
	KEMPreKeySignature []byte
}

// Verify checks that the bundle is complete and that the identity key signed
// both the signed prekey and the KEM prekey.
func (b *Bundle) Verify() error {
	if b.IdentityKey.IsZero() || b.SignedPreKey.IsZero() || (b.HasPreKey && b.PreKey.IsZero()) {
		return keys.ErrKeyLength
	}
	if b.KEMPreKey.IsZero() {
		return ErrNoKEMPreKey
	}
	if err := keys.VerifySignedPreKey(b.IdentityKey, b.SignedPreKey, b.SignedPreKeySignature); err != nil {
		return err
	}
	return keys.VerifyKEMPreKey(b.IdentityKey, b.KEMPreKey, b.KEMPreKeySignature)
}
