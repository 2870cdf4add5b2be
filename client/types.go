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
func (ConnectedEvent) isEvent()     {}
func (DisconnectedEvent) isEvent()  {}
