package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/sotto-chat/sotto/internal/fingerprint"
	"github.com/sotto-chat/sotto/internal/keys"
)

// ErrIdentityChanged is returned when sending to a verified contact whose
// identity key changed since: their safety number must be compared again
// (Verify or MarkVerified) before anything is sent to them.
var ErrIdentityChanged = errors.New("client: this contact's safety number changed since you verified it: compare it again before sending")

// ErrNoSafetyNumber is returned for a contact whose identity key this
// device has not seen yet (no message either way).
var ErrNoSafetyNumber = errors.New("client: no safety number yet: send or receive a message first")

// IdentityChangedEvent says a contact's identity key changed: they
// re-installed, or someone is in the middle. WasVerified says the old key
// had been verified; then sending to them stops until it is again.
type IdentityChangedEvent struct {
	With        AccountID
	WasVerified bool
}

func (IdentityChangedEvent) isEvent() {}

// SafetyNumber returns the safety number of the conversation with an
// account: 60 digits to compare by eye or read aloud, and the bytes to
// show as a QR code for the other side to scan (Verify). Both sides see
// the same number.
func (c *Client) SafetyNumber(ctx context.Context, with AccountID) (string, []byte, error) {
	fp, err := c.fingerprint(ctx, with)
	if err != nil {
		return "", nil, err
	}
	return fp.Display(), fp.Scannable(), nil
}

func (c *Client) fingerprint(ctx context.Context, with AccountID) (fingerprint.Fingerprint, error) {
	ct, err := c.contact(ctx, with)
	if err != nil {
		return fingerprint.Fingerprint{}, err
	}
	if len(ct.Identity) == 0 {
		return fingerprint.Fingerprint{}, ErrNoSafetyNumber
	}
	remote, err := keys.ParseStoredPublicKey(ct.Identity)
	if err != nil {
		return fingerprint.Fingerprint{}, fmt.Errorf("client: stored identity of %s: %w", with, err)
	}
	return fingerprint.New(2, fingerprint.Iterations, c.account[:], c.identity.Public, with[:], remote)
}

// Verify checks the code scanned from the other side's screen (their
// SafetyNumber's bytes) and, if it matches, marks the contact verified.
func (c *Client) Verify(ctx context.Context, with AccountID, scanned []byte) error {
	fp, err := c.fingerprint(ctx, with)
	if err != nil {
		return err
	}
	ok, err := fp.Compare(scanned)
	if err != nil {
		return fmt.Errorf("client: the scanned code: %w", err)
	}
	if !ok {
		return errors.New("client: the safety numbers differ: this is not the key the other side has; do not trust this conversation")
	}
	return c.MarkVerified(ctx, with)
}

// MarkVerified marks a contact verified (after the safety numbers were
// compared by eye), which also lifts the stop after an identity change.
func (c *Client) MarkVerified(ctx context.Context, with AccountID) error {
	ct, err := c.contact(ctx, with)
	if err != nil {
		return err
	}
	if len(ct.Identity) == 0 {
		return ErrNoSafetyNumber
	}
	_, err = c.updateContact(ctx, with, func(ct *contactRecord) { ct.Verified, ct.Changed = true, false })
	return err
}

// Verified reports whether a contact is verified.
func (c *Client) Verified(ctx context.Context, with AccountID) (bool, error) {
	ct, err := c.contact(ctx, with)
	return err == nil && ct.Verified, err
}

// noteIdentity records the identity key seen for a contact and reports
// whether it changed from the one known (then ct is updated: a verified
// contact becomes unverified and changed).
func noteIdentity(ct *contactRecord, key []byte) (changed, wasVerified bool) {
	if len(ct.Identity) == 0 {
		ct.Identity = key
		return false, false
	}
	if string(ct.Identity) == string(key) {
		return false, false
	}
	wasVerified = ct.Verified
	ct.Identity = key
	if ct.Verified {
		ct.Verified, ct.Changed = false, true
	}
	return true, wasVerified
}

// ErrBlocked is returned when sending to an account this device blocked.
var ErrBlocked = errors.New("client: you blocked this account: unblock it to send")

// Block stops messages from an account: what it sends is dropped
// unread (and unanswered: no receipts), and nothing is sent to it.
func (c *Client) Block(ctx context.Context, a AccountID) error { return c.setBlocked(ctx, a, true) }

// Unblock lifts Block.
func (c *Client) Unblock(ctx context.Context, a AccountID) error { return c.setBlocked(ctx, a, false) }

func (c *Client) setBlocked(ctx context.Context, a AccountID, blocked bool) error {
	if a == c.account {
		return errors.New("client: an account cannot block itself")
	}
	_, err := c.updateContact(ctx, a, func(ct *contactRecord) { ct.Blocked = blocked })
	return err
}

// Blocked reports whether an account is blocked.
func (c *Client) Blocked(ctx context.Context, a AccountID) (bool, error) {
	ct, err := c.contact(ctx, a)
	return err == nil && ct.Blocked, err
}
