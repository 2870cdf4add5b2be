package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sotto-chat/sotto/client/internal/content"
	"github.com/sotto-chat/sotto/client/internal/content/contentpb"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// The account's other devices are kept like a contact: the contact record
// of the account itself, whose Devices are the others (never this one).

// refreshOwnDevices learns the account's devices from the server and
// starts sessions with new ones.
func (c *Client) refreshOwnDevices(ctx context.Context, conn *wsclient.Conn) error {
	resp, err := c.do(ctx, conn, &wirepb.ListDevices{})
	if err != nil {
		return fmt.Errorf("client: list devices: %w", err)
	}
	current := map[DeviceID]uint32{}
	for _, d := range resp.GetDeviceList().GetDevices() {
		if DeviceID(d.GetId()) != c.device {
			current[DeviceID(d.GetId())] = d.GetRegistrationId()
		}
	}
	var writes []Write
	c.mu.Lock()
	own, w, err := c.updateContactLocked(ctx, c.account, func(own *contactRecord) {
		for dev, reg := range own.Devices {
			if current[dev] != reg {
				delete(own.Devices, dev)
				delete(c.sessions, addr{c.account, dev})
				writes = append(writes, Write{Key: sessionKey(c.account, dev)})
			}
		}
	})
	if err == nil {
		err = c.store.Apply(ctx, append(writes, w))
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	anon, err := c.anonConn(ctx)
	if err != nil {
		return err
	}
	for dev := range current {
		if _, ok := own.Devices[dev]; !ok {
			if err := c.startSessions(ctx, anon, own, dev); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncSent tells the account's other devices about a message this one
// sent (a sync transcript), so that every device shows the whole
// conversation. Without other devices it sends nothing.
func (c *Client) syncSent(ctx context.Context, to AccountID, sent []byte) error {
	cont, err := content.Decode(sent)
	if err != nil || cont.GetData() == nil {
		return nil // only messages people wrote are synced
	}
	plaintext, err := content.Encode(&contentpb.Content{Body: &contentpb.Content_Sync{Sync: &contentpb.SyncMessage{
		Sent: &contentpb.Sent{Recipient: to[:], Message: cont.GetData()}}}})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	cert, err := c.certificate(ctx)
	if err != nil {
		return err
	}
	if c.ownStale.Swap(false) {
		// Once per process, and after approving a link: a device may
		// have joined that this one has not heard of.
		if err := c.withAuth(ctx, func(conn *wsclient.Conn) error { return c.refreshOwnDevices(ctx, conn) }); err != nil {
			c.ownStale.Store(true)
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		own, err := c.contact(ctx, c.account)
		if err != nil {
			return err
		}
		if len(own.Devices) == 0 {
			return nil
		}
		req, err := c.seal(ctx, own, cert, plaintext)
		if err != nil {
			return err
		}
		err = c.withAuth(ctx, func(conn *wsclient.Conn) error {
			_, err := c.do(ctx, conn, &wirepb.SendToOwnDevices{Envelopes: req.GetEnvelopes()})
			return err
		})
		var se *wsclient.StatusError
		if err == nil || attempt == maxSendAttempts || !errors.As(err, &se) || se.Code != wirepb.Code_MISMATCHED_DEVICES {
			if err != nil {
				return fmt.Errorf("client: sync: %w", err)
			}
			return nil
		}
		anon, err := c.anonConn(ctx)
		if err != nil {
			return err
		}
		if err := c.fixDevices(ctx, anon, own, se.Status.GetMismatches()); err != nil {
			return err
		}
	}
}

// DeviceInfo is one device of the account.
type DeviceInfo struct {
	ID DeviceID
	// This is the device the Client runs on.
	This bool
	// Created and LastSeen are days (the server keeps nothing finer).
	Created, LastSeen time.Time
}

// Devices lists the account's devices.
func (c *Client) Devices(ctx context.Context) ([]DeviceInfo, error) {
	var out []DeviceInfo
	err := c.withAuth(ctx, func(conn *wsclient.Conn) error {
		resp, err := c.do(ctx, conn, &wirepb.ListDevices{})
		if err != nil {
			return fmt.Errorf("client: list devices: %w", err)
		}
		for _, d := range resp.GetDeviceList().GetDevices() {
			out = append(out, DeviceInfo{ID: DeviceID(d.GetId()), This: DeviceID(d.GetId()) == c.device,
				Created: dayTime(d.GetCreatedDay()), LastSeen: dayTime(d.GetLastSeenDay())})
		}
		return nil
	})
	return out, err
}

// RemoveDevice removes another device from the account: the server drops
// its connections and mailbox, and this device stops sending to it.
func (c *Client) RemoveDevice(ctx context.Context, id DeviceID) error {
	if id == c.device {
		return errors.New("client: a device cannot remove itself; remove it from another device")
	}
	return c.withAuth(ctx, func(conn *wsclient.Conn) error {
		if _, err := c.do(ctx, conn, &wirepb.RemoveDevice{DeviceId: uint32(id)}); err != nil {
			if wsclient.Code(err) == wirepb.Code_NOT_FOUND {
				return fmt.Errorf("client: the account has no device %d", id)
			}
			return fmt.Errorf("client: remove device: %w", err)
		}
		return c.refreshOwnDevices(ctx, conn)
	})
}

func dayTime(day int32) time.Time {
	if day == 0 {
		return time.Time{}
	}
	return time.Unix(int64(day)*86400, 0).UTC()
}
