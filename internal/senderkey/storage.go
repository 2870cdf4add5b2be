package senderkey

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
)

// Stored-record format: a version byte, then a body.
//
//	version 1 (2026-11): libsignal's storage.proto (proto3) layout:
//	  SenderKeyRecordStructure
//	    1  repeated SenderKeyStateStructure, newest first, 1 to MaxStates
//	         1  chain_id          uint32
//	         2  sender_chain_key  {1: iteration uint32, 2: seed, 32 bytes}
//	         3  sender_signing_key {1: public, 33 bytes,
//	                                2: private, 32 bytes, absent when receiving}
//	         4  repeated sender_message_keys {1: iteration uint32, 2: seed, 32 bytes},
//	            oldest first, at most MaxMessageKeys
//	         5  message_version   uint32 (3; 0 in records older than the field)
//	    15 distribution id, 16 bytes: Sotto's extension; libsignal skips it
//	  Zero integers and empty byte strings are omitted, as prost writes
//	  proto3; fields are in ascending order; so the body without field 15 is
//	  exactly what libsignal's SenderKeyRecord::serialize returns.
//
// Decoders accept every version ever written; encoders write the newest.
const recordVersion1 byte = 1

// Field numbers of storage.proto's sender-key messages.
const (
	fieldRecordStates     pb.Number = 1  // SenderKeyRecordStructure.sender_key_states
	fieldRecordID         pb.Number = 15 // Sotto: the distribution id
	fieldStateChainID     pb.Number = 1  // SenderKeyStateStructure.chain_id
	fieldStateChainKey    pb.Number = 2  // .sender_chain_key
	fieldStateSigningKey  pb.Number = 3  // .sender_signing_key
	fieldStateMessageKeys pb.Number = 4  // .sender_message_keys
	fieldStateVersion     pb.Number = 5  // .message_version
	fieldKeyIteration     pb.Number = 1  // SenderChainKey/SenderMessageKey.iteration
	fieldKeySeed          pb.Number = 2  // SenderChainKey/SenderMessageKey.seed
	fieldSigningPublic    pb.Number = 1  // SenderSigningKey.public
	fieldSigningPrivate   pb.Number = 2  // SenderSigningKey.private
)

// MarshalBinary encodes the record for storage (secrets included). An empty
// record has nothing worth storing and is an error ([ErrNoState]).
func (r *Record) MarshalBinary() ([]byte, error) {
	if len(r.states) == 0 {
		return nil, fmt.Errorf("%w: record is empty", ErrNoState)
	}
	b := r.appendBody([]byte{recordVersion1})
	return pb.AppendBytes(b, fieldRecordID, r.id[:]), nil
}

// UnmarshalBinary decodes a record stored by MarshalBinary, of any version.
// It accepts exactly what MarshalBinary writes, so no strict prefix of a
// stored record decodes. On error (wrapping [ErrRecord]) r is unchanged.
func (r *Record) UnmarshalBinary(data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty", ErrRecord)
	}
	if data[0] != recordVersion1 {
		return fmt.Errorf("%w: unknown version %d", ErrRecord, data[0])
	}
	d, err := decodeRecordBody(data[1:], true)
	if err != nil {
		return err
	}
	if !d.hasID || len(d.rec.states) == 0 {
		return fmt.Errorf("%w: no distribution id or no state", ErrRecord)
	}
	b, _ := d.rec.MarshalBinary()
	if !bytes.Equal(b, data) {
		return fmt.Errorf("%w: non-canonical encoding", ErrRecord)
	}
	*r = d.rec
	return nil
}

// Libsignal returns the record as libsignal's SenderKeyRecord::serialize
// would: the stored body without Sotto's distribution-id field. An empty
// record gives an empty slice.
func (r *Record) Libsignal() []byte {
	return r.appendBody([]byte{})
}

// NewRecordFromLibsignal decodes a record serialized by libsignal (which
// keeps the distribution id outside the record). Errors wrap [ErrRecord].
// Only libsignal's canonical encoding is accepted.
func NewRecordFromLibsignal(id DistributionID, b []byte) (*Record, error) {
	d, err := decodeRecordBody(b, false)
	if err != nil {
		return nil, err
	}
	d.rec.id = id
	if !bytes.Equal(d.rec.Libsignal(), b) {
		return nil, fmt.Errorf("%w: non-canonical encoding", ErrRecord)
	}
	return &d.rec, nil
}

func (r *Record) appendBody(b []byte) []byte {
	var scratch []byte
	for i := range r.states {
		scratch = r.states[i].appendTo(scratch[:0])
		b = pb.AppendBytes(b, fieldRecordStates, scratch)
	}
	return b
}

// appendUint appends a proto3 integer field: nothing if v is 0.
func appendUint(b []byte, num pb.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return pb.AppendUint(b, num, v)
}

// appendKey appends a SenderChainKey or SenderMessageKey as field num.
func appendKey(b []byte, num pb.Number, iteration uint32, seed *[ChainKeySize]byte) []byte {
	var kb [6 + 2 + ChainKeySize]byte
	k := appendUint(kb[:0], fieldKeyIteration, uint64(iteration))
	k = pb.AppendBytes(k, fieldKeySeed, seed[:])
	return pb.AppendBytes(b, num, k)
}

// appendTo appends the SenderKeyStateStructure of s (without its tag).
func (s *state) appendTo(b []byte) []byte {
	b = appendUint(b, fieldStateChainID, uint64(s.chainID))
	b = appendKey(b, fieldStateChainKey, s.chain.iteration, &s.chain.key)
	var sb [2 + keys.PublicKeySize + 2 + keys.PrivateKeySize]byte
	sk := pb.AppendBytes(sb[:0], fieldSigningPublic, s.signing.Bytes())
	if !s.private.IsZero() {
		sk = pb.AppendBytes(sk, fieldSigningPrivate, s.private.Bytes())
	}
	b = pb.AppendBytes(b, fieldStateSigningKey, sk)
	for i := range s.skipped {
		b = appendKey(b, fieldStateMessageKeys, s.skipped[i].iteration, &s.skipped[i].seed)
	}
	return appendUint(b, fieldStateVersion, uint64(s.version))
}

type decodedRecord struct {
	rec   Record
	hasID bool
}

var errUnknownField = errors.New("unknown field")

// decodeRecordBody decodes a SenderKeyRecordStructure, with Sotto's
// distribution-id field if withID. It checks every field's type and size and
// the bounds on states and keys; callers check canonical form.
func decodeRecordBody(b []byte, withID bool) (decodedRecord, error) {
	var d decodedRecord
	err := pb.WalkRepeated(b, pb.Repeated(fieldRecordStates), func(f pb.Field) error {
		switch {
		case f.Num == fieldRecordStates:
			if len(d.rec.states) == MaxStates {
				return fmt.Errorf("more than %d states", MaxStates)
			}
			v, err := f.BytesMax(math.MaxInt)
			if err != nil {
				return err
			}
			s, err := decodeState(v)
			if err != nil {
				return fmt.Errorf("state %d: %w", len(d.rec.states), err)
			}
			d.rec.states = append(d.rec.states, s)
			return nil
		case f.Num == fieldRecordID && withID:
			v, err := f.BytesExact(DistributionIDSize)
			copy(d.rec.id[:], v)
			d.hasID = true
			return err
		default:
			return fmt.Errorf("%w %d", errUnknownField, f.Num)
		}
	})
	if err != nil {
		return decodedRecord{}, fmt.Errorf("%w: %w", ErrRecord, err)
	}
	return d, nil
}

func decodeState(b []byte) (state, error) {
	var s state
	var haveChain, haveSigning bool
	var private []byte
	err := pb.WalkRepeated(b, pb.Repeated(fieldStateMessageKeys), func(f pb.Field) error {
		switch f.Num {
		case fieldStateChainID:
			v, err := f.Uint32()
			s.chainID = ChainID(v)
			return err
		case fieldStateChainKey:
			haveChain = true
			k, err := decodeKey(f)
			s.chain = chainKey{iteration: k.iteration, key: k.seed}
			return err
		case fieldStateSigningKey:
			haveSigning = true
			var err error
			private, err = decodeSigning(f, &s)
			return err
		case fieldStateMessageKeys:
			if len(s.skipped) == MaxMessageKeys {
				return fmt.Errorf("more than %d message keys", MaxMessageKeys)
			}
			k, err := decodeKey(f)
			s.skipped = append(s.skipped, k)
			return err
		case fieldStateVersion:
			v, err := f.Uint32()
			if err == nil && v != 0 && v != uint32(Version) {
				err = fmt.Errorf("message version %d", v)
			}
			s.version = v
			return err
		default:
			return fmt.Errorf("%w %d", errUnknownField, f.Num)
		}
	})
	if err != nil {
		return state{}, err
	}
	if !haveChain || !haveSigning {
		return state{}, errors.New("missing chain key or signing key")
	}
	if private != nil {
		k, err := keys.NewPrivateKey(private)
		if err != nil {
			return state{}, err
		}
		if !k.PublicKey().Equal(s.signing) {
			return state{}, errors.New("signing key pair does not match")
		}
		s.private = k
	}
	return s, nil
}

// decodeKey decodes a SenderChainKey or SenderMessageKey.
func decodeKey(f pb.Field) (messageKey, error) {
	var k messageKey
	v, err := f.BytesMax(math.MaxInt)
	if err != nil {
		return k, err
	}
	haveSeed := false
	err = pb.Walk(v, func(f pb.Field) error {
		switch f.Num {
		case fieldKeyIteration:
			var err error
			k.iteration, err = f.Uint32()
			return err
		case fieldKeySeed:
			haveSeed = true
			v, err := f.BytesExact(ChainKeySize)
			copy(k.seed[:], v)
			return err
		default:
			return fmt.Errorf("%w %d", errUnknownField, f.Num)
		}
	})
	if err == nil && !haveSeed {
		err = errors.New("key without seed")
	}
	return k, err
}

// decodeSigning decodes a SenderSigningKey into s.signing and returns the
// private key bytes (nil if absent), aliasing the input.
func decodeSigning(f pb.Field, s *state) (private []byte, err error) {
	v, err := f.BytesMax(math.MaxInt)
	if err != nil {
		return nil, err
	}
	err = pb.Walk(v, func(f pb.Field) error {
		switch f.Num {
		case fieldSigningPublic:
			v, err := f.BytesExact(keys.PublicKeySize)
			if err != nil {
				return err
			}
			s.signing, err = keys.ParseStoredPublicKey(v)
			return err
		case fieldSigningPrivate:
			var err error
			private, err = f.BytesExact(keys.PrivateKeySize)
			return err
		default:
			return fmt.Errorf("%w %d", errUnknownField, f.Num)
		}
	})
	if err == nil && s.signing.IsZero() {
		err = errors.New("no public signing key")
	}
	return private, err
}
