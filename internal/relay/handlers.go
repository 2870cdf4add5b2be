package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/access"
	"github.com/sotto-chat/sotto/internal/bus"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pow"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// reply is a handler's answer: a response body (nil for a bare OK), an
// error frame, or none at all (a quiet ack carried out).
type reply struct {
	body  proto.Message
	err   *wirepb.Frame
	quiet bool
}

func ok(body proto.Message) reply { return reply{body: body} }

// unanswered is the reply to a request that asked for no response.
func unanswered() reply { return reply{quiet: true} }

func fail(code wirepb.Code, msg string) reply {
	return reply{err: wire.Error(0, code, msg)}
}

func failFrame(f *wirepb.Frame) reply { return reply{err: f} }

// handle runs one request and returns the response frame, or nil when the
// request asked for none.
func (c *conn) handle(ctx context.Context, req *wirepb.Request) *wirepb.Frame {
	_, authed := c.authenticatedDevice()
	switch wire.AccessOf(req) {
	case wire.Authenticated:
		if !authed {
			return wire.Error(req.Id, wirepb.Code_UNAUTHENTICATED, "authenticate first")
		}
	case wire.Anonymous:
		if authed {
			return wire.Error(req.Id, wirepb.Code_FORBIDDEN, "use an anonymous connection for this request")
		}
	}
	var rep reply
	switch b := req.Body.(type) {
	case *wirepb.Request_GetChallenge:
		rep = c.getChallenge()
	case *wirepb.Request_Authenticate:
		rep = c.authenticate(ctx, b.Authenticate)
	case *wirepb.Request_GetRegistrationChallenge:
		rep = c.getRegistrationChallenge()
	case *wirepb.Request_Register:
		rep = c.register(ctx, b.Register)
	case *wirepb.Request_UploadPrekeys:
		rep = c.uploadPreKeys(ctx, b.UploadPrekeys)
	case *wirepb.Request_GetPrekeyCount:
		rep = c.getPreKeyCount(ctx)
	case *wirepb.Request_GetBundles:
		rep = c.getBundles(ctx, b.GetBundles)
	case *wirepb.Request_Send:
		rep = c.send(ctx, b.Send)
	case *wirepb.Request_SendMulti:
		rep = c.sendMulti(ctx, b.SendMulti)
	case *wirepb.Request_Ack:
		rep = c.ack(ctx, b.Ack)
	case *wirepb.Request_GetSenderCertificate:
		rep = c.getSenderCertificate(ctx)
	case *wirepb.Request_SetUnidentifiedAccessKey:
		rep = c.setAccessKey(ctx, b.SetUnidentifiedAccessKey)
	case *wirepb.Request_SetUsername:
		rep = c.setUsername(ctx, b.SetUsername)
	case *wirepb.Request_DeleteUsername:
		rep = c.deleteUsername(ctx)
	case *wirepb.Request_LookupUsername:
		rep = c.lookupUsername(ctx, b.LookupUsername)
	case *wirepb.Request_ListDevices:
		rep = c.listDevices(ctx)
	case *wirepb.Request_RemoveDevice:
		rep = c.removeDevice(ctx, b.RemoveDevice)
	case *wirepb.Request_GetLinkToken:
		rep = c.getLinkToken()
	case *wirepb.Request_OpenProvisioning:
		rep = c.openProvisioning()
	case *wirepb.Request_SendProvisioning:
		rep = c.sendProvisioning(b.SendProvisioning)
	case *wirepb.Request_LinkDevice:
		rep = c.linkDevice(ctx, b.LinkDevice)
	case *wirepb.Request_DeleteAccount:
		rep = c.deleteAccount(ctx)
	case *wirepb.Request_SendToOwnDevices:
		rep = c.sendToOwnDevices(ctx, b.SendToOwnDevices)
	case *wirepb.Request_SetProfile:
		rep = c.setProfile(ctx, b.SetProfile)
	case *wirepb.Request_GetProfile:
		rep = c.getProfile(ctx, b.GetProfile)
	default:
		rep = fail(wirepb.Code_UNIMPLEMENTED, "unknown request")
	}
	return rep.frame(req.Id)
}

// frame is the response to request id carrying the reply; nil for none.
func (rep reply) frame(id uint64) *wirepb.Frame {
	switch {
	case rep.quiet:
		return nil
	case rep.err != nil:
		rep.err.GetResponse().Id = id
		return rep.err
	}
	return wire.Respond(id, rep.body)
}

// storeError maps a store error to a response.
func (c *conn) storeError(op string, err error) reply {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fail(wirepb.Code_NOT_FOUND, op+": not found")
	case errors.Is(err, store.ErrExists):
		return fail(wirepb.Code_CONFLICT, op+": already exists")
	case errors.Is(err, store.ErrMailboxFull):
		return fail(wirepb.Code_MAILBOX_FULL, op+": a mailbox is full")
	case errors.Is(err, store.ErrLimit):
		return fail(wirepb.Code_LIMIT_REACHED, op+": limit reached")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fail(wirepb.Code_UNAVAILABLE, op+": timed out")
	}
	c.r.log.Error("store", "op", op, "err", err)
	return fail(wirepb.Code_INTERNAL, op+": storage error")
}

func (c *conn) limited(l interface {
	Allow(string) (bool, time.Duration)
}) (reply, bool) {
	if okay, wait := l.Allow(c.source); !okay {
		c.r.m.rateLimited.Inc()
		return failFrame(wire.RetryLater(0, wirepb.Code_RATE_LIMITED, wait)), true
	}
	return reply{}, false
}

func (c *conn) today() store.Day { return store.DayOf(c.r.now()) }

// ---- authentication ----

func (c *conn) getChallenge() reply {
	nonce := make([]byte, wire.NonceSize)
	rand.Read(nonce)
	c.mu.Lock()
	c.nonce, c.nonceExpiry = nonce, c.r.now().Add(ChallengeTTL)
	c.mu.Unlock()
	return ok(&wirepb.Challenge{Nonce: nonce})
}

func (c *conn) authenticate(ctx context.Context, a *wirepb.Authenticate) reply {
	c.mu.Lock()
	nonce, expiry, authed := c.nonce, c.nonceExpiry, c.authed
	c.nonce = nil // one answer per challenge
	c.mu.Unlock()
	if authed {
		return fail(wirepb.Code_FORBIDDEN, "already authenticated")
	}
	if nonce == nil || !c.r.now().Before(expiry) {
		return fail(wirepb.Code_UNAUTHENTICATED, "get a fresh challenge")
	}
	acct := store.AccountID(a.AccountId)
	dev := store.DeviceID(a.DeviceId)
	devices, err := c.r.cfg.Store.Devices(ctx, acct)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return c.storeError("authenticate", err)
	}
	var authKey []byte
	for _, d := range devices {
		if d.ID == dev {
			authKey = d.AuthKey
		}
	}
	key, perr := keys.ParsePublicKey(authKey)
	if authKey == nil || perr != nil || !key.Verify(a.Signature, wire.AuthMessage(nonce, a.AccountId, a.DeviceId)) {
		return fail(wirepb.Code_UNAUTHENTICATED, "bad signature")
	}
	d := bus.Device{Account: acct, Device: dev}
	c.mu.Lock()
	c.authed, c.device = true, d
	c.mu.Unlock()
	c.r.addDevice(d, c)
	c.r.m.authenticated.Add(1)
	if err := c.r.cfg.Store.Touch(ctx, acct, dev, c.today()); err != nil {
		c.r.log.Warn("touch device", "err", err)
	}
	mb := c.startMailbox(d)
	c.mu.Lock()
	c.mailbox = mb
	c.mu.Unlock()
	return ok(nil)
}

// ---- registration and prekeys ----

func (c *conn) getRegistrationChallenge() reply {
	if rep, limited := c.limited(c.r.registerLimit); limited {
		return rep
	}
	seed, difficulty := c.r.cfg.PoW.Issue()
	return ok(&wirepb.RegistrationChallenge{Seed: seed, Difficulty: uint32(difficulty)})
}

// newAccountID makes a random account id, shaped as a version-4 UUID so it
// doubles as the account's service id in sealed sender.
func newAccountID() store.AccountID {
	var id store.AccountID
	rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// checkPreKeys verifies the signatures of a signed EC prekey and a KEM
// prekey by the identity key.
func checkSignedPreKeys(identity keys.PublicKey, spk *wirepb.SignedPreKey, kem *wirepb.KEMPreKey) error {
	if spk != nil {
		k, err := keys.ParsePublicKey(spk.Key)
		if err != nil {
			return fmt.Errorf("signed prekey: %w", err)
		}
		if err := keys.VerifySignedPreKey(identity, k, spk.Signature); err != nil {
			return err
		}
	}
	if kem != nil {
		k, err := keys.ParseKEMPublicKey(kem.Key)
		if err != nil {
			return fmt.Errorf("KEM prekey: %w", err)
		}
		if err := keys.VerifyKEMPreKey(identity, k, kem.Signature); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) register(ctx context.Context, r *wirepb.Register) reply {
	if rep, limited := c.limited(c.r.registerLimit); limited {
		return rep
	}
	identity, err := keys.ParsePublicKey(r.IdentityKey)
	if err != nil {
		return fail(wirepb.Code_BAD_REQUEST, "identity key: "+err.Error())
	}
	authKey, err := keys.ParsePublicKey(r.AuthKey)
	if err != nil || authKey.Equal(identity) {
		return fail(wirepb.Code_BAD_REQUEST, "auth key must be a valid key other than the identity key")
	}
	if err := checkSignedPreKeys(identity, r.SignedPrekey, r.KemLastResort); err != nil {
		return fail(wirepb.Code_BAD_REQUEST, err.Error())
	}
	switch err := c.r.cfg.PoW.Redeem(r.Seed, r.Solution); {
	case errors.Is(err, pow.ErrUnknownSeed):
		return fail(wirepb.Code_EXPIRED, "registration challenge unknown, used or expired")
	case err != nil:
		return fail(wirepb.Code_FORBIDDEN, "proof of work does not solve the challenge")
	}
	id := newAccountID()
	today := c.today()
	acct := store.Account{ID: id, IdentityKey: r.IdentityKey, Created: today}
	if len(r.UnidentifiedAccessKey) > 0 {
		acct.UnidentifiedAccessKey = r.UnidentifiedAccessKey
	}
	dev := store.Device{Account: id, ID: 1, RegistrationID: r.RegistrationId, AuthKey: r.AuthKey, Created: today, LastSeen: today}
	if err := c.r.cfg.Store.CreateAccount(ctx, acct, dev); err != nil {
		return c.storeError("register", err)
	}
	if rep, failed := c.storeDevicePreKeys(ctx, id, 1, r.SignedPrekey, r.KemLastResort); failed {
		return rep
	}
	c.r.m.registrations.Inc()
	return ok(&wirepb.Registered{AccountId: id[:], DeviceId: 1, TrustRoot: c.r.cfg.Certs.TrustRoot().Bytes()})
}

func (c *conn) storeDevicePreKeys(ctx context.Context, id store.AccountID, dev store.DeviceID, spk *wirepb.SignedPreKey, kem *wirepb.KEMPreKey) (reply, bool) {
	if spk != nil {
		if err := c.r.cfg.Store.SetSignedPreKey(ctx, id, dev, store.SignedPreKey{ID: spk.Id, Key: spk.Key, Signature: spk.Signature}); err != nil {
			return c.storeError("signed prekey", err), true
		}
	}
	if kem != nil {
		if err := c.r.cfg.Store.SetLastResortKEMPreKey(ctx, id, dev, store.SignedPreKey{ID: kem.Id, Key: kem.Key, Signature: kem.Signature}); err != nil {
			return c.storeError("KEM prekey", err), true
		}
	}
	return reply{}, false
}

func (c *conn) uploadPreKeys(ctx context.Context, u *wirepb.UploadPreKeys) reply {
	d, _ := c.authenticatedDevice()
	acct, err := c.r.cfg.Store.Account(ctx, d.Account)
	if err != nil {
		return c.storeError("upload prekeys", err)
	}
	identity, err := keys.ParsePublicKey(acct.IdentityKey)
	if err != nil {
		return fail(wirepb.Code_INTERNAL, "stored identity key does not parse")
	}
	if err := checkSignedPreKeys(identity, u.SignedPrekey, u.KemLastResort); err != nil {
		return fail(wirepb.Code_BAD_REQUEST, err.Error())
	}
	ec := make([]store.PreKey, len(u.OneTimeEc))
	for i, k := range u.OneTimeEc {
		if _, err := keys.ParsePublicKey(k.Key); err != nil {
			return fail(wirepb.Code_BAD_REQUEST, fmt.Sprintf("one-time prekey %d: %v", k.Id, err))
		}
		ec[i] = store.PreKey{ID: k.Id, Key: k.Key}
	}
	kem := make([]store.SignedPreKey, len(u.OneTimeKem))
	for i, k := range u.OneTimeKem {
		if err := checkSignedPreKeys(identity, nil, k); err != nil {
			return fail(wirepb.Code_BAD_REQUEST, fmt.Sprintf("one-time KEM prekey %d: %v", k.Id, err))
		}
		kem[i] = store.SignedPreKey{ID: k.Id, Key: k.Key, Signature: k.Signature}
	}
	if rep, failed := c.storeDevicePreKeys(ctx, d.Account, d.Device, u.SignedPrekey, u.KemLastResort); failed {
		return rep
	}
	if len(ec) > 0 || len(kem) > 0 {
		if err := c.r.cfg.Store.AddPreKeys(ctx, d.Account, d.Device, ec, kem); err != nil {
			return c.storeError("upload prekeys", err)
		}
	}
	return ok(nil)
}

func (c *conn) getPreKeyCount(ctx context.Context) reply {
	d, _ := c.authenticatedDevice()
	ec, kem, err := c.r.cfg.Store.CountPreKeys(ctx, d.Account, d.Device)
	if err != nil {
		return c.storeError("count prekeys", err)
	}
	return ok(&wirepb.PreKeyCount{Ec: uint32(ec), Kem: uint32(kem)})
}

func (c *conn) getBundles(ctx context.Context, g *wirepb.GetBundles) reply {
	if rep, limited := c.limited(c.r.lookupLimit); limited {
		return rep
	}
	id := store.AccountID(g.AccountId)
	acct, err := c.r.cfg.Store.Account(ctx, id)
	if err != nil {
		return c.storeError("get bundles", err)
	}
	bundles, err := c.r.cfg.Store.TakeBundles(ctx, id, store.DeviceID(g.DeviceId))
	if err != nil {
		return c.storeError("get bundles", err)
	}
	if len(bundles) == 0 {
		return fail(wirepb.Code_NOT_FOUND, "no device with prekeys")
	}
	for _, b := range bundles {
		if b.PreKey != nil || !b.KEMLastResort {
			// A one-time key was consumed: a device connected here that
			// runs low hears so now rather than at its next connection.
			d := bus.Device{Account: id, Device: b.Device}
			for _, t := range c.r.connsOf(d) {
				go t.checkPreKeys(d)
			}
		}
	}
	out := &wirepb.Bundles{IdentityKey: acct.IdentityKey, Bundles: make([]*wirepb.Bundle, len(bundles))}
	for i, b := range bundles {
		wb := &wirepb.Bundle{
			DeviceId: uint32(b.Device), RegistrationId: b.RegistrationID,
			SignedPrekey:  &wirepb.SignedPreKey{Id: b.SignedPreKey.ID, Key: b.SignedPreKey.Key, Signature: b.SignedPreKey.Signature},
			KemPrekey:     &wirepb.KEMPreKey{Id: b.KEMPreKey.ID, Key: b.KEMPreKey.Key, Signature: b.KEMPreKey.Signature},
			KemLastResort: b.KEMLastResort,
		}
		if b.PreKey != nil {
			wb.OneTimePrekey = &wirepb.PreKey{Id: b.PreKey.ID, Key: b.PreKey.Key}
		}
		out.Bundles[i] = wb
	}
	return ok(out)
}

// ---- sending ----

// checkDevices compares the envelopes' devices with the account's: every
// device must get exactly one envelope with its current registration id.
func checkDevices(account store.AccountID, devices []store.Device, sent map[store.DeviceID]uint32) *wirepb.RecipientMismatch {
	var m wirepb.RecipientMismatch
	current := map[store.DeviceID]uint32{}
	for _, d := range devices {
		current[d.ID] = d.RegistrationID
		reg, ok := sent[d.ID]
		switch {
		case !ok:
			m.Missing = append(m.Missing, uint32(d.ID))
		case reg != d.RegistrationID:
			m.Stale = append(m.Stale, uint32(d.ID))
		}
	}
	for dev := range sent {
		if _, ok := current[dev]; !ok {
			m.Extra = append(m.Extra, uint32(dev))
		}
	}
	if len(m.Missing)+len(m.Stale)+len(m.Extra) == 0 {
		return nil
	}
	m.AccountId = account[:]
	return &m
}

func expectedAccessKey(a store.Account) [access.KeySize]byte {
	var k [access.KeySize]byte
	copy(k[:], a.UnidentifiedAccessKey)
	return k
}

func (c *conn) send(ctx context.Context, s *wirepb.Send) reply {
	if rep, limited := c.limited(c.r.sendLimit); limited {
		return rep
	}
	start := time.Now()
	id := store.AccountID(s.Recipient)
	acct, devices, err := c.r.recipients.get(ctx, c.r.cfg.Store, id, c.r.now())
	if err != nil {
		return c.storeError("send", err)
	}
	if rep, refused := checkSend(id, s, acct, devices); refused {
		return rep
	}
	if s.Ephemeral {
		for _, e := range s.Envelopes {
			c.pushEphemeral(bus.Device{Account: id, Device: store.DeviceID(e.DeviceId)}, e.Content)
		}
		return ok(nil)
	}
	return c.storeAndPush(ctx, id, s.Envelopes, start)
}

// checkSend checks a Send against its recipient's account and devices: the
// access key, and a device list that names each device once.
func checkSend(id store.AccountID, s *wirepb.Send, acct store.Account, devices []store.Device) (reply, bool) {
	if acct.UnidentifiedAccessKey != nil && !access.Equal(s.AccessKey, expectedAccessKey(acct)) {
		return fail(wirepb.Code_FORBIDDEN, "access key"), true
	}
	sent := make(map[store.DeviceID]uint32, len(s.Envelopes))
	for _, e := range s.Envelopes {
		sent[store.DeviceID(e.DeviceId)] = e.RegistrationId
	}
	if m := checkDevices(id, devices, sent); m != nil {
		return failFrame(wire.Mismatched(0, []*wirepb.RecipientMismatch{m})), true
	}
	return reply{}, false
}

// startSend handles a Send on the goroutine that read it, when nothing in
// it waits: the store takes changes without waiting (store.AsyncMailboxes)
// and the recipient's devices are cached. The response is written when the
// envelopes are durable, from the store's writer; the request holds its
// slot until then, and no goroutine. It reports false, having done
// nothing, when the Send is for a worker.
func (c *conn) startSend(req *wirepb.Request) bool {
	s := req.GetSend()
	if c.r.async == nil || s == nil || s.Ephemeral {
		return false
	}
	if _, authed := c.authenticatedDevice(); authed {
		return false // refused by handle
	}
	id := store.AccountID(s.Recipient)
	acct, devices, cached := c.r.recipients.peek(id, c.r.now())
	if !cached {
		return false
	}
	c.r.m.requests.Inc()
	c.inFlight.Add(1)
	if rep, limited := c.limited(c.r.sendLimit); limited {
		c.complete(req.Id, rep)
		return true
	}
	if rep, refused := checkSend(id, s, acct, devices); refused {
		c.complete(req.Id, rep)
		return true
	}
	start := time.Now()
	envs := c.envelopes(id, s.Envelopes)
	c.r.async.AppendAsync(c.ctx, envs, func(err error) {
		if err != nil {
			c.complete(req.Id, c.storeError("send", err))
			return
		}
		c.stored(envs, start)
		c.complete(req.Id, ok(nil))
	})
	return true
}

// envelopes are the store's envelopes for one account's outgoing ones.
func (c *conn) envelopes(id store.AccountID, out []*wirepb.OutgoingEnvelope) []*store.Envelope {
	expires := c.today() + store.Day(c.r.cfg.Retention/(24*time.Hour))
	envs := make([]*store.Envelope, len(out))
	for i, e := range out {
		envs[i] = &store.Envelope{Account: id, Device: store.DeviceID(e.DeviceId), Content: e.Content, Expires: expires}
	}
	return envs
}

// storeAndPush appends one account's envelopes durably, then pushes them.
func (c *conn) storeAndPush(ctx context.Context, id store.AccountID, out []*wirepb.OutgoingEnvelope, start time.Time) reply {
	envs := c.envelopes(id, out)
	if err := c.r.cfg.Store.Append(ctx, envs); err != nil {
		return c.storeError("send", err)
	}
	c.stored(envs, start)
	return ok(nil)
}

// stored counts envelopes just made durable and pushes them.
func (c *conn) stored(envs []*store.Envelope, start time.Time) {
	c.r.m.envelopesIn.Add(uint64(len(envs)))
	c.r.m.sendSeconds.Observe(time.Since(start).Seconds())
	c.r.deliver(envs)
}

// sendToOwnDevices stores envelopes for the account's other devices (sync
// transcripts). The connection is authenticated, so the server learns
// only that the account wrote to itself; the caller's own device is left
// out of the device list the envelopes must match.
func (c *conn) sendToOwnDevices(ctx context.Context, s *wirepb.SendToOwnDevices) reply {
	if rep, limited := c.limited(c.r.sendLimit); limited {
		return rep
	}
	start := time.Now()
	d, _ := c.authenticatedDevice()
	_, devices, err := c.r.recipients.get(ctx, c.r.cfg.Store, d.Account, c.r.now())
	if err != nil {
		return c.storeError("send", err)
	}
	others := make([]store.Device, 0, len(devices))
	for _, dev := range devices {
		if dev.ID != d.Device {
			others = append(others, dev)
		}
	}
	sent := make(map[store.DeviceID]uint32, len(s.Envelopes))
	for _, e := range s.Envelopes {
		sent[store.DeviceID(e.DeviceId)] = e.RegistrationId
	}
	if m := checkDevices(d.Account, others, sent); m != nil {
		return failFrame(wire.Mismatched(0, []*wirepb.RecipientMismatch{m}))
	}
	return c.storeAndPush(ctx, d.Account, s.Envelopes, start)
}

// pushEphemeral delivers content to the device's connections now, storing
// nothing (typing indicators); it is not acknowledged.
func (c *conn) pushEphemeral(d bus.Device, content []byte) {
	for _, t := range c.r.connsOf(d) {
		t.push(&wirepb.EphemeralEnvelope{Content: content})
	}
}

func (c *conn) sendMulti(ctx context.Context, s *wirepb.SendMulti) reply {
	if rep, limited := c.limited(c.r.sendLimit); limited {
		return rep
	}
	start := time.Now()
	msg, err := sealed.ParseSentMessage(s.Payload)
	if err != nil {
		return fail(wirepb.Code_BAD_REQUEST, "payload: "+err.Error())
	}
	if len(msg.Recipients) == 0 {
		return fail(wirepb.Code_BAD_REQUEST, "payload names no recipient")
	}
	var combined [access.KeySize]byte
	var mismatches []*wirepb.RecipientMismatch
	var unknown [][]byte
	type target struct {
		id      store.AccountID
		sid     sealed.ServiceID
		devices []sealed.Device
	}
	targets := make([]target, 0, len(msg.Recipients))
	for _, r := range msg.Recipients {
		if r.ServiceID.Kind() != sealed.KindACI {
			return fail(wirepb.Code_BAD_REQUEST, "recipients are named by ACI")
		}
		id := store.AccountID(r.ServiceID.UUID())
		acct, devices, err := c.r.recipients.get(ctx, c.r.cfg.Store, id, c.r.now())
		if errors.Is(err, store.ErrNotFound) {
			unknown = append(unknown, id[:])
			continue
		}
		if err != nil {
			return c.storeError("send", err)
		}
		combined = access.Combine(combined, expectedAccessKey(acct))
		sent := make(map[store.DeviceID]uint32, len(r.Devices))
		for _, d := range r.Devices {
			sent[store.DeviceID(d.ID)] = uint32(d.RegistrationID)
		}
		if m := checkDevices(id, devices, sent); m != nil {
			mismatches = append(mismatches, m)
		}
		targets = append(targets, target{id: id, sid: r.ServiceID, devices: r.Devices})
	}
	if len(unknown) > 0 {
		f := wire.Error(0, wirepb.Code_NOT_FOUND, "unknown recipients")
		f.GetResponse().Status.UnknownAccounts = unknown
		return failFrame(f)
	}
	if !access.Equal(s.AccessKey, combined) {
		return fail(wirepb.Code_FORBIDDEN, "access key")
	}
	if len(mismatches) > 0 {
		return failFrame(wire.Mismatched(0, mismatches))
	}
	expires := c.today() + store.Day(c.r.cfg.Retention/(24*time.Hour))
	var envs []*store.Envelope
	for _, t := range targets {
		content, err := msg.ForRecipient(t.sid)
		if err != nil {
			return fail(wirepb.Code_BAD_REQUEST, "payload: "+err.Error())
		}
		for _, d := range t.devices {
			dev := bus.Device{Account: t.id, Device: store.DeviceID(d.ID)}
			if s.Ephemeral {
				c.pushEphemeral(dev, content)
				continue
			}
			envs = append(envs, &store.Envelope{Account: t.id, Device: dev.Device, Content: content, Expires: expires})
		}
	}
	if s.Ephemeral {
		return ok(nil)
	}
	if err := c.r.cfg.Store.Append(ctx, envs); err != nil {
		return c.storeError("send", err)
	}
	c.stored(envs, start)
	return ok(nil)
}

func (c *conn) ack(ctx context.Context, a *wirepb.Ack) reply {
	d, _ := c.authenticatedDevice()
	ids := ackIDs(a)
	if err := c.r.cfg.Store.Ack(ctx, d.Account, d.Device, ids); err != nil {
		if a.Quiet {
			c.quietAckFailed(err)
			return unanswered()
		}
		return c.storeError("ack", err)
	}
	c.r.m.acked.Add(uint64(len(ids)))
	if a.Quiet {
		return unanswered()
	}
	return ok(nil)
}

// startQuietAck hands a quiet Ack of an authenticated connection to the
// store without waiting, on the goroutine that read it: it needs no
// answer, and holds no slot. It reports false, having done nothing, when
// the Ack is for handle (an answered one, or one to refuse).
func (c *conn) startQuietAck(req *wirepb.Request) bool {
	a := req.GetAck()
	if c.r.async == nil || a == nil || !a.Quiet {
		return false
	}
	d, authed := c.authenticatedDevice()
	if !authed {
		return false
	}
	c.r.m.requests.Inc()
	ids := ackIDs(a)
	c.r.async.AckAsync(c.ctx, d.Account, d.Device, ids, func(err error) {
		if err != nil {
			c.quietAckFailed(err)
			return
		}
		c.r.m.acked.Add(uint64(len(ids)))
	})
	return true
}

func ackIDs(a *wirepb.Ack) []store.EnvelopeID {
	ids := make([]store.EnvelopeID, len(a.Ids))
	for i, id := range a.Ids {
		ids[i] = store.EnvelopeID(id)
	}
	return ids
}

// quietAckFailed notes an ack that was not carried out and not answered:
// its envelopes are pushed again on the device's next connection.
func (c *conn) quietAckFailed(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, store.ErrNotFound) {
		return // the connection ended, or the device was removed
	}
	c.r.log.Warn("quiet ack not carried out", "err", err)
}

// ---- sealed sender, usernames ----

func (c *conn) getSenderCertificate(ctx context.Context) reply {
	d, _ := c.authenticatedDevice()
	acct, err := c.r.cfg.Store.Account(ctx, d.Account)
	if err != nil {
		return c.storeError("sender certificate", err)
	}
	identity, err := keys.ParsePublicKey(acct.IdentityKey)
	if err != nil {
		return fail(wirepb.Code_INTERNAL, "stored identity key does not parse")
	}
	cert, err := c.r.cfg.Certs.Issue(sealed.Sender{
		UUID: sealed.ACI(d.Account).String(), Device: sealed.DeviceID(d.Device), IdentityKey: identity,
	}, c.r.now())
	if err != nil {
		c.r.log.Error("issue sender certificate", "err", err)
		return fail(wirepb.Code_INTERNAL, "sender certificate")
	}
	return ok(&wirepb.SenderCertificate{Certificate: cert.Bytes()})
}

func (c *conn) setAccessKey(ctx context.Context, s *wirepb.SetUnidentifiedAccessKey) reply {
	d, _ := c.authenticatedDevice()
	if err := c.r.cfg.Store.SetUnidentifiedAccessKey(ctx, d.Account, s.Key); err != nil {
		return c.storeError("set access key", err)
	}
	c.r.recipients.forget(d.Account)
	return ok(nil)
}

func (c *conn) setUsername(ctx context.Context, s *wirepb.SetUsername) reply {
	d, _ := c.authenticatedDevice()
	if err := c.r.cfg.Store.SetUsername(ctx, d.Account, s.Hash); err != nil {
		return c.storeError("set username", err)
	}
	return ok(nil)
}

func (c *conn) deleteUsername(ctx context.Context) reply {
	d, _ := c.authenticatedDevice()
	if err := c.r.cfg.Store.DeleteUsername(ctx, d.Account); err != nil {
		return c.storeError("delete username", err)
	}
	return ok(nil)
}

func (c *conn) lookupUsername(ctx context.Context, l *wirepb.LookupUsername) reply {
	if rep, limited := c.limited(c.r.lookupLimit); limited {
		return rep
	}
	id, err := c.r.cfg.Store.LookupUsername(ctx, l.Hash)
	if err != nil {
		return c.storeError("lookup username", err)
	}
	return ok(&wirepb.UsernameAccount{AccountId: id[:]})
}

// ---- profiles ----

func (c *conn) setProfile(ctx context.Context, p *wirepb.SetProfile) reply {
	d, _ := c.authenticatedDevice()
	var blob []byte
	if len(p.Ciphertext) > 0 {
		blob = p.Ciphertext
	}
	if err := c.r.cfg.Store.SetProfile(ctx, d.Account, blob); err != nil {
		return c.storeError("set profile", err)
	}
	return ok(nil)
}

// getProfile is anonymous and rate-limited like the other lookups: the
// profile is ciphertext, but whether an account exists is not for
// enumerating.
func (c *conn) getProfile(ctx context.Context, g *wirepb.GetProfile) reply {
	if rep, limited := c.limited(c.r.lookupLimit); limited {
		return rep
	}
	blob, err := c.r.cfg.Store.Profile(ctx, store.AccountID(g.AccountId))
	if err != nil {
		return c.storeError("profile", err)
	}
	return ok(&wirepb.Profile{Ciphertext: blob})
}

// ---- devices and linking ----

func (c *conn) listDevices(ctx context.Context) reply {
	d, _ := c.authenticatedDevice()
	devices, err := c.r.cfg.Store.Devices(ctx, d.Account)
	if err != nil {
		return c.storeError("list devices", err)
	}
	out := &wirepb.DeviceList{Devices: make([]*wirepb.DeviceInfo, len(devices))}
	for i, dv := range devices {
		out.Devices[i] = &wirepb.DeviceInfo{Id: uint32(dv.ID), RegistrationId: dv.RegistrationID,
			CreatedDay: int32(dv.Created), LastSeenDay: int32(dv.LastSeen)}
	}
	return ok(out)
}

func (c *conn) removeDevice(ctx context.Context, r *wirepb.RemoveDevice) reply {
	d, _ := c.authenticatedDevice()
	if err := c.r.cfg.Store.RemoveDevice(ctx, d.Account, store.DeviceID(r.DeviceId)); err != nil {
		return c.storeError("remove device", err)
	}
	c.r.recipients.forget(d.Account)
	gone := bus.Device{Account: d.Account, Device: store.DeviceID(r.DeviceId)}
	for _, t := range c.r.connsOf(gone) {
		if t != c {
			t.closeWith(StatusDeviceRemoved, "device removed", false)
		}
	}
	return ok(nil)
}

func (c *conn) getLinkToken() reply {
	d, _ := c.authenticatedDevice()
	token := c.r.links.add(wire.LinkTokenSize, linkGrant{account: d.Account}, c.r.now().Add(LinkTokenTTL))
	return ok(&wirepb.LinkToken{Token: token})
}

func (c *conn) openProvisioning() reply {
	addr := c.r.provisioning.add(wire.ProvisioningAddressSize, c, c.r.now().Add(ProvisioningTTL))
	c.mu.Lock()
	c.provAddrs = append(c.provAddrs, addr)
	c.mu.Unlock()
	return ok(&wirepb.ProvisioningAddress{Address: addr})
}

func (c *conn) sendProvisioning(s *wirepb.SendProvisioning) reply {
	target, found := c.r.provisioning.take(s.Address, c.r.now())
	if !found {
		return fail(wirepb.Code_EXPIRED, "no such provisioning address")
	}
	target.push(&wirepb.ProvisioningMessage{Body: s.Body})
	return ok(nil)
}

func (c *conn) linkDevice(ctx context.Context, l *wirepb.LinkDevice) reply {
	if rep, limited := c.limited(c.r.registerLimit); limited {
		return rep
	}
	grant, found := c.r.links.take(l.LinkToken, c.r.now())
	if !found {
		return fail(wirepb.Code_EXPIRED, "link token unknown, used or expired")
	}
	acct, err := c.r.cfg.Store.Account(ctx, grant.account)
	if err != nil {
		return c.storeError("link device", err)
	}
	identity, err := keys.ParsePublicKey(acct.IdentityKey)
	if err != nil {
		return fail(wirepb.Code_INTERNAL, "stored identity key does not parse")
	}
	authKey, err := keys.ParsePublicKey(l.AuthKey)
	if err != nil || authKey.Equal(identity) {
		return fail(wirepb.Code_BAD_REQUEST, "auth key must be a valid key other than the identity key")
	}
	if err := checkSignedPreKeys(identity, l.SignedPrekey, l.KemLastResort); err != nil {
		return fail(wirepb.Code_BAD_REQUEST, err.Error())
	}
	today := c.today()
	var next store.DeviceID
	// Two devices linking at once may pick the same id; the loser of the
	// race picks again.
	for attempt := 0; ; attempt++ {
		devices, err := c.r.cfg.Store.Devices(ctx, grant.account)
		if err != nil {
			return c.storeError("link device", err)
		}
		next = 1
		for _, d := range devices {
			next = max(next, d.ID+1)
		}
		if int(next) > wire.MaxDeviceID {
			return fail(wirepb.Code_LIMIT_REACHED, "no free device id")
		}
		dev := store.Device{Account: grant.account, ID: next, RegistrationID: l.RegistrationId, AuthKey: l.AuthKey, Created: today, LastSeen: today}
		err = c.r.cfg.Store.AddDevice(ctx, dev)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrExists) || attempt == maxLinkAttempts-1 {
			return c.storeError("link device", err)
		}
	}
	c.r.recipients.forget(grant.account)
	if rep, failed := c.storeDevicePreKeys(ctx, grant.account, next, l.SignedPrekey, l.KemLastResort); failed {
		return rep
	}
	return ok(&wirepb.Registered{AccountId: grant.account[:], DeviceId: uint32(next), TrustRoot: c.r.cfg.Certs.TrustRoot().Bytes()})
}

func (c *conn) deleteAccount(ctx context.Context) reply {
	d, _ := c.authenticatedDevice()
	if err := c.r.cfg.Store.DeleteAccount(ctx, d.Account); err != nil {
		return c.storeError("delete account", err)
	}
	c.r.recipients.forget(d.Account)
	return ok(nil)
}
