// Package client is everything a Sotto client does: it holds an account's
// keys, sessions, contacts and history in a Store, talks to sottod over its
// WebSocket protocol, and encrypts every message end to end (PQXDH, the
// Double Ratchet, sealed sender) so that the server sees only sealed
// envelopes. The sotto command, the web client (GOOS=js), bots and tests
// are built on it.
//
// A Client is one device of one account. Create registers a new account
// (solving the server's proof of work); Open loads one from its Store. Run
// keeps a connection to the server, receives and decrypts what arrives and
// reports it on Events; SendText sends.
//
// Users can leave and arrive: ImportWhatsApp brings a WhatsApp chat export
// in as imported history (history.go); Export writes all of an account's
// data in the documented format of docs/export-format.md, ImportExport
// reads it back, Backup encrypts it with age, and Restore brings an
// account back from it as a new device of the account.
package client

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/access"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pow"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/session"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// Limits and timings, each with its reason.
const (
	// preKeyBatch is how many one-time prekeys of each kind a device
	// uploads at a time (as Signal's clients): enough for a burst of new
	// contacts between connections.
	preKeyBatch = 100
	// preKeyLowWater: below this many one-time prekeys a device uploads
	// another batch (the server's PreKeysLowWater is the same).
	preKeyLowWater = 20
	// eventBuffer is how many events wait for the reader of Events; when
	// it is full, receiving waits (nothing is dropped).
	eventBuffer = 256
	// requestTimeout bounds one request to the server.
	requestTimeout = 30 * time.Second
	// maxRegistrationID is the largest registration id (14 bits, as
	// Signal).
	maxRegistrationID = 16383
	// certificateMargin: a sender certificate this close to its expiry
	// is replaced before use, so that it is still valid when opened.
	certificateMargin = time.Hour
	// reconnectMin and reconnectMax bound the wait before reconnecting
	// (doubling in between).
	reconnectMin = 250 * time.Millisecond
	reconnectMax = 30 * time.Second
)

// ErrAccountExists is returned by Create and NewLinkRequest for a Store
// that already holds an account.
var ErrAccountExists = errors.New("client: this store already holds an account")

// checkEmpty returns ErrAccountExists if the store holds an account.
func checkEmpty(ctx context.Context, st Store) error {
	_, err := st.Get(ctx, keyAccount)
	switch {
	case err == nil:
		return ErrAccountExists
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// ErrNoAccount is returned by Open for a Store that holds no account.
var ErrNoAccount = errors.New("client: no account in this store: create one first")

// Options configure a Client.
type Options struct {
	// Server is the server's URL: http://, https://, ws:// or wss://.
	Server string
	// Store keeps the client's state.
	Store Store
	// Logger receives diagnostics, never message contents or keys;
	// nil discards them.
	Logger *slog.Logger
	// ContactsOnly (for Create) lets only contacts, who hold the profile
	// key, send to the account. Otherwise anyone who knows the account
	// (by its username or id) may write first.
	ContactsOnly bool
	// Header is sent with every connection's opening handshake (a
	// User-Agent, say); the protocol's own headers in it are ignored.
	// nil sends none.
	Header http.Header
}

// Client is one device of an account. It is safe for concurrent use.
type Client struct {
	store  Store
	log    *slog.Logger
	wsURL  string
	header http.Header // Options.Header, sent with every dial
	events chan Event

	// Set once by Create or Open.
	account        AccountID
	device         DeviceID
	registrationID uint32
	identity       keys.KeyPair
	auth           keys.KeyPair
	profileKey     []byte
	trust          sealed.Trust

	// mu serializes changes to the sessions and the store's view of them
	// (encrypting and decrypting advance ratchets).
	mu       sync.Mutex
	sessions map[addr]*session.Record
	cert     *sealed.SenderCertificate

	// outboxMu keeps queued messages in order: one sender at a time.
	outboxMu sync.Mutex
	// ownStale: the list of the account's other devices may be out of
	// date (a new process, or a link was approved).
	ownStale atomic.Bool

	// historyMu serializes imports, so that two of the same chat do not
	// both add its messages.
	historyMu sync.Mutex

	connMu sync.Mutex
	conn   *wsclient.Conn // the authenticated connection, while up
	anon   *wsclient.Conn // the anonymous one, for sealed sends
}

type addr struct {
	account AccountID
	device  DeviceID
}

// Create registers a new account with one device (this one) and stores
// it in opts.Store, which must be empty.
func Create(ctx context.Context, opts Options) (*Client, error) {
	if err := checkEmpty(ctx, opts.Store); err != nil {
		return nil, err
	}
	c, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	if c.identity, err = keys.GenerateKeyPair(rand.Reader); err != nil {
		return nil, err
	}
	c.profileKey = make([]byte, 32)
	rand.Read(c.profileKey)
	var accessKey []byte
	if opts.ContactsOnly {
		k, err := access.Derive(c.profileKey)
		if err != nil {
			return nil, err
		}
		accessKey = k[:]
	}
	dk, err := newDeviceKeys(c.identity)
	if err != nil {
		return nil, err
	}
	spk, kem := dk.wire()

	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := c.do(ctx, conn, &wirepb.GetRegistrationChallenge{})
	if err != nil {
		return nil, fmt.Errorf("client: registration challenge: %w", err)
	}
	ch := resp.GetRegistrationChallenge()
	sol, ok := pow.Solve(ch.GetSeed(), int(ch.GetDifficulty()), ctx.Done())
	if !ok {
		return nil, fmt.Errorf("client: proof of work: %w", context.Cause(ctx))
	}
	resp, err = c.do(ctx, conn, &wirepb.Register{
		Seed: ch.GetSeed(), Solution: sol, IdentityKey: c.identity.Public.Bytes(), AuthKey: dk.auth.Public.Bytes(),
		RegistrationId: dk.registrationID, UnidentifiedAccessKey: accessKey, SignedPrekey: spk, KemLastResort: kem,
	})
	if err != nil {
		return nil, fmt.Errorf("client: register: %w", err)
	}
	reg := resp.GetRegistered()
	if len(reg.GetAccountId()) != len(c.account) {
		return nil, errors.New("client: register: malformed account id")
	}
	writes, err := c.use(dk, &accountRecord{Server: opts.Server, ContactsOnly: opts.ContactsOnly}, reg)
	if err != nil {
		return nil, err
	}
	if err := c.store.Apply(ctx, writes); err != nil {
		return nil, fmt.Errorf("client: store the new account: %w", err)
	}
	return c, nil
}

// Open loads the account in opts.Store.
func Open(ctx context.Context, opts Options) (*Client, error) {
	b, err := opts.Store.Get(ctx, keyAccount)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoAccount
	}
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var rec accountRecord
	if err := jsonUnmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("client: stored account: %w", err)
	}
	if opts.Server == "" {
		opts.Server = rec.Server
	}
	c, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	if len(rec.Account) != len(c.account) {
		return nil, errors.New("client: stored account: malformed id")
	}
	c.account, c.device, c.registrationID = AccountID(rec.Account), DeviceID(rec.Device), rec.RegistrationID
	c.profileKey = rec.ProfileKey
	if err := c.identity.UnmarshalBinary(rec.Identity); err != nil {
		return nil, fmt.Errorf("client: stored identity: %w", err)
	}
	if err := c.auth.UnmarshalBinary(rec.Auth); err != nil {
		return nil, fmt.Errorf("client: stored auth key: %w", err)
	}
	if err := c.setTrust(rec.TrustRoot); err != nil {
		return nil, err
	}
	return c, nil
}

func newClient(opts Options) (*Client, error) {
	if opts.Store == nil {
		return nil, errors.New("client: no Store")
	}
	u, err := wsclient.URL(opts.Server)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{store: opts.Store, log: log, wsURL: u.String(), header: opts.Header.Clone(), events: make(chan Event, eventBuffer),
		sessions: map[addr]*session.Record{}}
	c.ownStale.Store(true)
	return c, nil
}

func (c *Client) setTrust(root []byte) error {
	k, err := keys.ParsePublicKey(root)
	if err != nil {
		return fmt.Errorf("client: server trust root: %w", err)
	}
	c.trust = sealed.Trust{Roots: []keys.PublicKey{k}}
	return nil
}

// Account returns the account's id.
func (c *Client) Account() AccountID { return c.account }

// Device returns this device's id.
func (c *Client) Device() DeviceID { return c.device }

// Events returns what happens: messages, connection changes. Read it, or
// receiving stops when eventBuffer events wait.
func (c *Client) Events() <-chan Event { return c.events }

// Close closes the client's connections (not its Store, which is the
// caller's).
func (c *Client) Close() error {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	if c.anon != nil {
		c.anon.Close()
		c.anon = nil
	}
	return nil
}

func (c *Client) dial(ctx context.Context) (*wsclient.Conn, error) {
	conn, err := wsclient.Dial(ctx, c.wsURL, &wsclient.Options{Header: c.header})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return conn, nil
}

// do sends one request and waits for its response, bounded by
// requestTimeout.
func (c *Client) do(ctx context.Context, conn *wsclient.Conn, body proto.Message) (*wirepb.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return conn.Do(ctx, body)
}

// authenticate makes conn this device's authenticated connection.
func (c *Client) authenticate(ctx context.Context, conn *wsclient.Conn) error {
	resp, err := c.do(ctx, conn, &wirepb.GetChallenge{})
	if err != nil {
		return fmt.Errorf("client: challenge: %w", err)
	}
	sig, err := c.auth.Private.Sign(rand.Reader, wire.AuthMessage(resp.GetChallenge().GetNonce(), c.account[:], uint32(c.device)))
	if err != nil {
		return err
	}
	if _, err := c.do(ctx, conn, &wirepb.Authenticate{AccountId: c.account[:], DeviceId: uint32(c.device), Signature: sig[:]}); err != nil {
		return fmt.Errorf("client: authenticate: %w", err)
	}
	return nil
}

// anonConn returns the anonymous connection, dialing it if needed.
func (c *Client) anonConn(ctx context.Context) (*wsclient.Conn, error) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.anon != nil && c.anon.Err() == nil {
		return c.anon, nil
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.anon = conn
	return conn, nil
}

// withAuth runs fn with an authenticated connection: Run's if it is up,
// or one made for fn and closed after it (the server pushes the mailbox on
// it, unread: those envelopes stay unacked and come again to Run).
func (c *Client) withAuth(ctx context.Context, fn func(*wsclient.Conn) error) error {
	c.connMu.Lock()
	conn := c.conn
	c.connMu.Unlock()
	if conn != nil && conn.Err() == nil {
		return fn(conn)
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := c.authenticate(ctx, conn); err != nil {
		return err
	}
	return fn(conn)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
