package ws

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// Opcode is the type of a frame (RFC 6455 section 5.2).
type Opcode byte

// Opcodes. Data opcodes are below 8, control opcodes 8 and above; the
// others are reserved and refused.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode(" + strconv.Itoa(int(op)) + ")"
}

// IsControl reports whether op is a control opcode (close, ping, pong, or a
// reserved one from 0xB to 0xF).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// known reports whether op is one of the six opcodes RFC 6455 defines.
func (op Opcode) known() bool {
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return true
	}
	return false
}

// StatusCode is the status of a close frame (RFC 6455 section 7.4).
type StatusCode uint16

// Status codes. StatusNoStatus and StatusAbnormal are never sent: the first
// stands for a close frame without a payload, the second for a connection
// that ended without a close frame.
const (
	// StatusNone is what [CloseStatus] returns for an error that is not a
	// [*CloseError]. It is never on the wire: codes below 1000 are unused.
	StatusNone StatusCode = 0

	StatusNormalClosure   StatusCode = 1000
	StatusGoingAway       StatusCode = 1001
	StatusProtocolError   StatusCode = 1002
	StatusUnsupportedData StatusCode = 1003
	StatusNoStatus        StatusCode = 1005
	StatusAbnormal        StatusCode = 1006
	StatusInvalidPayload  StatusCode = 1007
	StatusPolicyViolation StatusCode = 1008
	StatusMessageTooBig   StatusCode = 1009
	StatusMandatoryExt    StatusCode = 1010
	StatusInternalError   StatusCode = 1011
)

func (c StatusCode) String() string {
	var name string
	switch c {
	case StatusNormalClosure:
		name = "normal closure"
	case StatusGoingAway:
		name = "going away"
	case StatusProtocolError:
		name = "protocol error"
	case StatusUnsupportedData:
		name = "unsupported data"
	case StatusNoStatus:
		name = "no status"
	case StatusAbnormal:
		name = "abnormal closure"
	case StatusInvalidPayload:
		name = "invalid payload"
	case StatusPolicyViolation:
		name = "policy violation"
	case StatusMessageTooBig:
		name = "message too big"
	case StatusMandatoryExt:
		name = "mandatory extension"
	case StatusInternalError:
		name = "internal error"
	default:
		return strconv.Itoa(int(c))
	}
	return strconv.Itoa(int(c)) + " (" + name + ")"
}

// valid reports whether c may appear in a close frame: the codes RFC 6455
// defines for endpoints to send (1000–1003, 1007–1011) and the ranges for
// libraries and applications (3000–4999). 1004–1006 and 1015 are reserved
// and never sent; 1012–1014 were registered with IANA after RFC 6455, and
// strict peers (the Autobahn test suite) still refuse them, so neither do
// we send or accept them.
func (c StatusCode) valid() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1011, c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// Frame layout limits (RFC 6455 section 5.2).
const (
	// MaxHeaderSize is the largest frame header: 2 bytes, an 8-byte
	// extended length and a 4-byte masking key.
	MaxHeaderSize = 14
	// MaxControlPayload is the largest payload of a control frame: control
	// frames have only the 7-bit length (section 5.5).
	MaxControlPayload = 125
	// MaxCloseReason is the longest close reason: a close payload is the
	// 2-byte status code and the reason, within MaxControlPayload.
	MaxCloseReason = MaxControlPayload - 2
)

// Frame header bits (byte 0: FIN RSV1 RSV2 RSV3 opcode:4; byte 1: MASK
// length:7).
const (
	finBit  = 0x80
	rsvBits = 0x70
	opBits  = 0x0F
	maskBit = 0x80
	lenBits = 0x7F

	// len16 and len64 in the 7-bit length announce a 16-bit or 64-bit
	// big-endian length in the next bytes.
	len16 = 126
	len64 = 127
)

// FrameSize returns the size of a frame carrying payloadLen bytes: the
// header (with a masking key if masked) and the payload.
func FrameSize(payloadLen int, masked bool) int {
	n := 2 + payloadLen
	switch {
	case payloadLen > 0xFFFF:
		n += 8
	case payloadLen >= len16:
		n += 2
	}
	if masked {
		n += 4
	}
	return n
}

// AppendHeader appends the header of a frame with payloadLen bytes of
// payload to dst and returns the extended slice. The length uses the
// shortest encoding, as RFC 6455 requires. A nil maskKey means an unmasked
// frame (a server's); a client passes a fresh random key for every frame
// and masks the payload with it (see [AppendFrame]).
//
// It panics on a reserved opcode, a negative length, or a fragmented or
// oversized control frame: those are programmer errors.
func AppendHeader(dst []byte, op Opcode, fin bool, payloadLen int, maskKey *[4]byte) []byte {
	if !op.known() || payloadLen < 0 || op.IsControl() && (!fin || payloadLen > MaxControlPayload) {
		panic("ws: AppendHeader: invalid frame: " + op.String() + ", " + strconv.Itoa(payloadLen) + " bytes")
	}
	b0 := byte(op)
	if fin {
		b0 |= finBit
	}
	var b1 byte
	if maskKey != nil {
		b1 = maskBit
	}
	switch {
	case payloadLen > 0xFFFF:
		dst = append(dst, b0, b1|len64)
		dst = binary.BigEndian.AppendUint64(dst, uint64(payloadLen))
	case payloadLen >= len16:
		dst = append(dst, b0, b1|len16)
		dst = binary.BigEndian.AppendUint16(dst, uint16(payloadLen))
	default:
		dst = append(dst, b0, b1|byte(payloadLen))
	}
	if maskKey != nil {
		dst = append(dst, maskKey[:]...)
	}
	return dst
}

// AppendFrame appends one final (FIN) frame carrying payload to dst and
// returns the extended slice; payload is not modified. A nil maskKey means
// an unmasked frame (a server's); a client passes a fresh random key for
// every frame. It panics where [AppendHeader] does.
func AppendFrame(dst []byte, op Opcode, payload []byte, maskKey *[4]byte) []byte {
	dst = AppendHeader(dst, op, true, len(payload), maskKey)
	n := len(dst)
	dst = append(dst, payload...)
	if maskKey != nil {
		mask(*maskKey, 0, dst[n:])
	}
	return dst
}

// AppendClose appends a close frame with code and reason to dst and returns
// the extended slice. StatusNoStatus gives a close frame without payload
// (and no reason). The reason is cut to [MaxCloseReason] bytes at a UTF-8
// character boundary; invalid UTF-8 in it is replaced by U+FFFD first. It
// panics on a code that may not be sent (StatusAbnormal, reserved codes,
// codes outside 1000–4999): a programmer error.
func AppendClose(dst []byte, code StatusCode, reason string, maskKey *[4]byte) []byte {
	if code == StatusNoStatus {
		return AppendFrame(dst, OpClose, nil, maskKey)
	}
	if !code.valid() {
		panic("ws: AppendClose: status " + code.String() + " may not be sent")
	}
	reason = truncateReason(reason)
	dst = AppendHeader(dst, OpClose, true, 2+len(reason), maskKey)
	n := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	dst = append(dst, reason...)
	if maskKey != nil {
		mask(*maskKey, 0, dst[n:])
	}
	return dst
}

// truncateReason makes reason valid UTF-8 of at most MaxCloseReason bytes,
// cut at a character boundary.
func truncateReason(reason string) string {
	if !utf8.ValidString(reason) {
		reason = toValidUTF8(reason)
	}
	if len(reason) <= MaxCloseReason {
		return reason
	}
	i := MaxCloseReason
	for i > 0 && !utf8.RuneStart(reason[i]) {
		i--
	}
	return reason[:i]
}

// toValidUTF8 replaces each invalid byte sequence of s with U+FFFD.
func toValidUTF8(s string) string {
	b := make([]byte, 0, len(s)+8)
	for _, r := range s { // ranging over invalid UTF-8 yields RuneError
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

// ParseClose returns the status code and reason of a close frame's payload,
// as [Parser.Feed] delivers it (and has validated it): StatusNoStatus and ""
// for an empty payload. For a payload Feed did not validate it never
// panics, but the code and reason may be invalid.
func ParseClose(payload []byte) (StatusCode, string) {
	if len(payload) < 2 {
		return StatusNoStatus, ""
	}
	return StatusCode(binary.BigEndian.Uint16(payload)), string(payload[2:])
}

// mask XORs b in place with the masking key, starting at byte pos of the
// key stream (the offset of b[0] in the frame's payload), and returns the
// position after b. Masking and unmasking are the same operation (RFC 6455
// section 5.3).
func mask(key [4]byte, pos int, b []byte) int {
	end := pos + len(b)
	// k holds the key rotated so that its low byte applies to b[0].
	k := bits.RotateLeft32(binary.LittleEndian.Uint32(key[:]), -8*(pos&3))
	k64 := uint64(k) | uint64(k)<<32
	for len(b) >= 32 {
		v0 := binary.LittleEndian.Uint64(b[0:8])
		v1 := binary.LittleEndian.Uint64(b[8:16])
		v2 := binary.LittleEndian.Uint64(b[16:24])
		v3 := binary.LittleEndian.Uint64(b[24:32])
		binary.LittleEndian.PutUint64(b[0:8], v0^k64)
		binary.LittleEndian.PutUint64(b[8:16], v1^k64)
		binary.LittleEndian.PutUint64(b[16:24], v2^k64)
		binary.LittleEndian.PutUint64(b[24:32], v3^k64)
		b = b[32:]
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(k)
		k = bits.RotateLeft32(k, -8)
	}
	return end
}
