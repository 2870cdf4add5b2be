package senderkey

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sotto-chat/sotto/internal/keys"
)

// state is one sender chain: libsignal's SenderKeyState.
type state struct {
	// version is the stored message_version; 0 (records from before the
	// field existed) means Version.
	version uint32
	chainID ChainID
	chain   chainKey
	signing keys.PublicKey
	// private is the signing key when this is our own sending chain, zero
	// when we only receive on it.
	private keys.PrivateKey
	// skipped holds the seeds of iterations passed over, oldest first, at
	// most MaxMessageKeys.
	skipped []messageKey
}

func (s *state) messageVersion() uint32 {
	if s.version == 0 {
		return uint32(Version)
	}
	return s.version
}

func (s *state) clone() state {
	c := *s
	c.skipped = slices.Clone(s.skipped)
	return c
}

// Record holds the sender-key states of one sender in one distribution: up
// to [MaxStates] chains, newest first. For our own sending record the sender
// is us. The zero value is an empty record, ready for [Record.Create] or
// [Record.Process]; once it has a state it belongs to that state's
// distribution.
//
// Store a record with MarshalBinary after every successful call that changes
// it (Create of a new chain, Process, Encrypt, Decrypt): reusing a stale
// copy would reuse message keys (Encrypt) or accept a replay (Decrypt).
//
// A Record is not safe for concurrent use, and must not be copied by value
// (the copies would share state); use [Record.Clone].
type Record struct {
	id     DistributionID // meaningful when states is not empty
	states []state
}

// DistributionID returns the distribution the record belongs to, and false
// for an empty record.
func (r *Record) DistributionID() (DistributionID, bool) {
	return r.id, len(r.states) > 0
}

// ChainIDs returns the chain ids of the record's states, newest first.
func (r *Record) ChainIDs() []ChainID {
	ids := make([]ChainID, len(r.states))
	for i := range r.states {
		ids[i] = r.states[i].chainID
	}
	return ids
}

// Clone returns a deep copy of r.
func (r *Record) Clone() *Record {
	c := &Record{id: r.id, states: make([]state, len(r.states))}
	for i := range r.states {
		c.states[i] = r.states[i].clone()
	}
	return c
}

// String describes the record without key material.
func (r *Record) String() string {
	if len(r.states) == 0 {
		return "senderkey.Record{empty}"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "senderkey.Record{distribution %v, chains", r.id)
	for i := range r.states {
		fmt.Fprintf(&b, " %d@%d", r.states[i].chainID, r.states[i].chain.iteration)
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v shows no key material either.
func (r *Record) GoString() string { return r.String() }

func (r *Record) checkDistribution(id DistributionID) error {
	if len(r.states) > 0 && id != r.id {
		return fmt.Errorf("%w: record is for distribution %v, not %v", ErrInvalidState, r.id, id)
	}
	return nil
}

// Create makes our sending chain for distribution id, if the record has no
// state yet, and returns the distribution message to send to every member
// (libsignal's create_sender_key_distribution_message). The new chain has a
// random 31-bit chain id, a random chain key and a new signing key pair, all
// read from rand in that order (4 + 32 + 32 bytes).
//
// If the record already has states, Create makes nothing and returns the
// distribution message of the newest one at its current iteration, as
// libsignal does; to rotate keys, start a new Record. Create fails with
// [ErrInvalidState] if the record belongs to another distribution.
func (r *Record) Create(rand io.Reader, id DistributionID) (DistributionMessage, error) {
	if err := r.checkDistribution(id); err != nil {
		return DistributionMessage{}, err
	}
	if len(r.states) == 0 {
		var buf [4 + ChainKeySize]byte
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return DistributionMessage{}, fmt.Errorf("create sender key: %w", err)
		}
		signing, err := keys.GenerateKeyPair(rand)
		if err != nil {
			return DistributionMessage{}, fmt.Errorf("create sender key: %w", err)
		}
		s := state{
			version: uint32(Version),
			// Chain ids are 31 bits, for libsignal-protocol-java's signed ints.
			chainID: ChainID(binary.BigEndian.Uint32(buf[:4]) >> 1),
			signing: signing.Public,
			private: signing.Private,
		}
		copy(s.chain.key[:], buf[4:])
		r.id = id
		r.add(s)
	}
	s := &r.states[0]
	return DistributionMessage{
		DistributionID: r.id,
		ChainID:        s.chainID,
		Iteration:      s.chain.iteration,
		ChainKey:       s.chain.key,
		SigningKey:     s.signing,
	}, nil
}

// Process adds the chain of a distribution message received from the
// record's sender (libsignal's process_sender_key_distribution_message). The
// message must have come over an authenticated pairwise session with that
// sender.
//
// As in libsignal: a chain the record already has (same chain id and
// signing key) is kept as it is, with its progress and skipped keys, and
// becomes the newest; a state with the same chain id but another signing key
// is replaced; the oldest state is dropped beyond [MaxStates]. Process fails
// with [ErrInvalidState] if the record belongs to another distribution or
// the message has no signing key.
func (r *Record) Process(m DistributionMessage) error {
	if err := r.checkDistribution(m.DistributionID); err != nil {
		return err
	}
	if m.SigningKey.IsZero() {
		return fmt.Errorf("%w: distribution message without signing key", ErrInvalidState)
	}
	r.id = m.DistributionID
	r.add(state{
		version: uint32(Version),
		chainID: m.ChainID,
		chain:   chainKey{iteration: m.Iteration, key: m.ChainKey},
		signing: m.SigningKey,
	})
	return nil
}

// add is libsignal's SenderKeyRecord::add_sender_key_state.
func (r *Record) add(s state) {
	for i := range r.states {
		if r.states[i].chainID == s.chainID && r.states[i].signing.Equal(s.signing) {
			s = r.states[i] // keep what we know about this chain
			r.states = slices.Delete(r.states, i, i+1)
			break
		}
	}
	r.states = slices.DeleteFunc(r.states, func(o state) bool { return o.chainID == s.chainID })
	if len(r.states) >= MaxStates {
		r.states = slices.Delete(r.states, MaxStates-1, len(r.states))
	}
	r.states = slices.Insert(r.states, 0, s)
}

// Encrypt encrypts plaintext under the newest chain, which must be our own
// (made by Create), and advances the chain (libsignal's group_encrypt). The
// result is the [Message]'s wire bytes; signing takes 64 bytes from rand.
//
// Errors: [ErrNoState] for an empty record; [ErrInvalidState] if the newest
// chain is not ours or is exhausted. On error the record is unchanged.
func (r *Record) Encrypt(rand io.Reader, plaintext []byte) ([]byte, error) {
	if len(r.states) == 0 {
		return nil, fmt.Errorf("%w: record is empty", ErrNoState)
	}
	s := &r.states[0]
	if s.messageVersion() != uint32(Version) {
		return nil, fmt.Errorf("%w: chain has message version %d", ErrInvalidState, s.messageVersion())
	}
	if s.private.IsZero() {
		return nil, fmt.Errorf("%w: chain %d is not ours to send on", ErrInvalidState, s.chainID)
	}
	next, err := s.chain.next()
	if err != nil {
		return nil, err
	}
	mk := s.chain.seed()
	iv, key := mk.keys()
	ct, err := encryptCBC(&key, &iv, plaintext)
	if err != nil {
		return nil, fmt.Errorf("encrypt sender key message: %w", err)
	}
	m, err := NewMessage(rand, s.private, r.id, s.chainID, s.chain.iteration, ct)
	if err != nil {
		return nil, err
	}
	s.chain = next
	return m.raw, nil
}

// Decrypt authenticates and decrypts a message from the record's sender
// (libsignal's group_decrypt) and returns the plaintext.
//
// Checks, in libsignal's order, each with its error: the message parses
// (*ParseError); it is for this record's distribution and for one of its
// chains ([ErrNoState]); the chain's version matches ([ErrInvalidState]); the
// signature verifies ([ErrBadSignature]); the iteration is new, or old with
// its key still stored ([ErrDuplicate]), and at most [MaxForwardJump] ahead
// ([ErrTooFarAhead]); the ciphertext decrypts ([ErrInvalidMessage]).
//
// The record changes only if all checks pass: the message's key is then
// used up, and keys of iterations skipped over are stored for messages that
// arrive late (the newest [MaxMessageKeys] of them).
func (r *Record) Decrypt(message []byte) ([]byte, error) {
	m, err := ParseMessage(message)
	if err != nil {
		return nil, err
	}
	if len(r.states) == 0 || m.id != r.id {
		return nil, fmt.Errorf("%w: distribution %v", ErrNoState, m.id)
	}
	i := slices.IndexFunc(r.states, func(s state) bool { return s.chainID == m.chainID })
	if i < 0 {
		return nil, fmt.Errorf("%w: distribution %v has no chain %d", ErrNoState, m.id, m.chainID)
	}
	s := &r.states[i]
	if s.messageVersion() != uint32(Version) {
		return nil, fmt.Errorf("%w: chain has message version %d", ErrInvalidState, s.messageVersion())
	}
	if !m.Verify(s.signing) {
		return nil, ErrBadSignature
	}
	mk, step, err := s.messageKey(m.iteration)
	if err != nil {
		return nil, err
	}
	iv, key := mk.keys()
	plaintext, err := decryptCBC(&key, &iv, m.ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	s.apply(step)
	return plaintext, nil
}

// step is the change to a state that using one message key makes. It is
// computed before decryption and applied only after it succeeds.
type step struct {
	// used is the index in skipped of the stored key that was used, or -1
	// if the chain advanced instead.
	used int
	// fresh are the keys of the iterations skipped over (only the newest
	// MaxMessageKeys), and chain the chain key after the message.
	fresh []messageKey
	chain chainKey
}

// messageKey finds the key for iteration (libsignal's get_sender_key)
// without changing s.
func (s *state) messageKey(iteration uint32) (messageKey, step, error) {
	current := s.chain.iteration
	if iteration < current {
		j := slices.IndexFunc(s.skipped, func(k messageKey) bool { return k.iteration == iteration })
		if j < 0 {
			return messageKey{}, step{}, fmt.Errorf("%w: iteration %d, chain at %d", ErrDuplicate, iteration, current)
		}
		return s.skipped[j], step{used: j}, nil
	}
	// Checked before any work: the iteration is the sender's to choose.
	if iteration-current > MaxForwardJump {
		return messageKey{}, step{}, fmt.Errorf("%w: iteration %d, chain at %d, limit %d", ErrTooFarAhead, iteration, current, MaxForwardJump)
	}
	st := step{used: -1}
	if n := iteration - current; n > 0 {
		st.fresh = make([]messageKey, 0, min(n, MaxMessageKeys))
	}
	c := s.chain
	var err error
	for c.iteration < iteration {
		// Keys older than the newest MaxMessageKeys would be dropped at
		// once; skip deriving them.
		if iteration-c.iteration <= MaxMessageKeys {
			st.fresh = append(st.fresh, c.seed())
		}
		if c, err = c.next(); err != nil {
			return messageKey{}, step{}, err // unreachable: c.iteration < iteration
		}
	}
	mk := c.seed()
	if st.chain, err = c.next(); err != nil {
		return messageKey{}, step{}, err
	}
	return mk, st, nil
}

// apply commits a step computed by messageKey.
func (s *state) apply(st step) {
	if st.used >= 0 {
		s.skipped = slices.Delete(s.skipped, st.used, st.used+1)
		return
	}
	s.chain = st.chain
	s.skipped = append(s.skipped, st.fresh...)
	if excess := len(s.skipped) - MaxMessageKeys; excess > 0 {
		n := copy(s.skipped, s.skipped[excess:])
		clear(s.skipped[n:]) // do not leave key material in the spare capacity
		s.skipped = s.skipped[:n]
	}
}
