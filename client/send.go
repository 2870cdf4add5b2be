package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sotto-chat/sotto/client/internal/content"
	"github.com/sotto-chat/sotto/client/internal/content/contentpb"
	"github.com/sotto-chat/sotto/internal/access"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/session"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// maxSendAttempts bounds the retries of a send whose device list was
// stale (each retry follows the server's list of missing, extra and stale
// devices; a second mismatch means the devices changed again meanwhile).
const maxSendAttempts = 3

// ErrNoDevices is returned for an account the server knows no devices of.
var ErrNoDevices = errors.New("client: the account has no devices")

// ErrUnapprovedDevice is returned when the server lists a device of an
// account whose keys the account's identity key did not sign: a device
// the account never approved (only its devices hold that key), which the
// server added on its own. Nothing is sent to the account while it is
// listed.
var ErrUnapprovedDevice = errors.New("client: the server lists a device this account never approved; nothing was sent")

// errNoAccountThere: the server knows no such account.
var errNoAccountThere = errors.New("client: no such account on this server")

// ErrQueued is returned by SendText when the server cannot be reached:
// the message is stored, queued, and goes out (in order with any others)
// when the server is back: on the next SendText, or when Run connects.
var ErrQueued = errors.New("client: the server is unreachable: the message is queued and goes out when it is back")

// SendText sends a text message to an account and stores it in the
// conversation. It returns once the server has stored the message for
// every device of the recipient, or with ErrQueued (and the message,
// StatusQueued) if the server cannot be reached.
func (c *Client) SendText(ctx context.Context, to AccountID, text string) (Message, error) {
	if to == c.account {
		return Message{}, errors.New("client: a message to this account itself: its other devices get copies of what it sends")
	}
	now := time.Now()
	m := Message{ID: newMessageID(), With: to, Outgoing: true, FromDevice: c.device, Text: text,
		SentAt: now.Truncate(time.Millisecond), ReceivedAt: now, Status: StatusQueued}
	plaintext, err := c.encodeText(m.ID, m.SentAt, text)
	if err != nil {
		return Message{}, err
	}
	ct, err := c.contact(ctx, to)
	if err != nil {
		return Message{}, err
	}
	switch {
	case ct.Blocked:
		return Message{}, ErrBlocked
	case ct.Changed:
		return Message{}, ErrIdentityChanged
	}
	c.outboxMu.Lock()
	defer c.outboxMu.Unlock()
	// Stored first, with the message: what was typed is never lost.
	mk := messageKey(&m)
	if err := c.store.Apply(ctx, []Write{
		{mk, marshalJSON(recordOf(&m))},
		{seenKey(to, m.ID), []byte(mk)},
		{outboxKey(&m), marshalJSON(&outboxRecord{To: to[:], MessageKey: mk, Content: plaintext})},
	}); err != nil {
		return Message{}, fmt.Errorf("client: store the message: %w", err)
	}
	if !ct.Accepted {
		if _, err := c.updateContact(ctx, to, func(ct *contactRecord) { ct.Accepted = true }); err != nil {
			return Message{}, err
		}
	}
	sent, err := c.flushOutboxLocked(ctx)
	if st, ok := sent[m.ID]; ok {
		m.Status = st.status
		return m, st.err
	}
	if err == nil {
		err = ErrQueued
	}
	return m, err
}

// outcome is what became of one queued message.
type outcome struct {
	status MessageStatus
	err    error
}

// flushOutbox sends what waits in the outbox.
func (c *Client) flushOutbox(ctx context.Context) error {
	c.outboxMu.Lock()
	defer c.outboxMu.Unlock()
	_, err := c.flushOutboxLocked(ctx)
	return err
}

// flushOutboxLocked sends the queued messages in order until the server
// cannot be reached (then it returns an error wrapping ErrQueued). A
// message the server refuses for good fails and leaves the queue; the
// others go on. c.outboxMu is held.
func (c *Client) flushOutboxLocked(ctx context.Context) (map[MessageID]outcome, error) {
	type entry struct {
		key string
		rec outboxRecord
	}
	var queued []entry
	err := c.store.Scan(ctx, prefixOutbox, func(k string, v []byte) error {
		var r outboxRecord
		if err := jsonUnmarshal(v, &r); err != nil || len(r.To) != len(AccountID{}) {
			return fmt.Errorf("stored outbox entry %s is malformed", k)
		}
		queued = append(queued, entry{k, r})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	done := map[MessageID]outcome{}
	for _, q := range queued {
		err := c.send(ctx, AccountID(q.rec.To), q.rec.Content)
		if err != nil && transient(err) {
			return done, fmt.Errorf("%w (%v)", ErrQueued, err)
		}
		status := StatusSent
		if err != nil {
			status = StatusFailed
		} else if serr := c.syncSent(ctx, AccountID(q.rec.To), q.rec.Content); serr != nil {
			// The message is out; the other devices miss its transcript.
			c.log.Info("a sync transcript was not sent", "err", serr)
		}
		m, uerr := c.setStatus(ctx, q.rec.MessageKey, status, []Write{{Key: q.key}})
		if uerr != nil {
			return done, uerr
		}
		done[m.ID] = outcome{status, err}
		c.emitNow(StatusEvent{m})
	}
	return done, nil
}

// transient reports whether a send failed for want of the server (so it
// is worth trying again later), not because the server refused it.
func transient(err error) bool {
	var se *wsclient.StatusError
	if !errors.As(err, &se) {
		return !errors.Is(err, ErrNoDevices) && !errors.Is(err, errNoAccountThere) && !errors.Is(err, ErrIdentityChanged) &&
			!errors.Is(err, ErrBlocked) && !errors.Is(err, ErrUnapprovedDevice)
	}
	return se.Code == wirepb.Code_RATE_LIMITED || se.Code == wirepb.Code_UNAVAILABLE || se.Code == wirepb.Code_INTERNAL
}

// setStatus changes a stored message's status, with more writes in the
// same change, and returns the message.
func (c *Client) setStatus(ctx context.Context, key string, status MessageStatus, more []Write) (Message, error) {
	b, err := c.store.Get(ctx, key)
	if err != nil {
		return Message{}, fmt.Errorf("client: message %s: %w", key, err)
	}
	var r messageRecord
	if err := jsonUnmarshal(b, &r); err != nil {
		return Message{}, fmt.Errorf("client: stored message: %w", err)
	}
	r.Status = int(status)
	if err := c.store.Apply(ctx, append(more, Write{key, marshalJSON(&r)})); err != nil {
		return Message{}, fmt.Errorf("client: %w", err)
	}
	return r.message()
}

// encodeText encodes a text message, with this account's profile key for
// the recipient.
func (c *Client) encodeText(id MessageID, at time.Time, text string) ([]byte, error) {
	b, err := content.Encode(&contentpb.Content{ProfileKey: c.profileKey, Body: &contentpb.Content_Data{Data: &contentpb.DataMessage{
		Id: id[:], SentAt: at.UnixMilli(), Text: text}}})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return b, nil
}

// send encrypts plaintext for every device of the account and sends it
// sealed, following the server's corrections to the device list.
func (c *Client) send(ctx context.Context, to AccountID, plaintext []byte) error {
	return c.sendWith(ctx, to, plaintext, false)
}

// sendWith is send; ephemeral asks the server to deliver only to devices
// connected now and store nothing (typing indicators).
func (c *Client) sendWith(ctx context.Context, to AccountID, plaintext []byte, ephemeral bool) error {
	cert, err := c.certificate(ctx)
	if err != nil {
		return err
	}
	anon, err := c.anonConn(ctx)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		ct, err := c.contact(ctx, to)
		if err != nil {
			return err
		}
		if ct.Changed {
			return ErrIdentityChanged
		}
		if ct.Blocked {
			return ErrBlocked
		}
		if len(ct.Devices) == 0 {
			if err := c.startSessions(ctx, anon, ct, 0); err != nil {
				return err
			}
		}
		req, err := c.seal(ctx, ct, cert, plaintext)
		if err != nil {
			return err
		}
		req.Ephemeral = ephemeral
		_, err = c.do(ctx, anon, req)
		var se *wsclient.StatusError
		if err == nil || attempt == maxSendAttempts || !errors.As(err, &se) || se.Code != wirepb.Code_MISMATCHED_DEVICES {
			if err != nil {
				return fmt.Errorf("client: send: %w", err)
			}
			return nil
		}
		if err := c.fixDevices(ctx, anon, ct, se.Status.GetMismatches()); err != nil {
			return err
		}
	}
}

// seal encrypts plaintext with the session of each of the contact's
// devices and seals each ciphertext (sealed sender v1).
func (c *Client) seal(ctx context.Context, ct *contactRecord, cert *sealed.SenderCertificate, plaintext []byte) (*wirepb.Send, error) {
	to := AccountID(ct.Account)
	identity, err := keys.ParseStoredPublicKey(ct.Identity)
	if err != nil {
		return nil, fmt.Errorf("client: contact identity: %w", err)
	}
	req := &wirepb.Send{Recipient: to[:]}
	if len(ct.ProfileKey) > 0 {
		k, err := access.Derive(ct.ProfileKey)
		if err != nil {
			return nil, err
		}
		req.AccessKey = k[:]
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// The devices as they are now, under c.mu: another send's retry
	// (fixDevices) may have dropped a device and its session since ct
	// was read, which would leave this one encrypting for a device
	// without a session (a receipt sent while a device was replaced).
	fresh, err := c.contact(ctx, to)
	if err != nil {
		return nil, err
	}
	var writes []Write
	for _, dev := range slices.Sorted(maps.Keys(fresh.Devices)) {
		r, err := c.sessionLocked(ctx, to, dev)
		if err != nil {
			return nil, err
		}
		typ, body, err := r.Encrypt(plaintext, now)
		if err != nil {
			return nil, fmt.Errorf("client: encrypt for device %d: %w", dev, err)
		}
		st := sealed.TypeWhisper
		if typ == ratchet.TypePreKey {
			st = sealed.TypePreKey
		}
		usmc, err := sealed.NewUSMC(st, cert, body, sealed.HintResendable, nil)
		if err != nil {
			return nil, err
		}
		msg, err := sealed.SealV1(rand.Reader, usmc, identity, c.identity)
		if err != nil {
			return nil, fmt.Errorf("client: seal for device %d: %w", dev, err)
		}
		req.Envelopes = append(req.Envelopes, &wirepb.OutgoingEnvelope{DeviceId: uint32(dev), RegistrationId: fresh.Devices[dev], Content: msg})
		w, err := sessionWrite(to, dev, r)
		if err != nil {
			return nil, err
		}
		writes = append(writes, w)
	}
	// The ratchets advanced: store them before the envelopes leave, so
	// that a crash never reuses a message key.
	if err := c.store.Apply(ctx, writes); err != nil {
		return nil, fmt.Errorf("client: store sessions: %w", err)
	}
	return req, nil
}

// fixDevices applies the server's corrections: sessions with extra and
// stale devices go; missing and stale ones get new sessions.
func (c *Client) fixDevices(ctx context.Context, anon *wsclient.Conn, ct *contactRecord, ms []*wirepb.RecipientMismatch) error {
	to := AccountID(ct.Account)
	var writes []Write
	var fetch, drop []DeviceID
	for _, m := range ms {
		if AccountID(m.GetAccountId()) != to {
			continue
		}
		for _, d := range append(slices.Clone(m.GetExtra()), m.GetStale()...) {
			drop = append(drop, DeviceID(d))
		}
		for _, d := range append(slices.Clone(m.GetMissing()), m.GetStale()...) {
			fetch = append(fetch, DeviceID(d))
		}
	}
	c.mu.Lock()
	fresh, w, err := c.updateContactLocked(ctx, to, func(st *contactRecord) {
		for _, dev := range drop {
			delete(st.Devices, dev)
		}
	})
	if err != nil {
		c.mu.Unlock()
		return err
	}
	for _, dev := range drop {
		delete(c.sessions, addr{to, dev})
		writes = append(writes, Write{Key: sessionKey(to, dev)})
	}
	writes = append(writes, w)
	err = c.store.Apply(ctx, writes)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	*ct = *fresh
	for _, dev := range fetch {
		if err := c.startSessions(ctx, anon, ct, dev); err != nil {
			return err
		}
	}
	return nil
}

// startSessions fetches the bundles of one device of the contact (dev) or
// of all (0) and starts a session with each (PQXDH as initiator).
func (c *Client) startSessions(ctx context.Context, anon *wsclient.Conn, ct *contactRecord, dev DeviceID) error {
	to := AccountID(ct.Account)
	resp, err := c.do(ctx, anon, &wirepb.GetBundles{AccountId: to[:], DeviceId: uint32(dev)})
	if wsclient.Code(err) == wirepb.Code_NOT_FOUND {
		return fmt.Errorf("%w: %s", errNoAccountThere, to)
	}
	if err != nil {
		return fmt.Errorf("client: get bundles: %w", err)
	}
	bs := resp.GetBundles()
	identity, err := keys.ParsePublicKey(bs.GetIdentityKey())
	if err != nil {
		return fmt.Errorf("client: bundles: identity key: %w", err)
	}
	if len(bs.GetBundles()) == 0 {
		return ErrNoDevices
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var changed, was bool
	fresh, w, err := c.updateContactLocked(ctx, to, func(st *contactRecord) {
		changed, was = noteIdentity(st, identity.Bytes())
	})
	if err != nil {
		return err
	}
	if changed {
		// Re-registered, or someone in the middle: sessions start over
		// with the new key, and a verified contact must be verified
		// again before anything is sent.
		c.emitNow(IdentityChangedEvent{With: to, WasVerified: was})
		if err := c.store.Apply(ctx, []Write{w}); err != nil {
			return fmt.Errorf("client: %w", err)
		}
		if fresh.Changed {
			*ct = *fresh
			return ErrIdentityChanged
		}
	}
	if fresh.Devices == nil {
		fresh.Devices = map[DeviceID]uint32{}
	}
	var writes []Write
	for _, b := range bs.GetBundles() {
		xb, err := wire.SessionBundle(identity, b)
		if err != nil {
			return err
		}
		r := &session.Record{}
		if err := r.Initiate(rand.Reader, c.identity, c.registrationID, xb, now); err != nil {
			// Its prekeys are not signed by the account's identity key:
			// no device of the account made it.
			return fmt.Errorf("%w: device %d of %s (%v)", ErrUnapprovedDevice, b.GetDeviceId(), to, err)
		}
		d := DeviceID(b.GetDeviceId())
		c.sessions[addr{to, d}] = r
		fresh.Devices[d] = b.GetRegistrationId()
		w, err := sessionWrite(to, d, r)
		if err != nil {
			return err
		}
		writes = append(writes, w)
	}
	writes = append(writes, Write{contactKey(to), marshalJSON(fresh)})
	if err := c.store.Apply(ctx, writes); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	*ct = *fresh
	return nil
}

// contact loads what this device knows of an account (an empty record
// for one it never met).
func (c *Client) contact(ctx context.Context, a AccountID) (*contactRecord, error) {
	b, err := c.store.Get(ctx, contactKey(a))
	if errors.Is(err, ErrNotFound) {
		return &contactRecord{Account: a[:]}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	ct := &contactRecord{}
	if err := jsonUnmarshal(b, ct); err != nil || len(ct.Account) != len(a) {
		return nil, fmt.Errorf("client: stored contact %s is malformed", a)
	}
	return ct, nil
}

// sessionLocked returns the session with a device, from memory or the
// store (an empty record if there is none). c.mu is held.
func (c *Client) sessionLocked(ctx context.Context, a AccountID, d DeviceID) (*session.Record, error) {
	if r, ok := c.sessions[addr{a, d}]; ok {
		return r, nil
	}
	r := &session.Record{}
	b, err := c.store.Get(ctx, sessionKey(a, d))
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("client: %w", err)
	default:
		if err := r.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("client: stored session with %s.%d: %w", a, d, err)
		}
	}
	c.sessions[addr{a, d}] = r
	return r, nil
}

func sessionWrite(a AccountID, d DeviceID, r *session.Record) (Write, error) {
	b, err := r.MarshalBinary()
	if err != nil {
		return Write{}, fmt.Errorf("client: session with %s.%d: %w", a, d, err)
	}
	return Write{sessionKey(a, d), b}, nil
}

// certificate returns a sender certificate valid for a while yet,
// fetching a new one when needed.
func (c *Client) certificate(ctx context.Context) (*sealed.SenderCertificate, error) {
	c.mu.Lock()
	cert := c.cert
	c.mu.Unlock()
	if cert != nil && time.Until(cert.Expires()) > certificateMargin {
		return cert, nil
	}
	err := c.withAuth(ctx, func(conn *wsclient.Conn) error {
		resp, err := c.do(ctx, conn, &wirepb.GetSenderCertificate{})
		if err != nil {
			return fmt.Errorf("client: sender certificate: %w", err)
		}
		cert, err = sealed.ParseSenderCertificate(resp.GetSenderCertificate().GetCertificate())
		if err != nil {
			return fmt.Errorf("client: sender certificate: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cert = cert
	c.mu.Unlock()
	return cert, nil
}
