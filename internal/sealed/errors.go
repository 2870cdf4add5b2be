package sealed

import "errors"

// Sentinel errors. Functions wrap them with context (test with errors.Is);
// the context is for debug logs only. What goes back to a peer or onto the
// wire is at most "could not decrypt": in particular ErrBadMAC covers every
// authentication failure alike, whichever layer it happened in.
var (
	// ErrMalformed: input bytes that are not a well-formed certificate,
	// message content or sealed message, or that exceed a size limit.
	ErrMalformed = errors.New("sealed: malformed input")
	// ErrVersion: a sealed message whose version byte this package does not
	// speak.
	ErrVersion = errors.New("sealed: unknown version")
	// ErrBadMAC: a sealed message that does not authenticate for the
	// recipient key used: a wrong MAC or AEAD tag, a mismatched ephemeral key,
	// or a sender certificate whose identity key is not the key that sealed
	// the message.
	ErrBadMAC = errors.New("sealed: message authentication failed")
	// ErrUntrusted: a certificate chain that does not lead to a trusted root:
	// the server certificate is not signed by any root, or the sender
	// certificate is not signed by its server certificate's key.
	ErrUntrusted = errors.New("sealed: certificate not trusted")
	// ErrRevoked: a server certificate whose key id has been revoked.
	ErrRevoked = errors.New("sealed: server certificate revoked")
	// ErrExpired: a sender certificate used after its expiration time.
	ErrExpired = errors.New("sealed: sender certificate expired")
	// ErrSelfSend: a message whose sender is the receiving device itself.
	ErrSelfSend = errors.New("sealed: message from this device")
	// ErrUnknownRecipient: a service ID that is not among the recipients of
	// a multi-recipient message.
	ErrUnknownRecipient = errors.New("sealed: not a recipient of this message")
	// ErrExcludedRecipient: a service ID that a multi-recipient message lists
	// as deliberately excluded, so there is nothing to deliver to it.
	ErrExcludedRecipient = errors.New("sealed: recipient excluded from this message")
	// ErrKeyMismatch: a signing or sealing key that is not the key named by
	// the certificate it is used with (a caller bug; libsignal would produce
	// a certificate or message that never validates).
	ErrKeyMismatch = errors.New("sealed: key does not match certificate")
	// ErrInvalidArgument: a caller-supplied value outside what the format can
	// carry (device ID, registration ID, recipient count, empty key, ...).
	ErrInvalidArgument = errors.New("sealed: invalid argument")
)
