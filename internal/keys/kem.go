package keys

import (
	"crypto/mlkem"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"

	"github.com/cloudflare/circl/kem/kyber/kyber1024"
)

// KEMType is libsignal's type byte for a KEM key. Wire layout of every
// serialized KEM public key, secret key and ciphertext:
//
//	+-----------+--------------------------------+
//	| type byte | key or ciphertext (see sizes)  |
//	+-----------+--------------------------------+
type KEMType byte

// KEM types Sotto speaks.
const (
	// Kyber1024 is round-3 Kyber-1024, the KEM libsignal 0.72 puts in
	// PQXDH. Used for every session with a libsignal peer.
	Kyber1024 KEMType = 0x08
	// MLKEM1024 is FIPS 203 ML-KEM-1024, the default between Sotto clients.
	MLKEM1024 KEMType = 0x0A

	// DefaultKEM is the KEM of the prekeys a Sotto client publishes: its
	// peers are Sotto clients, and ML-KEM-1024 is the standardized form of
	// Kyber. Sessions with libsignal peers use Kyber1024.
	DefaultKEM = MLKEM1024
)

// Sizes of KEM material without the type byte. Kyber-1024 and ML-KEM-1024
// share public key and ciphertext sizes.
const (
	KEMPublicKeySize  = 1568
	KEMCiphertextSize = 1568
	// Kyber1024SecretKeySize is circl's (and libsignal's) packed Kyber secret
	// key: indcpa_sk ‖ pk ‖ SHA3-256(pk) ‖ z.
	Kyber1024SecretKeySize = kyber1024.PrivateKeySize
	// MLKEM1024SeedSize is FIPS 203's (d, z) seed, the form in which Sotto
	// stores ML-KEM secret keys.
	MLKEM1024SeedSize = mlkem.SeedSize
	// KEMSharedSecretSize is the size of a decapsulated secret.
	KEMSharedSecretSize = 32
)

func (t KEMType) String() string {
	switch t {
	case Kyber1024:
		return "Kyber1024"
	case MLKEM1024:
		return "ML-KEM-1024"
	}
	return fmt.Sprintf("KEMType(0x%02x)", byte(t))
}

// KEMPublicKey is a Kyber-1024 or ML-KEM-1024 public (encapsulation) key.
type KEMPublicKey struct {
	_     incomparable
	typ   KEMType
	raw   []byte
	kyber *kyber1024.PublicKey
	ml    *mlkem.EncapsulationKey1024
}

// ParseKEMPublicKey decodes type byte ‖ 1568-byte key.
func ParseKEMPublicKey(b []byte) (KEMPublicKey, error) {
	if len(b) == 0 {
		return KEMPublicKey{}, fmt.Errorf("%w: empty KEM key", ErrKeyLength)
	}
	if len(b) != 1+KEMPublicKeySize {
		return KEMPublicKey{}, fmt.Errorf("%w: KEM public key of %d bytes", ErrKeyLength, len(b))
	}
	k := KEMPublicKey{typ: KEMType(b[0]), raw: append([]byte(nil), b[1:]...)}
	switch k.typ {
	case Kyber1024:
		k.kyber = new(kyber1024.PublicKey)
		k.kyber.Unpack(k.raw)
	case MLKEM1024:
		ml, err := mlkem.NewEncapsulationKey1024(k.raw)
		if err != nil {
			return KEMPublicKey{}, fmt.Errorf("keys: ML-KEM-1024 public key: %w", err)
		}
		k.ml = ml
	default:
		return KEMPublicKey{}, fmt.Errorf("%w: KEM type 0x%02x", ErrKeyType, b[0])
	}
	return k, nil
}

// Type returns the KEM.
func (k KEMPublicKey) Type() KEMType { return k.typ }

// IsZero reports whether k is the zero value (not a key).
func (k KEMPublicKey) IsZero() bool { return k.raw == nil }

// Bytes returns type byte ‖ key in a new slice.
func (k KEMPublicKey) Bytes() []byte { return append([]byte{byte(k.typ)}, k.raw...) }

// Equal reports whether k and o are the same key, in constant time.
func (k KEMPublicKey) Equal(o KEMPublicKey) bool {
	return k.typ == o.typ && subtle.ConstantTimeCompare(k.raw, o.raw) == 1
}

// Fingerprint is a short, non-secret name for the key, for logs.
func (k KEMPublicKey) Fingerprint() string {
	h := sha256.Sum256(k.raw)
	return hex.EncodeToString(h[:4])
}

// String returns the KEM type and fingerprint.
func (k KEMPublicKey) String() string { return k.typ.String() + "(" + k.Fingerprint() + ")" }

// LogValue implements slog.LogValuer.
func (k KEMPublicKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Encapsulate makes a fresh shared secret and its ciphertext (type byte
// included, as it goes on the wire). Kyber draws its 32-byte seed from rand;
// ML-KEM uses crypto/rand as crypto/mlkem requires.
func (k KEMPublicKey) Encapsulate(rand io.Reader) (ciphertext []byte, secret [KEMSharedSecretSize]byte, err error) {
	ct := make([]byte, 1+KEMCiphertextSize)
	ct[0] = byte(k.typ)
	switch k.typ {
	case Kyber1024:
		var seed [kyber1024.EncapsulationSeedSize]byte
		if _, err := io.ReadFull(rand, seed[:]); err != nil {
			return nil, secret, fmt.Errorf("keys: read randomness: %w", err)
		}
		k.kyber.EncapsulateTo(ct[1:], secret[:], seed[:])
	case MLKEM1024:
		ss, c := k.ml.Encapsulate()
		copy(ct[1:], c)
		copy(secret[:], ss)
	default:
		return nil, secret, fmt.Errorf("%w: zero KEM key", ErrKeyType)
	}
	return ct, secret, nil
}

// KEMSecretKey is a Kyber-1024 or ML-KEM-1024 secret (decapsulation) key.
type KEMSecretKey struct {
	_     incomparable
	typ   KEMType
	raw   []byte // packed Kyber key, or ML-KEM seed
	kyber *kyber1024.PrivateKey
	ml    *mlkem.DecapsulationKey1024
}

// ParseKEMSecretKey decodes type byte ‖ secret key (3168-byte Kyber key, or
// 64-byte ML-KEM seed).
func ParseKEMSecretKey(b []byte) (KEMSecretKey, error) {
	if len(b) == 0 {
		return KEMSecretKey{}, fmt.Errorf("%w: empty KEM key", ErrKeyLength)
	}
	k := KEMSecretKey{typ: KEMType(b[0]), raw: append([]byte(nil), b[1:]...)}
	switch k.typ {
	case Kyber1024:
		if len(k.raw) != Kyber1024SecretKeySize {
			return KEMSecretKey{}, fmt.Errorf("%w: Kyber-1024 secret key of %d bytes", ErrKeyLength, len(k.raw))
		}
		k.kyber = new(kyber1024.PrivateKey)
		k.kyber.Unpack(k.raw)
	case MLKEM1024:
		ml, err := mlkem.NewDecapsulationKey1024(k.raw)
		if err != nil {
			return KEMSecretKey{}, fmt.Errorf("keys: ML-KEM-1024 seed: %w", err)
		}
		k.ml = ml
	default:
		return KEMSecretKey{}, fmt.Errorf("%w: KEM type 0x%02x", ErrKeyType, b[0])
	}
	return k, nil
}

// Type returns the KEM.
func (k KEMSecretKey) Type() KEMType { return k.typ }

// Bytes returns type byte ‖ secret key in a new slice. Handle with care.
func (k KEMSecretKey) Bytes() []byte { return append([]byte{byte(k.typ)}, k.raw...) }

// Equal reports whether k and o are the same key, in constant time.
func (k KEMSecretKey) Equal(o KEMSecretKey) bool {
	return k.typ == o.typ && subtle.ConstantTimeCompare(k.raw, o.raw) == 1
}

// String never shows secret material.
func (k KEMSecretKey) String() string { return k.typ.String() + "SecretKey(redacted)" }

// GoString never shows secret material.
func (k KEMSecretKey) GoString() string { return k.String() }

// LogValue implements slog.LogValuer without secret material.
func (k KEMSecretKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Decapsulate recovers the shared secret from a ciphertext (type byte
// included). A wrong type or length is an error; a tampered ciphertext of the
// right shape yields an unrelated secret (implicit rejection), which the
// protocol then fails to authenticate.
func (k KEMSecretKey) Decapsulate(ciphertext []byte) ([KEMSharedSecretSize]byte, error) {
	var ss [KEMSharedSecretSize]byte
	if len(ciphertext) != 1+KEMCiphertextSize {
		return ss, fmt.Errorf("%w: KEM ciphertext of %d bytes", ErrKeyLength, len(ciphertext))
	}
	if KEMType(ciphertext[0]) != k.typ {
		return ss, fmt.Errorf("%w: %v ciphertext for a %v key", ErrKeyType, KEMType(ciphertext[0]), k.typ)
	}
	switch k.typ {
	case Kyber1024:
		k.kyber.DecapsulateTo(ss[:], ciphertext[1:])
	case MLKEM1024:
		s, err := k.ml.Decapsulate(ciphertext[1:])
		if err != nil {
			return ss, fmt.Errorf("keys: ML-KEM-1024: %w", err)
		}
		copy(ss[:], s)
	default:
		return ss, fmt.Errorf("%w: zero KEM key", ErrKeyType)
	}
	return ss, nil
}

// KEMKeyPair is a KEM secret key with its public key.
type KEMKeyPair struct {
	Secret KEMSecretKey
	Public KEMPublicKey
}

// GenerateKEMKeyPair makes a new KEM key pair of type t. Kyber keys come
// from rand; ML-KEM keys from a 64-byte seed read from rand.
func GenerateKEMKeyPair(t KEMType, rand io.Reader) (KEMKeyPair, error) {
	switch t {
	case Kyber1024:
		var seed [kyber1024.KeySeedSize]byte
		if _, err := io.ReadFull(rand, seed[:]); err != nil {
			return KEMKeyPair{}, fmt.Errorf("keys: read randomness: %w", err)
		}
		pk, sk := kyber1024.NewKeyFromSeed(seed[:])
		pub := make([]byte, 1+KEMPublicKeySize)
		pub[0] = byte(t)
		pk.Pack(pub[1:])
		sec := make([]byte, 1+Kyber1024SecretKeySize)
		sec[0] = byte(t)
		sk.Pack(sec[1:])
		return kemPairFromBytes(pub, sec)
	case MLKEM1024:
		seed := make([]byte, 1+MLKEM1024SeedSize)
		seed[0] = byte(t)
		if _, err := io.ReadFull(rand, seed[1:]); err != nil {
			return KEMKeyPair{}, fmt.Errorf("keys: read randomness: %w", err)
		}
		sk, err := ParseKEMSecretKey(seed)
		if err != nil {
			return KEMKeyPair{}, err
		}
		return KEMKeyPair{Secret: sk, Public: sk.PublicKey()}, nil
	}
	return KEMKeyPair{}, fmt.Errorf("%w: KEM type %v", ErrKeyType, t)
}

func kemPairFromBytes(pub, sec []byte) (KEMKeyPair, error) {
	pk, err := ParseKEMPublicKey(pub)
	if err != nil {
		return KEMKeyPair{}, err
	}
	sk, err := ParseKEMSecretKey(sec)
	if err != nil {
		return KEMKeyPair{}, err
	}
	return KEMKeyPair{Secret: sk, Public: pk}, nil
}

// PublicKey returns the public key of k.
func (k KEMSecretKey) PublicKey() KEMPublicKey {
	pub := make([]byte, 1+KEMPublicKeySize)
	pub[0] = byte(k.typ)
	switch k.typ {
	case Kyber1024:
		k.kyber.Public().(*kyber1024.PublicKey).Pack(pub[1:])
	case MLKEM1024:
		copy(pub[1:], k.ml.EncapsulationKey().Bytes())
	default:
		panic("keys: PublicKey of a zero KEM secret key")
	}
	pk, err := ParseKEMPublicKey(pub)
	if err != nil {
		panic("keys: own KEM public key does not parse: " + err.Error())
	}
	return pk
}

// NewKEMKeyPair rebuilds a key pair from a stored secret key.
func NewKEMKeyPair(secret []byte) (KEMKeyPair, error) {
	sk, err := ParseKEMSecretKey(secret)
	if err != nil {
		return KEMKeyPair{}, err
	}
	return KEMKeyPair{Secret: sk, Public: sk.PublicKey()}, nil
}
