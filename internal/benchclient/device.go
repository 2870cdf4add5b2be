package benchclient

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/sotto-chat/sotto/internal/access"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pow"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/session"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// AccountID is an account's id (16 bytes, a version-4 UUID).
type AccountID [16]byte

// DeviceID is a device's id within its account, 1 to wire.MaxDeviceID.
type DeviceID uint32

// maxRegistrationID is the largest registration id (14 bits, as Signal).
const maxRegistrationID = 16383

// Device is one device of an account: its keys, its prekeys, and its
// sessions with peer devices. Its methods are safe for concurrent use; the
// exported fields are set once, by Register or Link, and read-only after.
type Device struct {
	Account        AccountID
	ID             DeviceID
	RegistrationID uint32
	Identity       keys.KeyPair // shared by every device of the account
	Auth           keys.KeyPair // this device's own authentication key
	// AccessKey is the account's unidentified-access key, which senders
	// present with a Send.
	AccessKey [access.KeySize]byte
	// Trust validates sender certificates: the server's trust root, from
	// Registered.
	Trust sealed.Trust
	// Source is the loopback address the device's connections come from.
	Source netip.Addr

	mu       sync.Mutex // guards the fields below
	prekeys  preKeys
	nextPre  uint32
	sessions map[peerAddr]*session.Record
	cert     *sealed.SenderCertificate
	linkSPK  *wirepb.SignedPreKey // the account's prekeys for linked devices
	linkKEM  *wirepb.KEMPreKey
}

type peerAddr struct {
	account AccountID
	device  DeviceID
}

// preKeys is a device's own prekeys, by id; it implements session.PreKeys.
type preKeys struct {
	signed map[keys.SignedPreKeyID]keys.SignedPreKey
	ec     map[keys.PreKeyID]keys.PreKey
	kem    map[keys.KEMPreKeyID]keys.KEMPreKey
}

func newPreKeys() preKeys {
	return preKeys{map[keys.SignedPreKeyID]keys.SignedPreKey{}, map[keys.PreKeyID]keys.PreKey{}, map[keys.KEMPreKeyID]keys.KEMPreKey{}}
}

func (p preKeys) SignedPreKey(id keys.SignedPreKeyID) (keys.SignedPreKey, error) {
	if k, ok := p.signed[id]; ok {
		return k, nil
	}
	return keys.SignedPreKey{}, session.ErrNoPreKey
}

func (p preKeys) PreKey(id keys.PreKeyID) (keys.PreKey, error) {
	if k, ok := p.ec[id]; ok {
		return k, nil
	}
	return keys.PreKey{}, session.ErrNoPreKey
}

func (p preKeys) KEMPreKey(id keys.KEMPreKeyID) (keys.KEMPreKey, error) {
	if k, ok := p.kem[id]; ok {
		return k, nil
	}
	return keys.KEMPreKey{}, session.ErrNoPreKey
}

func randomRegistrationID() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])%maxRegistrationID + 1
}

// signedPreKeys makes a signed EC prekey and a last-resort KEM prekey,
// keeping their private halves. The caller holds d.mu.
func (d *Device) signedPreKeysLocked() (*wirepb.SignedPreKey, *wirepb.KEMPreKey, error) {
	d.nextPre++
	now := time.Now()
	spk, err := keys.GenerateSignedPreKey(rand.Reader, d.Identity.Private, keys.SignedPreKeyID(d.nextPre), now)
	if err != nil {
		return nil, nil, err
	}
	kpk, err := keys.GenerateKEMPreKey(rand.Reader, d.Identity.Private, keys.DefaultKEM, keys.KEMPreKeyID(d.nextPre), now)
	if err != nil {
		return nil, nil, err
	}
	d.prekeys.signed[spk.ID], d.prekeys.kem[kpk.ID] = spk, kpk
	return &wirepb.SignedPreKey{Id: uint32(spk.ID), Key: spk.Key.Public.Bytes(), Signature: spk.Signature[:]},
		&wirepb.KEMPreKey{Id: uint32(kpk.ID), Key: kpk.Key.Public.Bytes(), Signature: kpk.Signature[:]}, nil
}

// Register creates an account with one device from source: it asks for a
// registration challenge, solves its proof of work (fast only on a server
// run with a small -pow-difficulty), and registers. The anonymous
// connection it used is closed.
func Register(ctx context.Context, dialer *Dialer, source netip.Addr) (*Device, error) {
	d := &Device{RegistrationID: randomRegistrationID(), Source: source, prekeys: newPreKeys(),
		sessions: map[peerAddr]*session.Record{}}
	var err error
	if d.Identity, err = keys.GenerateKeyPair(rand.Reader); err != nil {
		return nil, err
	}
	if d.Auth, err = keys.GenerateKeyPair(rand.Reader); err != nil {
		return nil, err
	}
	var profileKey [32]byte
	rand.Read(profileKey[:])
	if d.AccessKey, err = access.Derive(profileKey[:]); err != nil {
		return nil, err
	}
	d.mu.Lock()
	spk, kem, err := d.signedPreKeysLocked()
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c, err := dialer.Dial(ctx, source)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	resp, err := Do(ctx, c, &wirepb.GetRegistrationChallenge{}, nil)
	if err != nil {
		return nil, fmt.Errorf("registration challenge: %w", err)
	}
	ch := resp.GetRegistrationChallenge()
	sol, ok := pow.Solve(ch.GetSeed(), int(ch.GetDifficulty()), ctx.Done())
	if !ok {
		return nil, fmt.Errorf("proof of work: %w", context.Cause(ctx))
	}
	resp, err = Do(ctx, c, &wirepb.Register{
		Seed: ch.GetSeed(), Solution: sol, IdentityKey: d.Identity.Public.Bytes(), AuthKey: d.Auth.Public.Bytes(),
		RegistrationId: d.RegistrationID, SignedPrekey: spk, KemLastResort: kem, UnidentifiedAccessKey: d.AccessKey[:],
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	if err := d.registered(resp.GetRegistered()); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Device) registered(r *wirepb.Registered) error {
	if len(r.GetAccountId()) != len(d.Account) {
		return errors.New("registered: malformed account id")
	}
	root, err := keys.ParsePublicKey(r.GetTrustRoot())
	if err != nil {
		return fmt.Errorf("registered: trust root: %w", err)
	}
	d.Account, d.ID = AccountID(r.GetAccountId()), DeviceID(r.GetDeviceId())
	d.Trust = sealed.Trust{Roots: []keys.PublicKey{root}}
	return nil
}

// Link adds a device to d's account: it takes a link token on authConn (an
// authenticated connection of d) and sends LinkDevice on anon (an anonymous
// connection, whose source address pays the registration rate limit). The
// new device's connections come from source. Every device Link makes for an
// account shares one signed prekey and one last-resort KEM prekey (made
// once, signed by the identity key): the new devices are for holding
// connections, not for receiving first messages.
func (d *Device) Link(ctx context.Context, authConn, anon *wsclient.Conn, source netip.Addr) (*Device, error) {
	d.mu.Lock()
	if d.linkSPK == nil {
		spk, kem, err := d.signedPreKeysLocked()
		if err != nil {
			d.mu.Unlock()
			return nil, err
		}
		d.linkSPK, d.linkKEM = spk, kem
	}
	spk, kem := d.linkSPK, d.linkKEM
	d.mu.Unlock()
	n := &Device{RegistrationID: randomRegistrationID(), Identity: d.Identity, AccessKey: d.AccessKey, Source: source,
		prekeys: newPreKeys(), sessions: map[peerAddr]*session.Record{}}
	var err error
	if n.Auth, err = keys.GenerateKeyPair(rand.Reader); err != nil {
		return nil, err
	}
	resp, err := Do(ctx, authConn, &wirepb.GetLinkToken{}, nil)
	if err != nil {
		return nil, fmt.Errorf("link token: %w", err)
	}
	resp, err = Do(ctx, anon, &wirepb.LinkDevice{LinkToken: resp.GetLinkToken().GetToken(), AuthKey: n.Auth.Public.Bytes(),
		RegistrationId: n.RegistrationID, SignedPrekey: spk, KemLastResort: kem}, nil)
	if err != nil {
		return nil, fmt.Errorf("link device: %w", err)
	}
	if err := n.registered(resp.GetRegistered()); err != nil {
		return nil, err
	}
	return n, nil
}

// Connect opens an authenticated connection for the device. The server
// then pushes the device's mailbox on it.
func (d *Device) Connect(ctx context.Context, dialer *Dialer) (*wsclient.Conn, error) {
	c, err := dialer.Dial(ctx, d.Source)
	if err != nil {
		return nil, err
	}
	if err := d.Authenticate(ctx, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Authenticate answers a challenge on c, making it the device's
// authenticated connection.
func (d *Device) Authenticate(ctx context.Context, c *wsclient.Conn) error {
	resp, err := Do(ctx, c, &wirepb.GetChallenge{}, nil)
	if err != nil {
		return fmt.Errorf("challenge: %w", err)
	}
	sig, err := d.Auth.Private.Sign(rand.Reader, wire.AuthMessage(resp.GetChallenge().GetNonce(), d.Account[:], uint32(d.ID)))
	if err != nil {
		return err
	}
	if _, err := Do(ctx, c, &wirepb.Authenticate{AccountId: d.Account[:], DeviceId: uint32(d.ID), Signature: sig[:]}, nil); err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	return nil
}

// UploadPreKeys makes n one-time EC and n one-time KEM prekeys and uploads
// them on authConn.
func (d *Device) UploadPreKeys(ctx context.Context, authConn *wsclient.Conn, n int) error {
	up := &wirepb.UploadPreKeys{}
	d.mu.Lock()
	for range n {
		d.nextPre++
		pk, err := keys.GeneratePreKey(rand.Reader, keys.PreKeyID(d.nextPre))
		if err != nil {
			d.mu.Unlock()
			return err
		}
		kpk, err := keys.GenerateKEMPreKey(rand.Reader, d.Identity.Private, keys.DefaultKEM, keys.KEMPreKeyID(d.nextPre), time.Now())
		if err != nil {
			d.mu.Unlock()
			return err
		}
		d.prekeys.ec[pk.ID], d.prekeys.kem[kpk.ID] = pk, kpk
		up.OneTimeEc = append(up.OneTimeEc, &wirepb.PreKey{Id: uint32(pk.ID), Key: pk.Key.Public.Bytes()})
		up.OneTimeKem = append(up.OneTimeKem, &wirepb.KEMPreKey{Id: uint32(kpk.ID), Key: kpk.Key.Public.Bytes(), Signature: kpk.Signature[:]})
	}
	d.mu.Unlock()
	if _, err := Do(ctx, authConn, up, nil); err != nil {
		return fmt.Errorf("upload prekeys: %w", err)
	}
	return nil
}

// UseCertificate makes Seal present cert instead of the one the server
// issued: for tests of what receivers do with forged or expired ones.
func (d *Device) UseCertificate(cert *sealed.SenderCertificate) {
	d.mu.Lock()
	d.cert = cert
	d.mu.Unlock()
}

// FetchCertificate gets a sender certificate on authConn and keeps it for
// Seal.
func (d *Device) FetchCertificate(ctx context.Context, authConn *wsclient.Conn) error {
	resp, err := Do(ctx, authConn, &wirepb.GetSenderCertificate{}, nil)
	if err != nil {
		return fmt.Errorf("sender certificate: %w", err)
	}
	cert, err := sealed.ParseSenderCertificate(resp.GetSenderCertificate().GetCertificate())
	if err != nil {
		return fmt.Errorf("sender certificate: %w", err)
	}
	d.mu.Lock()
	d.cert = cert
	d.mu.Unlock()
	return nil
}
