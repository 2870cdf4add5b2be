package client

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// Profiles. An account's name and avatar are stored on the server
// encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the
// profile key, which only the account's contacts hold: the server keeps
// bytes it cannot read, and contacts fetch the current profile whenever
// they like. The plaintext is padded so that the ciphertext's length says
// little about the name.

// Profile bounds, each with its reason.
const (
	// MaxProfileName bounds a name: enough for any person's name in any
	// script (UTF-8).
	MaxProfileName = 256
	// MaxAvatar bounds an avatar: a small thumbnail; with the name and
	// the encryption's overhead it fits the server's 64 KiB.
	MaxAvatar = 60 << 10
	// profilePad is the padding block of a profile's plaintext.
	profilePad = 256
	// profileInfo separates the profile key's uses.
	profileInfo = "sotto profile v1"
)

// ErrNoProfileKey is returned by ProfileOf for an account that has not
// shared its profile key (it never wrote to this account, and was not
// added by a contact link).
var ErrNoProfileKey = errors.New("client: this account has not shared its profile with you")

// Profile is what an account shows its contacts.
type Profile struct {
	Name   string
	Avatar []byte // an image, or nil
}

func (p Profile) check() error {
	switch {
	case len(p.Name) > MaxProfileName:
		return fmt.Errorf("client: a profile name has at most %d bytes", MaxProfileName)
	case !utf8.ValidString(p.Name):
		return errors.New("client: a profile name must be UTF-8")
	case len(p.Avatar) > MaxAvatar:
		return fmt.Errorf("client: an avatar has at most %d KiB", MaxAvatar>>10)
	}
	return nil
}

func profileAEAD(profileKey []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, profileKey, nil, profileInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealProfile encrypts p for account a: nonce ‖ AES-256-GCM(name length
// (2) ‖ name ‖ avatar ‖ zero padding), the account id as associated data.
func sealProfile(profileKey []byte, a AccountID, p Profile) ([]byte, error) {
	aead, err := profileAEAD(profileKey)
	if err != nil {
		return nil, err
	}
	plain := binary.BigEndian.AppendUint16(nil, uint16(len(p.Name)))
	plain = append(plain, p.Name...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(p.Avatar)))
	plain = append(plain, p.Avatar...)
	plain = append(plain, make([]byte, (profilePad-len(plain)%profilePad)%profilePad)...)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, a[:]), nil
}

// openProfile reverses sealProfile.
func openProfile(profileKey []byte, a AccountID, b []byte) (Profile, error) {
	aead, err := profileAEAD(profileKey)
	if err != nil {
		return Profile{}, err
	}
	if len(b) < aead.NonceSize()+aead.Overhead() {
		return Profile{}, errors.New("client: the profile is malformed")
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], a[:])
	if err != nil {
		return Profile{}, errors.New("client: the profile does not open (a changed profile key?)")
	}
	return parseProfile(plain)
}

// parseProfile decodes a profile's plaintext.
func parseProfile(plain []byte) (Profile, error) {
	if len(plain) < 2 {
		return Profile{}, errors.New("client: the profile is malformed")
	}
	n := int(binary.BigEndian.Uint16(plain))
	if len(plain) < 2+n+4 {
		return Profile{}, errors.New("client: the profile is malformed")
	}
	p := Profile{Name: string(plain[2 : 2+n])}
	m := int(binary.BigEndian.Uint32(plain[2+n:]))
	rest := plain[2+n+4:]
	if m > len(rest) {
		return Profile{}, errors.New("client: the profile is malformed")
	}
	if m > 0 {
		p.Avatar = rest[:m]
	}
	if err := p.check(); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// SetProfile sets this account's profile (an empty one deletes it).
func (c *Client) SetProfile(ctx context.Context, p Profile) error {
	if err := p.check(); err != nil {
		return err
	}
	var blob []byte
	if p.Name != "" || len(p.Avatar) > 0 {
		var err error
		if blob, err = sealProfile(c.profileKey, c.account, p); err != nil {
			return err
		}
	}
	return c.withAuth(ctx, func(conn *wsclient.Conn) error {
		if _, err := c.do(ctx, conn, &wirepb.SetProfile{Ciphertext: blob}); err != nil {
			return fmt.Errorf("client: set profile: %w", err)
		}
		return nil
	})
}

// ProfileOf fetches and decrypts an account's profile (this account's
// own too); an account without one has the zero Profile.
func (c *Client) ProfileOf(ctx context.Context, a AccountID) (Profile, error) {
	key := c.profileKey
	if a != c.account {
		ct, err := c.contact(ctx, a)
		if err != nil {
			return Profile{}, err
		}
		if len(ct.ProfileKey) == 0 {
			return Profile{}, ErrNoProfileKey
		}
		key = ct.ProfileKey
	}
	anon, err := c.anonConn(ctx)
	if err != nil {
		return Profile{}, err
	}
	resp, err := c.do(ctx, anon, &wirepb.GetProfile{AccountId: a[:]})
	if err != nil {
		return Profile{}, fmt.Errorf("client: profile: %w", err)
	}
	blob := resp.GetProfile().GetCiphertext()
	if len(blob) == 0 {
		return Profile{}, nil
	}
	return openProfile(key, a, blob)
}
