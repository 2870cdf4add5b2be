package ratchet

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/symm"
	"github.com/sotto-chat/sotto/internal/x3dh"
)

// Errors of Encrypt and Decrypt. Callers branch on them; on the wire every
// decryption failure is one opaque error.
var (
	// ErrDuplicate is returned for a message whose key was already used (or
	// dropped): a replay, or a duplicate delivery.
	ErrDuplicate = errors.New("ratchet: duplicate message")
	// ErrTooFarAhead is returned for a counter more than MaxForwardJump
	// past its chain.
	ErrTooFarAhead = errors.New("ratchet: message counter too far ahead")
	// ErrInvalidMessage is returned when a message does not authenticate or
	// decrypt under this state.
	ErrInvalidMessage = errors.New("ratchet: message does not decrypt")
	// ErrTooLarge is returned by Encrypt for a plaintext over
	// MaxPlaintextSize.
	ErrTooLarge = errors.New("ratchet: plaintext too large")
	// ErrStaleSession is returned by Encrypt when the session we initiated
	// has gone unanswered for MaxUnacknowledgedSessionAge.
	ErrStaleSession = errors.New("ratchet: unacknowledged session is too old")
)

// skippedKey is the seed of a message key kept for a late message.
type skippedKey struct {
	index uint32
	seed  [32]byte
}

// receiverChain is one of the peer's ratchet keys and its chain.
type receiverChain struct {
	ratchetKey keys.PublicKey
	chain      chainKey
	skipped    []skippedKey // oldest first, at most MaxSkippedKeys
}

// State is the Double Ratchet state of one session with one peer device.
// It is not safe for concurrent use; callers serialize access per peer.
type State struct {
	localIdentity  keys.PublicKey
	remoteIdentity keys.PublicKey
	rootKey        [32]byte

	previousCounter uint32
	senderKey       keys.KeyPair
	sender          chainKey
	receivers       []*receiverChain // oldest first, at most MaxReceiverChains

	pending *pendingPreKey // set while Alice has no answer from Bob

	localRegistrationID  uint32
	remoteRegistrationID uint32
	aliceBaseKey         keys.PublicKey // names the session (Sesame)

	// preKeyDigest, on Bob's side, commits to the unauthenticated fields of
	// the PreKeySignalMessage that created the session (see
	// PreKeyMessage.digest); nil on Alice's side.
	preKeyDigest []byte
}

// Alice holds what the initiator of a session supplies to [NewAlice].
type Alice struct {
	Identity       keys.KeyPair
	RegistrationID uint32
	Bundle         *x3dh.Bundle
	Initiation     *x3dh.Initiation
	Now            time.Time // when the session starts (for MaxUnacknowledgedSessionAge)
}

// NewAlice starts a session as its initiator, after [x3dh.Initiate]. Until
// the peer answers, every message is sent as a PreKeySignalMessage.
func NewAlice(rand io.Reader, a *Alice) (*State, error) {
	sendKey, err := keys.GenerateKeyPair(rand)
	if err != nil {
		return nil, err
	}
	b := a.Bundle
	root, sendChain, err := rootStep(a.Initiation.RootKey, sendKey.Private, b.SignedPreKey)
	if err != nil {
		return nil, fmt.Errorf("ratchet: first step: %w", err)
	}
	secs := a.Now.Unix()
	if secs < 0 {
		secs = 0
	}
	s := &State{
		localIdentity:  a.Identity.Public,
		remoteIdentity: b.IdentityKey,
		rootKey:        root,
		senderKey:      sendKey,
		sender:         sendChain,
		receivers: []*receiverChain{{
			ratchetKey: b.SignedPreKey,
			chain:      chainKey{key: a.Initiation.ChainKey},
		}},
		pending: &pendingPreKey{
			hasPreKey:      b.HasPreKey,
			preKeyID:       b.PreKeyID,
			signedPreKeyID: b.SignedPreKeyID,
			kemPreKeyID:    b.KEMPreKeyID,
			kemCiphertext:  a.Initiation.KEMCiphertext,
			baseKey:        a.Initiation.BaseKey.Public,
			timestampSecs:  uint64(secs),
		},
		localRegistrationID:  a.RegistrationID,
		remoteRegistrationID: b.RegistrationID,
		aliceBaseKey:         a.Initiation.BaseKey.Public,
	}
	return s, nil
}

// Bob holds what the responder supplies to [NewBob].
type Bob struct {
	Identity       keys.KeyPair
	RegistrationID uint32
	SignedPreKey   keys.KeyPair // also Bob's first ratchet key
	Secrets        x3dh.Secrets
	Message        *PreKeyMessage
}

// NewBob starts a session as its responder, after [x3dh.Respond].
func NewBob(b *Bob) *State {
	return &State{
		localIdentity:        b.Identity.Public,
		remoteIdentity:       b.Message.IdentityKey,
		rootKey:              b.Secrets.RootKey,
		senderKey:            b.SignedPreKey,
		sender:               chainKey{key: b.Secrets.ChainKey},
		localRegistrationID:  b.RegistrationID,
		remoteRegistrationID: b.Message.RegistrationID,
		aliceBaseKey:         b.Message.BaseKey,
		preKeyDigest:         b.Message.digest(),
	}
}

// ErrPreKeyMismatch is returned for a PreKeySignalMessage that names an
// existing session (by its base key) but differs from the message that
// created it in a field the MAC does not cover: a tampered repeat.
var ErrPreKeyMismatch = errors.New("ratchet: PreKeySignalMessage differs from the one that started its session")

// MatchPreKeyMessage reports whether m belongs to this session (same base
// key). A message that matches by base key but not in its other PQXDH fields
// is an error: Alice repeats them unchanged in every PreKeySignalMessage.
func (s *State) MatchPreKeyMessage(m *PreKeyMessage) (bool, error) {
	if !s.aliceBaseKey.Equal(m.BaseKey) {
		return false, nil
	}
	if !s.remoteIdentity.Equal(m.IdentityKey) {
		// The inner MAC covers the identity keys of the session, not the
		// wrapper's field: a different one here is a forgery.
		return false, ErrPreKeyMismatch
	}
	if s.preKeyDigest != nil && subtle.ConstantTimeCompare(s.preKeyDigest, m.digest()) != 1 {
		return false, ErrPreKeyMismatch
	}
	return true, nil
}

// RemoteIdentity returns the peer's identity key.
func (s *State) RemoteIdentity() keys.PublicKey { return s.remoteIdentity }

// LocalIdentity returns our identity key.
func (s *State) LocalIdentity() keys.PublicKey { return s.localIdentity }

// RemoteRegistrationID returns the peer device's registration id.
func (s *State) RemoteRegistrationID() uint32 { return s.remoteRegistrationID }

// AliceBaseKey returns the initiator's base key, which names the session.
func (s *State) AliceBaseKey() keys.PublicKey { return s.aliceBaseKey }

// Acknowledged reports whether the peer has answered (for an initiator) —
// that is, whether messages go out as plain SignalMessages.
func (s *State) Acknowledged() bool { return s.pending == nil }

// Usable reports whether the session can send at now: an unanswered session
// we initiated expires after MaxUnacknowledgedSessionAge.
func (s *State) Usable(now time.Time) bool {
	if s.pending == nil {
		return true
	}
	return now.Before(time.Unix(int64(s.pending.timestampSecs), 0).Add(MaxUnacknowledgedSessionAge))
}

// Encrypt encrypts plaintext as the next message of the sending chain and
// returns its type and bytes. It advances the chain only on success.
func (s *State) Encrypt(plaintext []byte, now time.Time) (MessageType, []byte, error) {
	if len(plaintext) > MaxPlaintextSize {
		return 0, nil, fmt.Errorf("%w: plaintext of %d bytes (limit %d)", ErrTooLarge, len(plaintext), MaxPlaintextSize)
	}
	if !s.Usable(now) {
		return 0, nil, ErrStaleSession
	}
	mk := deriveMessageKeys(s.sender.seed())
	ct, err := symm.EncryptCBC(mk.cipher[:], mk.iv[:], plaintext)
	if err != nil {
		return 0, nil, fmt.Errorf("ratchet: encrypt: %w", err)
	}
	msg := newMessage(&mk.mac, s.senderKey.Public, s.sender.index, s.previousCounter, ct, s.localIdentity, s.remoteIdentity)
	typ := TypeWhisper
	if s.pending != nil {
		msg = newPreKeyMessage(s.pending, s.localRegistrationID, s.localIdentity, msg)
		typ = TypePreKey
	}
	s.sender = s.sender.next()
	return typ, msg, nil
}

// plan is every change a decryption makes to a State, computed before the
// message authenticates and applied only after.
type plan struct {
	chain    int            // index in receivers, or -1 for a new chain
	newChain *receiverChain // the chain a DH ratchet step creates
	newRoot  [32]byte
	newKey   keys.KeyPair
	newSend  chainKey

	usedSkipped int          // index of the stored key used, or -1
	skipped     []skippedKey // keys to store for the messages jumped over
	next        chainKey     // the chain's key after this message
	seed        [32]byte     // this message's key seed
}

// Decrypt authenticates and decrypts m. On any error the state is unchanged.
func (s *State) Decrypt(rand io.Reader, m *Message) ([]byte, error) {
	p, err := s.plan(rand, m)
	if err != nil {
		return nil, err
	}
	mk := deriveMessageKeys(p.seed)
	if !m.verifyMAC(&mk.mac, s.remoteIdentity, s.localIdentity) {
		return nil, ErrInvalidMessage
	}
	pt, err := symm.DecryptCBC(mk.cipher[:], mk.iv[:], m.Ciphertext)
	if err != nil {
		return nil, ErrInvalidMessage
	}
	s.apply(p)
	return pt, nil
}

func (s *State) findChain(ratchetKey []byte) int {
	for i, c := range s.receivers {
		u := c.ratchetKey.U()
		if subtle.ConstantTimeCompare(u[:], ratchetKey[1:]) == 1 && ratchetKey[0] == keys.TypeDJB {
			return i
		}
	}
	return -1
}

func (s *State) plan(rand io.Reader, m *Message) (*plan, error) {
	p := &plan{chain: s.findChain(m.RatchetKey), usedSkipped: -1}
	var rc *receiverChain
	if p.chain >= 0 {
		rc = s.receivers[p.chain]
	} else {
		theirs, err := keys.ParsePublicKey(m.RatchetKey)
		if err != nil {
			return nil, fmt.Errorf("%w: ratchet key: %w", ErrInvalidMessage, err)
		}
		if s.senderKey.Private.IsZero() {
			return nil, ErrInvalidMessage
		}
		root, recv, err := rootStep(s.rootKey, s.senderKey.Private, theirs)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
		}
		if p.newKey, err = keys.GenerateKeyPair(rand); err != nil {
			return nil, err
		}
		if p.newRoot, p.newSend, err = rootStep(root, p.newKey.Private, theirs); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
		}
		rc = &receiverChain{ratchetKey: theirs, chain: recv}
		p.newChain = rc
	}

	if m.Counter < rc.chain.index {
		for i, k := range rc.skipped {
			if k.index == m.Counter {
				p.usedSkipped, p.seed, p.next = i, k.seed, rc.chain
				return p, nil
			}
		}
		return nil, ErrDuplicate
	}
	if m.Counter-rc.chain.index > MaxForwardJump {
		return nil, ErrTooFarAhead
	}
	ck := rc.chain
	jump := int(m.Counter - ck.index)
	if jump > 0 {
		p.skipped = make([]skippedKey, 0, min(jump, MaxSkippedKeys))
	}
	for ck.index < m.Counter {
		if m.Counter-ck.index <= MaxSkippedKeys {
			p.skipped = append(p.skipped, skippedKey{index: ck.index, seed: ck.seed()})
		}
		ck = ck.next()
	}
	p.seed = ck.seed()
	p.next = ck.next()
	return p, nil
}

func (s *State) apply(p *plan) {
	var rc *receiverChain
	if p.newChain != nil {
		rc = p.newChain
		s.rootKey = p.newRoot
		s.receivers = append(s.receivers, rc)
		if len(s.receivers) > MaxReceiverChains {
			s.receivers = append(s.receivers[:0], s.receivers[len(s.receivers)-MaxReceiverChains:]...)
		}
		if s.sender.index > 0 {
			s.previousCounter = s.sender.index - 1
		} else {
			s.previousCounter = 0
		}
		s.senderKey = p.newKey
		s.sender = p.newSend
	} else {
		rc = s.receivers[p.chain]
	}
	if p.usedSkipped >= 0 {
		rc.skipped = append(rc.skipped[:p.usedSkipped], rc.skipped[p.usedSkipped+1:]...)
	} else {
		rc.skipped = append(rc.skipped, p.skipped...)
		if over := len(rc.skipped) - MaxSkippedKeys; over > 0 {
			rc.skipped = append(rc.skipped[:0], rc.skipped[over:]...)
		}
		rc.chain = p.next
	}
	s.pending = nil
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := *s
	c.receivers = make([]*receiverChain, len(s.receivers))
	for i, r := range s.receivers {
		rc := *r
		rc.skipped = append([]skippedKey(nil), r.skipped...)
		c.receivers[i] = &rc
	}
	if s.pending != nil {
		p := *s.pending
		c.pending = &p
	}
	return &c
}

// ClearPending forgets the unanswered-prekey-message data, as libsignal does
// when it archives a session: an archived session never sends again.
func (s *State) ClearPending() { s.pending = nil }
