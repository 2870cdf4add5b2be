package senderkey

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
	"google.golang.org/protobuf/encoding/protowire"
)

// DistributionID names a distribution: the UUID a sender picks for a group
// (or a story audience). It is not secret.
type DistributionID [DistributionIDSize]byte

// String formats id in the canonical 8-4-4-4-12 UUID form.
func (id DistributionID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], id[10:16])
	return string(b[:])
}

// ParseDistributionID parses the 8-4-4-4-12 hexadecimal UUID form (either
// case), as libsignal's APIs take distribution ids.
func ParseDistributionID(s string) (DistributionID, error) {
	var id DistributionID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("senderkey: distribution id %q is not a UUID", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return DistributionID{}, fmt.Errorf("senderkey: distribution id %q is not a UUID: %w", s, err)
	}
	return id, nil
}

// ChainID names one sender chain within a distribution. libsignal (and
// Sotto) pick it at random below 2³¹, for libsignal-protocol-java's signed
// 32-bit integers; received chain ids may be any uint32.
type ChainID uint32

// ChainKey is a sender chain key. It is secret: anyone holding it can decrypt
// the chain's messages from its iteration on. String and GoString never show
// it.
type ChainKey [ChainKeySize]byte

// String never shows the key.
func (ChainKey) String() string { return "ChainKey(redacted)" }

// GoString never shows the key.
func (ChainKey) GoString() string { return "senderkey.ChainKey{redacted}" }

// Field numbers of wire.proto's SenderKeyMessage and
// SenderKeyDistributionMessage (proto2, every field written).
const (
	fieldDistributionID pb.Number = 1 // bytes, 16
	fieldChainID        pb.Number = 2 // uint32
	fieldIteration      pb.Number = 3 // uint32
	fieldCiphertext     pb.Number = 4 // bytes (SenderKeyMessage)
	fieldChainKey       pb.Number = 4 // bytes, 32 (SenderKeyDistributionMessage)
	fieldSigningKey     pb.Number = 5 // bytes, 33 (SenderKeyDistributionMessage)
)

// DistributionMessage is a SenderKeyDistributionMessage: what a sender
// gives each member (over their pairwise session) so that the member can
// decrypt the sender's group messages from Iteration on. It contains the
// secret chain key.
//
// Wire layout:
//
//	0x33                                  version byte (see Version)
//	0a 10 <distribution id, 16 bytes>     field 1, bytes
//	10 <chain id varint>                  field 2, uint32
//	18 <iteration varint>                 field 3, uint32
//	22 20 <chain key, 32 bytes>           field 4, bytes
//	2a 21 05 <signing key u, 32 bytes>    field 5, bytes
type DistributionMessage struct {
	DistributionID DistributionID
	ChainID        ChainID
	Iteration      uint32
	ChainKey       ChainKey
	// SigningKey verifies the chain's messages. It must not be zero (a
	// zero key encodes as 0x05 and 32 zero bytes, which does not parse).
	SigningKey keys.PublicKey
}

// minDistributionMessageSize is libsignal's first check: a version byte, a
// 32-byte key and a 32-byte chain key at least. Anything shorter fails
// before protobuf decoding.
const minDistributionMessageSize = 1 + 32 + 32

// Marshal returns the wire encoding of m, exactly as libsignal writes it.
func (m DistributionMessage) Marshal() []byte {
	b := make([]byte, 0, 1+2+DistributionIDSize+2*6+2+ChainKeySize+2+keys.PublicKeySize)
	b = append(b, versionByte)
	b = pb.AppendBytes(b, fieldDistributionID, m.DistributionID[:])
	b = pb.AppendUint(b, fieldChainID, uint64(m.ChainID))
	b = pb.AppendUint(b, fieldIteration, uint64(m.Iteration))
	b = pb.AppendBytes(b, fieldChainKey, m.ChainKey[:])
	b = pb.AppendBytes(b, fieldSigningKey, m.SigningKey.Bytes())
	return b
}

// ParseDistributionMessage decodes a distribution message. It accepts only
// the canonical encoding, so Marshal gives back b. The result does not alias
// b. Errors are *ParseError.
func ParseDistributionMessage(b []byte) (DistributionMessage, error) {
	var m DistributionMessage
	if len(b) < minDistributionMessageSize {
		return m, &ParseError{Msg: fmt.Sprintf("distribution message: %d bytes is too short", len(b))}
	}
	if err := checkVersion(b[0]); err != nil {
		return m, &ParseError{Msg: "distribution message", Err: err}
	}
	const (
		haveID = 1 << iota
		haveChain
		haveIteration
		haveKey
		haveSigning
		haveAll = 1<<iota - 1
	)
	var have int
	err := pb.Walk(b[1:], func(f pb.Field) error {
		switch f.Num {
		case fieldDistributionID:
			have |= haveID
			v, err := f.BytesExact(DistributionIDSize)
			copy(m.DistributionID[:], v)
			return err
		case fieldChainID:
			have |= haveChain
			v, err := f.Uint32()
			m.ChainID = ChainID(v)
			return err
		case fieldIteration:
			have |= haveIteration
			v, err := f.Uint32()
			m.Iteration = v
			return err
		case fieldChainKey:
			have |= haveKey
			v, err := f.BytesExact(ChainKeySize)
			copy(m.ChainKey[:], v)
			return err
		case fieldSigningKey:
			have |= haveSigning
			v, err := f.BytesExact(keys.PublicKeySize)
			if err != nil {
				return err
			}
			m.SigningKey, err = keys.ParsePublicKey(v)
			return err
		default:
			return fmt.Errorf("unknown field %d", f.Num)
		}
	})
	if err != nil {
		return DistributionMessage{}, &ParseError{Msg: "distribution message", Err: err}
	}
	if have != haveAll {
		return DistributionMessage{}, &ParseError{Msg: "distribution message: missing field"}
	}
	if !bytes.Equal(m.Marshal(), b) {
		return DistributionMessage{}, &ParseError{Msg: "distribution message: non-canonical encoding"}
	}
	return m, nil
}

func checkVersion(v byte) error {
	if v != versionByte {
		return fmt.Errorf("%w: version byte %#02x, want %#02x", ErrVersion, v, versionByte)
	}
	return nil
}

// Message is a SenderKeyMessage: one group message, encrypted under a
// sender chain and signed by the chain's signing key. A Message keeps its
// exact wire bytes, because the signature covers them. It is immutable and
// safe for concurrent use.
//
// Wire layout:
//
//	0x33                                  version byte (see Version)
//	0a 10 <distribution id, 16 bytes>     field 1, bytes
//	10 <chain id varint>                  field 2, uint32
//	18 <iteration varint>                 field 3, uint32
//	22 <length varint> <ciphertext>       field 4, bytes: AES-256-CBC, PKCS#7
//	<signature, 64 bytes>                 XEdDSA over all of the above
type Message struct {
	raw        []byte // the whole message
	id         DistributionID
	chainID    ChainID
	iteration  uint32
	ciphertext []byte // aliases raw
}

// minMessageSize is libsignal's first check: a version byte and a
// signature.
const minMessageSize = 1 + SignatureSize

// NewMessage builds and signs a message (libsignal's SenderKeyMessage::new).
// The signature takes 64 bytes of randomness from rand. [Record.Encrypt]
// calls it; it is exported for tests that need messages with chosen fields.
func NewMessage(rand io.Reader, signingKey keys.PrivateKey, id DistributionID, chainID ChainID, iteration uint32, ciphertext []byte) (Message, error) {
	if signingKey.IsZero() {
		return Message{}, fmt.Errorf("%w: no signing key", ErrInvalidState)
	}
	b := make([]byte, 0, 1+messageHeaderMax+len(ciphertext)+SignatureSize)
	b = append(b, versionByte)
	b = appendMessageHeader(b, id, chainID, iteration, len(ciphertext))
	b = append(b, ciphertext...)
	sig, err := signingKey.Sign(rand, b)
	if err != nil {
		return Message{}, fmt.Errorf("sign sender key message: %w", err)
	}
	b = append(b, sig[:]...)
	return Message{
		raw:        b,
		id:         id,
		chainID:    chainID,
		iteration:  iteration,
		ciphertext: b[len(b)-SignatureSize-len(ciphertext) : len(b)-SignatureSize],
	}, nil
}

// messageHeaderMax bounds appendMessageHeader's output: the id field, two
// uint32 varint fields of up to 6 bytes, and the ciphertext tag and length.
const messageHeaderMax = 2 + DistributionIDSize + 6 + 6 + 1 + 10

// appendMessageHeader appends the protobuf fields of a SenderKeyMessage up to
// and including the ciphertext's tag and length; the ciphertext follows.
func appendMessageHeader(b []byte, id DistributionID, chainID ChainID, iteration uint32, ctLen int) []byte {
	b = pb.AppendBytes(b, fieldDistributionID, id[:])
	b = pb.AppendUint(b, fieldChainID, uint64(chainID))
	b = pb.AppendUint(b, fieldIteration, uint64(iteration))
	b = protowire.AppendTag(b, fieldCiphertext, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(ctLen))
}

// ParseMessage decodes a message and checks its structure; it does not
// check the signature (see [Message.Verify]). It accepts only the canonical
// encoding. The result does not alias b. Errors are *ParseError.
func ParseMessage(b []byte) (Message, error) {
	if len(b) < minMessageSize {
		return Message{}, &ParseError{Msg: fmt.Sprintf("message: %d bytes is too short", len(b))}
	}
	if err := checkVersion(b[0]); err != nil {
		return Message{}, &ParseError{Msg: "message", Err: err}
	}
	m := Message{raw: bytes.Clone(b)}
	body := m.raw[1 : len(m.raw)-SignatureSize]
	const (
		haveID = 1 << iota
		haveChain
		haveIteration
		haveCiphertext
		haveAll = 1<<iota - 1
	)
	var have int
	err := pb.Walk(body, func(f pb.Field) error {
		switch f.Num {
		case fieldDistributionID:
			have |= haveID
			v, err := f.BytesExact(DistributionIDSize)
			copy(m.id[:], v)
			return err
		case fieldChainID:
			have |= haveChain
			v, err := f.Uint32()
			m.chainID = ChainID(v)
			return err
		case fieldIteration:
			have |= haveIteration
			v, err := f.Uint32()
			m.iteration = v
			return err
		case fieldCiphertext:
			have |= haveCiphertext
			var err error
			m.ciphertext, err = f.BytesMax(math.MaxInt)
			return err
		default:
			return fmt.Errorf("unknown field %d", f.Num)
		}
	})
	if err != nil {
		return Message{}, &ParseError{Msg: "message", Err: err}
	}
	if have != haveAll {
		return Message{}, &ParseError{Msg: "message: missing field"}
	}
	// Canonical: the fields in order, each once, minimal varints, so the
	// body is exactly the header we would write followed by the ciphertext.
	var hb [messageHeaderMax]byte
	h := appendMessageHeader(hb[:0], m.id, m.chainID, m.iteration, len(m.ciphertext))
	if len(body) != len(h)+len(m.ciphertext) || !bytes.Equal(body[:len(h)], h) {
		return Message{}, &ParseError{Msg: "message: non-canonical encoding"}
	}
	return m, nil
}

// Bytes returns the message's wire bytes in a new slice.
func (m Message) Bytes() []byte { return bytes.Clone(m.raw) }

// DistributionID returns the distribution the message claims to belong to.
func (m Message) DistributionID() DistributionID { return m.id }

// ChainID returns the chain the message claims to belong to.
func (m Message) ChainID() ChainID { return m.chainID }

// Iteration returns the message's position in its chain.
func (m Message) Iteration() uint32 { return m.iteration }

// Ciphertext returns a copy of the encrypted payload.
func (m Message) Ciphertext() []byte { return bytes.Clone(m.ciphertext) }

// Verify reports whether the message is signed by key. A zero Message does
// not verify.
func (m Message) Verify(key keys.PublicKey) bool {
	if len(m.raw) < minMessageSize || key.IsZero() {
		return false
	}
	n := len(m.raw) - SignatureSize
	return key.Verify(m.raw[n:], m.raw[:n])
}
