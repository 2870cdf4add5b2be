package ratchet

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
)

// Version is the message version of every session Sotto makes (PQXDH).
const Version = 4

// versionByte is the first byte of every message: the session's version in
// the high nibble, the newest version the sender speaks in the low nibble.
const versionByte = Version<<4 | Version

// MACSize is the length of the truncated HMAC-SHA-256 ending a SignalMessage.
const MACSize = 8

// MessageType names a ratchet message on the wire, with libsignal's numbers
// (CiphertextMessageType).
type MessageType uint8

// Message types. Sealed sender carries the type next to the bytes.
const (
	TypeWhisper MessageType = 2 // SignalMessage
	TypePreKey  MessageType = 3 // PreKeySignalMessage
)

// ParseError is the single error type of this package's parsers.
type ParseError struct {
	What   string // "SignalMessage" or "PreKeySignalMessage"
	Reason string
	Err    error // underlying cause, if any
}

func (e *ParseError) Error() string {
	s := "ratchet: parse " + e.What + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ParseError) Unwrap() error { return e.Err }

// ErrVersion is wrapped by ParseError for messages of another version.
var ErrVersion = errors.New("unsupported message version")

// Message is a parsed SignalMessage. Its byte slices are owned by the Message.
type Message struct {
	RatchetKey      []byte // 33 bytes; validated only when a new chain starts
	Counter         uint32
	PreviousCounter uint32
	Ciphertext      []byte
	serialized      []byte // the whole message, MAC included
}

// ParseMessage decodes a SignalMessage. It checks the structure only; the
// MAC is checked by [State.Decrypt].
func ParseMessage(b []byte) (*Message, error) {
	perr := func(reason string, err error) error {
		return &ParseError{What: "SignalMessage", Reason: reason, Err: err}
	}
	if len(b) < 1+MACSize {
		return nil, perr("too short", nil)
	}
	if len(b) > MaxMessageSize {
		return nil, perr(fmt.Sprintf("longer than %d bytes", MaxMessageSize), nil)
	}
	if b[0] != versionByte {
		return nil, perr(fmt.Sprintf("version byte 0x%02x", b[0]), ErrVersion)
	}
	m := &Message{serialized: append([]byte(nil), b...)}
	var hasKey, hasCounter, hasCiphertext bool
	err := pb.Walk(m.serialized[1:len(b)-MACSize], func(f pb.Field) error {
		var err error
		switch f.Num {
		case 1:
			m.RatchetKey, err = f.BytesExact(keys.PublicKeySize)
			hasKey = true
		case 2:
			m.Counter, err = f.Uint32()
			hasCounter = true
		case 3:
			m.PreviousCounter, err = f.Uint32()
		case 4:
			m.Ciphertext, err = f.BytesMax(MaxMessageSize)
			hasCiphertext = true
		}
		return err
	})
	if err != nil {
		return nil, perr("bad protobuf", err)
	}
	if !hasKey || !hasCounter || !hasCiphertext {
		return nil, perr("missing field", nil)
	}
	if len(m.Ciphertext) == 0 || len(m.Ciphertext)%16 != 0 {
		return nil, perr("ciphertext is not whole AES blocks", nil)
	}
	return m, nil
}

// Bytes returns the serialized message. The caller must not modify it.
func (m *Message) Bytes() []byte { return m.serialized }

// newMessage builds and MACs a SignalMessage.
func newMessage(macKey *[32]byte, ratchetKey keys.PublicKey, counter, previous uint32, ciphertext []byte, sender, receiver keys.PublicKey) []byte {
	n := 1 + pb.SizeBytes(1, keys.PublicKeySize) + 12 + pb.SizeBytes(4, len(ciphertext)) + MACSize
	b := make([]byte, 0, n)
	b = append(b, versionByte)
	b = pb.AppendBytes(b, 1, ratchetKey.Bytes())
	b = pb.AppendUint(b, 2, uint64(counter))
	b = pb.AppendUint(b, 3, uint64(previous))
	b = pb.AppendBytes(b, 4, ciphertext)
	mac := computeMAC(macKey, sender, receiver, b)
	return append(b, mac[:MACSize]...)
}

func computeMAC(macKey *[32]byte, sender, receiver keys.PublicKey, body []byte) [32]byte {
	h := hmac.New(sha256.New, macKey[:])
	var kb [keys.PublicKeySize]byte
	h.Write(sender.AppendBytes(kb[:0]))
	h.Write(receiver.AppendBytes(kb[:0]))
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// verifyMAC checks the message's MAC in constant time.
func (m *Message) verifyMAC(macKey *[32]byte, sender, receiver keys.PublicKey) bool {
	body := m.serialized[:len(m.serialized)-MACSize]
	want := computeMAC(macKey, sender, receiver, body)
	return subtle.ConstantTimeCompare(want[:MACSize], m.serialized[len(body):]) == 1
}

// PreKeyMessage is a parsed PreKeySignalMessage: Alice's messages until Bob
// answers, carrying what Bob needs to run PQXDH.
//
// Only the inner SignalMessage is authenticated (its MAC covers both
// identity keys); every key and id of the wrapper feeds PQXDH, so changing one
// makes the MAC fail. The exception, inherited from libsignal's wire format,
// is RegistrationID: it is informational (it tells a reinstalled device from
// the old one) and a relay could rewrite it undetected, so nothing may rely on
// it for security.
type PreKeyMessage struct {
	RegistrationID uint32
	HasPreKey      bool
	PreKeyID       keys.PreKeyID
	SignedPreKeyID keys.SignedPreKeyID
	KEMPreKeyID    keys.KEMPreKeyID
	KEMCiphertext  []byte // type byte ‖ 1568 bytes
	BaseKey        keys.PublicKey
	IdentityKey    keys.PublicKey
	Message        *Message
	serialized     []byte
}

// maxPreKeyMessageSize bounds a whole PreKeySignalMessage: the inner message
// plus keys, ids and the KEM ciphertext, with room for protobuf overhead.
const maxPreKeyMessageSize = MaxMessageSize + 2*keys.PublicKeySize + 1 + keys.KEMCiphertextSize + 64

// ParsePreKeyMessage decodes a PreKeySignalMessage and the SignalMessage in
// it. Public keys are fully validated.
func ParsePreKeyMessage(b []byte) (*PreKeyMessage, error) {
	perr := func(reason string, err error) error {
		return &ParseError{What: "PreKeySignalMessage", Reason: reason, Err: err}
	}
	if len(b) < 1 {
		return nil, perr("empty", nil)
	}
	if len(b) > maxPreKeyMessageSize {
		return nil, perr(fmt.Sprintf("longer than %d bytes", maxPreKeyMessageSize), nil)
	}
	if b[0] != versionByte {
		return nil, perr(fmt.Sprintf("version byte 0x%02x", b[0]), ErrVersion)
	}
	p := &PreKeyMessage{serialized: append([]byte(nil), b...)}
	var base, identity, inner []byte
	var hasSigned, hasKEMID, hasRegistration bool
	err := pb.Walk(p.serialized[1:], func(f pb.Field) error {
		var err error
		switch f.Num {
		case 1:
			var id uint32
			id, err = f.Uint32()
			p.PreKeyID, p.HasPreKey = keys.PreKeyID(id), true
		case 2:
			base, err = f.BytesExact(keys.PublicKeySize)
		case 3:
			identity, err = f.BytesExact(keys.PublicKeySize)
		case 4:
			inner, err = f.BytesMax(MaxMessageSize)
		case 5:
			p.RegistrationID, err = f.Uint32()
			hasRegistration = true
		case 6:
			var id uint32
			id, err = f.Uint32()
			p.SignedPreKeyID, hasSigned = keys.SignedPreKeyID(id), true
		case 7:
			var id uint32
			id, err = f.Uint32()
			p.KEMPreKeyID, hasKEMID = keys.KEMPreKeyID(id), true
		case 8:
			p.KEMCiphertext, err = f.BytesExact(1 + keys.KEMCiphertextSize)
		default:
			// Unlike a SignalMessage, this wrapper is not covered by a
			// MAC: refusing unknown fields keeps it from carrying
			// anything unauthenticated beyond what libsignal writes.
			err = fmt.Errorf("unknown field %d", f.Num)
		}
		return err
	})
	if err != nil {
		return nil, perr("bad protobuf", err)
	}
	if base == nil || identity == nil || inner == nil || !hasSigned || !hasRegistration {
		return nil, perr("missing field", nil)
	}
	if !hasKEMID || p.KEMCiphertext == nil {
		return nil, perr("no KEM prekey", nil)
	}
	if p.BaseKey, err = keys.ParsePublicKey(base); err != nil {
		return nil, perr("base key", err)
	}
	if p.IdentityKey, err = keys.ParsePublicKey(identity); err != nil {
		return nil, perr("identity key", err)
	}
	if p.Message, err = ParseMessage(inner); err != nil {
		return nil, perr("inner message", err)
	}
	return p, nil
}

// Bytes returns the serialized message. The caller must not modify it.
func (p *PreKeyMessage) Bytes() []byte { return p.serialized }

// digest commits to the fields of the wrapper that the inner MAC does not
// cover once a session exists: libsignal matches later PreKeySignalMessages
// to their session by base key alone and ignores the rest, so without this a
// relay could rewrite them undetected. Alice sends identical values in every
// PreKeySignalMessage of a session, so honest repeats always match.
func (p *PreKeyMessage) digest() []byte {
	h := sha256.New()
	var b [4 * 5]byte
	if p.HasPreKey {
		b[0] = 1
	}
	binary.BigEndian.PutUint32(b[4:], uint32(p.PreKeyID))
	binary.BigEndian.PutUint32(b[8:], uint32(p.SignedPreKeyID))
	binary.BigEndian.PutUint32(b[12:], uint32(p.KEMPreKeyID))
	binary.BigEndian.PutUint32(b[16:], p.RegistrationID)
	h.Write([]byte("Sotto PreKeySignalMessage fields v1"))
	h.Write(b[:])
	h.Write(p.KEMCiphertext)
	return h.Sum(nil)
}

// pendingPreKey is what Alice repeats in every message until Bob answers.
type pendingPreKey struct {
	hasPreKey      bool
	preKeyID       keys.PreKeyID
	signedPreKeyID keys.SignedPreKeyID
	kemPreKeyID    keys.KEMPreKeyID
	kemCiphertext  []byte
	baseKey        keys.PublicKey
	timestampSecs  uint64
}

func newPreKeyMessage(p *pendingPreKey, registrationID uint32, identity keys.PublicKey, inner []byte) []byte {
	n := 1 + 6*6 + 2*pb.SizeBytes(2, keys.PublicKeySize) + pb.SizeBytes(4, len(inner)) + pb.SizeBytes(8, len(p.kemCiphertext))
	b := make([]byte, 0, n)
	b = append(b, versionByte)
	if p.hasPreKey {
		b = pb.AppendUint(b, 1, uint64(p.preKeyID))
	}
	b = pb.AppendBytes(b, 2, p.baseKey.Bytes())
	b = pb.AppendBytes(b, 3, identity.Bytes())
	b = pb.AppendBytes(b, 4, inner)
	b = pb.AppendUint(b, 5, uint64(registrationID))
	b = pb.AppendUint(b, 6, uint64(p.signedPreKeyID))
	b = pb.AppendUint(b, 7, uint64(p.kemPreKeyID))
	b = pb.AppendBytes(b, 8, p.kemCiphertext)
	return b
}
