package session

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/x3dh"
)

// MaxArchivedStates is how many earlier sessions with a device a record
// keeps, as libsignal does. They let late messages of a replaced session and
// both halves of a simultaneous initiation decrypt; each can hold up to
// ratchet.MaxReceiverChains × ratchet.MaxSkippedKeys keys, so the number is
// bounded.
const MaxArchivedStates = 40

// Errors callers branch on.
var (
	// ErrNoSession is returned for an encryption without an active session,
	// or a SignalMessage when the record has none.
	ErrNoSession = errors.New("session: no session with this device")
	// ErrNoPreKey is returned when a PreKeySignalMessage names a prekey the
	// device does not have (used, expired or never made).
	ErrNoPreKey = errors.New("session: unknown prekey")
)

// Record is every session with one peer device. The zero value is an empty
// record. It is not safe for concurrent use.
type Record struct {
	current  *ratchet.State
	previous []*ratchet.State // newest first, at most MaxArchivedStates
}

// Current returns the active session, or nil.
func (r *Record) Current() *ratchet.State { return r.current }

// Archived returns how many earlier sessions the record keeps.
func (r *Record) Archived() int { return len(r.previous) }

// HasUsableSession reports whether Encrypt can send at now without a new
// bundle.
func (r *Record) HasUsableSession(now time.Time) bool {
	return r.current != nil && r.current.Usable(now)
}

// promote makes s the active session, archiving the current one.
func (r *Record) promote(s *ratchet.State) {
	if r.current != nil {
		old := r.current.Clone()
		old.ClearPending()
		r.previous = append([]*ratchet.State{old}, r.previous...)
		if len(r.previous) > MaxArchivedStates {
			r.previous = r.previous[:MaxArchivedStates]
		}
	}
	r.current = s
}

// Archive moves the active session to the archive (for example after the
// peer's identity key changed), so the next message needs a new bundle.
func (r *Record) Archive() {
	if r.current == nil {
		return
	}
	r.promote(nil)
}

// Local is our side of a session: the identity and the prekeys a
// PreKeySignalMessage may name.
type Local struct {
	Identity       keys.KeyPair
	RegistrationID uint32
	PreKeys        PreKeys
}

// PreKeys looks up our prekeys by id. Each method returns an error wrapping
// ErrNoPreKey when there is no such key.
type PreKeys interface {
	SignedPreKey(id keys.SignedPreKeyID) (keys.SignedPreKey, error)
	PreKey(id keys.PreKeyID) (keys.PreKey, error)
	KEMPreKey(id keys.KEMPreKeyID) (keys.KEMPreKey, error)
}

// Initiate starts a new session from the peer device's bundle (PQXDH as
// Alice) and makes it active; earlier sessions are archived. The bundle's
// signatures are verified; trusting its identity key is the caller's call.
func (r *Record) Initiate(rand io.Reader, identity keys.KeyPair, registrationID uint32, b *x3dh.Bundle, now time.Time) error {
	init, err := x3dh.Initiate(rand, identity, b)
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	s, err := ratchet.NewAlice(rand, &ratchet.Alice{
		Identity: identity, RegistrationID: registrationID, Bundle: b, Initiation: init, Now: now,
	})
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	r.promote(s)
	return nil
}

// Encrypt encrypts plaintext with the active session.
func (r *Record) Encrypt(plaintext []byte, now time.Time) (ratchet.MessageType, []byte, error) {
	if r.current == nil {
		return 0, nil, ErrNoSession
	}
	return r.current.Encrypt(plaintext, now)
}

// Decrypt decrypts a SignalMessage with the active session or, failing that,
// an archived one, which then becomes active. On error the record is
// unchanged.
func (r *Record) Decrypt(rand io.Reader, m *ratchet.Message) ([]byte, error) {
	if r.current == nil && len(r.previous) == 0 {
		return nil, ErrNoSession
	}
	if r.current != nil {
		pt, err := r.current.Decrypt(rand, m)
		if err == nil || errors.Is(err, ratchet.ErrDuplicate) {
			return pt, err
		}
	}
	for i, s := range r.previous {
		pt, err := s.Decrypt(rand, m)
		if errors.Is(err, ratchet.ErrDuplicate) {
			return nil, err
		}
		if err == nil {
			r.previous = append(r.previous[:i:i], r.previous[i+1:]...)
			r.promote(s)
			return pt, nil
		}
	}
	return nil, ratchet.ErrInvalidMessage
}

// PreKeyResult tells the caller what a PreKeySignalMessage used.
type PreKeyResult struct {
	Plaintext      []byte
	RemoteIdentity keys.PublicKey
	// PreKeyID is the one-time EC prekey consumed, if HasPreKey; delete it
	// once the record is stored.
	HasPreKey bool
	PreKeyID  keys.PreKeyID
	// KEMPreKeyID is the KEM prekey used; delete it if it was a one-time
	// key (a last-resort key stays).
	KEMPreKeyID keys.KEMPreKeyID
	// NewSession is false when the message belonged to a session the record
	// already had (a repeat of Alice's first messages).
	NewSession bool
}

// DecryptPreKey handles a PreKeySignalMessage: it finds the session the
// message belongs to or creates it (PQXDH as Bob), then decrypts. On error the
// record is unchanged.
func (r *Record) DecryptPreKey(rand io.Reader, local *Local, m *ratchet.PreKeyMessage) (*PreKeyResult, error) {
	// Work on a shallow copy: promotion only moves pointers, and states
	// change only when a message authenticates.
	tmp := Record{current: r.current, previous: append([]*ratchet.State(nil), r.previous...)}
	res := &PreKeyResult{RemoteIdentity: m.IdentityKey}
	matched, err := tmp.promoteMatching(m)
	if err != nil {
		return nil, err
	}
	if !matched {
		s, err := respond(local, m)
		if err != nil {
			return nil, err
		}
		tmp.promote(s)
		res.NewSession = true
		res.HasPreKey, res.PreKeyID, res.KEMPreKeyID = m.HasPreKey, m.PreKeyID, m.KEMPreKeyID
	}
	pt, err := tmp.current.Decrypt(rand, m.Message)
	if err != nil {
		return nil, err
	}
	*r = tmp
	res.Plaintext = pt
	res.RemoteIdentity = tmp.current.RemoteIdentity()
	return res, nil
}

// promoteMatching makes the session that m belongs to (by Alice's base key)
// active, if the record has one.
func (r *Record) promoteMatching(m *ratchet.PreKeyMessage) (bool, error) {
	if r.current != nil {
		if ok, err := r.current.MatchPreKeyMessage(m); ok || err != nil {
			return ok, err
		}
	}
	for i, s := range r.previous {
		ok, err := s.MatchPreKeyMessage(m)
		if err != nil {
			return false, err
		}
		if ok {
			r.previous = append(r.previous[:i:i], r.previous[i+1:]...)
			r.promote(s)
			return true, nil
		}
	}
	return false, nil
}

func respond(local *Local, m *ratchet.PreKeyMessage) (*ratchet.State, error) {
	spk, err := local.PreKeys.SignedPreKey(m.SignedPreKeyID)
	if err != nil {
		return nil, fmt.Errorf("session: signed prekey %d: %w", m.SignedPreKeyID, err)
	}
	kpk, err := local.PreKeys.KEMPreKey(m.KEMPreKeyID)
	if err != nil {
		return nil, fmt.Errorf("session: KEM prekey %d: %w", m.KEMPreKeyID, err)
	}
	resp := &x3dh.Responder{Identity: local.Identity, SignedPreKey: spk.Key, KEMPreKey: kpk.Key}
	if m.HasPreKey {
		pk, err := local.PreKeys.PreKey(m.PreKeyID)
		if err != nil {
			return nil, fmt.Errorf("session: prekey %d: %w", m.PreKeyID, err)
		}
		resp.OneTimePreKey = &pk.Key
	}
	secrets, err := x3dh.Respond(resp, m.IdentityKey, m.BaseKey, m.KEMCiphertext)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return ratchet.NewBob(&ratchet.Bob{
		Identity: local.Identity, RegistrationID: local.RegistrationID,
		SignedPreKey: spk.Key, Secrets: secrets, Message: m,
	}), nil
}

// Stored-record format: a version byte, then a body.
//
//	version 1 (2026-11): libsignal's RecordStructure layout:
//	  1: current_session (a state body, see package ratchet)
//	  2: previous_sessions (repeated, newest first; each a state body)
const recordFormatV1 byte = 1

// ErrCorruptRecord is returned (wrapped) when a stored record does not decode.
var ErrCorruptRecord = errors.New("session: corrupt stored record")

// MarshalBinary encodes the record for storage. The result holds secrets.
func (r *Record) MarshalBinary() ([]byte, error) {
	b := []byte{recordFormatV1}
	if r.current != nil {
		b = pb.AppendBytes(b, 1, r.current.AppendBody(nil))
	}
	for _, s := range r.previous {
		b = pb.AppendBytes(b, 2, s.AppendBody(nil))
	}
	return b, nil
}

// UnmarshalBinary decodes a stored record of any format version.
func (r *Record) UnmarshalBinary(data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty", ErrCorruptRecord)
	}
	if data[0] != recordFormatV1 {
		return fmt.Errorf("%w: unknown format version %d", ErrCorruptRecord, data[0])
	}
	var nr Record
	err := pb.WalkRepeated(data[1:], pb.Repeated(2), func(f pb.Field) error {
		if f.Num != 1 && f.Num != 2 {
			return nil
		}
		if f.Num == 2 && len(nr.previous) >= MaxArchivedStates {
			return fmt.Errorf("more than %d archived sessions", MaxArchivedStates)
		}
		body, err := f.BytesMax(maxStateSize)
		if err != nil {
			return err
		}
		s, err := ratchet.ParseBody(body)
		if err != nil {
			return err
		}
		if f.Num == 1 {
			nr.current = s
		} else {
			nr.previous = append(nr.previous, s)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptRecord, err)
	}
	*r = nr
	return nil
}

// maxStateSize bounds one stored session: chains full of skipped keys
// (about 40 bytes each stored) plus keys and a pending KEM ciphertext.
const maxStateSize = ratchet.MaxReceiverChains*(ratchet.MaxSkippedKeys*48+128) + 4096
