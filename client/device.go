package client

import (
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// deviceKeys are what a new device (registered or linked) makes for
// itself: its auth key and registration id, and its signed prekey and
// last-resort KEM prekey (id 1), signed by the account's identity key.
type deviceKeys struct {
	auth           keys.KeyPair
	registrationID uint32
	spk            keys.SignedPreKey
	kem            keys.KEMPreKey
}

// firstPreKeyID is the id of a device's first signed and last-resort KEM
// prekeys; one-time prekeys count on from there.
const firstPreKeyID = 1

func newDeviceKeys(identity keys.KeyPair) (*deviceKeys, error) {
	k := &deviceKeys{}
	var err error
	if k.auth, err = keys.GenerateKeyPair(rand.Reader); err != nil {
		return nil, err
	}
	var b [4]byte
	rand.Read(b[:])
	k.registrationID = binary.BigEndian.Uint32(b[:])%maxRegistrationID + 1
	now := time.Now()
	if k.spk, err = keys.GenerateSignedPreKey(rand.Reader, identity.Private, firstPreKeyID, now); err != nil {
		return nil, err
	}
	if k.kem, err = keys.GenerateKEMPreKey(rand.Reader, identity.Private, keys.DefaultKEM, firstPreKeyID, now); err != nil {
		return nil, err
	}
	return k, nil
}

// wire returns the prekeys as the server takes them.
func (k *deviceKeys) wire() (*wirepb.SignedPreKey, *wirepb.KEMPreKey) {
	return &wirepb.SignedPreKey{Id: uint32(k.spk.ID), Key: k.spk.Key.Public.Bytes(), Signature: k.spk.Signature[:]},
		&wirepb.KEMPreKey{Id: uint32(k.kem.ID), Key: k.kem.Key.Public.Bytes(), Signature: k.kem.Signature[:]}
}

// use makes k the client's, and returns the account record and the writes
// that store this device once the server has named it (reg).
func (c *Client) use(k *deviceKeys, rec *accountRecord, reg *wirepb.Registered) ([]Write, error) {
	c.auth, c.registrationID = k.auth, k.registrationID
	c.account, c.device = AccountID(reg.GetAccountId()), DeviceID(reg.GetDeviceId())
	if err := c.setTrust(reg.GetTrustRoot()); err != nil {
		return nil, err
	}
	var err error
	if rec.Identity, err = c.identity.MarshalBinary(); err != nil {
		return nil, err
	}
	if rec.Auth, err = k.auth.MarshalBinary(); err != nil {
		return nil, err
	}
	rec.Account, rec.Device, rec.TrustRoot = c.account[:], uint32(c.device), reg.GetTrustRoot()
	rec.RegistrationID, rec.ProfileKey, rec.NextPreKeyID = k.registrationID, c.profileKey, firstPreKeyID+1
	spkb, err := k.spk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	kemb, err := k.kem.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return []Write{
		{keyAccount, marshalJSON(rec)},
		{preKeyKey("signed", uint32(k.spk.ID)), spkb},
		{preKeyKey("kem", uint32(k.kem.ID)), kemb},
	}, nil
}
