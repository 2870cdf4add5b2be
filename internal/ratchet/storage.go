package ratchet

import (
	"errors"
	"fmt"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
)

// Stored-state format: a version byte, then a body.
//
//	version 1 (2026-11): libsignal's SessionStructure (storage.proto) layout:
//	  1: session_version (4)      2: local_identity_public   3: remote_identity_public
//	  4: root_key                 5: previous_counter
//	  6: sender_chain  Chain{1: sender_ratchet_key, 2: sender_ratchet_key_private,
//	                         3: ChainKey{1: index, 2: key}}
//	  7: receiver_chains (repeated, oldest first)
//	       Chain{1: sender_ratchet_key, 3: ChainKey,
//	             4: message_keys (repeated, newest first) MessageKey{1: index, 5: seed}}
//	  9: pending_pre_key PendingPreKey{1: pre_key_id?, 3: signed_pre_key_id,
//	                                   2: base_key, 4: timestamp (seconds)}
//	  14: pending_kyber_pre_key PendingKyberPreKey{1: pre_key_id, 2: ciphertext}
//	  10: remote_registration_id  11: local_registration_id  13: alice_base_key
//	  100: Sotto's digest of the PreKeySignalMessage that started the session
//	       (Bob's side; absent elsewhere). libsignal has no such field.
//
// Decoders accept every version ever written; encoders write the newest.
const stateFormatV1 byte = 1

// ErrCorruptState is returned (wrapped) when stored state does not decode.
var ErrCorruptState = errors.New("ratchet: corrupt stored state")

// MarshalBinary encodes the state for storage. The result holds secrets.
func (s *State) MarshalBinary() ([]byte, error) {
	b := []byte{stateFormatV1}
	return s.appendBody(b), nil
}

func (s *State) appendBody(b []byte) []byte {
	b = pb.AppendUint(b, 1, Version)
	b = pb.AppendBytes(b, 2, s.localIdentity.Bytes())
	b = pb.AppendBytes(b, 3, s.remoteIdentity.Bytes())
	b = pb.AppendBytes(b, 4, s.rootKey[:])
	b = pb.AppendUint(b, 5, uint64(s.previousCounter))

	var sc []byte
	sc = pb.AppendBytes(sc, 1, s.senderKey.Public.Bytes())
	sc = pb.AppendBytes(sc, 2, s.senderKey.Private.Bytes())
	sc = pb.AppendBytes(sc, 3, appendChainKey(nil, s.sender))
	b = pb.AppendBytes(b, 6, sc)

	for _, r := range s.receivers {
		var rc []byte
		rc = pb.AppendBytes(rc, 1, r.ratchetKey.Bytes())
		rc = pb.AppendBytes(rc, 3, appendChainKey(nil, r.chain))
		for i := len(r.skipped) - 1; i >= 0; i-- {
			var mk []byte
			mk = pb.AppendUint(mk, 1, uint64(r.skipped[i].index))
			mk = pb.AppendBytes(mk, 5, r.skipped[i].seed[:])
			rc = pb.AppendBytes(rc, 4, mk)
		}
		b = pb.AppendBytes(b, 7, rc)
	}
	if p := s.pending; p != nil {
		var pp []byte
		if p.hasPreKey {
			pp = pb.AppendUint(pp, 1, uint64(p.preKeyID))
		}
		pp = pb.AppendBytes(pp, 2, p.baseKey.Bytes())
		pp = pb.AppendUint(pp, 3, uint64(p.signedPreKeyID))
		pp = pb.AppendUint(pp, 4, p.timestampSecs)
		b = pb.AppendBytes(b, 9, pp)
	}
	b = pb.AppendUint(b, 10, uint64(s.remoteRegistrationID))
	b = pb.AppendUint(b, 11, uint64(s.localRegistrationID))
	b = pb.AppendBytes(b, 13, s.aliceBaseKey.Bytes())
	if p := s.pending; p != nil {
		var pk []byte
		pk = pb.AppendUint(pk, 1, uint64(p.kemPreKeyID))
		pk = pb.AppendBytes(pk, 2, p.kemCiphertext)
		b = pb.AppendBytes(b, 14, pk)
	}
	if s.preKeyDigest != nil {
		b = pb.AppendBytes(b, 100, s.preKeyDigest)
	}
	return b
}

func appendChainKey(b []byte, c chainKey) []byte {
	b = pb.AppendUint(b, 1, uint64(c.index))
	return pb.AppendBytes(b, 2, c.key[:])
}

// UnmarshalBinary decodes a stored state of any format version.
func (s *State) UnmarshalBinary(data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty", ErrCorruptState)
	}
	if data[0] != stateFormatV1 {
		return fmt.Errorf("%w: unknown format version %d", ErrCorruptState, data[0])
	}
	var ns State
	if err := ns.decodeBody(data[1:]); err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptState, err)
	}
	*s = ns
	return nil
}

func parseKey(f pb.Field) (keys.PublicKey, error) {
	b, err := f.BytesExact(keys.PublicKeySize)
	if err != nil {
		return keys.PublicKey{}, err
	}
	return keys.ParseStoredPublicKey(b)
}

func (s *State) decodeBody(body []byte) error {
	var pendingPre, pendingKEM []byte
	var version uint32
	err := pb.WalkRepeated(body, pb.Repeated(7), func(f pb.Field) error {
		var err error
		switch f.Num {
		case 1:
			version, err = f.Uint32()
		case 2:
			s.localIdentity, err = parseKey(f)
		case 3:
			s.remoteIdentity, err = parseKey(f)
		case 4:
			var k []byte
			if k, err = f.BytesExact(32); err == nil {
				copy(s.rootKey[:], k)
			}
		case 5:
			s.previousCounter, err = f.Uint32()
		case 6:
			err = s.decodeSenderChain(f)
		case 7:
			if len(s.receivers) >= MaxReceiverChains {
				return fmt.Errorf("more than %d receiver chains", MaxReceiverChains)
			}
			var rc *receiverChain
			if rc, err = decodeReceiverChain(f); err == nil {
				s.receivers = append(s.receivers, rc)
			}
		case 9:
			pendingPre, err = f.BytesMax(256)
		case 10:
			s.remoteRegistrationID, err = f.Uint32()
		case 11:
			s.localRegistrationID, err = f.Uint32()
		case 13:
			s.aliceBaseKey, err = parseKey(f)
		case 14:
			pendingKEM, err = f.BytesMax(2 * keys.KEMCiphertextSize)
		case 100:
			var d []byte
			if d, err = f.BytesExact(32); err == nil {
				s.preKeyDigest = append([]byte(nil), d...)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if version != Version {
		return fmt.Errorf("session version %d", version)
	}
	if s.localIdentity.IsZero() || s.remoteIdentity.IsZero() || s.senderKey.Public.IsZero() || s.aliceBaseKey.IsZero() {
		return errors.New("missing key")
	}
	if (pendingPre == nil) != (pendingKEM == nil) {
		return errors.New("half a pending prekey message")
	}
	if pendingPre != nil {
		if s.pending, err = decodePending(pendingPre, pendingKEM); err != nil {
			return err
		}
	}
	return nil
}

func decodeChainKey(f pb.Field) (chainKey, error) {
	var c chainKey
	var hasKey bool
	err := pb.Walk(f.Bytes, func(f pb.Field) error {
		var err error
		switch f.Num {
		case 1:
			c.index, err = f.Uint32()
		case 2:
			var k []byte
			if k, err = f.BytesExact(32); err == nil {
				copy(c.key[:], k)
				hasKey = true
			}
		}
		return err
	})
	if err == nil && !hasKey {
		err = errors.New("chain without key")
	}
	return c, err
}

func (s *State) decodeSenderChain(f pb.Field) error {
	var pub keys.PublicKey
	var priv []byte
	err := pb.Walk(f.Bytes, func(f pb.Field) error {
		var err error
		switch f.Num {
		case 1:
			pub, err = parseKey(f)
		case 2:
			priv, err = f.BytesExact(keys.PrivateKeySize)
		case 3:
			s.sender, err = decodeChainKey(f)
		}
		return err
	})
	if err != nil {
		return err
	}
	kp, err := keys.NewKeyPair(priv)
	if err != nil {
		return err
	}
	if !kp.Public.Equal(pub) {
		return errors.New("sender ratchet key pair does not match")
	}
	s.senderKey = kp
	return nil
}

func decodeReceiverChain(f pb.Field) (*receiverChain, error) {
	rc := &receiverChain{}
	err := pb.WalkRepeated(f.Bytes, pb.Repeated(4), func(f pb.Field) error {
		var err error
		switch f.Num {
		case 1:
			rc.ratchetKey, err = parseKey(f)
		case 3:
			rc.chain, err = decodeChainKey(f)
		case 4:
			if len(rc.skipped) >= MaxSkippedKeys {
				return fmt.Errorf("more than %d skipped keys", MaxSkippedKeys)
			}
			var k skippedKey
			var hasSeed bool
			err = pb.Walk(f.Bytes, func(f pb.Field) error {
				var err error
				switch f.Num {
				case 1:
					k.index, err = f.Uint32()
				case 5:
					var seed []byte
					if seed, err = f.BytesExact(32); err == nil {
						copy(k.seed[:], seed)
						hasSeed = true
					}
				}
				return err
			})
			if err == nil && !hasSeed {
				err = errors.New("message key without seed")
			}
			rc.skipped = append(rc.skipped, k)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if rc.ratchetKey.IsZero() {
		return nil, errors.New("receiver chain without ratchet key")
	}
	// Stored newest first; kept oldest first.
	for i, j := 0, len(rc.skipped)-1; i < j; i, j = i+1, j-1 {
		rc.skipped[i], rc.skipped[j] = rc.skipped[j], rc.skipped[i]
	}
	return rc, nil
}

func decodePending(pre, kem []byte) (*pendingPreKey, error) {
	p := &pendingPreKey{}
	err := pb.Walk(pre, func(f pb.Field) error {
		var err error
		var id uint32
		switch f.Num {
		case 1:
			id, err = f.Uint32()
			p.preKeyID, p.hasPreKey = keys.PreKeyID(id), true
		case 2:
			p.baseKey, err = parseKey(f)
		case 3:
			id, err = f.Uint32()
			p.signedPreKeyID = keys.SignedPreKeyID(id)
		case 4:
			p.timestampSecs, err = f.Uint64()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	err = pb.Walk(kem, func(f pb.Field) error {
		var err error
		var id uint32
		switch f.Num {
		case 1:
			id, err = f.Uint32()
			p.kemPreKeyID = keys.KEMPreKeyID(id)
		case 2:
			var ct []byte
			if ct, err = f.BytesExact(1 + keys.KEMCiphertextSize); err == nil {
				p.kemCiphertext = append([]byte(nil), ct...)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if p.baseKey.IsZero() || p.kemCiphertext == nil {
		return nil, errors.New("incomplete pending prekey message")
	}
	return p, nil
}

// AppendBody appends the version-less state body (for embedding in a
// session record, whose own version byte covers it).
func (s *State) AppendBody(b []byte) []byte { return s.appendBody(b) }

// ParseBody decodes a version-less state body written by AppendBody.
func ParseBody(body []byte) (*State, error) {
	var s State
	if err := s.decodeBody(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptState, err)
	}
	return &s, nil
}
