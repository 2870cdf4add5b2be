package client

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// AccountID names an account: 16 bytes, shown as 32 hex digits.
type AccountID [16]byte

func (a AccountID) String() string { return hex.EncodeToString(a[:]) }

// ParseAccountID parses 32 hex digits.
func ParseAccountID(s string) (AccountID, error) {
	var a AccountID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(a) {
		return a, fmt.Errorf("client: account id %q: want 32 hex digits", s)
	}
	copy(a[:], b)
	return a, nil
}

// DeviceID names a device of an account, 1 to 127.
type DeviceID uint32

// MessageID names a message: 16 random bytes chosen by its sender.
type MessageID [16]byte

func (m MessageID) String() string { return hex.EncodeToString(m[:]) }

func newMessageID() MessageID {
	var m MessageID
	rand.Read(m[:])
	return m
}

// MessageStatus is where a message is: received, or for one this account
// sent, how far it got.
type MessageStatus int

const (
	// StatusReceived: a message from the other side.
	StatusReceived MessageStatus = iota
	// StatusQueued: written while the server was unreachable; it goes out
	// when the server is back, in order.
	StatusQueued
	// StatusSent: stored by the server for every device of the recipient.
	StatusSent
	// StatusDelivered and StatusRead: the recipient said so (if they
	// send receipts).
	StatusDelivered
	StatusRead
	// StatusFailed: the server refused it for good (the account is
	// gone, or it accepts only its contacts).
	StatusFailed
)

func (s MessageStatus) String() string {
	switch s {
	case StatusReceived:
		return "received"
	case StatusQueued:
		return "queued"
	case StatusSent:
		return "sent"
	case StatusDelivered:
		return "delivered"
	case StatusRead:
		return "read"
	case StatusFailed:
		return "failed"
	}
	return fmt.Sprintf("MessageStatus(%d)", int(s))
}

// Message is a text message in a conversation, sent or received.
type Message struct {
	ID MessageID
	// With is the other account of the conversation.
	With AccountID
	// Outgoing says this account wrote it (on this device or another).
	Outgoing bool
	// FromDevice is the device that wrote it (of this account if
	// Outgoing, else of With).
	FromDevice DeviceID
	Text       string
	// SentAt is the sender's clock when it was written; ReceivedAt this
	// device's when it arrived (equal to SentAt for one it sent).
	SentAt     time.Time
	ReceivedAt time.Time
	Status     MessageStatus
}

// Event is something that happened, from Client.Events.
type Event interface{ isEvent() }

// MessageEvent is a message that arrived (or, Outgoing, that another
// device of this account sent).
type MessageEvent struct{ Message Message }

// UndecryptableEvent is an envelope that could not be opened (a broken
// session, a forged or expired certificate). It is dropped; nothing of it
// is kept.
type UndecryptableEvent struct{ Err error }

// ReceiptEvent says that messages this account sent to With were
// delivered or read (Status); IDs are those whose status changed.
type ReceiptEvent struct {
	With   AccountID
	IDs    []MessageID
	Status MessageStatus
}

// TypingEvent says that With started or stopped typing.
type TypingEvent struct {
	With   AccountID
	Typing bool
}

// StatusEvent says that a message this device sent changed status: a
// queued one went out, or failed.
type StatusEvent struct{ Message Message }

// DrainedEvent says the mailbox is empty: everything that waited while
// this device was away has been received (what follows arrives live).
type DrainedEvent struct{}

// ConnectedEvent and DisconnectedEvent follow the connection to the
// server; Err says why it dropped.
type ConnectedEvent struct{}
type DisconnectedEvent struct{ Err error }

func (MessageEvent) isEvent()       {}
func (UndecryptableEvent) isEvent() {}
func (DrainedEvent) isEvent()       {}
func (ReceiptEvent) isEvent()       {}
func (TypingEvent) isEvent()        {}
func (StatusEvent) isEvent()        {}
func (ConnectedEvent) isEvent()     {}
func (DisconnectedEvent) isEvent()  {}
