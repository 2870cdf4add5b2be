// Package senderkey implements Signal's sender keys: the group-messaging
// scheme in which each member encrypts a message once, under a symmetric
// chain of its own, instead of once per recipient.
//
// A sender creates, per distribution (a group, named by a UUID), a chain key
// and an XEdDSA signing key pair, and hands the chain key and public signing
// key to every member in a [DistributionMessage] sent over their pairwise
// (Double Ratchet) sessions. Each group message is then a [Message]:
//
//	chain key CKᵢ (32 bytes), iteration i
//	  message seed  = HMAC-SHA256(CKᵢ, 0x01)
//	  CKᵢ₊₁         = HMAC-SHA256(CKᵢ, 0x02)
//	  iv ‖ key      = HKDF-SHA256(ikm = seed, salt = none, info = "WhisperGroup", 48 bytes)
//	                  iv: 16 bytes, cipher key: 32 bytes
//	  ciphertext    = AES-256-CBC(key, iv, PKCS#7(plaintext))
//	  message       = version ‖ protobuf{distribution, chain id, i, ciphertext}
//	                  ‖ XEdDSA signature over everything before it
//
// A [Record] holds the states of one sender in one distribution, for sending
// ([Record.Create], [Record.Encrypt]) or receiving ([Record.Process],
// [Record.Decrypt]).
//
// Sender keys have no standalone specification. The reference is libsignal's
// implementation ([sender_keys.rs], [group_cipher.rs], the message codecs in
// [protocol.rs] and the layouts in [wire.proto] and [storage.proto]); Signal's
// published specifications ([Signal docs]) cover the pairwise sessions that
// carry distribution messages ([Double Ratchet]) and the signatures
// ([XEdDSA]). The other primitives are specified in [RFC 2104] (HMAC),
// [RFC 5869] (HKDF), [NIST SP 800-38A] (CBC) and [RFC 5652] §6.3 (PKCS#7
// padding).
//
// # Security
//
// Anyone holding a chain key can decrypt every later message of that chain,
// so distribution messages must travel only over authenticated, encrypted
// pairwise sessions; the signing key is what stops members from forging
// messages in each other's names, since all of them know the chain key.
// Hashing the chain forward gives forward secrecy per message once a
// receiver has deleted old keys, but no post-compromise security: a sender
// rotates by creating a new record (a new chain id and signing key), as
// Signal clients do when a member leaves.
//
// [Record.Decrypt] checks the signature before touching any key material,
// refuses a jump of more than [MaxForwardJump] iterations before deriving a
// single key (an attacker-chosen iteration cannot make it spin), keeps at
// most [MaxMessageKeys] skipped keys per chain and [MaxStates] chains per
// record, and changes the record only after the message has authenticated
// and decrypted: a failed decryption leaves the record exactly as it was. A
// message key is used once; a replay is [ErrDuplicate].
//
// # Compatibility
//
// Messages, distribution messages and the stored state are libsignal
// 0.72.1's, byte for byte: everything libsignal writes parses here, and
// everything written here parses in libsignal. The message version is 3;
// see the history at [Version].
//
// The parsers are stricter than libsignal's where libsignal accepts input it
// never writes: the version byte must be exactly 0x33 (libsignal ignores the
// low nibble), the protobuf encoding must be canonical (libsignal's prost
// decoder also accepts unknown fields, repeated fields and other field
// orders), and a signing key must pass [keys.ParsePublicKey] (which rejects
// points libsignal accepts but never generates). Each message therefore has
// exactly one encoding.
//
// Stored records ([Record.MarshalBinary]) are a version byte (1) followed by
// libsignal's SenderKeyRecordStructure, plus one field libsignal ignores
// (the distribution id, which libsignal keeps in the key of its store
// instead); [Record.Libsignal] and [NewRecordFromLibsignal] convert to and
// from libsignal's own bytes.
//
// [sender_keys.rs]: https://github.com/signalapp/libsignal/blob/v0.72.1/rust/protocol/src/sender_keys.rs
// [group_cipher.rs]: https://github.com/signalapp/libsignal/blob/v0.72.1/rust/protocol/src/group_cipher.rs
// [protocol.rs]: https://github.com/signalapp/libsignal/blob/v0.72.1/rust/protocol/src/protocol.rs
// [wire.proto]: https://github.com/signalapp/libsignal/blob/v0.72.1/rust/protocol/src/proto/wire.proto
// [storage.proto]: https://github.com/signalapp/libsignal/blob/v0.72.1/rust/protocol/src/proto/storage.proto
// [Signal docs]: https://signal.org/docs/
// [Double Ratchet]: https://signal.org/docs/specifications/doubleratchet/
// [RFC 2104]: https://www.rfc-editor.org/rfc/rfc2104
// [RFC 5869]: https://www.rfc-editor.org/rfc/rfc5869
// [NIST SP 800-38A]: https://doi.org/10.6028/NIST.SP.800-38A
// [RFC 5652]: https://www.rfc-editor.org/rfc/rfc5652#section-6.3
// [XEdDSA]: https://signal.org/docs/specifications/xeddsa/
package senderkey

import "errors"

// Version is the sender-key message version, written in both nibbles of the
// first byte of every [Message] and [DistributionMessage]:
//
//	bit  7 6 5 4   3 2 1 0
//	    +-------+---------+
//	    |version| current |   0x33 = version 3, current version 3
//	    +-------+---------+
//
// libsignal reads only the high nibble (the message's version) and rejects
// anything but 3; Sotto also requires the low nibble (the writer's current
// version) to be 3, which is what libsignal always writes.
//
// History:
//
//	3  the only version libsignal 0.72.1 reads or writes (its
//	   SENDERKEY_MESSAGE_CURRENT_VERSION); lower versions are legacy and
//	   rejected there and here.
//	   2026: Sotto speaks version 3, as libsignal 0.72.1 does.
const Version byte = 3

// versionByte is the first byte of every message this package reads or
// writes.
const versionByte = Version<<4 | Version

// Limits, each libsignal's (consts.rs), so that a record accepted here is
// accepted there and both sides drop the same keys.
const (
	// MaxStates is the number of chains (distribution messages) a record
	// keeps, newest first (libsignal's MAX_SENDER_KEY_STATES). A sender
	// that re-keys leaves its old chain here for a while so that messages
	// still in flight decrypt; five bounds the record's size.
	MaxStates = 5
	// MaxMessageKeys is the number of skipped message keys kept per chain
	// (libsignal's MAX_MESSAGE_KEYS): enough for messages delayed or
	// reordered in transit, small enough to bound the record (about 72 KiB
	// per chain). The oldest key is dropped first.
	MaxMessageKeys = 2000
	// MaxForwardJump is the furthest ahead of the chain a message may be
	// (libsignal's MAX_FORWARD_JUMPS). The iteration is chosen by the
	// sender, so without a limit one message could demand billions of
	// HMACs; 25,000 is about 52,000 HMACs (about 10 ms on a server core,
	// see BenchmarkDecryptMaxJump) and more messages than a member
	// plausibly misses.
	MaxForwardJump = 25_000
)

// Sizes of fields on the wire.
const (
	// DistributionIDSize is the size of a distribution id (a UUID).
	DistributionIDSize = 16
	// ChainKeySize is the size of a chain key and of a message seed.
	ChainKeySize = 32
	// SignatureSize is the size of the XEdDSA signature ending a [Message].
	SignatureSize = 64
)

// Sentinel errors. Parsers return *ParseError.
var (
	// ErrNoState means the record has no chain the message could be for
	// (libsignal's NoSenderKeyState): the caller needs the sender's
	// distribution message, and Signal asks for a resend.
	ErrNoState = errors.New("senderkey: no sender key state for this message")
	// ErrDuplicate means the message's key was already used: a replay, or
	// a message delivered twice. Callers drop it silently.
	ErrDuplicate = errors.New("senderkey: duplicate message")
	// ErrTooFarAhead means the message is more than MaxForwardJump
	// iterations ahead of the chain.
	ErrTooFarAhead = errors.New("senderkey: message too far ahead of the chain")
	// ErrBadSignature means the message is not signed by the chain's
	// signing key.
	ErrBadSignature = errors.New("senderkey: bad message signature")
	// ErrInvalidMessage means an authenticated message did not decrypt
	// (bad ciphertext length or padding).
	ErrInvalidMessage = errors.New("senderkey: message does not decrypt")
	// ErrInvalidState means the record cannot do what was asked: encrypt
	// with a chain it only receives on, continue a chain past iteration
	// 2³²−1, or take a state for another distribution.
	ErrInvalidState = errors.New("senderkey: unusable sender key state")
	// ErrVersion is wrapped by a *ParseError for a message version other
	// than Version.
	ErrVersion = errors.New("senderkey: unsupported message version")
	// ErrRecord is returned (wrapped) for stored state that does not
	// decode.
	ErrRecord = errors.New("senderkey: bad stored record")
)

// ParseError is returned by the parsers for bytes that are not a valid
// message. Err, if not nil, is the cause ([ErrVersion], or an error from
// package pb or keys).
type ParseError struct {
	Msg string
	Err error
}

func (e *ParseError) Error() string {
	if e.Err != nil {
		return "senderkey: parse " + e.Msg + ": " + e.Err.Error()
	}
	return "senderkey: parse " + e.Msg
}

func (e *ParseError) Unwrap() error { return e.Err }
