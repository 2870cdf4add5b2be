package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"
	"time"
)

// Export: all of an account's own data in an open, documented format
// (docs/export-format.md): JSON files and JSON Lines, and a media folder.
// The files are written, and read back, in one fixed order, so that the
// export can be a directory or a stream (a tar inside an encrypted
// backup): the manifest first, checksums of every file last.

// ExportFormat and ExportVersion name the format in manifest.json. The
// version changes when a reader of an older version would misread an
// export; see docs/export-format.md for the history.
const (
	ExportFormat  = "sotto-export"
	ExportVersion = 1
)

// The files of an export, in the order they are written.
const (
	exportManifest  = "manifest.json"
	exportAccount   = "account.json"
	exportContacts  = "contacts.jsonl"
	exportMessages  = "messages.jsonl"
	exportImports   = "imports.jsonl"
	exportImported  = "imported.jsonl"
	exportMediaDir  = "media/"
	exportKeys      = "keys.json"
	exportChecksums = "checksums.json"
)

// ExportSink receives the files of an export, in order. name is a
// slash-separated path inside the export ("media/…/…"), size the exact
// length of what r holds.
type ExportSink interface {
	WriteFile(name string, size int64, r io.Reader) error
}

// ExportOptions say what an export holds.
type ExportOptions struct {
	// IncludeKeys adds keys.json: the account's identity key pair, its
	// profile key, this device's keys and the contacts' profile keys.
	// Whoever holds an export with keys can act as the account.
	IncludeKeys bool
	// Profile is this account's profile as ProfileOf returned it (it is
	// kept on the server, not in the Store), or nil to leave it out.
	Profile *Profile
	// Progress, if set, is called with how many messages (Sotto and
	// imported) are written, of their total.
	Progress func(done, total int)
}

// ExportResult counts what an export holds.
type ExportResult struct {
	Contacts, Messages, Imports, Imported, Files int
	// Bytes is the total size of the files.
	Bytes int64
}

// The records of the format (docs/export-format.md).
type (
	exManifest struct {
		Format       string `json:"format"`
		Version      int    `json:"version"`
		ExportedAt   string `json:"exported_at"`
		Account      string `json:"account"`
		Device       uint32 `json:"device"`
		IncludesKeys bool   `json:"includes_keys"`
	}
	exAccount struct {
		Account      string     `json:"account"`
		Server       string     `json:"server"`
		Username     string     `json:"username"`
		ContactsOnly bool       `json:"contacts_only"`
		Settings     exSettings `json:"settings"`
		Profile      *exProfile `json:"profile"`
	}
	exSettings struct {
		DeliveryReceipts bool `json:"delivery_receipts"`
		ReadReceipts     bool `json:"read_receipts"`
		Typing           bool `json:"typing"`
	}
	exProfile struct {
		Name   string `json:"name"`
		Avatar []byte `json:"avatar,omitempty"`
	}
	exContact struct {
		Account         string `json:"account"`
		Name            string `json:"name"`
		IdentityKey     []byte `json:"identity_key,omitempty"`
		Accepted        bool   `json:"accepted"`
		Verified        bool   `json:"verified"`
		IdentityChanged bool   `json:"identity_changed"`
		Blocked         bool   `json:"blocked"`
	}
	exMessage struct {
		Conversation string `json:"conversation"`
		ID           string `json:"id"`
		Direction    string `json:"direction"`
		Device       uint32 `json:"device"`
		SentAt       string `json:"sent_at"`
		ReceivedAt   string `json:"received_at"`
		Status       string `json:"status"`
		Kind         string `json:"kind"`
		Text         string `json:"text"`
	}
	exImport struct {
		Import     string            `json:"import"`
		Source     string            `json:"source"`
		Title      string            `json:"title"`
		Format     string            `json:"format"`
		Senders    []string          `json:"senders"`
		Me         string            `json:"me"`
		Contacts   map[string]string `json:"contacts"`
		With       string            `json:"with"`
		Messages   int               `json:"messages"`
		Files      int               `json:"files"`
		Batches    int               `json:"batches"`
		ImportedAt string            `json:"imported_at"`
	}
	exImported struct {
		Import     string       `json:"import"`
		ID         string       `json:"id"`
		Batch      int          `json:"batch"`
		Position   int          `json:"position"`
		Time       string       `json:"time"`
		Sender     string       `json:"sender"`
		Kind       ImportedKind `json:"kind"`
		Text       string       `json:"text"`
		Attachment string       `json:"attachment"`
		Edited     bool         `json:"edited"`
		File       *exMediaFile `json:"file"`
	}
	exMediaFile struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	exKeys struct {
		Identity   []byte            `json:"identity"`
		ProfileKey []byte            `json:"profile_key"`
		Device     exDeviceKeys      `json:"device"`
		Contacts   map[string][]byte `json:"contact_profile_keys"`
	}
	exDeviceKeys struct {
		ID             uint32 `json:"id"`
		RegistrationID uint32 `json:"registration_id"`
		Auth           []byte `json:"auth"`
		TrustRoot      []byte `json:"trust_root"`
	}
	exChecksums struct {
		Files []exChecksum `json:"files"`
	}
	exChecksum struct {
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
)

// Time layouts of the format: instants in UTC with nanoseconds, and the
// zone-less wall-clock times of imported messages.
const (
	exportInstant  = time.RFC3339Nano
	exportWallTime = "2006-01-02T15:04:05"
)

func parseStatus(s string) (MessageStatus, bool) {
	for st := StatusReceived; st <= StatusFailed; st++ {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

// mediaPath is where an imported message's file goes in an export: the
// message's conversation and id, and the file's extension when it is
// short and plain (so that the file opens by a double click).
func mediaPath(imp ImportID, id MessageID, attachment string) string {
	p := exportMediaDir + imp.String() + "/" + id.String()
	ext := strings.ToLower(path.Ext(attachment))
	if len(ext) >= 2 && len(ext) <= maxMediaExt+1 && strings.Trim(ext[1:], "abcdefghijklmnopqrstuvwxyz0123456789") == "" {
		p += ext
	}
	return p
}

// maxMediaExt is the longest file extension a media path keeps: real
// ones (jpg, opus, webp, docx) are short; anything longer is not one.
const maxMediaExt = 8

// Export writes all of this account's data to sink in the format of
// docs/export-format.md: profile, settings, contacts, every conversation
// with every message and its receipt state, imported conversations with
// their files, and, with IncludeKeys, the keys. It reads the Store as it
// goes: a message that arrives meanwhile may or may not be in it.
func (c *Client) Export(ctx context.Context, sink ExportSink, opts ExportOptions) (ExportResult, error) {
	var res ExportResult
	// No import changes the imported conversations while they are read
	// (their records' counts must match their messages).
	c.historyMu.Lock()
	defer c.historyMu.Unlock()
	rec, err := c.accountRecord(ctx)
	if err != nil {
		return res, err
	}
	w := &exportWriter{sink: sink}

	w.json(exportManifest, exManifest{Format: ExportFormat, Version: ExportVersion, ExportedAt: time.Now().UTC().Format(exportInstant),
		Account: c.account.String(), Device: uint32(c.device), IncludesKeys: opts.IncludeKeys})
	acct := exAccount{Account: c.account.String(), Server: rec.Server, Username: rec.Username, ContactsOnly: rec.ContactsOnly,
		Settings: exSettings{DeliveryReceipts: !rec.NoDeliveryReceipts, ReadReceipts: !rec.NoReadReceipts, Typing: !rec.NoTyping}}
	if opts.Profile != nil {
		acct.Profile = &exProfile{Name: opts.Profile.Name, Avatar: opts.Profile.Avatar}
	}
	w.json(exportAccount, acct)

	var lines bytes.Buffer
	profileKeys := map[string][]byte{}
	err = c.store.Scan(ctx, prefixContact, func(k string, v []byte) error {
		var r contactRecord
		if err := jsonUnmarshal(v, &r); err != nil || len(r.Account) != len(AccountID{}) {
			return fmt.Errorf("stored contact %s is malformed", k)
		}
		a := AccountID(r.Account)
		if a == c.account {
			return nil // the account's other devices: state, not data
		}
		appendLine(&lines, exContact{Account: a.String(), Name: r.Name, IdentityKey: r.Identity, Accepted: r.Accepted,
			Verified: r.Verified, IdentityChanged: r.Changed, Blocked: r.Blocked})
		if len(r.ProfileKey) > 0 {
			profileKeys[a.String()] = r.ProfileKey
		}
		res.Contacts++
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("client: export: %w", err)
	}
	w.buffer(exportContacts, &lines)

	// Counted first, for the progress.
	imps, err := listImportRecords(ctx, c.store)
	if err != nil {
		return res, err
	}
	total, done := 0, 0
	for _, r := range imps {
		total += r.Messages
	}
	err = c.store.Scan(ctx, prefixSeen, func(string, []byte) error { total++; return nil })
	if err != nil {
		return res, fmt.Errorf("client: export: %w", err)
	}
	step := func() {
		done++
		if opts.Progress != nil {
			opts.Progress(done, max(total, done))
		}
	}

	err = c.store.Scan(ctx, prefixMessage, func(k string, v []byte) error {
		var r messageRecord
		if err := jsonUnmarshal(v, &r); err != nil {
			return fmt.Errorf("stored message %s: %w", k, err)
		}
		m, err := r.message()
		if err != nil {
			return err
		}
		dir := "in"
		if m.Outgoing {
			dir = "out"
		}
		appendLine(&lines, exMessage{Conversation: m.With.String(), ID: m.ID.String(), Direction: dir, Device: uint32(m.FromDevice),
			SentAt: m.SentAt.UTC().Format(exportInstant), ReceivedAt: m.ReceivedAt.UTC().Format(exportInstant),
			Status: m.Status.String(), Kind: "text", Text: m.Text})
		res.Messages++
		step()
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("client: export: %w", err)
	}
	w.buffer(exportMessages, &lines)

	for _, r := range imps {
		appendLine(&lines, exportImportLine(r))
		res.Imports++
	}
	w.buffer(exportImports, &lines)

	type media struct {
		path string
		imp  ImportID
		id   MessageID
		file *storedFile
	}
	var files []media
	for _, r := range imps {
		imp := ImportID(r.ID)
		prefix := prefixImportedMsg + imp.String() + "/"
		err := c.store.Scan(ctx, prefix, func(k string, v []byte) error {
			var m importedRecord
			if err := jsonUnmarshal(v, &m); err != nil || len(m.ID) != len(MessageID{}) || !m.Kind.valid() {
				return fmt.Errorf("stored imported message %s is malformed", k)
			}
			var batch, pos int
			if _, err := fmt.Sscanf(strings.TrimPrefix(k, prefix), "%04x/%08x", &batch, &pos); err != nil {
				return fmt.Errorf("stored imported message %s: key: %w", k, err)
			}
			id := MessageID(m.ID)
			line := exImported{Import: imp.String(), ID: id.String(), Batch: batch, Position: pos,
				Time: time.Unix(m.Time, 0).UTC().Format(exportWallTime), Sender: m.Sender, Kind: m.Kind, Text: m.Text,
				Attachment: m.Attachment, Edited: m.Edited}
			if m.File != nil {
				p := mediaPath(imp, id, m.Attachment)
				line.File = &exMediaFile{Path: p, Size: m.File.Size, SHA256: hex.EncodeToString(m.File.SHA256)}
				files = append(files, media{p, imp, id, m.File})
			}
			appendLine(&lines, line)
			res.Imported++
			step()
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("client: export: %w", err)
		}
	}
	w.buffer(exportImported, &lines)

	for _, f := range files {
		if w.err != nil {
			break
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(copyStoredFile(ctx, c.store, f.imp, f.id, f.file, pw)) }()
		w.file(f.path, f.file.Size, pr)
		pr.CloseWithError(errors.New("the export stopped"))
		res.Files++
	}

	if opts.IncludeKeys {
		w.json(exportKeys, exKeys{Identity: rec.Identity, ProfileKey: rec.ProfileKey, Contacts: profileKeys,
			Device: exDeviceKeys{ID: rec.Device, RegistrationID: rec.RegistrationID, Auth: rec.Auth, TrustRoot: rec.TrustRoot}})
	}
	sums := exChecksums{Files: w.sums}
	w.json(exportChecksums, sums)
	if w.err != nil {
		return res, fmt.Errorf("client: export: %w", w.err)
	}
	res.Bytes = w.bytes
	return res, nil
}

func exportImportLine(r *importRecord) exImport {
	line := exImport{Import: ImportID(r.ID).String(), Source: r.Source, Title: r.Title, Format: r.Format,
		Senders: r.Senders, Me: r.Me, Contacts: r.Contacts, Messages: r.Messages, Files: r.Files, Batches: r.Batches,
		ImportedAt: time.UnixMilli(r.ImportedAt).UTC().Format(exportInstant)}
	if line.Senders == nil {
		line.Senders = []string{}
	}
	if line.Contacts == nil {
		line.Contacts = map[string]string{}
	}
	if len(r.With) == len(AccountID{}) {
		line.With = AccountID(r.With).String()
	}
	return line
}

// listImportRecords returns the stored import records in key order.
func listImportRecords(ctx context.Context, st Store) ([]*importRecord, error) {
	var out []*importRecord
	err := st.Scan(ctx, prefixImport, func(k string, v []byte) error {
		var r importRecord
		if err := jsonUnmarshal(v, &r); err != nil || len(r.ID) != len(ImportID{}) {
			return fmt.Errorf("stored import %s is malformed", k)
		}
		out = append(out, &r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return out, nil
}

// appendLine adds v as one JSON line.
func appendLine(b *bytes.Buffer, v any) {
	b.Write(marshalJSON(v))
	b.WriteByte('\n')
}

// exportWriter writes files to a sink, keeping their checksums; the first
// error stops it.
type exportWriter struct {
	sink  ExportSink
	sums  []exChecksum
	bytes int64
	err   error
}

func (w *exportWriter) json(name string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("client: marshal %T: %v", v, err)) // only our own plain types
	}
	b = append(b, '\n')
	w.file(name, int64(len(b)), bytes.NewReader(b))
}

// buffer writes the lines gathered in b as a file, and empties b.
func (w *exportWriter) buffer(name string, b *bytes.Buffer) {
	w.file(name, int64(b.Len()), bytes.NewReader(b.Bytes()))
	b.Reset()
}

func (w *exportWriter) file(name string, size int64, r io.Reader) {
	if w.err != nil {
		return
	}
	hr := &hashingReader{r: r, h: sha256.New()}
	if err := w.sink.WriteFile(name, size, hr); err != nil {
		w.err = fmt.Errorf("write %s: %w", name, err)
		return
	}
	if hr.n != size {
		w.err = fmt.Errorf("write %s: %d bytes, not %d", name, hr.n, size)
		return
	}
	w.bytes += size
	if name != exportChecksums {
		w.sums = append(w.sums, exChecksum{Name: name, Size: size, SHA256: hex.EncodeToString(hr.h.Sum(nil))})
	}
}

// hashingReader hashes and counts what passes through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}
