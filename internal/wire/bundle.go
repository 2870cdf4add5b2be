package wire

import (
	"fmt"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/x3dh"
)

// SessionBundle turns one device's Bundle from a Bundles response, with
// the account's identity key, into what PQXDH starts a session from. It
// parses the keys (each checked as keys.Parse* checks them); verifying the
// signatures is x3dh's, when the session starts.
func SessionBundle(identity keys.PublicKey, b *wirepb.Bundle) (*x3dh.Bundle, error) {
	spk, err := keys.ParsePublicKey(b.GetSignedPrekey().GetKey())
	if err != nil {
		return nil, fmt.Errorf("bundle of device %d: signed prekey: %w", b.GetDeviceId(), err)
	}
	kem, err := keys.ParseKEMPublicKey(b.GetKemPrekey().GetKey())
	if err != nil {
		return nil, fmt.Errorf("bundle of device %d: KEM prekey: %w", b.GetDeviceId(), err)
	}
	xb := &x3dh.Bundle{RegistrationID: b.GetRegistrationId(), DeviceID: b.GetDeviceId(), IdentityKey: identity,
		SignedPreKeyID: keys.SignedPreKeyID(b.GetSignedPrekey().GetId()), SignedPreKey: spk, SignedPreKeySignature: b.GetSignedPrekey().GetSignature(),
		KEMPreKeyID: keys.KEMPreKeyID(b.GetKemPrekey().GetId()), KEMPreKey: kem, KEMPreKeySignature: b.GetKemPrekey().GetSignature()}
	if otk := b.GetOneTimePrekey(); otk != nil {
		pk, err := keys.ParsePublicKey(otk.GetKey())
		if err != nil {
			return nil, fmt.Errorf("bundle of device %d: one-time prekey: %w", b.GetDeviceId(), err)
		}
		xb.HasPreKey, xb.PreKeyID, xb.PreKey = true, keys.PreKeyID(otk.GetId()), pk
	}
	return xb, nil
}
