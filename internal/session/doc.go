// Package session keeps the Double Ratchet sessions with one peer device and
// runs the protocol end to end: starting a session from a prekey bundle
// (PQXDH), answering one from a PreKeySignalMessage, and encrypting and
// decrypting with the right session. It is the Sesame layer of Signal's
// design, as libsignal implements it.
//
// A [Record] holds the active session with a device and up to
// [MaxArchivedStates] archived ones. Two devices that start sessions with
// each other at the same time (simultaneous initiation) each end up with two
// sessions; a message that decrypts under an archived session promotes it to
// active, so both sides converge on one.
//
// Specification: [Sesame] for the session-management model; [PQXDH] and the
// [Double Ratchet] for the rest (packages x3dh and ratchet).
//
// # Security
//
// A Record is changed only by an operation that succeeds: a message that
// fails to authenticate under every session leaves the record as it was.
// Identity trust is the caller's: check [PreKeyResult.RemoteIdentity] and the
// bundle's identity key against what the user has verified before storing
// the record. Prekeys named by a message are returned to the caller, who
// deletes one-time keys only after the record is stored.
//
// # Compatibility
//
// Records are stored with a format version byte followed by libsignal's
// RecordStructure layout; every version ever written stays readable.
//
// [Sesame]: https://signal.org/docs/specifications/sesame/
// [PQXDH]: https://signal.org/docs/specifications/pqxdh/
// [Double Ratchet]: https://signal.org/docs/specifications/doubleratchet/
package session
