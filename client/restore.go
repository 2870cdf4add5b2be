package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// ReadOptions say how an export is read back.
type ReadOptions struct {
	// Progress, if set, is called with the bytes read so far and Total.
	Progress func(done, total int)
	// Total is the export's size if known (for Progress), else 0.
	Total int64
}

func (o ReadOptions) progress() func(int64) {
	if o.Progress == nil {
		return nil
	}
	return func(read int64) { o.Progress(int(read), int(max(o.Total, read))) }
}

// ReadResult counts what reading an export added, and what the Store
// already held (Skipped).
type ReadResult struct {
	Contacts, Messages, Imports, Imported, Files int
	Skipped                                      int
}

func (e *exportContents) result() ReadResult {
	return ReadResult{Contacts: e.contacts, Messages: e.messages, Imports: e.imports, Imported: e.imported,
		Files: e.files, Skipped: e.skipped}
}

// ImportExport reads an export of this account (Export, from this or
// another of its devices) into this device's Store: the contacts and
// messages it does not have yet, imported conversations and their files.
// Its keys, if it has them, are not used: this device keeps its own.
// The export is checked whole before anything is kept (one atomic
// change); an export of another account fails with ErrOtherAccount.
func (c *Client) ImportExport(ctx context.Context, src ExportSource, opts ReadOptions) (ReadResult, error) {
	c.historyMu.Lock()
	defer c.historyMu.Unlock()
	m, err := loadMergeState(ctx, c.store, c.account)
	if err != nil {
		return ReadResult{}, err
	}
	var got *exportContents
	err = applyStream(ctx, c.store, func(put func(Write) error) error {
		var err error
		got, err = readExport(src, m, put, opts.progress())
		return err
	})
	if err != nil {
		return ReadResult{}, fmt.Errorf("client: read the export: %w", err)
	}
	return got.result(), nil
}

// RestoreOptions configure Restore.
type RestoreOptions struct {
	ReadOptions
	// Store receives the account; it must be empty.
	Store Store
	// Server is the server's URL; "" takes the export's.
	Server string
	// Logger as in Options.
	Logger *slog.Logger
	// KeepOldDevice keeps the device the export was made on as a device
	// of the account; by default Restore removes it, as the restored
	// device replaces it.
	KeepOldDevice bool
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	ReadResult
	// OldDevice is the device the export was made on; Device the one
	// this restore made.
	OldDevice, Device DeviceID
	// OldDeviceRemoved says the old device was removed from the
	// account; if removing it failed, RemoveErr says why (the restore
	// itself succeeded: remove it with RemoveDevice).
	OldDeviceRemoved bool
	RemoveErr        error
}

// Restore brings an account back from an export with keys (a backup)
// into an empty Store: its contacts, conversations and imported history,
// and the account itself. The export is read and checked whole first;
// only then does the server hear of it.
//
// The restored device joins the account as a new device, with new device
// keys (prekeys, registration id): the export's device keys and sessions
// are of an earlier moment, and the ratchets of every session moved on
// since (messages sent meanwhile), so they cannot go on. With the
// export's device credentials it asks the server for a link token, links
// itself as device linking does, and (unless KeepOldDevice) removes the
// old device. Contacts then find the account's device list changed, drop
// their sessions with the old device and start new ones with this one, as
// they do for any new device; this device starts new sessions with them
// on its first message. Messages that waited on the server for the old
// device are lost with it. Queued messages go out again.
//
// If the old device is no longer on the account (removed meanwhile),
// Restore fails: link a device from another one (NewLinkRequest), then
// ImportExport the export into it. On error the Store may hold part of
// the restore and must be discarded.
func Restore(ctx context.Context, src ExportSource, opts RestoreOptions) (*Client, RestoreResult, error) {
	var res RestoreResult
	if err := checkEmpty(ctx, opts.Store); err != nil {
		return nil, res, err
	}
	m, err := loadMergeState(ctx, opts.Store, AccountID{})
	if err != nil {
		return nil, res, err
	}
	var got *exportContents
	err = applyStream(ctx, opts.Store, func(put func(Write) error) error {
		var err error
		got, err = readExport(&needKeys{src}, m, put, opts.progress())
		return err
	})
	if err != nil {
		return nil, res, fmt.Errorf("client: read the export: %w", err)
	}
	res.ReadResult = got.result()
	k := got.keys
	server := opts.Server
	if server == "" {
		server = got.account.Server
	}
	c, err := newClient(Options{Server: server, Store: opts.Store, Logger: opts.Logger})
	if err != nil {
		return nil, res, err
	}
	account, _ := hexID(got.account.Account)
	c.account, c.device = AccountID(account), DeviceID(k.Device.ID)
	if err := c.identity.UnmarshalBinary(k.Identity); err != nil {
		return nil, res, fmt.Errorf("client: the export's identity key: %w", err)
	}
	var oldAuth keys.KeyPair
	if err := oldAuth.UnmarshalBinary(k.Device.Auth); err != nil {
		return nil, res, fmt.Errorf("client: the export's device key: %w", err)
	}
	c.auth, c.profileKey = oldAuth, k.ProfileKey
	res.OldDevice = c.device

	dk, err := newDeviceKeys(c.identity)
	if err != nil {
		return nil, res, err
	}
	spk, kem := dk.wire()
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, res, err
	}
	defer conn.Close()
	if err := c.authenticate(ctx, conn); err != nil {
		if wsclient.Code(err) == wirepb.Code_UNAUTHENTICATED {
			return nil, res, fmt.Errorf("%w (device %d)", ErrOldDeviceGone, c.device)
		}
		return nil, res, err
	}
	resp, err := c.do(ctx, conn, &wirepb.GetLinkToken{})
	if err != nil {
		return nil, res, fmt.Errorf("client: link token: %w", err)
	}
	anon, err := c.dial(ctx)
	if err != nil {
		return nil, res, err
	}
	defer anon.Close()
	resp, err = c.do(ctx, anon, &wirepb.LinkDevice{LinkToken: resp.GetLinkToken().GetToken(), AuthKey: dk.auth.Public.Bytes(),
		RegistrationId: dk.registrationID, SignedPrekey: spk, KemLastResort: kem})
	if err != nil {
		return nil, res, fmt.Errorf("client: link: %w", err)
	}
	reg := resp.GetRegistered()
	if string(reg.GetAccountId()) != string(account[:]) {
		return nil, res, errors.New("client: link: the server joined another account")
	}
	a := got.account
	rec := &accountRecord{Server: server, ContactsOnly: a.ContactsOnly, Username: a.Username,
		NoDeliveryReceipts: !a.Settings.DeliveryReceipts, NoReadReceipts: !a.Settings.ReadReceipts, NoTyping: !a.Settings.Typing}
	writes, err := c.use(dk, rec, reg)
	if err != nil {
		return nil, res, err
	}
	// What was queued goes out again (receivers drop a message whose id
	// they have seen).
	for i := range got.queued {
		msg := &got.queued[i]
		plaintext, err := c.encodeText(msg.ID, msg.SentAt, msg.Text)
		if err != nil {
			return nil, res, err
		}
		writes = append(writes, Write{outboxKey(msg), marshalJSON(&outboxRecord{To: msg.With[:], MessageKey: messageKey(msg), Content: plaintext})})
	}
	if err := c.store.Apply(ctx, writes); err != nil {
		return nil, res, fmt.Errorf("client: store the restored account: %w", err)
	}
	res.Device = c.device
	if !opts.KeepOldDevice {
		res.RemoveErr = c.RemoveDevice(ctx, res.OldDevice)
		res.OldDeviceRemoved = res.RemoveErr == nil
	}
	return c, res, nil
}

// ErrOldDeviceGone is returned by Restore when the device the export was
// made on is no longer a device of the account.
var ErrOldDeviceGone = errors.New("client: the device this backup was made on is no longer a device of the account, so the backup cannot bring it back: link this device from another device of the account, then import the backup's history into it")

// needKeys refuses, before anything else is read, an export that says it
// has no keys.
type needKeys struct{ ExportSource }

func (n *needKeys) Open(name string) (io.ReadCloser, error) {
	rc, err := n.ExportSource.Open(name)
	if err != nil || name != exportManifest {
		return rc, err
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxExportMeta+1))
	rc.Close()
	if err != nil {
		return nil, err
	}
	var man exManifest
	if json.Unmarshal(b, &man) == nil && man.Format == ExportFormat && !man.IncludesKeys {
		return nil, ErrNoKeys
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// CheckExport reads a whole export and checks it as ImportExport and
// Restore do (its format, every reference, every size and checksum),
// storing nothing; it returns what the export holds.
func CheckExport(src ExportSource) (ReadResult, error) {
	m := &mergeState{seen: map[string]bool{}, contacts: map[AccountID]*contactRecord{},
		imports: map[ImportID]*importRecord{}, imported: map[ImportID]map[MessageID]bool{}}
	got, err := readExport(src, m, func(Write) error { return nil }, nil)
	if err != nil {
		return ReadResult{}, err
	}
	return got.result(), nil
}
