// Package sealed implements Signal's sealed sender: the envelope that hides
// who sent a message from the server that delivers it, byte-compatible with
// libsignal 0.72.1.
//
// The sender proves its identity to the recipient (not to the server) with a
// [SenderCertificate], which a server key signs and a [ServerCertificate]
// from a trust root vouches for. The certificate and an already-encrypted
// inner message (a Double Ratchet, sender-key or plaintext message; this
// package never encrypts those) form the [USMC], which is sealed:
//
//   - v1 ([SealV1]) to one recipient: an ephemeral X25519 agreement encrypts
//     the sender's identity key, and an agreement between the two identity
//     keys encrypts the USMC (AES-256-CTR with truncated HMAC-SHA256).
//   - v2 ([SealV2]) to many: the USMC is encrypted once with AES-256-GCM-SIV
//     under a key derived from a random M, and each recipient gets M masked
//     by an agreement with an ephemeral key derived from M, plus a tag from
//     the sender's identity agreement. The server splits the upload
//     ([ParseSentMessage], [SentMessage.ForRecipient]) into one
//     ReceivedMessage per recipient without learning anything else.
//
// [Open] decrypts either version and checks that the certificate names the
// key that sealed the message; [Unseal] also validates the certificate chain
// and expiry. Every function takes and returns exact wire bytes; randomness
// and time are parameters. All types are immutable once built and safe for
// concurrent use.
//
// The wire layouts are documented at [VersionV1], [VersionV2UUID] and the
// certificate field constants.
//
// References:
//   - [Sealed sender blog post] (Signal, 2018-10-29): the design of v1.
//   - [libsignal sealed_sender.rs] and [sealed_sender.proto] at v0.72.1: the
//     formats, labels and checks this package follows.
//   - [Randomness Reuse] (Barbosa): the multi-recipient KEM behind v2.
//   - [RFC 8452]: AES-GCM-SIV.
//
// # Security
//
// A sealed message authenticates its sender to the recipient only: v1 by the
// MAC under the sender's identity agreement, v2 by the per-recipient tag AT.
// Open compares the certificate's identity key with the sealing key in
// constant time, after decrypting, exactly as libsignal does; a certificate
// naming someone else's key fails as [ErrBadMAC]. Open does not check the
// certificate chain or expiry; [Unseal] does, and callers of Open must call
// [SenderCertificate.Validate] themselves before trusting the sender.
//
// All MAC, tag and key comparisons are constant-time. Every authentication
// failure, at any layer, is one sentinel, [ErrBadMAC], and the error text
// (for debug logs only) names the layer; on the wire, a failure is one
// opaque "could not decrypt".
//
// Keys from the wire go through keys.ParsePublicKey or keys.PublicKeyFromU,
// which reject non-canonical, off-curve and small-order points. Parsers
// never panic, check every length against the input before reading, refuse
// inputs over the named limits ([MaxMessageSize], [MaxCertificateSize],
// [MaxSentMessageSize], [MaxSentRecipients], [MaxDevicesPerRecipient])
// before allocating, and allocate in proportion to what the input actually
// contains. A known protobuf field that occurs twice is refused (see package
// pb) rather than resolved as "last one wins".
//
// A v2 upload reveals to the server the recipients, their devices and
// registration IDs, and the message size; it hides the sender and content.
// SealV2 reuses one M for all recipients, which is what the Barbosa
// construction allows: each Cᵢ is masked by a distinct agreement.
//
// # Compatibility
//
// Byte-for-byte libsignal 0.72.1 (tagged 2025-05-14): the same encodings
// from the same inputs (field order, omitted defaults, a content hint of 2³¹
// or more written as a negative int32), the same checks in the same order,
// and the same acceptance of version bytes. Sotto is stricter on malformed
// input libsignal never produces: repeated protobuf fields, public keys that
// are not exactly 33 bytes (libsignal ignores trailing bytes) or not valid
// prime-order points, integer fields out of their declared range, and
// non-minimal varint recipient counts in a SentMessage (which libsignal
// misreads). A ServiceID, MessageType or DeviceID means what libsignal's
// ServiceId, proto Type and DeviceId mean, but libsignal's Rust enum
// CiphertextMessageType numbers a prekey message 3 where the wire says 1.
//
// Version bytes are (required version << 4) | current version. History:
//
//   - 2018-10: 0x11, sealed sender v1, in Signal's Java library; ported to
//     libsignal (Rust) in 2020-11. libsignal accepts any byte whose high
//     nibble is 0 or 1 as v1; so does Open.
//   - 2020-12: server certificate revocation by key id (0xDEADC357, a test
//     id, is the only entry through 0.72.1).
//   - 2021-03-09: first multi-recipient draft, 0x22 with a protobuf body;
//     replaced on 2021-03-26 by the flat v2 format still used, plus the
//     per-recipient tag AT. SentMessage entries were a 16-byte ACI UUID, a
//     varint device ID, C and AT. The USMC gained contentHint and groupId.
//   - 2021-05-18: a 16-bit registration ID after each device ID.
//   - 2021-05-25: message type 8, PLAINTEXT_CONTENT.
//   - 2023-07-14: SentMessage version 0x23: fixed-width service IDs (ACI or
//     PNI) in place of bare UUIDs.
//   - 2023-08-22: new derivation of the v2 ephemeral key, label
//     "Sealed Sender v2: r (2023-08)" (32-byte scalar instead of a wide
//     reduction); senders switched 2024-02-01; receive support for the old
//     derivation was removed 2024-07-30, so 0.72.1 (and Sotto) open only the
//     new one, under the same version bytes.
//   - 2023-11-06: compact device lists (bit 15 of the registration ID field
//     means "another device follows", device IDs one byte, 1..127) and
//     excluded recipients (an entry with device byte 0), for both 0x22 and
//     0x23 uploads; ReceivedMessages always carry 0x22 since 2023-11-07.
//   - 2025-09 (after 0.72.1, not supported): sender certificates that refer
//     to a known server certificate by id instead of embedding it. 0.72.1
//     requires the embedded signer, and so does Sotto.
//
// [Sealed sender blog post]: https://signal.org/blog/sealed-sender/
// [libsignal sealed_sender.rs]: https://github.com/signalapp/libsignal/blob/v0.72.1/rust/protocol/src/sealed_sender.rs
// [sealed_sender.proto]: https://github.com/signalapp/libsignal/blob/v0.72.1/rust/protocol/src/proto/sealed_sender.proto
// [Randomness Reuse]: https://haslab.uminho.pt/mbb/files/reuse.pdf
// [RFC 8452]: https://www.rfc-editor.org/rfc/rfc8452
package sealed
