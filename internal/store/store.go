// Package store defines what sottod keeps, as one narrow interface per
// concern, implemented by store/sqlite (the default: one file, nothing to
// install) and store/postgres (a cluster's shared database). Both pass the
// same conformance suite, store/storetest.
//
// What is stored, column by column, why, and when it is deleted is listed in
// docs/what-the-server-stores.md; the subpoena test holds the two to each
// other. In short: public keys, opaque ciphertext, hashes, days — never
// plaintext, IP addresses, user agents, or who sent an envelope.
//
// # Concurrency
//
// Every method is safe for concurrent use. Methods take a context first and
// return errors wrapping the sentinels below for the conditions callers
// branch on.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors every implementation returns (wrapped) for these
// conditions.
var (
	// ErrNotFound: no such account, device, username or envelope.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: the account, device or username is already taken.
	ErrExists = errors.New("store: already exists")
	// ErrMailboxFull: the device's mailbox holds Limits.MaxMailbox envelopes.
	ErrMailboxFull = errors.New("store: mailbox full")
	// ErrLimit: a per-device limit on stored prekeys or devices is reached.
	ErrLimit = errors.New("store: limit reached")
)

// AccountID names an account: 16 random bytes (a UUID, the account's ACI).
type AccountID [16]byte

// DeviceID names a device within its account; the first device is 1.
type DeviceID uint32

// Day is a calendar day (UTC), the only time resolution the server keeps
// about accounts and devices.
type Day int32

// DayOf returns the UTC day of t, counted from 1970-01-01.
func DayOf(t time.Time) Day { return Day(t.UTC().Unix() / 86400) }

// Time returns the start of the day.
func (d Day) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// Account is an account: an identity key and nothing that names a person.
type Account struct {
	ID          AccountID
	IdentityKey []byte // 33 bytes, 0x05‖u
	Created     Day
	// UnidentifiedAccessKey is the 16-byte key derived from the account's
	// profile key that senders of sealed messages must present (Signal's
	// unidentified-access scheme); nil until the account sets one.
	UnidentifiedAccessKey []byte
}

// Device is one device of an account.
type Device struct {
	Account        AccountID
	ID             DeviceID
	RegistrationID uint32
	// AuthKey is the device's public key (33 bytes) that signs connection
	// challenges; it may equal the identity key.
	AuthKey  []byte
	Created  Day
	LastSeen Day
}

// SignedPreKey is a public prekey with its id and signature, as uploaded: a
// signed EC prekey or a KEM prekey (whose Key carries its type byte).
type SignedPreKey struct {
	ID        uint32
	Key       []byte
	Signature []byte
}

// PreKey is a public one-time EC prekey.
type PreKey struct {
	ID  uint32
	Key []byte
}

// Bundle is what a fetch of one device's prekeys returns. PreKey and
// KEMPreKey are one-time keys, each handed out once; when the device has no
// one-time KEM prekey left, KEMPreKey is its last-resort key.
type Bundle struct {
	Device         DeviceID
	RegistrationID uint32
	SignedPreKey   SignedPreKey
	PreKey         *PreKey // nil when the device has run out
	KEMPreKey      SignedPreKey
	KEMLastResort  bool
}

// Accounts keeps accounts, their devices and usernames.
type Accounts interface {
	// CreateAccount stores a new account with its first device. ErrExists
	// if the id is taken.
	CreateAccount(ctx context.Context, a Account, first Device) error
	// Account returns an account, or ErrNotFound.
	Account(ctx context.Context, id AccountID) (Account, error)
	// DeleteAccount removes the account and everything stored for it:
	// devices, prekeys, mailboxes, username.
	DeleteAccount(ctx context.Context, id AccountID) error
	// SetUnidentifiedAccessKey stores the key senders must present.
	SetUnidentifiedAccessKey(ctx context.Context, id AccountID, key []byte) error

	// AddDevice adds a device to an existing account. ErrExists if the
	// device id is taken, ErrLimit over Limits.MaxDevices.
	AddDevice(ctx context.Context, d Device) error
	// Devices lists an account's devices in id order.
	Devices(ctx context.Context, id AccountID) ([]Device, error)
	// RemoveDevice removes a device with its prekeys and mailbox.
	RemoveDevice(ctx context.Context, id AccountID, dev DeviceID) error
	// Touch records that the device was seen on day (only the day).
	Touch(ctx context.Context, id AccountID, dev DeviceID, day Day) error

	// SetUsername binds a username hash to the account, replacing its
	// previous one. ErrExists if another account holds the hash.
	SetUsername(ctx context.Context, id AccountID, hash []byte) error
	// DeleteUsername removes the account's username, if any.
	DeleteUsername(ctx context.Context, id AccountID) error
	// LookupUsername returns the account holding the hash, or ErrNotFound.
	LookupUsername(ctx context.Context, hash []byte) (AccountID, error)
	// SetProfile replaces the account's profile, a blob its owner
	// encrypted with the profile key (nil deletes it); ErrNotFound
	// without the account.
	SetProfile(ctx context.Context, id AccountID, blob []byte) error
	// Profile returns the account's profile blob (nil if none is set), or
	// ErrNotFound without the account.
	Profile(ctx context.Context, id AccountID) ([]byte, error)
}

// PreKeys is the prekey directory.
type PreKeys interface {
	// SetSignedPreKey replaces the device's signed EC prekey.
	SetSignedPreKey(ctx context.Context, id AccountID, dev DeviceID, k SignedPreKey) error
	// SetLastResortKEMPreKey replaces the device's last-resort KEM prekey.
	SetLastResortKEMPreKey(ctx context.Context, id AccountID, dev DeviceID, k SignedPreKey) error
	// AddPreKeys stores one-time EC and KEM prekeys. ErrLimit if the device
	// would hold more than Limits.MaxOneTimePreKeys of a kind; ErrExists if
	// an id is already stored.
	AddPreKeys(ctx context.Context, id AccountID, dev DeviceID, ec []PreKey, kem []SignedPreKey) error
	// TakeBundles returns a bundle for every device of the account that has
	// a signed prekey and a KEM prekey, consuming one one-time EC and one
	// one-time KEM prekey per device atomically: a one-time key is never
	// returned twice, whatever the concurrency. dev 0 means every device.
	TakeBundles(ctx context.Context, id AccountID, dev DeviceID) ([]Bundle, error)
	// CountPreKeys returns how many one-time EC and KEM prekeys the device
	// has left.
	CountPreKeys(ctx context.Context, id AccountID, dev DeviceID) (ec, kem int, err error)
}

// EnvelopeID names an envelope; ids increase in the order envelopes were
// appended to a mailbox, and never repeat. Where a backend also keeps them
// consecutive within a mailbox (store/queue, and store/sqlite's table
// while a device lives), the relay knows that id N+1 follows N and pushes
// fresh envelopes without reading them back; with gaps it reads them from
// the store instead, correct but slower.
type EnvelopeID uint64

// Envelope is an opaque sealed message waiting in one device's mailbox. The
// store keeps no sender: sealed sender hides it inside Content.
type Envelope struct {
	ID      EnvelopeID // assigned by Append
	Account AccountID
	Device  DeviceID
	Content []byte
	Expires Day // deleted after this day if never acknowledged
}

// Mailboxes is the store-and-forward queue: one mailbox per device.
type Mailboxes interface {
	// Append stores the envelopes durably (committed and synced to disk
	// when it returns) and sets their IDs. All or none are stored.
	// ErrMailboxFull (naming no envelope) if any mailbox would exceed
	// Limits.MaxMailbox; ErrNotFound if a device does not exist.
	Append(ctx context.Context, envs []*Envelope) error
	// Read returns up to limit envelopes of the device's mailbox with ids
	// greater than after, in id order.
	Read(ctx context.Context, id AccountID, dev DeviceID, after EnvelopeID, limit int) ([]Envelope, error)
	// Ack deletes the device's envelopes with these ids; unknown ids are
	// ignored (an ack may repeat). An ack need not be durable when Ack
	// returns: a crash may undo it, and the envelope is then delivered
	// again (delivery is at least once).
	Ack(ctx context.Context, id AccountID, dev DeviceID, ids []EnvelopeID) error
	// Expire deletes every envelope whose Expires day is before today, and
	// returns how many it deleted.
	Expire(ctx context.Context, today Day) (int, error)
}

// AsyncMailboxes are mailboxes that take a change without a goroutine
// waiting for its commit: the relay then handles a Send or an Ack on the
// goroutine that read it and answers from done, instead of holding a
// goroutine per request through the fsync. Changes queued one after
// another from one goroutine commit in that order.
type AsyncMailboxes interface {
	// AppendAsync is Append that returns once the change is queued
	// (waiting only while the store's queue is full, or until ctx ends).
	// done is called once with Append's outcome, the envelopes' IDs set,
	// when they are durable or refused. done may run on the store's
	// writer: it must not block, nor call the store.
	AppendAsync(ctx context.Context, envs []*Envelope, done func(error))
	// AckAsync is Ack without the wait, as AppendAsync is Append's; done
	// may be nil, and is held to the same rules.
	AckAsync(ctx context.Context, id AccountID, dev DeviceID, ids []EnvelopeID, done func(error))
}

// AsyncOf returns the store's mailboxes as AsyncMailboxes, or nil when,
// as configured, every change of the store waits for its commit. A store
// offers them with a method AsyncMailboxes() AsyncMailboxes.
func AsyncOf(s Store) AsyncMailboxes {
	if a, ok := s.(interface{ AsyncMailboxes() AsyncMailboxes }); ok {
		return a.AsyncMailboxes()
	}
	return nil
}

// Limits bound what one account or device can make the store hold. The
// server sets them; implementations enforce them atomically.
type Limits struct {
	// MaxDevices per account.
	MaxDevices int
	// MaxOneTimePreKeys of each kind per device.
	MaxOneTimePreKeys int
	// MaxMailbox envelopes per device.
	MaxMailbox int
}

// DefaultLimits are the limits sottod uses unless configured otherwise.
func DefaultLimits() Limits {
	return Limits{
		// Signal allows a handful of linked devices; 16 covers phone,
		// desktops, tablets and a web client with room to spare.
		MaxDevices: 16,
		// Clients upload 100 at a time and top up when told they run low;
		// 1,000 bounds a device's directory rows.
		MaxOneTimePreKeys: 1000,
		// A device offline for weeks in a busy group still fits; beyond
		// this a sender gets ErrMailboxFull instead of the server growing.
		MaxMailbox: 100_000,
	}
}

// Store is everything sottod keeps.
type Store interface {
	Accounts
	PreKeys
	Mailboxes
	// Ping reports whether the storage is reachable (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}
