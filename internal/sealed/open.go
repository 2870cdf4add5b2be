package sealed

import (
	"fmt"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
)

// MaxMessageSize bounds a sealed message for one recipient (a v1 message or
// a v2 ReceivedMessage), checked before anything else. Signal's server
// refuses per-recipient payloads over 256 KiB + 32 bytes
// (MultiRecipientMessageProvider.MAX_MESSAGE_SIZE); twice that refuses no
// message it would deliver while bounding what a hostile sender can make
// Open allocate.
const MaxMessageSize = 512 << 10

// Open decrypts a sealed message with the recipient's identity key pair and
// returns its content. It is libsignal's sealed_sender_decrypt_to_usmc: it
// dispatches on the high nibble of the version byte (0 or 1: v1; 2: a v2
// ReceivedMessage; else [ErrVersion]) and checks that the sender
// certificate's identity key is the key that sealed the message
// ([ErrBadMAC] otherwise, like every other authentication failure). It does
// NOT validate the certificate: use [Unseal], or call
// [SenderCertificate.Validate] on the result's Sender, before trusting who
// sent it. identity.Public must be identity.Private's public key.
//
// Errors wrap [ErrMalformed], [ErrVersion] or [ErrBadMAC]; tell a peer no
// more than that decryption failed.
func Open(msg []byte, identity keys.KeyPair) (*USMC, error) {
	if identity.Private.IsZero() || identity.Public.IsZero() {
		return nil, fmt.Errorf("%w: no identity key for Open", ErrInvalidArgument)
	}
	if len(msg) == 0 {
		return nil, fmt.Errorf("%w: empty sealed message", ErrMalformed)
	}
	if len(msg) > MaxMessageSize {
		return nil, fmt.Errorf("%w: sealed message of %d bytes, limit %d", ErrMalformed, len(msg), MaxMessageSize)
	}
	switch msg[0] >> 4 {
	case 0, 1:
		// libsignal accepts a major version of 0 as v1, too.
		return openV1(msg[1:], identity)
	case 2:
		return openV2(msg[1:], identity)
	}
	return nil, fmt.Errorf("%w: sealed message version 0x%02x", ErrVersion, msg[0])
}

// Local describes the receiving device, for [Unseal].
type Local struct {
	Identity keys.KeyPair
	ACI      ServiceID // the account's ACI
	E164     string    // the account's phone number, or "" if none
	Device   DeviceID
}

// Unseal opens a sealed message for local, validates the sender certificate
// against trust at time now, and refuses a message from local's own device.
// It is libsignal's sealed_sender_decrypt up to (not including) decrypting
// the inner message, which is the caller's next step: dispatch on the USMC's
// Type and decrypt its Contents from the returned Sender.
//
// Errors: those of [Open]; [ErrRevoked], [ErrUntrusted] or [ErrExpired] from
// validation; [ErrSelfSend] if the certificate names local's ACI (as a
// string, as libsignal compares it) or phone number together with local's
// device ID.
func Unseal(msg []byte, local Local, trust Trust, now time.Time) (Sender, *USMC, error) {
	u, err := Open(msg, local.Identity)
	if err != nil {
		return Sender{}, nil, err
	}
	cert := u.Sender()
	if err := cert.Validate(trust, now); err != nil {
		return Sender{}, nil, err
	}
	isLocalUUID := cert.UUID() == local.ACI.String()
	e164, ok := cert.E164()
	isLocalE164 := ok && local.E164 != "" && e164 == local.E164
	if (isLocalUUID || isLocalE164) && cert.Device() == local.Device {
		return Sender{}, nil, ErrSelfSend
	}
	return cert.Sender(), u, nil
}
