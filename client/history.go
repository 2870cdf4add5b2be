package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Imported history. A conversation brought in from elsewhere (a WhatsApp
// chat export) is kept in the Store beside the Sotto conversations, so it
// is encrypted at rest with them, but apart from them: its messages were
// never sent through Sotto, have no receipts and are never sent anywhere.
// It is named by an ImportID derived from its content, so that importing
// the same export again adds nothing. Its senders are kept by the names
// the export gives them; an import may say which of them is this account
// ("me") and which is which Sotto contact. When the only other sender is
// a contact, the history belongs before the conversation with that
// contact (Import.With), and ImportedWith returns it.
//
// Store layout (beside the keys in state.go):
//
//	import/<import id hex>                              → importRecord
//	imsg/<import id hex>/<batch, 4 hex>/<position, 8 hex> → importedRecord
//	iblob/<import id hex>/<message id hex>/<chunk, 8 hex> → file bytes
//
// A message's position is its place in the export that brought it; a
// later import of the same chat (a longer export) adds its new messages
// in a new batch, after the ones already there.
const (
	prefixImport         = "import/"
	prefixImportedMsg    = "imsg/"
	prefixImportedFile   = "iblob/"
	importedFileChunkLen = 8 // hex digits of a chunk's number
)

// Limits of imported history, each with its reason.
const (
	// ImportChunkSize is the size of the values an imported file is
	// stored in: small enough that a file is never held in memory whole
	// (it is streamed from the export into the store), large enough that
	// a big video is a few thousand values, not millions.
	ImportChunkSize = 256 << 10
	// MaxImportedFile is the largest attached file an import stores.
	// WhatsApp sends documents of up to 2 GB, so every file a real chat
	// holds fits; a larger one is left out (its message is kept, saying
	// so) rather than failing the import of years of history.
	MaxImportedFile = 2 << 30
	// importIDMessages is how many of an export's first messages name its
	// conversation (ImportID): a later, longer export of the same chat
	// starts with the same messages and so is recognized as the same
	// conversation.
	importIDMessages = 3
)

// ImportID names an imported conversation: 16 bytes derived from the
// export's first messages, shown as 32 hex digits.
type ImportID [16]byte

func (i ImportID) String() string { return hex.EncodeToString(i[:]) }

// ParseImportID parses 32 hex digits.
func ParseImportID(s string) (ImportID, error) {
	var id ImportID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("client: import id %q: want 32 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// ImportedKind says what an imported message is.
type ImportedKind string

// The kinds of imported message (those of a WhatsApp export).
const (
	ImportedText         ImportedKind = "text"          // written by a person; locations and polls too
	ImportedSystem       ImportedKind = "system"        // the other app's own notice; no sender
	ImportedAttachment   ImportedKind = "attachment"    // a file; Attachment names it
	ImportedMediaOmitted ImportedKind = "media_omitted" // media the export left out
	ImportedDeleted      ImportedKind = "deleted"       // deleted before the export
)

func (k ImportedKind) valid() bool {
	switch k {
	case ImportedText, ImportedSystem, ImportedAttachment, ImportedMediaOmitted, ImportedDeleted:
		return true
	}
	return false
}

// Import is an imported conversation.
type Import struct {
	ID ImportID
	// Source is where it came from: "whatsapp".
	Source string
	// Title names it: the other person or the group, as the export's
	// file name says, or the senders.
	Title string
	// Format describes the export (for WhatsApp, the inferred layout).
	Format string
	// Senders are the names that wrote in it, in order of appearance.
	Senders []string
	// Me is the sender that is this account, or "".
	Me string
	// Contacts maps senders to the Sotto contacts they are.
	Contacts map[string]AccountID
	// With is the contact whose conversation this history comes before:
	// set when every sender other than Me is that one contact.
	With AccountID
	// Messages and Files count what is stored.
	Messages, Files int
	// ImportedAt is when it was last imported.
	ImportedAt time.Time
}

// ImportedMessage is one message of an imported conversation.
type ImportedMessage struct {
	// ID is derived from the message and its conversation: the same
	// message imported again has the same ID.
	ID     MessageID
	Import ImportID
	// Time is the wall-clock time the export printed, in the time.UTC
	// location used as a zone-less container (exports do not say which
	// zone the phone was in).
	Time time.Time
	// Sender is the name the export gives, "" for a system notice.
	Sender string
	// Me says this account wrote it (Sender is the import's Me);
	// Contact is the contact Sender is mapped to, or the zero AccountID.
	Me      bool
	Contact AccountID
	Kind    ImportedKind
	// Text is the message; for an attachment or omitted media its
	// caption or ""; for a notice, the notice.
	Text string
	// Attachment is the attached file's name, for ImportedAttachment.
	Attachment string
	// FileSize is the size of the stored file, and HasFile says one is
	// stored (an export without media lists files it does not hold).
	FileSize int64
	HasFile  bool
	// Edited says the other app marked it edited.
	Edited bool

	file *storedFile // where the file is stored, for WriteImportedFile
}

// importRecord is an imported conversation, under import/<id>.
type importRecord struct {
	ID         []byte            `json:"id"`
	Source     string            `json:"source"`
	Title      string            `json:"title"`
	Format     string            `json:"format,omitempty"`
	Senders    []string          `json:"senders,omitempty"`
	Me         string            `json:"me,omitempty"`
	Contacts   map[string]string `json:"contacts,omitempty"` // sender → account hex
	With       []byte            `json:"with,omitempty"`
	Messages   int               `json:"messages"`
	Files      int               `json:"files"`
	Batches    int               `json:"batches"`
	ImportedAt int64             `json:"imported_at"` // Unix ms
}

// importedRecord is an imported message, under imsg/….
type importedRecord struct {
	ID         []byte       `json:"id"`
	Time       int64        `json:"time"` // Unix seconds of the wall-clock time read as UTC
	Sender     string       `json:"sender,omitempty"`
	Kind       ImportedKind `json:"kind"`
	Text       string       `json:"text,omitempty"`
	Attachment string       `json:"attachment,omitempty"`
	Edited     bool         `json:"edited,omitempty"`
	File       *storedFile  `json:"file,omitempty"`
}

// storedFile is an imported file's content in the store: Chunks values of
// ImportChunkSize bytes (the last one shorter) under iblob/….
type storedFile struct {
	Size   int64  `json:"size"`
	Chunks int    `json:"chunks"`
	SHA256 []byte `json:"sha256"`
}

func importKey(id ImportID) string { return prefixImport + id.String() }

func importedMsgKey(id ImportID, batch, pos int) string {
	return fmt.Sprintf("%s%s/%04x/%08x", prefixImportedMsg, id, batch, pos)
}

func importedFileKey(id ImportID, msg MessageID, chunk int) string {
	return fmt.Sprintf("%s%s/%s/%0*x", prefixImportedFile, id, msg, importedFileChunkLen, chunk)
}

func (r *importRecord) conversation() (Import, error) {
	var out Import
	if len(r.ID) != len(out.ID) || (len(r.With) != 0 && len(r.With) != len(out.With)) {
		return out, errors.New("client: malformed stored import")
	}
	copy(out.ID[:], r.ID)
	copy(out.With[:], r.With)
	out.Source, out.Title, out.Format, out.Me = r.Source, r.Title, r.Format, r.Me
	out.Senders = slices.Clone(r.Senders)
	out.Messages, out.Files = r.Messages, r.Files
	out.ImportedAt = time.UnixMilli(r.ImportedAt)
	if len(r.Contacts) > 0 {
		out.Contacts = make(map[string]AccountID, len(r.Contacts))
		for name, hexID := range r.Contacts {
			a, err := ParseAccountID(hexID)
			if err != nil {
				return out, errors.New("client: malformed stored import")
			}
			out.Contacts[name] = a
		}
	}
	return out, nil
}

func (r *importedRecord) message(imp *Import) (ImportedMessage, error) {
	var m ImportedMessage
	if len(r.ID) != len(m.ID) || !r.Kind.valid() {
		return m, errors.New("client: malformed stored imported message")
	}
	copy(m.ID[:], r.ID)
	m.Import = imp.ID
	m.Time = time.Unix(r.Time, 0).UTC()
	m.Sender, m.Kind, m.Text, m.Attachment, m.Edited = r.Sender, r.Kind, r.Text, r.Attachment, r.Edited
	if r.File != nil {
		m.HasFile, m.FileSize, m.file = true, r.File.Size, r.File
	}
	if r.Sender != "" {
		m.Me = r.Sender == imp.Me
		m.Contact = imp.Contacts[r.Sender]
	}
	return m, nil
}

// ErrNoImport is returned for an ImportID the store does not hold.
var ErrNoImport = errors.New("client: no imported conversation with that id")

// Imports lists the imported conversations, by title.
func (c *Client) Imports(ctx context.Context) ([]Import, error) {
	return listImports(ctx, c.store)
}

func listImports(ctx context.Context, st Store) ([]Import, error) {
	var out []Import
	err := st.Scan(ctx, prefixImport, func(k string, v []byte) error {
		var r importRecord
		if err := jsonUnmarshal(v, &r); err != nil {
			return fmt.Errorf("stored import %s: %w", strings.TrimPrefix(k, prefixImport), err)
		}
		imp, err := r.conversation()
		if err != nil {
			return err
		}
		out = append(out, imp)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	slices.SortStableFunc(out, func(a, b Import) int { return strings.Compare(a.Title, b.Title) })
	return out, nil
}

// Import returns one imported conversation.
func (c *Client) Import(ctx context.Context, id ImportID) (Import, error) {
	r, err := loadImport(ctx, c.store, id)
	if err != nil {
		return Import{}, err
	}
	return r.conversation()
}

func loadImport(ctx context.Context, st Store, id ImportID) (*importRecord, error) {
	b, err := st.Get(ctx, importKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoImport, id)
	}
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var r importRecord
	if err := jsonUnmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("client: stored import %s: %w", id, err)
	}
	return &r, nil
}

// ImportedMessages returns an imported conversation's messages in the
// order of the export.
func (c *Client) ImportedMessages(ctx context.Context, id ImportID) ([]ImportedMessage, error) {
	imp, err := c.Import(ctx, id)
	if err != nil {
		return nil, err
	}
	return importedMessages(ctx, c.store, &imp)
}

func importedMessages(ctx context.Context, st Store, imp *Import) ([]ImportedMessage, error) {
	out := make([]ImportedMessage, 0, imp.Messages)
	err := st.Scan(ctx, prefixImportedMsg+imp.ID.String()+"/", func(k string, v []byte) error {
		var r importedRecord
		if err := jsonUnmarshal(v, &r); err != nil {
			return fmt.Errorf("stored imported message %s: %w", strings.TrimPrefix(k, prefixImportedMsg), err)
		}
		m, err := r.message(imp)
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

// ImportedWith returns the imported history that comes before the
// conversation with an account (the imports whose With it is), oldest
// import first; nil if there is none. Messages returns the Sotto
// conversation itself.
func (c *Client) ImportedWith(ctx context.Context, with AccountID) ([]ImportedMessage, error) {
	imps, err := c.Imports(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(imps, func(a, b Import) int { return a.ImportedAt.Compare(b.ImportedAt) })
	var out []ImportedMessage
	for i := range imps {
		if imps[i].With != with || with == (AccountID{}) {
			continue
		}
		ms, err := importedMessages(ctx, c.store, &imps[i])
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// WriteImportedFile writes the stored file of an imported message to w,
// one chunk at a time.
func (c *Client) WriteImportedFile(ctx context.Context, m ImportedMessage, w io.Writer) error {
	f := m.file
	if f == nil { // a message not from ImportedMessages or ImportedWith
		rec, err := findImported(ctx, c.store, m.Import, m.ID)
		if err != nil {
			return err
		}
		f = rec.File
	}
	if f == nil {
		return fmt.Errorf("client: the export held no file for %q", m.Attachment)
	}
	return copyStoredFile(ctx, c.store, m.Import, m.ID, f, w)
}

// copyStoredFile copies a stored file's chunks to w and checks its size
// and hash.
func copyStoredFile(ctx context.Context, st Store, imp ImportID, id MessageID, f *storedFile, w io.Writer) error {
	h := sha256.New()
	var n int64
	for i := range f.Chunks {
		b, err := st.Get(ctx, importedFileKey(imp, id, i))
		if err != nil {
			return fmt.Errorf("client: imported file %s chunk %d: %w", id, i, err)
		}
		h.Write(b)
		n += int64(len(b))
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	if n != f.Size || !bytes.Equal(h.Sum(nil), f.SHA256) {
		return fmt.Errorf("client: imported file %s does not match its stored size and hash", id)
	}
	return nil
}

// findImported looks an imported message up by id (a scan of its
// conversation).
func findImported(ctx context.Context, st Store, imp ImportID, id MessageID) (*importedRecord, error) {
	var found *importedRecord
	errFound := errors.New("found")
	err := st.Scan(ctx, prefixImportedMsg+imp.String()+"/", func(k string, v []byte) error {
		var r importedRecord
		if err := jsonUnmarshal(v, &r); err != nil {
			return fmt.Errorf("stored imported message %s: %w", k, err)
		}
		if string(r.ID) == string(id[:]) {
			found = &r
			return errFound
		}
		return nil
	})
	if found != nil {
		return found, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return nil, fmt.Errorf("client: no imported message %s in %s", id, imp)
}

// StreamStore is a Store that also takes one atomic change as a stream of
// writes, so that a change too large to hold in memory (an import with
// its media) is still all or nothing. ApplyStream calls fill, which calls
// put for each write in order; if fill returns an error (or a put fails,
// which fill must return), nothing is written. put does not keep
// w.Value after it returns. Stores without it get the writes collected and
// given to Apply.
type StreamStore interface {
	Store
	ApplyStream(ctx context.Context, fill func(put func(Write) error) error) error
}

// applyStream makes fill's writes in st, atomically.
func applyStream(ctx context.Context, st Store, fill func(put func(Write) error) error) error {
	if ss, ok := st.(StreamStore); ok {
		return ss.ApplyStream(ctx, fill)
	}
	var writes []Write
	err := fill(func(w Write) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if w.Value != nil {
			w.Value = slices.Clone(w.Value)
		}
		writes = append(writes, w)
		return nil
	})
	if err != nil {
		return err
	}
	return st.Apply(ctx, writes)
}
