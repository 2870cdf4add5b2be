package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/session"
)

// Store layout. Keys sort so that a Scan by prefix lists one kind of
// record, and a conversation's messages in the order they arrived.
const (
	keyAccount = "account"
	// prekey/{ec,kem,signed}/<id, 8 hex digits>
	prefixPreKey = "prekey/"
	// session/<account hex>/<device, 3 digits>
	prefixSession = "session/"
	// contact/<account hex>
	prefixContact = "contact/"
	// msg/<account hex>/<received at, 16 hex digits of ns>/<message id hex>
	prefixMessage = "msg/"
	// seen/<account hex>/<message id hex> → the message's msg/ key
	prefixSeen = "seen/"
	// outbox/<queued at, 16 hex digits of ns>/<message id hex> → an
	// outboxRecord: messages waiting for the server, in order
	prefixOutbox = "outbox/"
	// envelope/<SHA-256 of a received envelope> → when (Unix seconds):
	// envelopes already handled, for redeliveries
	prefixEnvelope = "envelope/"
)

// accountRecord is this device's identity, stored under keyAccount.
type accountRecord struct {
	Server         string `json:"server"`
	Account        []byte `json:"account"`
	Device         uint32 `json:"device"`
	RegistrationID uint32 `json:"registration_id"`
	Identity       []byte `json:"identity"` // keys.KeyPair, MarshalBinary
	Auth           []byte `json:"auth"`     // keys.KeyPair
	ProfileKey     []byte `json:"profile_key"`
	TrustRoot      []byte `json:"trust_root"`
	NextPreKeyID   uint32 `json:"next_prekey_id"`
	// ContactsOnly: only senders who hold the profile key (contacts) may
	// send; otherwise anyone who knows the account may write first.
	ContactsOnly bool `json:"contacts_only"`
	// Username is the account's username (normalized), or "".
	Username string `json:"username,omitempty"`
	// Settings, stored as what is turned off (everything is on by
	// default).
	NoDeliveryReceipts bool `json:"no_delivery_receipts,omitempty"`
	NoReadReceipts     bool `json:"no_read_receipts,omitempty"`
	NoTyping           bool `json:"no_typing,omitempty"`
}

// contactRecord is what this device knows of another account.
type contactRecord struct {
	Account []byte `json:"account"`
	// Name is what this device calls the contact (its username when
	// added by one).
	Name string `json:"name,omitempty"`
	// ProfileKey is the contact's, once they shared it: it derives the
	// delivery token that lets this account send to them.
	ProfileKey []byte `json:"profile_key,omitempty"`
	// Identity is the contact's identity public key, as first seen.
	Identity []byte `json:"identity,omitempty"`
	// Devices maps each device of the contact this device has a session
	// with to its registration id.
	Devices map[DeviceID]uint32 `json:"devices,omitempty"`
	// Accepted: this account added the contact or wrote to them. Only
	// accepted contacts get receipts and typing indicators.
	Accepted bool `json:"accepted,omitempty"`
	// Verified: the safety number was compared. Changed: the identity key
	// changed after it was verified; nothing is sent until it is again.
	Verified bool `json:"verified,omitempty"`
	Changed  bool `json:"changed,omitempty"`
	// Blocked: messages from the account are dropped, none go to it.
	Blocked bool `json:"blocked,omitempty"`
}

// outboxRecord is a message waiting to go out.
type outboxRecord struct {
	To         []byte `json:"to"`
	MessageKey string `json:"message_key"`
	Content    []byte `json:"content"` // encoded, padded content
}

func outboxKey(m *Message) string {
	return fmt.Sprintf("%s%016x/%s", prefixOutbox, m.ReceivedAt.UnixNano(), m.ID)
}

// messageRecord is a stored message.
type messageRecord struct {
	ID         []byte `json:"id"`
	With       []byte `json:"with"`
	Outgoing   bool   `json:"outgoing,omitempty"`
	FromDevice uint32 `json:"from_device"`
	Text       string `json:"text"`
	SentAt     int64  `json:"sent_at"`     // ms
	ReceivedAt int64  `json:"received_at"` // ns
	Status     int    `json:"status"`
}

func preKeyKey(kind string, id uint32) string {
	return fmt.Sprintf("%s%s/%08x", prefixPreKey, kind, id)
}

func sessionKey(a AccountID, d DeviceID) string {
	return fmt.Sprintf("%s%s/%03d", prefixSession, a, d)
}

func contactKey(a AccountID) string { return prefixContact + a.String() }

func messageKey(m *Message) string {
	return fmt.Sprintf("%s%s/%016x/%s", prefixMessage, m.With, m.ReceivedAt.UnixNano(), m.ID)
}

func seenKey(with AccountID, id MessageID) string {
	return fmt.Sprintf("%s%s/%s", prefixSeen, with, id)
}

func marshalJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("client: marshal %T: %v", v, err)) // only our own plain types
	}
	return b
}

func (m *messageRecord) message() (Message, error) {
	var out Message
	if len(m.ID) != len(out.ID) || len(m.With) != len(out.With) {
		return out, errors.New("client: malformed stored message")
	}
	copy(out.ID[:], m.ID)
	copy(out.With[:], m.With)
	out.Outgoing, out.FromDevice, out.Text = m.Outgoing, DeviceID(m.FromDevice), m.Text
	out.SentAt, out.ReceivedAt = msTime(m.SentAt), nsTime(m.ReceivedAt)
	out.Status = MessageStatus(m.Status)
	return out, nil
}

func recordOf(m *Message) *messageRecord {
	return &messageRecord{ID: m.ID[:], With: m.With[:], Outgoing: m.Outgoing, FromDevice: uint32(m.FromDevice),
		Text: m.Text, SentAt: m.SentAt.UnixMilli(), ReceivedAt: m.ReceivedAt.UnixNano(), Status: int(m.Status)}
}

// storePreKeys looks up this device's prekeys in the store, for
// session.Local.
type storePreKeys struct {
	ctx   context.Context
	store Store
}

func (p storePreKeys) load(kind string, id uint32, into interface{ UnmarshalBinary([]byte) error }) error {
	b, err := p.store.Get(p.ctx, preKeyKey(kind, id))
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %s %d", session.ErrNoPreKey, kind, id)
	}
	if err != nil {
		return err
	}
	return into.UnmarshalBinary(b)
}

func (p storePreKeys) SignedPreKey(id keys.SignedPreKeyID) (keys.SignedPreKey, error) {
	var k keys.SignedPreKey
	return k, p.load("signed", uint32(id), &k)
}

func (p storePreKeys) PreKey(id keys.PreKeyID) (keys.PreKey, error) {
	var k keys.PreKey
	return k, p.load("ec", uint32(id), &k)
}

func (p storePreKeys) KEMPreKey(id keys.KEMPreKeyID) (keys.KEMPreKey, error) {
	var k keys.KEMPreKey
	return k, p.load("kem", uint32(id), &k)
}

// updateContactLocked loads a's contact record, applies f, and returns the
// record with the write that stores it. c.mu is held: every change to a
// contact record happens under it, so none is lost to another.
func (c *Client) updateContactLocked(ctx context.Context, a AccountID, f func(*contactRecord)) (*contactRecord, Write, error) {
	ct, err := c.contact(ctx, a)
	if err != nil {
		return nil, Write{}, err
	}
	f(ct)
	return ct, Write{contactKey(a), marshalJSON(ct)}, nil
}

// updateContact changes a's contact record with f and stores it.
func (c *Client) updateContact(ctx context.Context, a AccountID, f func(*contactRecord)) (*contactRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ct, w, err := c.updateContactLocked(ctx, a, f)
	if err != nil {
		return nil, err
	}
	if err := c.store.Apply(ctx, []Write{w}); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return ct, nil
}
