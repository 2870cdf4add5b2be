package x3dh

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/sotto-chat/sotto/internal/keys"
)

// Info is PQXDH's HKDF info string in libsignal 0.72.1, for both KEMs.
const Info = "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024"

// discontinuity is the 32 bytes of 0xFF that prefix the key material, so that
// no X25519 output can be confused with a prefix of it (PQXDH §2.2, "F").
var discontinuity = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
}

// ErrNoKEMPreKey is returned for a bundle or message without a KEM prekey:
// Sotto only sets up post-quantum sessions.
var ErrNoKEMPreKey = errors.New("x3dh: no KEM prekey (PQXDH requires one)")

// Secrets are the outputs of the key agreement that seed the Double Ratchet.
type Secrets struct {
	RootKey  [32]byte
	ChainKey [32]byte
}

// Initiation is what Alice learns from [Initiate]: the session secrets and
// the values her first message must carry.
type Initiation struct {
	Secrets
	// BaseKey is Alice's ephemeral key pair (EKa); its public half goes in
	// every PreKeySignalMessage until Bob answers.
	BaseKey keys.KeyPair
	// KEMCiphertext is the encapsulation to Bob's KEM prekey, type byte
	// included, as it goes on the wire.
	KEMCiphertext []byte
}

// Initiate runs Alice's side of PQXDH against a verified bundle. It draws
// Alice's ephemeral key and the KEM encapsulation from rand.
func Initiate(rand io.Reader, identity keys.KeyPair, b *Bundle) (*Initiation, error) {
	if err := b.Verify(); err != nil {
		return nil, err
	}
	base, err := keys.GenerateKeyPair(rand)
	if err != nil {
		return nil, err
	}
	ikm := make([]byte, 0, 32*6)
	ikm = append(ikm, discontinuity[:]...)
	for _, dh := range []struct {
		priv keys.PrivateKey
		pub  keys.PublicKey
	}{
		{identity.Private, b.SignedPreKey},
		{base.Private, b.IdentityKey},
		{base.Private, b.SignedPreKey},
	} {
		if ikm, err = appendAgreement(ikm, dh.priv, dh.pub); err != nil {
			return nil, err
		}
	}
	if b.HasPreKey {
		if ikm, err = appendAgreement(ikm, base.Private, b.PreKey); err != nil {
			return nil, err
		}
	}
	ct, ss, err := b.KEMPreKey.Encapsulate(rand)
	if err != nil {
		return nil, fmt.Errorf("x3dh: encapsulate: %w", err)
	}
	ikm = append(ikm, ss[:]...)
	init := &Initiation{BaseKey: base, KEMCiphertext: ct}
	init.Secrets, err = derive(ikm)
	return init, err
}

// Responder holds Bob's private keys that a PreKeySignalMessage names.
type Responder struct {
	Identity     keys.KeyPair
	SignedPreKey keys.KeyPair
	// OneTimePreKey is nil when Alice's message named none.
	OneTimePreKey *keys.KeyPair
	KEMPreKey     keys.KEMKeyPair
}

// Respond runs Bob's side of PQXDH for Alice's identity key, base key and
// KEM ciphertext from her first message.
func Respond(r *Responder, theirIdentity, theirBase keys.PublicKey, kemCiphertext []byte) (Secrets, error) {
	if len(kemCiphertext) == 0 {
		return Secrets{}, ErrNoKEMPreKey
	}
	ikm := make([]byte, 0, 32*6)
	ikm = append(ikm, discontinuity[:]...)
	var err error
	for _, dh := range []struct {
		priv keys.PrivateKey
		pub  keys.PublicKey
	}{
		{r.SignedPreKey.Private, theirIdentity},
		{r.Identity.Private, theirBase},
		{r.SignedPreKey.Private, theirBase},
	} {
		if ikm, err = appendAgreement(ikm, dh.priv, dh.pub); err != nil {
			return Secrets{}, err
		}
	}
	if r.OneTimePreKey != nil {
		if ikm, err = appendAgreement(ikm, r.OneTimePreKey.Private, theirBase); err != nil {
			return Secrets{}, err
		}
	}
	ss, err := r.KEMPreKey.Secret.Decapsulate(kemCiphertext)
	if err != nil {
		return Secrets{}, fmt.Errorf("x3dh: decapsulate: %w", err)
	}
	ikm = append(ikm, ss[:]...)
	return derive(ikm)
}

func appendAgreement(ikm []byte, priv keys.PrivateKey, pub keys.PublicKey) ([]byte, error) {
	s, err := priv.Agree(pub)
	if err != nil {
		return nil, fmt.Errorf("x3dh: %w", err)
	}
	return append(ikm, s[:]...), nil
}

func derive(ikm []byte) (Secrets, error) {
	okm, err := hkdf.Key(sha256.New, ikm, nil, Info, 64)
	if err != nil {
		return Secrets{}, fmt.Errorf("x3dh: hkdf: %w", err)
	}
	var s Secrets
	copy(s.RootKey[:], okm[:32])
	copy(s.ChainKey[:], okm[32:])
	clear(ikm)
	return s, nil
}
