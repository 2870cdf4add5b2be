package client

import (
	"context"
	"crypto/hpke"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// Device linking. The new device opens a provisioning address on the
// server and shows it, with a public key of its own, as a link (a QR
// code); a device of the account approves it by sending the account's
// identity and state there, encrypted to that key with HPKE (RFC 9180)
// over ML-KEM-768 + X25519, so that neither the server nor a recorder of
// today's traffic with tomorrow's quantum computer reads it. The message
// carries a one-time link token, with which the new device joins the
// account.

// Link constants, each with its reason.
const (
	// linkScheme and linkHost make a link: sotto://link?addr=…&key=….
	linkScheme = "sotto"
	linkHost   = "link"
	// linkInfo binds the HPKE context to its one use.
	linkInfo = "sotto link v1"
	// maxProvisioningBody is the server's bound on a provisioning
	// message (wire: 64 KiB); contacts beyond it are left out.
	maxProvisioningBody = 64 << 10
)

func linkSuite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.MLKEM768X25519(), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305()
}

// provisioning is what an approving device sends a new one.
type provisioning struct {
	Account      []byte          `json:"account"`
	Identity     []byte          `json:"identity"` // keys.KeyPair
	ProfileKey   []byte          `json:"profile_key"`
	LinkToken    []byte          `json:"link_token"`
	Username     string          `json:"username,omitempty"`
	ContactsOnly bool            `json:"contacts_only,omitempty"`
	Contacts     []contactRecord `json:"contacts,omitempty"`
}

// LinkRequest is a new device waiting for a device of the account to
// approve it.
type LinkRequest struct {
	opts Options
	conn *wsclient.Conn
	priv hpke.PrivateKey
	uri  string
}

// NewLinkRequest starts linking a new device with an empty store: show
// URI (as a QR code) to a device of the account, which calls ApproveLink
// with it; then Wait. The address lives while the request is open, at most
// the server's ProvisioningTTL (minutes).
func NewLinkRequest(ctx context.Context, opts Options) (*LinkRequest, error) {
	if err := checkEmpty(ctx, opts.Store); err != nil {
		return nil, err
	}
	shell, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	conn, err := shell.dial(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := shell.do(ctx, conn, &wirepb.OpenProvisioning{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("client: open a provisioning address: %w", err)
	}
	kem, _, _ := linkSuite()
	priv, err := kem.GenerateKey()
	if err != nil {
		conn.Close()
		return nil, err
	}
	q := url.Values{}
	q.Set("addr", base64.RawURLEncoding.EncodeToString(resp.GetProvisioningAddress().GetAddress()))
	q.Set("key", base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()))
	u := url.URL{Scheme: linkScheme, Host: linkHost, RawQuery: q.Encode()}
	return &LinkRequest{opts: opts, conn: conn, priv: priv, uri: u.String()}, nil
}

// URI is the link to show.
func (l *LinkRequest) URI() string { return l.uri }

// Close gives up the request.
func (l *LinkRequest) Close() error { return l.conn.Close() }

// Wait waits for the approval, joins the account, and returns the new
// device's Client with the account's keys and contacts in its store.
func (l *LinkRequest) Wait(ctx context.Context) (*Client, error) {
	defer l.conn.Close()
	var body []byte
	for body == nil {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-l.conn.Done():
			return nil, fmt.Errorf("client: the provisioning address closed before an approval came (%v)", l.conn.Err())
		case p := <-l.conn.Pushes():
			body = p.GetProvisioningMessage().GetBody()
		}
	}
	_, kdf, aead := linkSuite()
	plain, err := hpke.Open(l.priv, kdf, aead, []byte(linkInfo), body)
	if err != nil {
		return nil, fmt.Errorf("client: the approval does not open: %w", err)
	}
	var p provisioning
	if err := jsonUnmarshal(plain, &p); err != nil || len(p.Account) != len(AccountID{}) {
		return nil, errors.New("client: the approval is malformed")
	}
	c, err := newClient(l.opts)
	if err != nil {
		return nil, err
	}
	if err := c.identity.UnmarshalBinary(p.Identity); err != nil {
		return nil, fmt.Errorf("client: the approval's identity key: %w", err)
	}
	c.profileKey = p.ProfileKey
	dk, err := newDeviceKeys(c.identity)
	if err != nil {
		return nil, err
	}
	spk, kem := dk.wire()
	resp, err := c.do(ctx, l.conn, &wirepb.LinkDevice{LinkToken: p.LinkToken, AuthKey: dk.auth.Public.Bytes(),
		RegistrationId: dk.registrationID, SignedPrekey: spk, KemLastResort: kem})
	if wsclient.Code(err) == wirepb.Code_EXPIRED {
		return nil, errors.New("client: the approval expired: link again")
	}
	if err != nil {
		return nil, fmt.Errorf("client: link: %w", err)
	}
	reg := resp.GetRegistered()
	if string(reg.GetAccountId()) != string(p.Account) {
		return nil, errors.New("client: link: the server joined another account")
	}
	writes, err := c.use(dk, &accountRecord{Server: l.opts.Server, ContactsOnly: p.ContactsOnly, Username: p.Username}, reg)
	if err != nil {
		return nil, err
	}
	for i := range p.Contacts {
		ct := &p.Contacts[i]
		if len(ct.Account) != len(AccountID{}) {
			continue
		}
		ct.Devices = nil // sessions are per device: this one starts its own
		writes = append(writes, Write{contactKey(AccountID(ct.Account)), marshalJSON(ct)})
	}
	if err := c.store.Apply(ctx, writes); err != nil {
		return nil, fmt.Errorf("client: store the linked account: %w", err)
	}
	return c, nil
}

// ApproveLink approves a new device that shows uri: it joins this account
// with its keys and contacts. Only approve a link shown on a device you
// hold.
func (c *Client) ApproveLink(ctx context.Context, uri string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != linkScheme || u.Host != linkHost {
		return fmt.Errorf("client: %q is not a Sotto device link", uri)
	}
	addr, err1 := base64.RawURLEncoding.DecodeString(u.Query().Get("addr"))
	keyBytes, err2 := base64.RawURLEncoding.DecodeString(u.Query().Get("key"))
	if err1 != nil || err2 != nil || len(addr) == 0 {
		return errors.New("client: the device link is malformed")
	}
	kem, kdf, aead := linkSuite()
	pub, err := kem.NewPublicKey(keyBytes)
	if err != nil {
		return fmt.Errorf("client: the device link's key: %w", err)
	}
	rec, err := c.accountRecord(ctx)
	if err != nil {
		return err
	}
	var contacts []contactRecord
	err = c.store.Scan(ctx, prefixContact, func(k string, v []byte) error {
		var ct contactRecord
		if jsonUnmarshal(v, &ct) == nil && AccountID(ct.Account) != c.account {
			ct.Devices = nil
			contacts = append(contacts, ct)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return c.withAuth(ctx, func(conn *wsclient.Conn) error {
		resp, err := c.do(ctx, conn, &wirepb.GetLinkToken{})
		if err != nil {
			return fmt.Errorf("client: link token: %w", err)
		}
		p := provisioning{Account: c.account[:], Identity: rec.Identity, ProfileKey: c.profileKey,
			LinkToken: resp.GetLinkToken().GetToken(), Username: rec.Username, ContactsOnly: rec.ContactsOnly, Contacts: contacts}
		var body []byte
		for {
			body, err = hpke.Seal(pub, kdf, aead, []byte(linkInfo), marshalJSON(&p))
			if err != nil {
				return fmt.Errorf("client: seal the approval: %w", err)
			}
			if len(body) <= maxProvisioningBody || len(p.Contacts) == 0 {
				break
			}
			p.Contacts = p.Contacts[:len(p.Contacts)/2] // the rest sync later
		}
		c.ownStale.Store(true)
		if _, err := c.do(ctx, conn, &wirepb.SendProvisioning{Address: addr, Body: body}); err != nil {
			if wsclient.Code(err) == wirepb.Code_EXPIRED {
				return errors.New("client: the link expired or was used: ask the new device for a new one")
			}
			return fmt.Errorf("client: send the approval: %w", err)
		}
		return nil
	})
}
