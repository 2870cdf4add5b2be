package keys

import (
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// xeddsaPrefix is hash₁'s domain separator from the XEdDSA spec: 2^256 − 2 in
// little-endian, i.e. 0xFE followed by 31 bytes of 0xFF.
const xeddsaPrefix = "\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"

// Sign makes an XEdDSA signature of the concatenation of parts, with 64
// bytes of nonce randomness Z from rand.
//
// libsignal (and Signal's Java library before it) departs from the XEdDSA
// paper in one way, which Sotto follows for compatibility: instead of
// negating the private scalar so that the Edwards public key has sign bit 0,
// it keeps the scalar and stores the sign bit of the Edwards public key in
// the top bit of the signature's last byte (which is always 0 in s < 2²⁵³).
func (k PrivateKey) Sign(rand io.Reader, parts ...[]byte) ([SignatureSize]byte, error) {
	var sig [SignatureSize]byte
	var z [64]byte
	if _, err := io.ReadFull(rand, z[:]); err != nil {
		return sig, fmt.Errorf("keys: read signature nonce: %w", err)
	}
	a, err := edwards25519.NewScalar().SetBytesWithClamping(k.raw[:])
	if err != nil {
		panic("keys: clamping cannot fail on 32 bytes")
	}
	capA := new(edwards25519.Point).ScalarBaseMult(a).Bytes()
	signBit := capA[31] & 0x80

	h1 := sha512.New()
	h1.Write([]byte(xeddsaPrefix))
	h1.Write(k.raw[:])
	for _, p := range parts {
		h1.Write(p)
	}
	h1.Write(z[:])
	r, _ := edwards25519.NewScalar().SetUniformBytes(h1.Sum(nil))
	capR := new(edwards25519.Point).ScalarBaseMult(r).Bytes()

	h := sha512.New()
	h.Write(capR)
	h.Write(capA)
	for _, p := range parts {
		h.Write(p)
	}
	hs, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	s := edwards25519.NewScalar().MultiplyAdd(hs, a, r)

	copy(sig[:32], capR)
	copy(sig[32:], s.Bytes())
	sig[63] &= 0x7f
	sig[63] |= signBit
	return sig, nil
}

// Verify reports whether sig is a valid XEdDSA signature by k of the
// concatenation of parts. Signatures of any other length are invalid.
func (k PublicKey) Verify(sig []byte, parts ...[]byte) bool {
	if len(sig) != SignatureSize || k.k == nil {
		return false
	}
	var u field.Element
	if _, err := u.SetBytes(k.u[:]); err != nil {
		return false
	}
	capAPoint, capA, err := montgomeryToEdwardsBytes(&u, sig[63]>>7)
	if err != nil {
		return false
	}

	var sBytes [64]byte
	copy(sBytes[:32], sig[32:])
	sBytes[31] &= 0x7f
	if sBytes[31]&0xe0 != 0 { // s ≥ 2²⁵³: the spec's "s ≥ 2^|q|" check
		return false
	}
	s, _ := edwards25519.NewScalar().SetUniformBytes(sBytes[:]) // reduces mod ℓ, as libsignal does

	h := sha512.New()
	h.Write(sig[:32])
	h.Write(capA)
	for _, p := range parts {
		h.Write(p)
	}
	hs, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	minusA := new(edwards25519.Point).Negate(capAPoint)
	check := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(hs, minusA, s)
	return subtle.ConstantTimeCompare(check.Bytes(), sig[:32]) == 1
}
