package benchclient

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/session"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// ErrNoCertificate is returned by Seal before FetchCertificate.
var ErrNoCertificate = errors.New("benchclient: no sender certificate; call FetchCertificate")

// Peer is an account a device sends to: its access key and its devices, each
// with a session the sender started from the device's bundle. A Peer is
// safe for concurrent use (Seal serializes on the sender's lock only for
// the ratchet step, not for sealing).
type Peer struct {
	Account   AccountID
	AccessKey []byte
	from      *Device
	identity  keys.PublicKey
	devices   []peerDevice
}

type peerDevice struct {
	id     DeviceID
	regID  uint32
	record *session.Record // guarded by from.mu
}

// Initiate fetches the bundles of account on anon (an anonymous connection)
// and starts a session (PQXDH) with each of its devices. accessKey is the
// account's unidentified-access key, which its owner shared.
func (d *Device) Initiate(ctx context.Context, anon *wsclient.Conn, account AccountID, accessKey []byte) (*Peer, error) {
	resp, err := Do(ctx, anon, &wirepb.GetBundles{AccountId: account[:]}, nil)
	if err != nil {
		return nil, fmt.Errorf("get bundles: %w", err)
	}
	bs := resp.GetBundles()
	identity, err := keys.ParsePublicKey(bs.GetIdentityKey())
	if err != nil {
		return nil, fmt.Errorf("bundles: identity key: %w", err)
	}
	p := &Peer{Account: account, AccessKey: append([]byte(nil), accessKey...), from: d, identity: identity}
	now := time.Now()
	for _, b := range bs.GetBundles() {
		xb, err := wire.SessionBundle(identity, b)
		if err != nil {
			return nil, err
		}
		r := &session.Record{}
		if err := r.Initiate(rand.Reader, d.Identity, d.RegistrationID, xb, now); err != nil {
			return nil, fmt.Errorf("device %d: %w", b.GetDeviceId(), err)
		}
		dev := DeviceID(b.GetDeviceId())
		p.devices = append(p.devices, peerDevice{id: dev, regID: b.GetRegistrationId(), record: r})
		d.mu.Lock()
		d.sessions[peerAddr{account, dev}] = r
		d.mu.Unlock()
	}
	return p, nil
}

// Seal encrypts plaintext for every device of the peer (one Double Ratchet
// step each) and wraps each ciphertext in a sealed-sender v1 envelope: the
// Send to put on an anonymous connection. Each call advances the ratchets,
// so envelopes must be delivered within ratchet.MaxForwardJump of each
// other, which any benchmark here is.
func (p *Peer) Seal(plaintext []byte) (*wirepb.Send, error) {
	d := p.from
	now := time.Now()
	type inner struct {
		typ  sealed.MessageType
		body []byte
	}
	inners := make([]inner, len(p.devices))
	d.mu.Lock()
	cert := d.cert
	for i, pd := range p.devices {
		typ, body, err := pd.record.Encrypt(plaintext, now)
		if err != nil {
			d.mu.Unlock()
			return nil, fmt.Errorf("encrypt for device %d: %w", pd.id, err)
		}
		inners[i].typ, inners[i].body = sealed.TypeWhisper, body
		if typ == ratchet.TypePreKey {
			inners[i].typ = sealed.TypePreKey
		}
	}
	d.mu.Unlock()
	if cert == nil {
		return nil, ErrNoCertificate
	}
	send := &wirepb.Send{Recipient: p.Account[:], AccessKey: p.AccessKey}
	for i, pd := range p.devices {
		usmc, err := sealed.NewUSMC(inners[i].typ, cert, inners[i].body, sealed.HintResendable, nil)
		if err != nil {
			return nil, err
		}
		msg, err := sealed.SealV1(rand.Reader, usmc, p.identity, d.Identity)
		if err != nil {
			return nil, fmt.Errorf("seal for device %d: %w", pd.id, err)
		}
		send.Envelopes = append(send.Envelopes, &wirepb.OutgoingEnvelope{DeviceId: uint32(pd.id), RegistrationId: pd.regID, Content: msg})
	}
	return send, nil
}

// Opened is a decrypted envelope.
type Opened struct {
	Plaintext []byte
	Sender    AccountID
	Device    DeviceID
	// SenderIdentity is the sender's identity key, from its certificate.
	SenderIdentity keys.PublicKey
}

// Open unseals a received envelope (checking its sender certificate against
// d.Trust) and decrypts it with the session of its sender, starting that
// session (PQXDH as responder) from a PreKeySignalMessage. A repeat of an
// envelope already opened fails (its message key is gone): callers that
// may see redeliveries recognize them before calling Open.
func (d *Device) Open(content []byte) (*Opened, error) {
	local := sealed.Local{Identity: d.Identity, ACI: sealed.ACI(d.Account), Device: sealed.DeviceID(d.ID)}
	sender, u, err := sealed.Unseal(content, local, d.Trust, time.Now())
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	aci, err := sealed.ParseServiceID(sender.UUID)
	if err != nil {
		return nil, fmt.Errorf("unseal: sender: %w", err)
	}
	out := &Opened{Sender: AccountID(aci.UUID()), Device: DeviceID(sender.Device), SenderIdentity: sender.IdentityKey}
	var pm *ratchet.PreKeyMessage
	var m *ratchet.Message
	switch u.Type() {
	case sealed.TypePreKey:
		if pm, err = ratchet.ParsePreKeyMessage(u.Contents()); err != nil {
			return nil, err
		}
	case sealed.TypeWhisper:
		if m, err = ratchet.ParseMessage(u.Contents()); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unseal: content type %d", u.Type())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key := peerAddr{out.Sender, out.Device}
	r, ok := d.sessions[key]
	if !ok {
		r = &session.Record{}
	}
	if pm != nil {
		res, err := r.DecryptPreKey(rand.Reader, &session.Local{Identity: d.Identity, RegistrationID: d.RegistrationID, PreKeys: d.prekeys}, pm)
		if err != nil {
			return nil, err
		}
		out.Plaintext = res.Plaintext
	} else if out.Plaintext, err = r.Decrypt(rand.Reader, m); err != nil {
		return nil, err
	}
	d.sessions[key] = r
	return out, nil
}

// ErrNoSession is returned by PeerOf for a device d has no session with.
var ErrNoSession = errors.New("benchclient: no session with this device")

// PeerOf returns a Peer for replying to an account whose devices have
// already started sessions with d (d opened a first message from each):
// devices maps each device to its registration id, identity is the
// account's identity key (Opened.SenderIdentity) and accessKey its
// unidentified-access key.
func (d *Device) PeerOf(account AccountID, accessKey []byte, identity keys.PublicKey, devices map[DeviceID]uint32) (*Peer, error) {
	p := &Peer{Account: account, AccessKey: append([]byte(nil), accessKey...), from: d, identity: identity}
	d.mu.Lock()
	defer d.mu.Unlock()
	for dev, reg := range devices {
		r, ok := d.sessions[peerAddr{account, dev}]
		if !ok {
			return nil, fmt.Errorf("%w: device %d", ErrNoSession, dev)
		}
		p.devices = append(p.devices, peerDevice{id: dev, regID: reg, record: r})
	}
	return p, nil
}
