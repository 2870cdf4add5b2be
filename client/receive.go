package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sotto-chat/sotto/client/internal/content"
	"github.com/sotto-chat/sotto/client/internal/content/contentpb"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/session"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// Run keeps this device connected until ctx ends: it drains the mailbox,
// then receives what arrives, decrypts it, stores it, reports it on
// Events, and acknowledges it (so the server deletes it). A dropped
// connection is made again after a growing wait. It returns ctx's error.
func (c *Client) Run(ctx context.Context) error {
	wait := reconnectMin
	for {
		connected := false
		err := c.session(ctx, &connected)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if connected || err == nil {
			// The connection was up: the wait starts over (it grows
			// only while attempts fail in a row).
			wait = reconnectMin
		}
		c.emit(ctx, DisconnectedEvent{Err: err})
		c.log.Info("disconnected; reconnecting", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, reconnectMax)
	}
}

// session is one connection's life; connected is set once it is
// authenticated.
func (c *Client) session(ctx context.Context, connected *bool) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := c.authenticate(ctx, conn); err != nil {
		return err
	}
	*connected = true
	c.connMu.Lock()
	c.conn = conn
	c.connMu.Unlock()
	defer func() {
		c.connMu.Lock()
		if c.conn == conn {
			c.conn = nil
		}
		c.connMu.Unlock()
	}()
	c.emit(ctx, ConnectedEvent{})
	if err := c.replenishPreKeys(ctx, conn); err != nil {
		c.log.Warn("prekey upload failed", "err", err)
	}
	if err := c.refreshOwnDevices(ctx, conn); err != nil {
		c.log.Warn("own devices not refreshed", "err", err)
	}
	if err := c.pruneSeen(ctx, time.Now()); err != nil {
		c.log.Warn("old envelope hashes not pruned", "err", err)
	}
	// What was written while the server was away goes out now, beside
	// receiving.
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		if err := c.flushOutbox(ctx); err != nil && ctx.Err() == nil {
			c.log.Info("queued messages wait", "err", err)
		}
	}()
	defer func() { <-flushed }()
	// Delivery receipts go out from their own goroutine: sending waits
	// on the server, and receiving must not.
	receipts := make(chan receiptJob, receiptQueue)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for j := range receipts {
			// Receipts queued when Run is told to stop still go out (a
			// `sotto recv` stops right after the mailbox drains), each
			// within receiptTimeout.
			jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), receiptTimeout)
			if err := c.sendReceipt(jctx, j.to, j.ids, j.typ); err != nil {
				c.log.Info("a delivery receipt was not sent", "err", err)
			}
			cancel()
		}
	}()
	defer func() { close(receipts); <-sent }()
	acks := newAcker(conn)
	defer acks.stop(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-conn.Done():
			return conn.Err()
		case <-acks.due():
			if err := acks.flush(ctx); err != nil {
				return err
			}
		case p := <-conn.Pushes():
			if err := c.handlePush(ctx, acks, p, receipts); err != nil {
				return err
			}
		}
	}
}

// acker gathers the ids of the envelopes received and stored, and acks
// them in one quiet Ack wire.AckDelay after the first (sooner when many
// wait, or the mailbox is drained). Quiet, and not waited for: the answer
// would come behind the pushes the receiving goroutine has yet to read,
// and a lost ack only means the envelopes come again.
type acker struct {
	conn  *wsclient.Conn
	ids   []uint64
	timer *time.Timer
}

func newAcker(conn *wsclient.Conn) *acker {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &acker{conn: conn, timer: t}
}

// due fires when the gathered ids are due to be acked.
func (a *acker) due() <-chan time.Time { return a.timer.C }

// add gathers ids, acking at once when a full Ack's worth waits.
func (a *acker) add(ctx context.Context, ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	if len(a.ids) == 0 {
		a.timer.Reset(wire.AckDelay)
	}
	a.ids = append(a.ids, ids...)
	if len(a.ids) > wire.MaxAckIDs-wire.MaxEnvelopesPerPush {
		return a.flush(ctx)
	}
	return nil
}

// flush acks what is gathered.
func (a *acker) flush(ctx context.Context) error {
	a.timer.Stop()
	if len(a.ids) == 0 {
		return nil
	}
	ids := a.ids
	a.ids = nil
	if err := a.conn.Post(ctx, &wirepb.Ack{Ids: ids, Quiet: true}); err != nil {
		return fmt.Errorf("client: ack: %w", err)
	}
	return nil
}

// stop acks what is gathered as receiving ends, if the connection still
// takes it (within ackTimeout when ctx has ended).
func (a *acker) stop(ctx context.Context) {
	a.timer.Stop()
	if len(a.ids) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	_ = a.flush(fctx) // the envelopes come again if it fails
}

func (c *Client) handlePush(ctx context.Context, acks *acker, p *wirepb.Push, receipts chan<- receiptJob) error {
	switch b := p.GetBody().(type) {
	case *wirepb.Push_Envelopes:
		var ids []uint64
		delivered := map[AccountID][]MessageID{}
		for _, e := range b.Envelopes.GetEnvelopes() {
			if err := c.receiveAndReport(ctx, e.GetContent(), delivered); err != nil {
				return err
			}
			ids = append(ids, e.GetId())
		}
		if err := acks.add(ctx, ids); err != nil {
			return err
		}
		for to, ids := range delivered {
			select {
			case receipts <- receiptJob{to, ids, contentpb.ReceiptMessage_DELIVERY}:
			default: // receipts are a courtesy: never hold up receiving
			}
		}
	case *wirepb.Push_EphemeralEnvelope:
		if err := c.receiveAndReport(ctx, b.EphemeralEnvelope.GetContent(), nil); err != nil {
			return err
		}
	case *wirepb.Push_QueueEmpty:
		// Acked before it is told: a caller that stops once the
		// mailbox is drained leaves nothing to come again.
		if err := acks.flush(ctx); err != nil {
			return err
		}
		c.emit(ctx, DrainedEvent{})
	case *wirepb.Push_PrekeysLow:
		go func() {
			if err := c.withAuth(ctx, func(conn *wsclient.Conn) error { return c.replenishPreKeys(ctx, conn) }); err != nil {
				c.log.Warn("prekey upload failed", "err", err)
			}
		}()
	}
	return nil
}

// receiveAndReport receives one envelope; one that does not open is
// reported and dropped. An error means it must come again (the store
// failed).
func (c *Client) receiveAndReport(ctx context.Context, env []byte, delivered map[AccountID][]MessageID) error {
	r, err := c.receive(ctx, env)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue undecryptable
		if !errors.As(err, &ue) {
			return err
		}
		c.log.Info("dropped an envelope that does not open", "err", ue.err)
		c.emit(ctx, UndecryptableEvent{Err: ue.err})
		return nil
	}
	if r.receipt && delivered != nil {
		delivered[r.from] = append(delivered[r.from], r.id)
	}
	return nil
}

// received says what receive stored: a message from an accepted contact
// that earns a delivery receipt (receipt), from whom, and its id.
type received struct {
	receipt bool
	from    AccountID
	id      MessageID
}

// undecryptable wraps why an envelope does not open: it is dropped (and
// acked), unlike a failure to store, after which it comes again.
type undecryptable struct{ err error }

func (u undecryptable) Error() string { return u.err.Error() }

// receive opens one sealed envelope, decrypts it, and stores what it
// says together with the advanced session, all at once.
func (c *Client) receive(ctx context.Context, env []byte) (received, error) {
	var out received
	err := c.receiveInto(ctx, env, &out)
	return out, err
}

func (c *Client) receiveInto(ctx context.Context, env []byte, out *received) error {
	now := time.Now()
	// Delivery is at least once: an envelope stored here whose ack was
	// lost comes again. Its message keys are gone by then, so it is known
	// by its hash instead, and acked without a word.
	sum := sha256.Sum256(env)
	seen := prefixEnvelope + hex.EncodeToString(sum[:])
	if _, err := c.store.Get(ctx, seen); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("client: %w", err)
	}
	local := sealed.Local{Identity: c.identity, ACI: sealed.ACI(c.account), Device: sealed.DeviceID(c.device)}
	sender, u, err := sealed.Unseal(env, local, c.trust, now)
	if err != nil {
		return undecryptable{fmt.Errorf("unseal: %w", err)}
	}
	aci, err := sealed.ParseServiceID(sender.UUID)
	if err != nil {
		return undecryptable{fmt.Errorf("sender: %w", err)}
	}
	from, dev := AccountID(aci.UUID()), DeviceID(sender.Device)

	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.sessionLocked(ctx, from, dev)
	if err != nil {
		return err
	}
	// Decrypt a copy: the stored record changes only if all is stored.
	work := &session.Record{}
	if b, err := r.MarshalBinary(); err != nil {
		return err
	} else if err := work.UnmarshalBinary(b); err != nil {
		return err
	}
	var plaintext []byte
	var writes []Write
	switch u.Type() {
	case sealed.TypePreKey:
		pm, err := ratchet.ParsePreKeyMessage(u.Contents())
		if err != nil {
			return undecryptable{err}
		}
		res, err := work.DecryptPreKey(rand.Reader, &session.Local{Identity: c.identity, RegistrationID: c.registrationID,
			PreKeys: storePreKeys{ctx, c.store}}, pm)
		if err != nil {
			return undecryptable{err}
		}
		if !res.RemoteIdentity.Equal(sender.IdentityKey) {
			return undecryptable{errors.New("the session's identity is not the certificate's")}
		}
		plaintext = res.Plaintext
		if res.HasPreKey {
			writes = append(writes, Write{Key: preKeyKey("ec", uint32(res.PreKeyID))})
		}
		if res.NewSession {
			// A one-time KEM prekey goes once used; the last-resort one
			// (id 1, made at registration) stays.
			if res.KEMPreKeyID != firstPreKeyID {
				writes = append(writes, Write{Key: preKeyKey("kem", uint32(res.KEMPreKeyID))})
			}
		}
	case sealed.TypeWhisper:
		m, err := ratchet.ParseMessage(u.Contents())
		if err != nil {
			return undecryptable{err}
		}
		if plaintext, err = work.Decrypt(rand.Reader, m); err != nil {
			return undecryptable{err}
		}
	default:
		return undecryptable{fmt.Errorf("content type %d", u.Type())}
	}
	cont, err := content.Decode(plaintext)
	if err != nil {
		return undecryptable{err}
	}
	w, err := sessionWrite(from, dev, work)
	if err != nil {
		return err
	}
	writes = append(writes, w, Write{seen, binary.BigEndian.AppendUint64(nil, uint64(now.Unix()))})

	var events []Event
	ct, err := c.contact(ctx, from)
	if err != nil {
		return err
	}
	if ct.Blocked {
		// Dropped unread; only the session keeps up, so that a later
		// unblock can still read what comes after.
		if err := c.store.Apply(ctx, writes); err != nil {
			return fmt.Errorf("client: %w", err)
		}
		*r = *work
		return nil
	}
	ctChanged := false
	if pk := cont.GetProfileKey(); len(pk) > 0 && string(pk) != string(ct.ProfileKey) {
		ct.ProfileKey, ctChanged = pk, true
	}
	if len(ct.Identity) == 0 {
		ctChanged = true
	}
	if changed, was := noteIdentity(ct, sender.IdentityKey.Bytes()); changed {
		ctChanged = true
		events = append(events, IdentityChangedEvent{With: from, WasVerified: was})
	}
	if cur := work.Current(); cur != nil {
		if reg := cur.RemoteRegistrationID(); ct.Devices[dev] != reg {
			// Replies go to this device on the session it started.
			if ct.Devices == nil {
				ct.Devices = map[DeviceID]uint32{}
			}
			ct.Devices[dev], ctChanged = reg, true
		}
	}
	if from == c.account {
		ctChanged = false // our own devices are not contacts
	}
	switch b := cont.GetBody().(type) {
	case *contentpb.Content_Data:
		if from == c.account {
			return undecryptable{errors.New("a message to this account from itself")}
		}
		m, fresh, w, err := c.newMessage(ctx, from, b.Data, false, dev, now)
		if err != nil {
			return err
		}
		if fresh {
			writes = append(writes, w...)
			events = append(events, MessageEvent{m})
		}
		// A repeat is acknowledged again: the first receipt may be lost.
		out.receipt, out.from, out.id = ct.Accepted, from, m.ID
	case *contentpb.Content_Receipt:
		w, e, err := c.applyReceipt(ctx, from, b.Receipt)
		if err != nil {
			return err
		}
		writes = append(writes, w...)
		if e != nil {
			events = append(events, *e)
		}
	case *contentpb.Content_Typing:
		events = append(events, TypingEvent{With: from, Typing: b.Typing.GetTyping()})
	case *contentpb.Content_Sync:
		if from != c.account {
			return undecryptable{errors.New("a sync message from another account")}
		}
		s := b.Sync.GetSent()
		m, fresh, w, err := c.newMessage(ctx, AccountID(s.GetRecipient()), s.GetMessage(), true, dev, now)
		if err != nil {
			return err
		}
		if fresh {
			writes = append(writes, w...)
			events = append(events, MessageEvent{m})
		}
	}
	if ctChanged {
		writes = append(writes, Write{contactKey(from), marshalJSON(ct)})
	}
	if err := c.store.Apply(ctx, writes); err != nil {
		return fmt.Errorf("client: store a received message: %w", err)
	}
	*r = *work
	for _, e := range events {
		c.emit(ctx, e)
	}
	return nil
}

// newMessage makes the record of a message and reports whether it is new
// (a message id seen before in the conversation is a duplicate).
func (c *Client) newMessage(ctx context.Context, with AccountID, d *contentpb.DataMessage, outgoing bool, dev DeviceID, now time.Time) (Message, bool, []Write, error) {
	m := Message{ID: MessageID(d.GetId()), With: with, Outgoing: outgoing, FromDevice: dev, Text: d.GetText(),
		SentAt: msTime(d.GetSentAt()), ReceivedAt: now}
	if _, err := c.store.Get(ctx, seenKey(with, m.ID)); err == nil {
		return m, false, nil, nil
	} else if !errors.Is(err, ErrNotFound) {
		return m, false, nil, fmt.Errorf("client: %w", err)
	}
	k := messageKey(&m)
	return m, true, []Write{{k, marshalJSON(recordOf(&m))}, {seenKey(with, m.ID), []byte(k)}}, nil
}

// emitNow hands an event to the reader of Events if there is room, and
// drops it otherwise: for calls that must not wait on the reader (a
// status change the caller also learns from the return value).
func (c *Client) emitNow(e Event) {
	select {
	case c.events <- e:
	default:
	}
}

// emit hands an event to the reader of Events, waiting while it is busy.
func (c *Client) emit(ctx context.Context, e Event) {
	select {
	case c.events <- e:
	case <-ctx.Done():
	}
}

// replenishPreKeys uploads a batch of one-time prekeys when the server
// holds fewer than preKeyLowWater of either kind.
func (c *Client) replenishPreKeys(ctx context.Context, conn *wsclient.Conn) error {
	resp, err := c.do(ctx, conn, &wirepb.GetPreKeyCount{})
	if err != nil {
		return err
	}
	n := resp.GetPrekeyCount()
	if n.GetEc() >= preKeyLowWater && n.GetKem() >= preKeyLowWater {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.store.Get(ctx, keyAccount)
	if err != nil {
		return err
	}
	var rec accountRecord
	if err := jsonUnmarshal(b, &rec); err != nil {
		return err
	}
	up := &wirepb.UploadPreKeys{}
	var writes []Write
	now := time.Now()
	for range preKeyBatch {
		id := rec.NextPreKeyID
		rec.NextPreKeyID++
		pk, err := keys.GeneratePreKey(rand.Reader, keys.PreKeyID(id))
		if err != nil {
			return err
		}
		kpk, err := keys.GenerateKEMPreKey(rand.Reader, c.identity.Private, keys.DefaultKEM, keys.KEMPreKeyID(id), now)
		if err != nil {
			return err
		}
		pkb, err := pk.MarshalBinary()
		if err != nil {
			return err
		}
		kpkb, err := kpk.MarshalBinary()
		if err != nil {
			return err
		}
		writes = append(writes, Write{preKeyKey("ec", id), pkb}, Write{preKeyKey("kem", id), kpkb})
		up.OneTimeEc = append(up.OneTimeEc, &wirepb.PreKey{Id: id, Key: pk.Key.Public.Bytes()})
		up.OneTimeKem = append(up.OneTimeKem, &wirepb.KEMPreKey{Id: id, Key: kpk.Key.Public.Bytes(), Signature: kpk.Signature[:]})
	}
	writes = append(writes, Write{keyAccount, marshalJSON(&rec)})
	// Stored before uploading: a key the server hands out must be here.
	if err := c.store.Apply(ctx, writes); err != nil {
		return err
	}
	if _, err := c.do(ctx, conn, up); err != nil {
		return fmt.Errorf("upload prekeys: %w", err)
	}
	return nil
}

// Messages returns the conversation with an account, oldest first.
func (c *Client) Messages(ctx context.Context, with AccountID) ([]Message, error) {
	var out []Message
	err := c.store.Scan(ctx, prefixMessage+with.String()+"/", func(k string, v []byte) error {
		var r messageRecord
		if err := jsonUnmarshal(v, &r); err != nil {
			return fmt.Errorf("stored message %s: %w", strings.TrimPrefix(k, prefixMessage), err)
		}
		m, err := r.message()
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return out, nil
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }
func nsTime(ns int64) time.Time { return time.Unix(0, ns) }

// seenRetention is how long an envelope's hash is kept for recognizing
// its redelivery: the server keeps undelivered envelopes 30 days, so none
// comes back later than that (a day's margin).
const seenRetention = 31 * 24 * time.Hour

// pruneSeen forgets the hashes of envelopes handled before seenRetention.
func (c *Client) pruneSeen(ctx context.Context, now time.Time) error {
	var old []Write
	err := c.store.Scan(ctx, prefixEnvelope, func(k string, v []byte) error {
		if len(v) == 8 && time.Unix(int64(binary.BigEndian.Uint64(v)), 0).Before(now.Add(-seenRetention)) {
			old = append(old, Write{Key: k})
		}
		return nil
	})
	if err != nil || len(old) == 0 {
		return err
	}
	return c.store.Apply(ctx, old)
}
