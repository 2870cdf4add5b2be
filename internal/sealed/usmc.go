package sealed

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sotto-chat/sotto/internal/pb"
)

// MessageType is the kind of ciphertext a [USMC] carries, numbered as in
// sealed_sender.proto's UnidentifiedSenderMessage.Message.Type.
//
// Note that libsignal's Rust API (CiphertextMessageType) numbers a prekey
// message 3, not 1; only this proto value goes on the wire.
type MessageType byte

// Message types. The values 3 to 6 are reserved.
const (
	TypePreKey    MessageType = 1 // PreKeySignalMessage (PREKEY_MESSAGE)
	TypeWhisper   MessageType = 2 // SignalMessage (MESSAGE)
	TypeSenderKey MessageType = 7 // SenderKeyMessage (SENDERKEY_MESSAGE)
	TypePlaintext MessageType = 8 // PlaintextContent (PLAINTEXT_CONTENT)
)

func (t MessageType) valid() bool {
	switch t {
	case TypePreKey, TypeWhisper, TypeSenderKey, TypePlaintext:
		return true
	}
	return false
}

// String returns the proto name of t.
func (t MessageType) String() string {
	switch t {
	case TypePreKey:
		return "PREKEY_MESSAGE"
	case TypeWhisper:
		return "MESSAGE"
	case TypeSenderKey:
		return "SENDERKEY_MESSAGE"
	case TypePlaintext:
		return "PLAINTEXT_CONTENT"
	}
	return fmt.Sprintf("MessageType(%d)", byte(t))
}

// ContentHint tells the receiver how to treat a message it cannot decrypt.
// Values other than the named ones are carried through unchanged, as in
// libsignal.
type ContentHint uint32

// Content hints.
const (
	// HintDefault: the sender will not resend; show an error at once. It is
	// never written to the wire (absent means default).
	HintDefault ContentHint = 0
	// HintResendable: the sender will try to resend; delay any error.
	HintResendable ContentHint = 1
	// HintImplicit: something sent implicitly (a receipt, a typing
	// indicator); show no error.
	HintImplicit ContentHint = 2
)

// MaxUSMCSize bounds an encoded [USMC]. It is [MaxMessageSize] less the
// largest sealing overhead (v1: version byte, protobuf framing, 33-byte
// ephemeral key, 43-byte encrypted static key, 10-byte MAC), so that every
// USMC this package accepts can be sealed within MaxMessageSize.
const MaxUSMCSize = MaxMessageSize - maxSealOverhead

// maxSealOverhead bounds what sealing adds to a USMC: v1 adds at most 95
// bytes (version 1, ephemeral key 2+33, encrypted static key 2+43, message
// tag and length 1+3, MAC 10), v2's ReceivedMessage 97 (version 1, C 32,
// AT 16, E.pub 32, AEAD tag 16).
const maxSealOverhead = 128

// Protobuf field numbers of UnidentifiedSenderMessage.Message:
//
//	{ Type type = 1; bytes senderCertificate = 2; bytes content = 3;
//	  ContentHint contentHint = 4; bytes groupId = 5; }
const (
	fieldUSMCType        pb.Number = 1
	fieldUSMCSender      pb.Number = 2
	fieldUSMCContent     pb.Number = 3
	fieldUSMCContentHint pb.Number = 4
	fieldUSMCGroupID     pb.Number = 5
)

// USMC is libsignal's UnidentifiedSenderMessageContent: the plaintext of a
// sealed message. It holds the sender certificate and an inner message that
// is already encrypted (or, for TypePlaintext, deliberately not). It is
// immutable and safe for concurrent use.
type USMC struct {
	raw      []byte
	typ      MessageType
	sender   *SenderCertificate
	contents []byte // inside raw
	hint     ContentHint
	groupID  []byte // inside raw; nil when absent
}

// NewUSMC builds the content of a sealed message. contents is the inner
// ciphertext of type typ; groupID may be nil (an empty one is left out, as in
// libsignal). The inputs are copied.
func NewUSMC(typ MessageType, sender *SenderCertificate, contents []byte, hint ContentHint, groupID []byte) (*USMC, error) {
	if !typ.valid() {
		return nil, fmt.Errorf("%w: message type %d", ErrInvalidArgument, typ)
	}
	if sender == nil {
		return nil, fmt.Errorf("%w: no sender certificate", ErrInvalidArgument)
	}
	// The hint is a proto enum, so an int32: prost writes values of 2³¹ and
	// above as negative numbers, sign-extended to ten bytes.
	hintWire := uint64(int64(int32(hint)))
	size := 1 + protowire.SizeVarint(uint64(typ)) +
		pb.SizeBytes(fieldUSMCSender, len(sender.raw)) +
		pb.SizeBytes(fieldUSMCContent, len(contents))
	if hint != HintDefault {
		size += 1 + protowire.SizeVarint(hintWire)
	}
	if len(groupID) > 0 {
		size += pb.SizeBytes(fieldUSMCGroupID, len(groupID))
	}
	if size > MaxUSMCSize {
		return nil, fmt.Errorf("%w: content is %d bytes encoded, limit %d", ErrInvalidArgument, size, MaxUSMCSize)
	}
	raw := make([]byte, 0, size)
	raw = pb.AppendUint(raw, fieldUSMCType, uint64(typ))
	raw = pb.AppendBytes(raw, fieldUSMCSender, sender.raw)
	raw = pb.AppendBytes(raw, fieldUSMCContent, contents)
	if hint != HintDefault {
		raw = pb.AppendUint(raw, fieldUSMCContentHint, hintWire)
	}
	if len(groupID) > 0 {
		raw = pb.AppendBytes(raw, fieldUSMCGroupID, groupID)
	}
	// Re-parse our own encoding so that every field aliases raw exactly as
	// for a parsed USMC; it cannot fail.
	u, err := parseUSMC(raw, sender)
	if err != nil {
		return nil, fmt.Errorf("sealed: re-parse new USMC: %w", err)
	}
	return u, nil
}

// ParseUSMC decodes the content of a sealed message, including its sender
// certificate (format only; see [SenderCertificate.Validate]). The result
// does not alias b, and [USMC.Bytes] gives b back exactly.
func ParseUSMC(b []byte) (*USMC, error) {
	if len(b) > MaxUSMCSize {
		return nil, fmt.Errorf("%w: message content is %d bytes, limit %d", ErrMalformed, len(b), MaxUSMCSize)
	}
	u, err := parseUSMC(slices.Clone(b), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: message content: %w", ErrMalformed, err)
	}
	return u, nil
}

// parseUSMC decodes raw, which the result keeps. If sender is not nil it is
// used instead of parsing the certificate bytes again (they must be its).
func parseUSMC(raw []byte, sender *SenderCertificate) (*USMC, error) {
	u := &USMC{raw: raw}
	var haveType, haveSender, haveContent bool
	err := pb.Walk(raw, func(f pb.Field) error {
		var err error
		switch f.Num {
		case fieldUSMCType:
			var v uint64
			if v, err = f.Uint64(); err == nil {
				if u.typ = MessageType(v); v > 0xff || !u.typ.valid() {
					err = fmt.Errorf("%w: message type %d", pb.ErrMalformed, v)
				}
			}
			haveType = true
		case fieldUSMCSender:
			var cb []byte
			if cb, err = f.BytesMax(MaxCertificateSize); err == nil {
				if sender != nil {
					u.sender = sender
				} else {
					u.sender, err = parseSenderCertificate(cb)
				}
			}
			haveSender = true
		case fieldUSMCContent:
			u.contents, err = f.BytesMax(MaxUSMCSize)
			haveContent = true
		case fieldUSMCContentHint:
			var v uint64
			if v, err = f.Uint64(); err == nil {
				// An int32 enum: 0 to 2³¹−1 as is, negative values
				// sign-extended to 64 bits. libsignal reads the hint as the
				// low 32 bits; accept only the encodings prost writes.
				if v >= 1<<31 && v < 0xFFFF_FFFF_8000_0000 {
					err = fmt.Errorf("%w: content hint %#x is not an int32", pb.ErrMalformed, v)
				}
				u.hint = ContentHint(uint32(v))
			}
		case fieldUSMCGroupID:
			u.groupID, err = f.BytesMax(MaxUSMCSize)
			if u.groupID == nil {
				u.groupID = raw[:0:0]
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !haveType || !haveSender || !haveContent {
		return nil, fmt.Errorf("%w: type, sender certificate or content missing", pb.ErrMalformed)
	}
	return u, nil
}

// Bytes returns the encoding in a new slice.
func (u *USMC) Bytes() []byte { return slices.Clone(u.raw) }

// Type returns the type of the inner message.
func (u *USMC) Type() MessageType { return u.typ }

// Sender returns the sender certificate (not yet validated).
func (u *USMC) Sender() *SenderCertificate { return u.sender }

// Contents returns the inner message in a new slice.
func (u *USMC) Contents() []byte { return slices.Clone(u.contents) }

// ContentHint returns the content hint ([HintDefault] when absent).
func (u *USMC) ContentHint() ContentHint { return u.hint }

// GroupID returns the group ID in a new slice, or nil if there is none. A
// group ID field that is present but empty gives a non-nil empty slice.
func (u *USMC) GroupID() []byte {
	if u.groupID == nil {
		return nil
	}
	return append([]byte{}, u.groupID...)
}
