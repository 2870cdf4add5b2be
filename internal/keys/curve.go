package keys

import (
	"crypto/ecdh"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// Wire layout of a Curve25519 public key, as libsignal serializes it:
//
//	+------+----------------------------------+
//	| 0x05 | u-coordinate, 32 bytes, little-endian |
//	+------+----------------------------------+
const (
	// TypeDJB is libsignal's type byte for Curve25519 keys ("DJB").
	TypeDJB byte = 0x05
	// PublicKeySize is the encoded size of a public key, type byte included.
	PublicKeySize = 33
	// PrivateKeySize is the size of a Curve25519 private scalar.
	PrivateKeySize = 32
	// SignatureSize is the size of an XEdDSA signature.
	SignatureSize = 64
	// SharedSecretSize is the size of an X25519 agreement.
	SharedSecretSize = 32
)

// Sentinel errors for key parsing and agreement.
var (
	ErrKeyType      = errors.New("keys: unknown key type")
	ErrKeyLength    = errors.New("keys: wrong key length")
	ErrNonCanonical = errors.New("keys: non-canonical public key")
	ErrNotOnCurve   = errors.New("keys: public key is not on Curve25519")
	ErrTorsion      = errors.New("keys: public key has a small-order component")
	ErrLowOrder     = errors.New("keys: agreement with a low-order point")
)

// PublicKey is a validated Curve25519 public key. The zero value is invalid;
// obtain one from [ParsePublicKey] or [PrivateKey.PublicKey].
type PublicKey struct {
	_ incomparable
	u [32]byte
	k *ecdh.PublicKey
}

// ParsePublicKey decodes a 33-byte libsignal public key (0x05‖u). It rejects
// other type bytes and lengths, u ≥ 2²⁵⁵−19 (or the top bit set), points on
// the quadratic twist, and points outside the prime-order subgroup.
func ParsePublicKey(b []byte) (PublicKey, error) {
	u, err := uOf(b)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKeyFromU(u)
}

// ParseStoredPublicKey decodes a public key that this program validated
// with [ParsePublicKey] before and then wrote to its own storage (session
// records, sender-key states, a contact's identity). It checks the type
// byte, the length and the canonical encoding, but not the prime-order
// subgroup, whose check costs a scalar multiplication (about 70 µs) and
// would otherwise be paid for every key of a session on every message.
// Never use it for bytes from the network.
func ParseStoredPublicKey(b []byte) (PublicKey, error) {
	u, err := uOf(b)
	if err != nil {
		return PublicKey{}, err
	}
	if _, err := canonicalU(u); err != nil {
		return PublicKey{}, err
	}
	return publicKey(u)
}

// uOf checks a libsignal public key's type byte and length and returns
// its u-coordinate.
func uOf(b []byte) ([]byte, error) {
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%w: empty", ErrKeyLength)
	case b[0] != TypeDJB:
		return nil, fmt.Errorf("%w: 0x%02x", ErrKeyType, b[0])
	case len(b) != PublicKeySize:
		return nil, fmt.Errorf("%w: %d bytes", ErrKeyLength, len(b))
	}
	return b[1:], nil
}

// PublicKeyFromU is [ParsePublicKey] for a bare 32-byte u-coordinate, as it
// appears inside some messages (sealed sender v2) without a type byte.
func PublicKeyFromU(u []byte) (PublicKey, error) {
	if len(u) != 32 {
		return PublicKey{}, fmt.Errorf("%w: %d-byte u-coordinate", ErrKeyLength, len(u))
	}
	if err := checkPrimeOrder(u); err != nil {
		return PublicKey{}, err
	}
	return publicKey(u)
}

// publicKey makes the PublicKey of a checked u-coordinate.
func publicKey(u []byte) (PublicKey, error) {
	k, err := ecdh.X25519().NewPublicKey(u)
	if err != nil {
		return PublicKey{}, fmt.Errorf("keys: %w", err)
	}
	var p PublicKey
	copy(p.u[:], u)
	p.k = k
	return p, nil
}

// canonicalU decodes u as a field element, refusing u ≥ 2²⁵⁵−19 and the
// top bit set.
func canonicalU(u []byte) (*field.Element, error) {
	var fu field.Element
	if _, err := fu.SetBytes(u); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNonCanonical, err)
	}
	if u[31]&0x80 != 0 || !equalBytes(fu.Bytes(), u) {
		return nil, ErrNonCanonical
	}
	return &fu, nil
}

// lMinusOne is ℓ−1 in little-endian, where ℓ is the order of Curve25519's
// prime-order subgroup.
const lMinusOne = "\xec\xd3\xf5\x5c\x1a\x63\x12\x58\xd6\x9c\xf7\xa2\xde\xf9\xde\x14" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10"

// checkPrimeOrder maps u to the birationally equivalent Edwards point and
// checks that u is canonical, on the curve, and that ℓ·P is the identity.
func checkPrimeOrder(u []byte) error {
	fu, err := canonicalU(u)
	if err != nil {
		return err
	}
	p, err := montgomeryToEdwards(fu, 0)
	if err != nil {
		return err
	}
	l1, err := edwards25519.NewScalar().SetCanonicalBytes([]byte(lMinusOne))
	if err != nil {
		panic("keys: bad constant ℓ−1")
	}
	var q edwards25519.Point
	q.VarTimeDoubleScalarBaseMult(l1, p, edwards25519.NewScalar())
	q.Add(&q, p)
	if q.Equal(edwards25519.NewIdentityPoint()) != 1 {
		return ErrTorsion
	}
	return nil
}

// montgomeryToEdwards returns the Edwards point with y = (u−1)/(u+1) and the
// given sign of x, or ErrNotOnCurve if there is none (u on the twist).
func montgomeryToEdwards(u *field.Element, sign byte) (*edwards25519.Point, error) {
	p, _, err := montgomeryToEdwardsBytes(u, sign)
	return p, err
}

// montgomeryToEdwardsBytes is montgomeryToEdwards that also returns the
// point's compressed encoding (y with the sign bit), saving the inversion
// that Point.Bytes would cost.
func montgomeryToEdwardsBytes(u *field.Element, sign byte) (*edwards25519.Point, []byte, error) {
	one := new(field.Element).One()
	num := new(field.Element).Subtract(u, one)
	den := new(field.Element).Add(u, one)
	den.Invert(den)
	y := new(field.Element).Multiply(num, den)
	yb := y.Bytes()
	yb[31] |= sign << 7
	p, err := new(edwards25519.Point).SetBytes(yb)
	if err != nil {
		return nil, nil, ErrNotOnCurve
	}
	return p, yb, nil
}

func equalBytes(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// Bytes returns the 33-byte libsignal encoding (0x05‖u) in a new slice.
func (k PublicKey) Bytes() []byte {
	b := make([]byte, PublicKeySize)
	b[0] = TypeDJB
	copy(b[1:], k.u[:])
	return b
}

// AppendBytes appends the 33-byte encoding to b.
func (k PublicKey) AppendBytes(b []byte) []byte {
	return append(append(b, TypeDJB), k.u[:]...)
}

// U returns the bare 32-byte u-coordinate.
func (k PublicKey) U() [32]byte { return k.u }

// IsZero reports whether k is the zero value (not a key).
func (k PublicKey) IsZero() bool { return k.k == nil }

// Equal reports whether k and o are the same key, in constant time.
func (k PublicKey) Equal(o PublicKey) bool { return subtle.ConstantTimeCompare(k.u[:], o.u[:]) == 1 }

// Fingerprint is a short, non-secret name for the key, for logs.
func (k PublicKey) Fingerprint() string {
	h := sha256.Sum256(k.u[:])
	return hex.EncodeToString(h[:4])
}

// String returns "PublicKey(<fingerprint>)".
func (k PublicKey) String() string { return "PublicKey(" + k.Fingerprint() + ")" }

// LogValue implements slog.LogValuer.
func (k PublicKey) LogValue() slog.Value { return slog.StringValue(k.Fingerprint()) }

// PrivateKey is a Curve25519 private key. The zero value is invalid.
type PrivateKey struct {
	_   incomparable
	k   *ecdh.PrivateKey
	raw [32]byte // clamped, as libsignal stores it
}

// GeneratePrivateKey makes a new private key from 32 bytes of rand, clamped
// as libsignal does. Pass crypto/rand.Reader outside tests.
func GeneratePrivateKey(rand io.Reader) (PrivateKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("keys: read randomness: %w", err)
	}
	clamp(&b)
	return NewPrivateKey(b[:])
}

func clamp(b *[32]byte) {
	b[0] &= 248
	b[31] &= 127
	b[31] |= 64
}

// NewPrivateKey wraps 32 bytes of scalar. Like libsignal it clamps them
// first, so [PrivateKey.Bytes] returns the clamped scalar.
func NewPrivateKey(b []byte) (PrivateKey, error) {
	if len(b) != PrivateKeySize {
		return PrivateKey{}, fmt.Errorf("%w: private key of %d bytes", ErrKeyLength, len(b))
	}
	var p PrivateKey
	copy(p.raw[:], b)
	clamp(&p.raw)
	k, err := ecdh.X25519().NewPrivateKey(p.raw[:])
	if err != nil {
		return PrivateKey{}, fmt.Errorf("keys: %w", err)
	}
	p.k = k
	return p, nil
}

// Bytes returns the 32-byte private scalar in a new slice. Handle with care.
func (k PrivateKey) Bytes() []byte { return append([]byte(nil), k.raw[:]...) }

// IsZero reports whether k is the zero value (not a key).
func (k PrivateKey) IsZero() bool { return k.k == nil }

// PublicKey returns the matching public key.
func (k PrivateKey) PublicKey() PublicKey {
	var p PublicKey
	copy(p.u[:], k.k.PublicKey().Bytes())
	p.k = k.k.PublicKey()
	return p
}

// Agree computes X25519(k, pub). It fails only if the result is all zeros,
// which a validated public key cannot cause.
func (k PrivateKey) Agree(pub PublicKey) ([SharedSecretSize]byte, error) {
	var out [SharedSecretSize]byte
	if pub.k == nil {
		return out, fmt.Errorf("%w: zero public key", ErrKeyLength)
	}
	s, err := k.k.ECDH(pub.k)
	if err != nil {
		return out, ErrLowOrder
	}
	copy(out[:], s)
	return out, nil
}

// Equal reports whether k and o are the same key, in constant time.
func (k PrivateKey) Equal(o PrivateKey) bool {
	return subtle.ConstantTimeCompare(k.raw[:], o.raw[:]) == 1
}

// String never shows secret material.
func (k PrivateKey) String() string {
	if k.k == nil {
		return "PrivateKey(zero)"
	}
	return "PrivateKey(of " + k.PublicKey().Fingerprint() + ")"
}

// GoString never shows secret material (for %#v).
func (k PrivateKey) GoString() string { return k.String() }

// LogValue implements slog.LogValuer without secret material.
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// KeyPair is a private key with its public key.
type KeyPair struct {
	Private PrivateKey
	Public  PublicKey
}

// GenerateKeyPair makes a new key pair from rand.
func GenerateKeyPair(rand io.Reader) (KeyPair, error) {
	priv, err := GeneratePrivateKey(rand)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{Private: priv, Public: priv.PublicKey()}, nil
}

// NewKeyPair rebuilds a key pair from a stored private key.
func NewKeyPair(private []byte) (KeyPair, error) {
	priv, err := NewPrivateKey(private)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{Private: priv, Public: priv.PublicKey()}, nil
}

// String never shows secret material.
func (kp KeyPair) String() string { return "KeyPair(" + kp.Public.Fingerprint() + ")" }
