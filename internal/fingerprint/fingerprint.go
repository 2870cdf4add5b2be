// Package fingerprint computes Signal safety numbers: the 60-digit number two
// users read to each other and the QR code one of them scans, both derived
// from the two identity keys and stable identifiers of a conversation.
//
// Each side's half is an iterated SHA-512 over its own identity key and
// stable identifier (a phone number, or in Signal today the service ID
// bytes):
//
//	h₀ = SHA-512(0x00 0x00 ‖ key ‖ id ‖ key)     key = 0x05‖u, 33 bytes
//	hᵢ = SHA-512(hᵢ₋₁ ‖ key)                    for i = 1 … iterations−1
//
// The displayable half is the first 30 bytes of h read as six 5-byte
// big-endian integers, each reduced mod 100000 and written as 5 digits. The
// two halves are joined smaller-string first, so both users see the same 60
// digits. The scannable form carries the first 32 bytes of each half; see
// [Fingerprint.Scannable] for its layout.
//
// Safety numbers have no standalone specification; the reference is
// libsignal's implementation ([libsignal fingerprint.rs], [fingerprint.proto])
// and Signal's description of what users compare ([Safety numbers]).
//
// # Security
//
// A safety number authenticates identity keys only if users compare it over
// a channel the attacker does not control. The displayable form has about
// 2×99.7 bits of SHA-512 output behind it (30 digits per side), the scannable
// form 2×256 bits. The iteration count stretches a targeted second-preimage
// search (an attacker grinding identity keys to match one user's 30 digits);
// Signal uses [Iterations]. Scannable fingerprints are compared in constant
// time, although both sides' values are public.
//
// # Compatibility
//
// Output is byte-for-byte libsignal 0.72.1's: the same digits, and the same
// CombinedFingerprints protobuf for every version number. Version 1 is the
// legacy phone-number form and version 2 ([VersionServiceID]) the service-ID
// form Signal uses now; the version changes only the scannable bytes, never
// the digits, and is supplied by the caller together with matching
// identifiers. [ParseScannable] is stricter than libsignal's decoder (it
// accepts only the canonical encoding with 32-byte fingerprints, which is
// all libsignal writes); [CompareScannable] follows libsignal's order of
// checks and results, see there.
//
// [libsignal fingerprint.rs]: https://github.com/signalapp/libsignal/blob/v0.72.1/rust/protocol/src/fingerprint.rs
// [fingerprint.proto]: https://github.com/signalapp/libsignal/blob/v0.72.1/rust/protocol/src/proto/fingerprint.proto
// [Safety numbers]: https://support.signal.org/hc/en-us/articles/360007060632-What-is-a-safety-number-and-why-do-I-see-that-it-changed
package fingerprint

import (
	"bytes"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
)

// Scannable-format versions. The version is written into the scannable form
// only; the digits do not depend on it.
//
//	1  libsignal-protocol-java's original format: the stable identifiers
//	   are E.164 phone numbers.
//	2  the stable identifiers are service IDs (ACI UUID bytes); what Signal
//	   clients use now.
//	   2026: Sotto computes both, and writes 2 to Signal peers.
const (
	VersionPhoneNumber uint32 = 1
	VersionServiceID   uint32 = 2
)

// Iteration limits.
const (
	// Iterations is the count every Signal client uses; both users must use
	// the same count or their numbers differ.
	Iterations = 5200
	// MinIterations is libsignal's lower bound: a count of 0 or 1 is
	// rejected there, so Sotto rejects it too rather than compute a number
	// no Signal client would show.
	MinIterations = 2
	// MaxIterations is libsignal's upper bound. Each iteration hashes 97
	// bytes with SHA-512 (about 0.2 µs on a server core, several times that
	// on a phone), so a million bound the CPU a bad count (from
	// configuration, or any caller passing a number through) can burn to
	// well under a second per side. Every count accepted here is accepted by
	// libsignal.
	MaxIterations = 1_000_000
)

// Sizes of the two forms.
const (
	// DisplaySize is the number of digits in a safety number.
	DisplaySize = 60
	// ScannableSize is the number of bytes of each half in the scannable
	// form: the first 32 bytes of the iterated hash.
	ScannableSize = 32

	halfDigits    = DisplaySize / 2 // 30 digits per side
	chunkSize     = 5               // bytes of hash per 5 digits
	chunkModulus  = 100_000
	digestVersion = 0 // the 2-byte big-endian prefix of h₀
)

// Sentinel errors. Parse failures are reported as *ParseError and a version
// mismatch as *VersionMismatchError.
var (
	ErrIterations = errors.New("fingerprint: iteration count out of range")
	ErrKey        = errors.New("fingerprint: missing identity key")
)

// ParseError is returned for scannable bytes that do not decode.
type ParseError struct {
	Msg string
	Err error // underlying cause, possibly nil
}

func (e *ParseError) Error() string {
	if e.Err != nil {
		return "fingerprint: parse scannable: " + e.Msg + ": " + e.Err.Error()
	}
	return "fingerprint: parse scannable: " + e.Msg
}

func (e *ParseError) Unwrap() error { return e.Err }

// VersionMismatchError is returned by [CompareScannable] when the scanned
// fingerprint has another version than ours: the two clients disagree on
// which identifiers to use, so the result says nothing about the keys, and
// the user should be told to update rather than warned of an attack.
type VersionMismatchError struct {
	Theirs, Ours uint32
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("fingerprint: scanned version %d, ours is %d", e.Theirs, e.Ours)
}

// Fingerprint is a computed safety number. The zero value is not valid; make
// one with [New]. A Fingerprint is immutable and safe for concurrent use.
type Fingerprint struct {
	version       uint32
	local, remote [sha512.Size]byte
}

// New computes the safety number of a conversation between local (us) and
// remote. localID and remoteID are the stable identifiers that go with the
// scannable version: E.164 strings for version 1, service ID bytes for
// version 2. It returns [ErrIterations] if iterations is outside
// [MinIterations, MaxIterations] and [ErrKey] for a zero key.
func New(version uint32, iterations int, localID []byte, localKey keys.PublicKey, remoteID []byte, remoteKey keys.PublicKey) (Fingerprint, error) {
	if iterations < MinIterations || iterations > MaxIterations {
		return Fingerprint{}, fmt.Errorf("%w: %d not in [%d, %d]", ErrIterations, iterations, MinIterations, MaxIterations)
	}
	if localKey.IsZero() || remoteKey.IsZero() {
		return Fingerprint{}, ErrKey
	}
	f := Fingerprint{version: version}
	f.local = iteratedHash(iterations, localID, localKey)
	f.remote = iteratedHash(iterations, remoteID, remoteKey)
	return f, nil
}

// iteratedHash is one side's half: see the package documentation.
func iteratedHash(iterations int, id []byte, key keys.PublicKey) [sha512.Size]byte {
	var kb [keys.PublicKeySize]byte
	key.AppendBytes(kb[:0])
	h := sha512.New()
	h.Write([]byte{digestVersion >> 8, digestVersion & 0xff})
	h.Write(kb[:])
	h.Write(id)
	h.Write(kb[:])
	var out [sha512.Size]byte
	h.Sum(out[:0])
	for i := 1; i < iterations; i++ {
		h.Reset()
		h.Write(out[:])
		h.Write(kb[:])
		h.Sum(out[:0])
	}
	return out
}

// digits renders one half as 30 decimal digits.
func digits(h *[sha512.Size]byte) [halfDigits]byte {
	var d [halfDigits]byte
	for c := range halfDigits / chunkSize {
		var x uint64
		for _, b := range h[c*chunkSize : (c+1)*chunkSize] {
			x = x<<8 | uint64(b)
		}
		x %= chunkModulus
		for j := chunkSize - 1; j >= 0; j-- {
			d[c*chunkSize+j] = '0' + byte(x%10)
			x /= 10
		}
	}
	return d
}

// Version returns the scannable-format version f was made with.
func (f Fingerprint) Version() uint32 { return f.version }

// Display returns the 60-digit safety number. Both users get the same
// string: the two 30-digit halves are ordered by value, not by side.
func (f Fingerprint) Display() string {
	l, r := digits(&f.local), digits(&f.remote)
	var out [DisplaySize]byte
	if bytes.Compare(l[:], r[:]) < 0 {
		copy(out[:], l[:])
		copy(out[halfDigits:], r[:])
	} else {
		copy(out[:], r[:])
		copy(out[halfDigits:], l[:])
	}
	return string(out[:])
}

// Field numbers of the scannable form (fingerprint.proto).
const (
	fieldVersion pb.Number = 1 // CombinedFingerprints.version, uint32
	fieldLocal   pb.Number = 2 // CombinedFingerprints.local_fingerprint
	fieldRemote  pb.Number = 3 // CombinedFingerprints.remote_fingerprint
	fieldContent pb.Number = 1 // LogicalFingerprint.content, bytes
)

// Scannable returns the bytes to put in the QR code, from our side's point
// of view (our half is "local"). Layout, protobuf CombinedFingerprints:
//
//	08 <version varint>
//	12 22  0a 20 <our 32 bytes>     local_fingerprint  { content }
//	1a 22  0a 20 <their 32 bytes>   remote_fingerprint { content }
func (f Fingerprint) Scannable() []byte {
	return Scannable{Version: f.version, Local: f.local[:ScannableSize], Remote: f.remote[:ScannableSize]}.Marshal()
}

// Compare is [CompareScannable] with our side taken from f.
func (f Fingerprint) Compare(theirs []byte) (bool, error) {
	return compare(f.version, f.local[:ScannableSize], f.remote[:ScannableSize], theirs)
}

// Scannable is a decoded scannable fingerprint. Local is the half of the
// user who showed it.
type Scannable struct {
	Version       uint32
	Local, Remote []byte
}

// Marshal encodes s as libsignal does (see [Fingerprint.Scannable]).
func (s Scannable) Marshal() []byte {
	b := make([]byte, 0, 2+2*(4+ScannableSize)+8)
	b = pb.AppendUint(b, fieldVersion, uint64(s.Version))
	b = pb.AppendBytes(b, fieldLocal, pb.AppendBytes(nil, fieldContent, s.Local))
	b = pb.AppendBytes(b, fieldRemote, pb.AppendBytes(nil, fieldContent, s.Remote))
	return b
}

// combined is a CombinedFingerprints as libsignal reads it: every field
// optional. Byte fields alias the input.
type combined struct {
	version             uint32
	hasVersion          bool
	local, remote       []byte
	hasLocal, hasRemote bool
}

func decodeCombined(b []byte) (combined, error) {
	var c combined
	err := pb.Walk(b, func(f pb.Field) error {
		var err error
		switch f.Num {
		case fieldVersion:
			c.version, err = f.Uint32()
			c.hasVersion = true
		case fieldLocal:
			c.local, c.hasLocal, err = decodeLogical(f)
		case fieldRemote:
			c.remote, c.hasRemote, err = decodeLogical(f)
		}
		return err
	})
	if err != nil {
		return combined{}, &ParseError{Msg: "malformed protobuf", Err: err}
	}
	return c, nil
}

// decodeLogical reads a LogicalFingerprint; ok reports whether it had
// content.
func decodeLogical(f pb.Field) (content []byte, ok bool, err error) {
	// Byte fields alias the input, so no length limit is needed to bound
	// memory; libsignal accepts any length and so does this decoder.
	body, err := f.BytesMax(math.MaxInt)
	if err != nil {
		return nil, false, err
	}
	err = pb.Walk(body, func(f pb.Field) error {
		if f.Num == fieldContent {
			content, err = f.BytesMax(math.MaxInt)
			ok = err == nil
			return err
		}
		return nil
	})
	return content, ok, err
}

// ParseScannable decodes scannable bytes. It accepts only what libsignal
// writes: all three fields, 32-byte fingerprints, canonical encoding (so
// Marshal returns the input). The result aliases b. Errors are *ParseError.
func ParseScannable(b []byte) (Scannable, error) {
	c, err := decodeCombined(b)
	if err != nil {
		return Scannable{}, err
	}
	if !c.hasVersion || !c.hasLocal || !c.hasRemote {
		return Scannable{}, &ParseError{Msg: "missing field"}
	}
	if len(c.local) != ScannableSize || len(c.remote) != ScannableSize {
		return Scannable{}, &ParseError{Msg: "fingerprint is not 32 bytes"}
	}
	s := Scannable{Version: c.version, Local: c.local, Remote: c.remote}
	if !bytes.Equal(s.Marshal(), b) {
		return Scannable{}, &ParseError{Msg: "non-canonical encoding"}
	}
	return s, nil
}

// CompareScannable reports whether theirs, scanned from the other user's
// screen, matches ours (our own [Fingerprint.Scannable] bytes): their local
// half must equal our remote half and vice versa. The comparison is
// constant-time.
//
// Errors follow libsignal's ScannableFingerprint::compare, in its order: ours
// must parse ([ParseScannable]); theirs must be well-formed protobuf
// (*ParseError); a different or missing version in theirs (missing counts as
// 0) is a *VersionMismatchError; then theirs must have both halves
// (*ParseError). Halves of another length than 32 bytes do not match
// (false, nil), as in libsignal.
func CompareScannable(ours, theirs []byte) (bool, error) {
	o, err := ParseScannable(ours)
	if err != nil {
		return false, fmt.Errorf("our fingerprint: %w", err)
	}
	return compare(o.Version, o.Local, o.Remote, theirs)
}

func compare(version uint32, local, remote, theirs []byte) (bool, error) {
	t, err := decodeCombined(theirs)
	if err != nil {
		return false, err
	}
	if t.version != version { // a missing version decodes as 0
		return false, &VersionMismatchError{Theirs: t.version, Ours: version}
	}
	if !t.hasLocal || !t.hasRemote {
		return false, &ParseError{Msg: "missing fingerprint"}
	}
	same := subtle.ConstantTimeCompare(t.local, remote) & subtle.ConstantTimeCompare(t.remote, local)
	return same == 1, nil
}
