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
const discontinuity = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"

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
	if b.IdentityKey.IsZero() || b.SignedPreKey.IsZero() || b.KEMPreKey.IsZero() || (b.HasPreKey && b.PreKey.IsZero()) {
		return nil, b.Verify() // reports which part is missing
	}
	// The two signature checks run beside the agreement, which uses the
	// bundle's keys only to compute values that are thrown away unless both
	// signatures verify. It halves the latency of starting a session.
	verified := make(chan error, 1)
	go func() { verified <- b.Verify() }()
	init, err := initiate(rand, identity, b)
	if verr := <-verified; verr != nil {
		return nil, verr
	}
	return init, err
}

func initiate(rand io.Reader, identity keys.KeyPair, b *Bundle) (*Initiation, error) {
	base, err := keys.GenerateKeyPair(rand)
	if err != nil {
		return nil, err
	}
	var opk *keys.PublicKey
	if b.HasPreKey {
		opk = &b.PreKey
	}
	ikm, err := agreements(
		dh{identity.Private, b.SignedPreKey},
		dh{base.Private, b.IdentityKey},
		dh{base.Private, b.SignedPreKey},
		dh{base.Private, deref(opk)},
	)
	if err != nil {
		return nil, err
	}
	ct, ss, err := b.KEMPreKey.Encapsulate(rand)
	if err != nil {
		return nil, fmt.Errorf("x3dh: encapsulate: %w", err)
	}
	ikm = append(ikm, ss[:]...)
	init := &Initiation{BaseKey: base, KEMCiphertext: ct}
	init.Secrets, err = derive(ikm, Info)
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
	opk := dh{pub: theirBase}
	if r.OneTimePreKey != nil {
		opk.priv = r.OneTimePreKey.Private
	}
	ikm, err := agreements(
		dh{r.SignedPreKey.Private, theirIdentity},
		dh{r.Identity.Private, theirBase},
		dh{r.SignedPreKey.Private, theirBase},
		opk,
	)
	if err != nil {
		return Secrets{}, err
	}
	ss, err := r.KEMPreKey.Secret.Decapsulate(kemCiphertext)
	if err != nil {
		return Secrets{}, fmt.Errorf("x3dh: decapsulate: %w", err)
	}
	ikm = append(ikm, ss[:]...)
	return derive(ikm, Info)
}

// dh is one Diffie-Hellman of the agreement; a zero private or public key
// means the optional one-time prekey is absent.
type dh struct {
	priv keys.PrivateKey
	pub  keys.PublicKey
}

func deref(k *keys.PublicKey) keys.PublicKey {
	if k == nil {
		return keys.PublicKey{}
	}
	return *k
}

// agreements returns the discontinuity bytes followed by the DH outputs, in
// the order the spec gives them, skipping an absent one-time prekey.
func agreements(dhs ...dh) ([]byte, error) {
	ikm := make([]byte, 0, 32*(len(dhs)+2))
	ikm = append(ikm, discontinuity...)
	for _, d := range dhs {
		if d.priv.IsZero() || d.pub.IsZero() {
			continue
		}
		s, err := d.priv.Agree(d.pub)
		if err != nil {
			return nil, fmt.Errorf("x3dh: %w", err)
		}
		ikm = append(ikm, s[:]...)
	}
	return ikm, nil
}

func derive(ikm []byte, info string) (Secrets, error) {
	okm, err := hkdf.Key(sha256.New, ikm, nil, info, 64)
	if err != nil {
		return Secrets{}, fmt.Errorf("x3dh: hkdf: %w", err)
	}
	var s Secrets
	copy(s.RootKey[:], okm[:32])
	copy(s.ChainKey[:], okm[32:])
	clear(ikm)
	return s, nil
}
