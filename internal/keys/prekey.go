package keys

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sotto-chat/sotto/internal/pb"
)

// PreKeyID, SignedPreKeyID and KEMPreKeyID name a device's prekeys. They are
// chosen by the device and only need to be unique among its live keys of one
// kind.
type (
	PreKeyID       uint32
	SignedPreKeyID uint32
	KEMPreKeyID    uint32
)

// ErrBadSignature is returned when a prekey's signature does not verify under
// the identity key that should have made it.
var ErrBadSignature = errors.New("keys: bad prekey signature")

// PreKey is a one-time Curve25519 prekey.
type PreKey struct {
	ID  PreKeyID
	Key KeyPair
}

// SignedPreKey is a medium-term Curve25519 prekey signed by the identity key.
type SignedPreKey struct {
	ID        SignedPreKeyID
	Timestamp time.Time // creation time, millisecond precision
	Key       KeyPair
	Signature [SignatureSize]byte
}

// KEMPreKey is a KEM prekey signed by the identity key: one-time, or the
// device's last-resort key.
type KEMPreKey struct {
	ID        KEMPreKeyID
	Timestamp time.Time // creation time, millisecond precision
	Key       KEMKeyPair
	Signature [SignatureSize]byte
}

// GeneratePreKey makes a one-time prekey.
func GeneratePreKey(rand io.Reader, id PreKeyID) (PreKey, error) {
	kp, err := GenerateKeyPair(rand)
	if err != nil {
		return PreKey{}, err
	}
	return PreKey{ID: id, Key: kp}, nil
}

// GenerateSignedPreKey makes a signed prekey; the signature covers the
// 33-byte public key encoding, as in libsignal.
func GenerateSignedPreKey(rand io.Reader, identity PrivateKey, id SignedPreKeyID, now time.Time) (SignedPreKey, error) {
	kp, err := GenerateKeyPair(rand)
	if err != nil {
		return SignedPreKey{}, err
	}
	sig, err := identity.Sign(rand, kp.Public.Bytes())
	if err != nil {
		return SignedPreKey{}, err
	}
	return SignedPreKey{ID: id, Timestamp: now.Truncate(time.Millisecond), Key: kp, Signature: sig}, nil
}

// GenerateKEMPreKey makes a KEM prekey of type t; the signature covers the
// type byte ‖ public key encoding, as in libsignal.
func GenerateKEMPreKey(rand io.Reader, identity PrivateKey, t KEMType, id KEMPreKeyID, now time.Time) (KEMPreKey, error) {
	kp, err := GenerateKEMKeyPair(t, rand)
	if err != nil {
		return KEMPreKey{}, err
	}
	sig, err := identity.Sign(rand, kp.Public.Bytes())
	if err != nil {
		return KEMPreKey{}, err
	}
	return KEMPreKey{ID: id, Timestamp: now.Truncate(time.Millisecond), Key: kp, Signature: sig}, nil
}

// VerifySignedPreKey checks a signed prekey's signature by identity.
func VerifySignedPreKey(identity, key PublicKey, sig []byte) error {
	if !identity.Verify(sig, key.Bytes()) {
		return fmt.Errorf("%w: signed prekey", ErrBadSignature)
	}
	return nil
}

// VerifyKEMPreKey checks a KEM prekey's signature by identity.
func VerifyKEMPreKey(identity PublicKey, key KEMPublicKey, sig []byte) error {
	if !identity.Verify(sig, key.Bytes()) {
		return fmt.Errorf("%w: KEM prekey", ErrBadSignature)
	}
	return nil
}

// Stored-record format. Every record is a version byte followed by a body:
//
//	version 1 (2026-11): libsignal's storage.proto layout —
//	  PreKeyRecordStructure       {1: id, 2: public_key, 3: private_key}
//	  SignedPreKeyRecordStructure {1: id, 2: public_key, 3: private_key,
//	                               4: signature, 5: timestamp (fixed64 ms)}
//	  KEM prekeys use the signed layout with KEM keys (type byte included).
//	  IdentityKeyPairStructure    {1: public_key, 2: private_key}
//
// Decoders accept every version ever written; encoders write the newest.
const recordVersion1 byte = 1

// ErrRecord is returned (wrapped) for a stored record that does not decode.
var ErrRecord = errors.New("keys: bad stored record")

func recordBody(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrRecord)
	}
	if b[0] != recordVersion1 {
		return nil, fmt.Errorf("%w: unknown version %d", ErrRecord, b[0])
	}
	return b[1:], nil
}

// maxKEMSecretField bounds a stored KEM secret key: the larger of the two
// secret-key forms plus its type byte.
const maxKEMSecretField = 1 + Kyber1024SecretKeySize

// MarshalBinary encodes the prekey for storage (secret included).
func (p PreKey) MarshalBinary() ([]byte, error) {
	b := []byte{recordVersion1}
	b = pb.AppendUint(b, 1, uint64(p.ID))
	b = pb.AppendBytes(b, 2, p.Key.Public.Bytes())
	b = pb.AppendBytes(b, 3, p.Key.Private.raw[:])
	return b, nil
}

// UnmarshalBinary decodes a stored prekey of any version.
func (p *PreKey) UnmarshalBinary(data []byte) error {
	var s storedSigned
	if err := s.decode(data, PrivateKeySize); err != nil {
		return err
	}
	kp, err := s.curvePair()
	if err != nil {
		return err
	}
	*p = PreKey{ID: PreKeyID(s.id), Key: kp}
	return nil
}

// MarshalBinary encodes the signed prekey for storage (secret included).
func (p SignedPreKey) MarshalBinary() ([]byte, error) {
	return appendSigned(uint32(p.ID), p.Key.Public.Bytes(), p.Key.Private.raw[:], p.Signature[:], p.Timestamp), nil
}

// UnmarshalBinary decodes a stored signed prekey of any version.
func (p *SignedPreKey) UnmarshalBinary(data []byte) error {
	var s storedSigned
	if err := s.decode(data, PrivateKeySize); err != nil {
		return err
	}
	kp, err := s.curvePair()
	if err != nil {
		return err
	}
	*p = SignedPreKey{ID: SignedPreKeyID(s.id), Timestamp: s.time(), Key: kp}
	return s.signature(p.Signature[:])
}

// MarshalBinary encodes the KEM prekey for storage (secret included).
func (p KEMPreKey) MarshalBinary() ([]byte, error) {
	return appendSigned(uint32(p.ID), p.Key.Public.Bytes(), p.Key.Secret.Bytes(), p.Signature[:], p.Timestamp), nil
}

// UnmarshalBinary decodes a stored KEM prekey of any version.
func (p *KEMPreKey) UnmarshalBinary(data []byte) error {
	var s storedSigned
	if err := s.decode(data, maxKEMSecretField); err != nil {
		return err
	}
	kp, err := NewKEMKeyPair(s.private)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRecord, err)
	}
	pub, err := ParseKEMPublicKey(s.public)
	if err != nil || !pub.Equal(kp.Public) {
		return fmt.Errorf("%w: KEM public key does not match its secret key", ErrRecord)
	}
	*p = KEMPreKey{ID: KEMPreKeyID(s.id), Timestamp: s.time(), Key: kp}
	return s.signature(p.Signature[:])
}

func appendSigned(id uint32, pub, priv, sig []byte, ts time.Time) []byte {
	b := []byte{recordVersion1}
	b = pb.AppendUint(b, 1, uint64(id))
	b = pb.AppendBytes(b, 2, pub)
	b = pb.AppendBytes(b, 3, priv)
	b = pb.AppendBytes(b, 4, sig)
	b = pb.AppendFixed64(b, 5, uint64(ts.UnixMilli()))
	return b
}

// storedSigned is the union of the stored prekey layouts.
type storedSigned struct {
	id                   uint32
	public, private, sig []byte
	timestampMillis      uint64
	hasID, hasTimestamp  bool
}

func (s *storedSigned) decode(data []byte, maxPrivate int) error {
	body, err := recordBody(data)
	if err != nil {
		return err
	}
	err = pb.Walk(body, func(f pb.Field) error {
		var err error
		switch f.Num {
		case 1:
			s.id, err = f.Uint32()
			s.hasID = true
		case 2:
			s.public, err = f.BytesMax(1 + KEMPublicKeySize)
		case 3:
			s.private, err = f.BytesMax(maxPrivate)
		case 4:
			s.sig, err = f.BytesMax(SignatureSize)
		case 5:
			s.timestampMillis, err = f.Fixed()
			s.hasTimestamp = true
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRecord, err)
	}
	if !s.hasID {
		return fmt.Errorf("%w: no id", ErrRecord)
	}
	return nil
}

func (s *storedSigned) curvePair() (KeyPair, error) {
	kp, err := NewKeyPair(s.private)
	if err != nil {
		return KeyPair{}, fmt.Errorf("%w: %w", ErrRecord, err)
	}
	pub, err := ParseStoredPublicKey(s.public)
	if err != nil || !pub.Equal(kp.Public) {
		return KeyPair{}, fmt.Errorf("%w: public key does not match its private key", ErrRecord)
	}
	return kp, nil
}

func (s *storedSigned) time() time.Time {
	if s.timestampMillis > 1<<62 {
		return time.Time{}
	}
	return time.UnixMilli(int64(s.timestampMillis)).UTC()
}

func (s *storedSigned) signature(dst []byte) error {
	if !s.hasTimestamp {
		return fmt.Errorf("%w: no timestamp", ErrRecord)
	}
	if len(s.sig) != SignatureSize {
		return fmt.Errorf("%w: signature of %d bytes", ErrRecord, len(s.sig))
	}
	copy(dst, s.sig)
	return nil
}

// MarshalBinary encodes an identity key pair for storage (secret included).
func (kp KeyPair) MarshalBinary() ([]byte, error) {
	b := []byte{recordVersion1}
	b = pb.AppendBytes(b, 1, kp.Public.Bytes())
	b = pb.AppendBytes(b, 2, kp.Private.raw[:])
	return b, nil
}

// UnmarshalBinary decodes a stored key pair of any version.
func (kp *KeyPair) UnmarshalBinary(data []byte) error {
	body, err := recordBody(data)
	if err != nil {
		return err
	}
	var s storedSigned
	err = pb.Walk(body, func(f pb.Field) error {
		var err error
		switch f.Num {
		case 1:
			s.public, err = f.BytesMax(PublicKeySize)
		case 2:
			s.private, err = f.BytesMax(PrivateKeySize)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRecord, err)
	}
	k, err := s.curvePair()
	if err != nil {
		return err
	}
	*kp = k
	return nil
}
