package sealed

import (
	"encoding/hex"
	"fmt"
)

// ServiceIDKind says which namespace a [ServiceID]'s UUID lives in. Its value
// is the kind byte of the fixed-width binary form.
type ServiceIDKind byte

// Service ID kinds, as libsignal numbers them.
const (
	// KindACI is an account identifier: the stable identity of an account.
	KindACI ServiceIDKind = 0
	// KindPNI is a phone number identifier: the identity reachable through a
	// phone number, which can move between accounts.
	KindPNI ServiceIDKind = 1
)

// String returns "ACI" or "PNI" (libsignal's names), or "kind(N)".
func (k ServiceIDKind) String() string {
	switch k {
	case KindACI:
		return "ACI"
	case KindPNI:
		return "PNI"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// Sizes of the binary forms of a service ID. Layouts:
//
//	UUID, 16 bytes:        | uuid (16, RFC 9562 byte order) |
//	binary form (ACI):     | uuid (16) |
//	binary form (PNI):     | 0x01 | uuid (16) |
//	fixed-width form:      | kind (1): 0x00 ACI, 0x01 PNI | uuid (16) |
//
// The binary form leaves ACIs unmarked, so it is not self-delimiting; sealed
// sender v2 uses the fixed-width form, which always has the kind byte.
const (
	UUIDSize                = 16
	ServiceIDFixedWidthSize = 1 + UUIDSize
)

// uuidStringSize is the length of a hyphenated UUID, the only text form
// libsignal accepts ("8-4-4-4-12" hex digits).
const uuidStringSize = 36

// pniPrefix marks a PNI in the string form; ACIs have no prefix. libsignal
// matches it case-sensitively.
const pniPrefix = "PNI:"

// ServiceID is a Signal service ID: a UUID in the ACI or PNI namespace. It is
// comparable with == and usable as a map key; the zero value is the ACI with
// the nil UUID.
type ServiceID struct {
	kind ServiceIDKind
	uuid [UUIDSize]byte
}

// ACI returns the ACI with the given UUID.
func ACI(uuid [UUIDSize]byte) ServiceID { return ServiceID{kind: KindACI, uuid: uuid} }

// PNI returns the PNI with the given UUID.
func PNI(uuid [UUIDSize]byte) ServiceID { return ServiceID{kind: KindPNI, uuid: uuid} }

// Kind returns the namespace of s.
func (s ServiceID) Kind() ServiceIDKind { return s.kind }

// UUID returns the raw UUID of s, without its kind.
func (s ServiceID) UUID() [UUIDSize]byte { return s.uuid }

// ParseServiceID decodes the string form: a hyphenated UUID for an ACI, or
// "PNI:" followed by one for a PNI. Hex digits may be of either case, as in
// libsignal; the prefix must be upper case.
func ParseServiceID(s string) (ServiceID, error) {
	kind := KindACI
	if len(s) >= len(pniPrefix) && s[:len(pniPrefix)] == pniPrefix {
		kind, s = KindPNI, s[len(pniPrefix):]
	}
	u, ok := parseUUID(s)
	if !ok {
		return ServiceID{}, fmt.Errorf("%w: service id %q", ErrMalformed, s)
	}
	return ServiceID{kind: kind, uuid: u}, nil
}

// ParseServiceIDBinary decodes the binary form: 16 bytes for an ACI, or 17
// bytes with kind byte 0x01 for a PNI. A 17-byte ACI is rejected, as in
// libsignal, so that each service ID has one binary form.
func ParseServiceIDBinary(b []byte) (ServiceID, error) {
	switch len(b) {
	case UUIDSize:
		return ACI([UUIDSize]byte(b)), nil
	case ServiceIDFixedWidthSize:
		if ServiceIDKind(b[0]) == KindPNI {
			return PNI([UUIDSize]byte(b[1:])), nil
		}
	}
	return ServiceID{}, fmt.Errorf("%w: %d-byte binary service id", ErrMalformed, len(b))
}

// ParseServiceIDFixedWidth decodes the 17-byte fixed-width form.
func ParseServiceIDFixedWidth(b []byte) (ServiceID, error) {
	if len(b) != ServiceIDFixedWidthSize {
		return ServiceID{}, fmt.Errorf("%w: %d-byte fixed-width service id", ErrMalformed, len(b))
	}
	switch k := ServiceIDKind(b[0]); k {
	case KindACI, KindPNI:
		return ServiceID{kind: k, uuid: [UUIDSize]byte(b[1:])}, nil
	default:
		return ServiceID{}, fmt.Errorf("%w: service id kind 0x%02x", ErrMalformed, b[0])
	}
}

// String returns the string form: the lower-case hyphenated UUID, prefixed
// with "PNI:" for a PNI.
func (s ServiceID) String() string {
	var buf [len(pniPrefix) + uuidStringSize]byte
	b := buf[:0]
	if s.kind == KindPNI {
		b = append(b, pniPrefix...)
	}
	return string(appendUUID(b, s.uuid))
}

// Binary returns the binary form in a new slice: the bare UUID for an ACI, the
// fixed-width form for a PNI.
func (s ServiceID) Binary() []byte {
	if s.kind == KindACI {
		return append([]byte(nil), s.uuid[:]...)
	}
	fw := s.FixedWidth()
	return fw[:]
}

// FixedWidth returns the 17-byte fixed-width form.
func (s ServiceID) FixedWidth() [ServiceIDFixedWidthSize]byte {
	var out [ServiceIDFixedWidthSize]byte
	out[0] = byte(s.kind)
	copy(out[1:], s.uuid[:])
	return out
}

func (s ServiceID) appendFixedWidth(b []byte) []byte {
	b = append(b, byte(s.kind))
	return append(b, s.uuid[:]...)
}

// parseUUID decodes a hyphenated UUID of either case.
func parseUUID(s string) ([UUIDSize]byte, bool) {
	var u [UUIDSize]byte
	if len(s) != uuidStringSize || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	var digits [2 * UUIDSize]byte
	n := 0
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		digits[n] = s[i]
		n++
	}
	if _, err := hex.Decode(u[:], digits[:]); err != nil {
		return u, false
	}
	return u, true
}

func appendUUID(b []byte, u [UUIDSize]byte) []byte {
	var h [2 * UUIDSize]byte
	hex.Encode(h[:], u[:])
	b = append(b, h[0:8]...)
	b = append(b, '-')
	b = append(b, h[8:12]...)
	b = append(b, '-')
	b = append(b, h[12:16]...)
	b = append(b, '-')
	b = append(b, h[16:20]...)
	b = append(b, '-')
	return append(b, h[20:32]...)
}
