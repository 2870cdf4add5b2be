package wire

import (
	"time"

	"github.com/sotto-chat/sotto/internal/access"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pow"
	"github.com/sotto-chat/sotto/internal/sealed"
)

// Version is the protocol version of every frame this package writes and
// the only one it reads. History:
//
//	1 (2026-11-25): first version.
const Version = 1

// Exact sizes of fixed-size byte fields. A field of one of these sizes is
// either absent or exactly this long; which fields may be absent is
// documented on each field in wire.proto.
const (
	// AccountIDSize is an account id: 16 random bytes (a UUID, the
	// account's ACI in sealed sender's terms).
	AccountIDSize = 16
	// PublicKeySize is an EC public key (identity, auth, signed and
	// one-time prekeys, the trust root): 0x05 ‖ 32 bytes.
	PublicKeySize = keys.PublicKeySize
	// KEMPublicKeySize is a KEM public key: a type byte (Kyber-1024 or
	// ML-KEM-1024) ‖ 1,568 bytes.
	KEMPublicKeySize = 1 + keys.KEMPublicKeySize
	// SignatureSize is an XEdDSA signature.
	SignatureSize = keys.SignatureSize
	// NonceSize is an authentication challenge: 256 random bits, never
	// repeated.
	NonceSize = 32
	// SeedSize is a registration puzzle's seed (package pow).
	SeedSize = pow.SeedSize
	// AccessKeySize is an unidentified access key, and the XOR of several
	// (package access).
	AccessKeySize = access.KeySize
	// UsernameHashSize is a username hash: 256 bits, so that hashes of
	// distinct usernames do not collide.
	UsernameHashSize = 32
	// ProvisioningAddressSize is a provisioning address: 128 random bits,
	// unguessable for the minutes it lives.
	ProvisioningAddressSize = 16
	// LinkTokenSize is a link token: 256 random bits, like a nonce.
	LinkTokenSize = 32
)

// Limits. Each bounds what one frame can make its reader hold or do.
const (
	// MaxFrameSize bounds a frame, checked before anything is parsed.
	// A reader holds a whole frame in memory, so this is what every
	// connection can pin; anything big (attachments) travels over HTTP.
	// The largest frames honest clients and servers make:
	//
	//   - SendMulti to a 1,024-member group whose members have 16 devices
	//     each (the store's device limit), of a 1 KiB message: a v2
	//     SentMessage of 1,024 × (17-byte service id + 16 × 3 device bytes
	//     + 48 bytes of key material) + 32 + 1 KiB + 16 ≈ 114 KiB; to
	//     sealed sender's limit of 5,000 recipients ≈ 553 KiB.
	//   - A Push with one envelope of MaxContentSize (512 KiB).
	//   - Bundles of 127 devices: 127 × ≈1.8 KiB ≈ 221 KiB (KEM keys).
	//   - UploadPreKeys of 100 one-time KEM prekeys: 100 × ≈1.6 KiB ≈ 160 KiB.
	//   - A Send to a recipient with 16 devices: up to 64 KiB per device.
	//
	// 1 MiB holds all of these with room, and bounds the memory a flood of
	// connections can pin to 1 MiB each.
	MaxFrameSize = 1 << 20

	// MaxContentSize bounds an envelope's content (a sealed message): the
	// largest sealed message a recipient opens (sealed.MaxMessageSize,
	// twice what Signal's server accepts), so nothing a recipient would
	// open is refused here, and every v2 ReceivedMessage the server derives
	// from a SendMulti (which package sealed bounds the same way) can be
	// pushed.
	MaxContentSize = sealed.MaxMessageSize

	// MaxDeviceID is the largest device id: sealed sender v2 addresses a
	// device in one byte and libsignal requires 1 to 127, so a server never
	// assigns a larger one. It also bounds every per-device list.
	MaxDeviceID = int(sealed.MaxDeviceID)

	// MaxRegistrationID is the largest registration id: sealed sender v2
	// carries 14 bits of it, and libsignal generates ids below 16,384.
	MaxRegistrationID = int(sealed.MaxRegistrationID)

	// MaxEnvelopesPerSend bounds a Send's envelopes: one per device of the
	// recipient, and an account has at most MaxDeviceID devices.
	MaxEnvelopesPerSend = MaxDeviceID

	// MaxMultiPayloadSize bounds a SendMulti's payload: what fits in a frame
	// with 1 KiB to spare for the frame around it. Package sealed also
	// bounds each recipient's part by MaxContentSize.
	MaxMultiPayloadSize = MaxFrameSize - 1<<10

	// MaxMismatchedRecipients bounds the per-recipient lists of a status
	// (mismatches, unknown accounts): one entry per recipient of a
	// SendMulti, which package sealed bounds by its MaxSentRecipients.
	MaxMismatchedRecipients = sealed.MaxSentRecipients

	// MaxEnvelopesPerPush bounds one push of envelopes. A server drains a
	// mailbox (up to 100,000 envelopes) in pushes of up to this many, fewer
	// when they would not fit in a frame: 256 typical envelopes of 1–2 KiB
	// fill about half a frame.
	MaxEnvelopesPerPush = 256

	// MaxAckIDs bounds one Ack: four full pushes, so a client may batch its
	// acks without ever needing more than one Ack per push.
	MaxAckIDs = 4 * MaxEnvelopesPerPush
	// AckDelay is how long a client holds the ids it has to ack, to send
	// them in one Ack with the ids of the pushes that follow: a device
	// receiving a message every few milliseconds then sends a fraction of
	// the frames (each costs a system call at both ends), and an envelope
	// stays in its mailbox a few milliseconds longer. A connection that
	// ends before the ack goes out gets the envelopes again (delivery is at
	// least once; clients drop duplicates).
	AckDelay = 20 * time.Millisecond

	// MaxOneTimePreKeysPerUpload bounds the one-time prekeys of each kind in
	// an UploadPreKeys: clients upload 100 at a time (as Signal's do) and
	// top up when told they run low. 100 KEM prekeys are ≈160 KiB.
	MaxOneTimePreKeysPerUpload = 100

	// MaxSolutionSize bounds a registration puzzle's solution; a counter
	// needs 8 bytes (package pow).
	MaxSolutionSize = pow.MaxSolutionSize

	// MaxRegistrationDifficulty is the hardest puzzle a client accepts: 2³²
	// hashes are minutes on a phone, and the server's configuration has the
	// same cap. It keeps a hostile or misconfigured server from making
	// clients search for days.
	MaxRegistrationDifficulty = 32

	// MaxCertificateSize bounds a sender certificate (package sealed's
	// limit; real ones are about 350 bytes).
	MaxCertificateSize = sealed.MaxCertificateSize

	// MaxProvisioningBodySize bounds a provisioning message. It carries the
	// account's identity key pair, profile key, account id, link token and
	// settings, about 1 KiB; 64 KiB leaves room for state that grows with
	// the account (a list of contacts' keys), while the server holds it in
	// memory only.
	MaxProvisioningBodySize = 64 << 10
	// MaxProfileSize bounds an encrypted profile: a name and a small
	// avatar (a thumbnail of a few tens of KiB; larger images belong in
	// attachments), kept per account in the database.
	MaxProfileSize = 64 << 10

	// MaxStatusMessageSize bounds a status message, in bytes of UTF-8: a
	// diagnostic line, not a document.
	MaxStatusMessageSize = 256

	// MaxRetryAfter bounds a status's retry_after_ms: no limit or outage
	// is worth making a client wait longer than a day without asking
	// again.
	MaxRetryAfter = 24 * time.Hour

	// maxDepth is how deeply messages nest in a frame: Frame → Response →
	// Bundles → Bundle → SignedPreKey is the deepest path of the schema.
	maxDepth = 5
)
