package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sotto-chat/sotto/client/internal/content"
	"github.com/sotto-chat/sotto/client/internal/content/contentpb"
)

// receiptQueue bounds the delivery receipts waiting to be sent; beyond it
// they are dropped (a receipt is a courtesy, receiving is not).
const receiptQueue = 64

// receiptTimeout bounds sending one receipt, also after Run was told to
// stop (so that stopping waits for the queued ones at most this long).
const receiptTimeout = 10 * time.Second

// ackTimeout bounds sending the last gathered ack after Run was told to
// stop: one frame on an open connection takes milliseconds.
const ackTimeout = 2 * time.Second

// receiptJob is a receipt to send.
type receiptJob struct {
	to  AccountID
	ids []MessageID
	typ contentpb.ReceiptMessage_Type
}

// Settings are what this device tells others. All are on unless turned
// off.
type Settings struct {
	// DeliveryReceipts tell a contact their message arrived.
	DeliveryReceipts bool
	// ReadReceipts tell a contact their message was read (MarkRead).
	ReadReceipts bool
	// Typing tells a contact that this account is typing to them.
	Typing bool
}

// Settings returns this device's settings.
func (c *Client) Settings(ctx context.Context) (Settings, error) {
	r, err := c.accountRecord(ctx)
	if err != nil {
		return Settings{}, err
	}
	return Settings{DeliveryReceipts: !r.NoDeliveryReceipts, ReadReceipts: !r.NoReadReceipts, Typing: !r.NoTyping}, nil
}

// SetSettings changes this device's settings.
func (c *Client) SetSettings(ctx context.Context, s Settings) error {
	return c.updateAccount(ctx, func(r *accountRecord) {
		r.NoDeliveryReceipts, r.NoReadReceipts, r.NoTyping = !s.DeliveryReceipts, !s.ReadReceipts, !s.Typing
	})
}

// MarkRead marks messages from an account as read and, if read receipts
// are on and the account is an accepted contact, tells them. Ids that are
// not messages received from that account are ignored.
func (c *Client) MarkRead(ctx context.Context, with AccountID, ids ...MessageID) error {
	var read []MessageID
	for _, id := range ids {
		k, err := c.store.Get(ctx, seenKey(with, id))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		m, err := c.loadMessage(ctx, string(k))
		if err != nil {
			return err
		}
		if m.Outgoing || m.Status == StatusRead {
			continue
		}
		if _, err := c.setStatus(ctx, string(k), StatusRead, nil); err != nil {
			return err
		}
		read = append(read, id)
	}
	if len(read) == 0 {
		return nil
	}
	s, err := c.Settings(ctx)
	if err != nil || !s.ReadReceipts {
		return err
	}
	return c.sendReceipt(ctx, with, read, contentpb.ReceiptMessage_READ)
}

// SendTyping tells an accepted contact that this account started (true)
// or stopped typing to them, if typing indicators are on. The server
// delivers it only to devices connected now and keeps nothing.
func (c *Client) SendTyping(ctx context.Context, to AccountID, typing bool) error {
	s, err := c.Settings(ctx)
	if err != nil || !s.Typing {
		return err
	}
	ct, err := c.contact(ctx, to)
	if err != nil || !ct.Accepted {
		return err
	}
	b, err := content.Encode(&contentpb.Content{Body: &contentpb.Content_Typing{Typing: &contentpb.TypingMessage{Typing: typing}}})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return c.sendWith(ctx, to, b, true)
}

// sendReceipt sends a receipt, if the account is an accepted contact and
// (for delivery receipts) those are on. Never to anyone else: a receipt
// would tell a stranger this device is online (the "silent receipt"
// probe).
func (c *Client) sendReceipt(ctx context.Context, to AccountID, ids []MessageID, typ contentpb.ReceiptMessage_Type) error {
	ct, err := c.contact(ctx, to)
	if err != nil || !ct.Accepted {
		return err
	}
	if typ == contentpb.ReceiptMessage_DELIVERY {
		s, err := c.Settings(ctx)
		if err != nil || !s.DeliveryReceipts {
			return err
		}
	}
	for len(ids) > 0 {
		n := min(len(ids), content.MaxReceiptIDs)
		r := &contentpb.ReceiptMessage{Type: typ}
		for _, id := range ids[:n] {
			r.Ids = append(r.Ids, id[:])
		}
		ids = ids[n:]
		b, err := content.Encode(&contentpb.Content{Body: &contentpb.Content_Receipt{Receipt: r}})
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		if err := c.send(ctx, to, b); err != nil {
			return err
		}
	}
	return nil
}

// applyReceipt advances the status of the messages a receipt names, among
// those this account sent to from; others are ignored without a word.
func (c *Client) applyReceipt(ctx context.Context, from AccountID, r *contentpb.ReceiptMessage) ([]Write, *ReceiptEvent, error) {
	status := StatusDelivered
	if r.GetType() == contentpb.ReceiptMessage_READ {
		status = StatusRead
	}
	var writes []Write
	e := &ReceiptEvent{With: from, Status: status}
	for _, raw := range r.GetIds() {
		id := MessageID(raw)
		k, err := c.store.Get(ctx, seenKey(from, id))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("client: %w", err)
		}
		b, err := c.store.Get(ctx, string(k))
		if err != nil {
			return nil, nil, fmt.Errorf("client: %w", err)
		}
		var m messageRecord
		if err := jsonUnmarshal(b, &m); err != nil {
			return nil, nil, fmt.Errorf("client: stored message: %w", err)
		}
		if !m.Outgoing || MessageStatus(m.Status) >= status {
			continue
		}
		m.Status = int(status)
		writes = append(writes, Write{string(k), marshalJSON(&m)})
		e.IDs = append(e.IDs, id)
	}
	if len(e.IDs) == 0 {
		return nil, nil, nil
	}
	return writes, e, nil
}

func (c *Client) loadMessage(ctx context.Context, key string) (Message, error) {
	b, err := c.store.Get(ctx, key)
	if err != nil {
		return Message{}, fmt.Errorf("client: %w", err)
	}
	var r messageRecord
	if err := jsonUnmarshal(b, &r); err != nil {
		return Message{}, fmt.Errorf("client: stored message: %w", err)
	}
	return r.message()
}
