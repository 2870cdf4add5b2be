package client

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/sotto-chat/sotto/client/whatsapp"
)

// WhatsAppImport says how ImportWhatsApp maps an export onto this
// account.
type WhatsAppImport struct {
	// FileName is the name of the export's file (the .txt or .zip), for
	// the default title.
	FileName string
	// Title names the conversation; "" keeps the title of an earlier
	// import of it, or takes WhatsAppDefaults' from FileName.
	Title string
	// Me is the sender that is this account, or "" for none.
	Me string
	// Contacts maps senders to the Sotto contacts they are; senders
	// not in it keep their names.
	Contacts map[string]AccountID
	// Progress, if set, is called as messages are stored, with how many
	// of the export's messages are done and their total.
	Progress func(done, total int)
}

// ImportResult says what an import did.
type ImportResult struct {
	// Import is the conversation as stored afterwards.
	Import Import
	// Added messages are new; Duplicates were already there (the same
	// export, or the earlier part of a longer one, imported before).
	Added, Duplicates int
	// Files were stored with their messages. MissingFiles are attached
	// files the export did not hold (a chat exported without media);
	// TooLarge are files over MaxImportedFile, left out.
	Files, MissingFiles, TooLarge int
}

// ErrEmptyExport is returned for an export without messages.
var ErrEmptyExport = errors.New("client: the export holds no messages")

// ImportWhatsApp imports a parsed WhatsApp export (whatsapp.Parse,
// ParseZip or ParseFile) as an imported conversation, with the files of a
// zip export. Nothing is sent anywhere. The import is one atomic change of
// the Store: if anything fails (a file of the zip is corrupt, the store is
// full), nothing of it is kept. Messages already imported from an earlier
// export of the same chat are recognized and skipped; a file that an
// earlier export without media lacked is added. The mapping (Me,
// Contacts, Title) replaces that of an earlier import.
func (c *Client) ImportWhatsApp(ctx context.Context, chat *whatsapp.Chat, opts WhatsAppImport) (ImportResult, error) {
	if chat == nil || len(chat.Messages) == 0 {
		return ImportResult{}, ErrEmptyExport
	}
	senders := whatsappSenders(chat)
	if opts.Me != "" && !slices.Contains(senders, opts.Me) {
		return ImportResult{}, fmt.Errorf("client: no sender %q in the export", opts.Me)
	}
	for name, a := range opts.Contacts {
		switch {
		case !slices.Contains(senders, name):
			return ImportResult{}, fmt.Errorf("client: no sender %q in the export", name)
		case name == opts.Me:
			return ImportResult{}, fmt.Errorf("client: %q is you and cannot also be a contact", name)
		case a == c.account:
			return ImportResult{}, fmt.Errorf("client: %q is mapped to this account itself: make them \"me\" instead", name)
		}
	}
	c.historyMu.Lock()
	defer c.historyMu.Unlock()

	id := whatsappImportID(chat.Messages)
	rec, err := loadImport(ctx, c.store, id)
	switch {
	case errors.Is(err, ErrNoImport):
		rec = &importRecord{ID: id[:], Source: "whatsapp"}
	case err != nil:
		return ImportResult{}, err
	}
	// What an earlier import stored: ids, and the messages still
	// without their file.
	seen := map[MessageID]bool{}
	fileless := map[MessageID]existingImported{}
	err = c.store.Scan(ctx, prefixImportedMsg+id.String()+"/", func(k string, v []byte) error {
		var r importedRecord
		if err := jsonUnmarshal(v, &r); err != nil || len(r.ID) != len(MessageID{}) {
			return fmt.Errorf("stored imported message %s is malformed", k)
		}
		seen[MessageID(r.ID)] = true
		if r.Kind == ImportedAttachment && r.File == nil {
			fileless[MessageID(r.ID)] = existingImported{k, r}
		}
		return nil
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("client: %w", err)
	}

	var res ImportResult
	batch := rec.Batches
	total := len(chat.Messages)
	ids := whatsappMessageIDs(id, chat.Messages)
	fill := func(put func(Write) error) error {
		for i := range chat.Messages {
			m := &chat.Messages[i]
			if opts.Progress != nil {
				opts.Progress(i, total)
			}
			if seen[ids[i]] {
				res.Duplicates++
				old, ok := fileless[ids[i]]
				if !ok {
					continue
				}
				f, err := c.importFile(put, id, ids[i], chat, m.Attachment, &res)
				if err != nil {
					return err
				}
				if f != nil {
					old.rec.File = f
					if err := put(Write{old.key, marshalJSON(&old.rec)}); err != nil {
						return err
					}
					delete(fileless, ids[i])
				}
				continue
			}
			seen[ids[i]] = true // a later copy in the same export has another occurrence number anyway
			r := importedRecord{ID: ids[i][:], Time: m.Time.Unix(), Sender: m.Sender, Kind: ImportedKind(m.Kind),
				Text: m.Text, Attachment: m.Attachment, Edited: m.Edited}
			if m.Kind == whatsapp.KindAttachment {
				f, err := c.importFile(put, id, ids[i], chat, m.Attachment, &res)
				if err != nil {
					return err
				}
				r.File = f
			}
			if err := put(Write{importedMsgKey(id, batch, i), marshalJSON(&r)}); err != nil {
				return err
			}
			res.Added++
		}
		if res.Added > 0 {
			rec.Batches++
		}
		rec.Messages += res.Added
		rec.Files += res.Files
		c.describeImport(rec, chat, senders, opts)
		if opts.Progress != nil {
			opts.Progress(total, total)
		}
		return put(Write{importKey(id), marshalJSON(rec)})
	}
	if err := applyStream(ctx, c.store, fill); err != nil {
		return ImportResult{}, fmt.Errorf("client: import: %w", err)
	}
	res.Import, err = rec.conversation()
	return res, err
}

// existingImported is a stored imported message and its key.
type existingImported struct {
	key string
	rec importedRecord
}

// describeImport sets what an import says about its conversation: its
// senders, title, format, and the mapping of its senders.
func (c *Client) describeImport(rec *importRecord, chat *whatsapp.Chat, senders []string, opts WhatsAppImport) {
	for _, s := range senders {
		if !slices.Contains(rec.Senders, s) {
			rec.Senders = append(rec.Senders, s)
		}
	}
	switch {
	case opts.Title != "":
		rec.Title = opts.Title
	case rec.Title == "":
		rec.Title, _ = WhatsAppDefaults(opts.FileName, chat)
	}
	rec.Format = chat.Format.String()
	rec.Me = opts.Me
	rec.Contacts = nil
	for _, name := range slices.Sorted(maps.Keys(opts.Contacts)) {
		if rec.Contacts == nil {
			rec.Contacts = map[string]string{}
		}
		rec.Contacts[name] = opts.Contacts[name].String()
	}
	// The history comes before a contact's conversation when every other
	// sender is that contact.
	rec.With = nil
	var with *AccountID
	for _, s := range rec.Senders {
		if s == rec.Me {
			continue
		}
		a, ok := opts.Contacts[s]
		if !ok || (with != nil && *with != a) {
			with = nil
			break
		}
		with = &a
	}
	if with != nil {
		rec.With = with[:]
	}
	rec.ImportedAt = time.Now().UnixMilli()
}

// importFile stores the zip's file name for message msg, chunk by chunk,
// and returns its record; nil if the export does not hold it or it is
// over MaxImportedFile (counted in res).
func (c *Client) importFile(put func(Write) error, imp ImportID, msg MessageID, chat *whatsapp.Chat, name string, res *ImportResult) (*storedFile, error) {
	f, ok := chat.Files[name]
	switch {
	case !ok:
		res.MissingFiles++
		return nil, nil
	case f.Size > MaxImportedFile:
		res.TooLarge++
		return nil, nil
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("the export's file %q: %w", name, err)
	}
	defer rc.Close()
	sf, err := putChunks(put, imp, msg, rc)
	if err != nil {
		return nil, fmt.Errorf("the export's file %q: %w", name, err)
	}
	res.Files++
	return sf, nil
}

// putChunks stores what r holds as the file of an imported message, one
// ImportChunkSize value at a time, refusing more than MaxImportedFile
// bytes.
func putChunks(put func(Write) error, imp ImportID, msg MessageID, r io.Reader) (*storedFile, error) {
	h := sha256.New()
	sf := &storedFile{}
	buf := make([]byte, ImportChunkSize)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			sf.Size += int64(n)
			if sf.Size > MaxImportedFile {
				return nil, fmt.Errorf("over %d GiB", MaxImportedFile>>30)
			}
			h.Write(buf[:n])
			if err := put(Write{importedFileKey(imp, msg, sf.Chunks), buf[:n]}); err != nil {
				return nil, err
			}
			sf.Chunks++
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	sf.SHA256 = h.Sum(nil)
	return sf, nil
}

// whatsappSenders returns the chat's senders in order of appearance.
func whatsappSenders(chat *whatsapp.Chat) []string {
	var out []string
	seen := map[string]bool{}
	for i := range chat.Messages {
		s := chat.Messages[i].Sender
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// WhatsAppSenders returns the senders of a parsed export in order of
// appearance, with how many messages each wrote.
func WhatsAppSenders(chat *whatsapp.Chat) (names []string, counts map[string]int) {
	counts = map[string]int{}
	for i := range chat.Messages {
		if s := chat.Messages[i].Sender; s != "" {
			counts[s]++
		}
	}
	return whatsappSenders(chat), counts
}

// whatsappTitlePrefixes start the names WhatsApp gives a chat file
// ("WhatsApp Chat with Jordan Reyes.txt") and its zip, in the languages
// of the shared corpus and a few more; the rest of the name is the other
// person or the group.
func whatsappTitlePrefixes() []string {
	return []string{
		"WhatsApp Chat with ", "WhatsApp Chat - ", "WhatsApp-Chat mit ", "WhatsApp Chat mit ",
		"Chat de WhatsApp con ", "Conversa do WhatsApp com ", "Discussion WhatsApp avec ",
		"Chat WhatsApp con ", "WhatsApp-chat met ", "WhatsApp-chatt med ",
	}
}

// WhatsAppDefaults suggests, from the name of an export's file (the .txt
// or the .zip; the chat file inside a zip is tried too) and its
// messages, a title for the conversation and which sender is this
// account:
//
//   - The title is the sender whose name ends the file name ("WhatsApp
//     Chat with Jordan Reyes.txt": Jordan Reyes), else the file name
//     without WhatsApp's prefix and extension, else the first senders.
//   - In a chat of two senders where the file name names one of them,
//     the other is "me": WhatsApp names a 1:1 export after the other
//     person. Otherwise me is "" (nobody): it cannot be told.
func WhatsAppDefaults(fileName string, chat *whatsapp.Chat) (title, me string) {
	senders := whatsappSenders(chat)
	for _, name := range []string{fileName, chat.ChatFile} {
		base := path.Base(strings.ReplaceAll(name, "\\", "/"))
		if ext := path.Ext(base); strings.EqualFold(ext, ".txt") || strings.EqualFold(ext, ".zip") {
			base = strings.TrimSuffix(base, ext)
		}
		if base == "" || base == "." || base == "_chat" {
			continue
		}
		// The longest sender that ends the name ("Ann" must not win over
		// "Jo Ann").
		named := ""
		for _, s := range senders {
			if strings.HasSuffix(base, s) && len(s) > len(named) {
				named = s
			}
		}
		if named != "" {
			if len(senders) == 2 {
				me = senders[0]
				if me == named {
					me = senders[1]
				}
			}
			return named, me
		}
		if title == "" {
			title = base
			for _, p := range whatsappTitlePrefixes() {
				if t, ok := strings.CutPrefix(base, p); ok && t != "" {
					title = t
					break
				}
			}
		}
	}
	if title == "" {
		title = strings.Join(senders[:min(len(senders), 3)], ", ")
	}
	return title, ""
}

// whatsappImportID names the conversation of an export by its first
// messages.
func whatsappImportID(msgs []whatsapp.Message) ImportID {
	h := sha256.New()
	h.Write([]byte("sotto whatsapp chat v1"))
	for i := range msgs[:min(len(msgs), importIDMessages)] {
		h.Write(whatsappFields(&msgs[i]))
	}
	return ImportID(h.Sum(nil)[:16])
}

// whatsappMessageIDs derives each message's id from its conversation, its
// fields, and how many identical messages came before it in the export
// (two "ok" at the same minute are two messages).
func whatsappMessageIDs(imp ImportID, msgs []whatsapp.Message) []MessageID {
	ids := make([]MessageID, len(msgs))
	occurrences := make(map[[sha256.Size]byte]uint32, len(msgs))
	var buf []byte
	for i := range msgs {
		fields := sha256.Sum256(whatsappFields(&msgs[i]))
		n := occurrences[fields]
		occurrences[fields] = n + 1
		buf = append(buf[:0], "sotto whatsapp message v1"...)
		buf = append(buf, imp[:]...)
		buf = append(buf, fields[:]...)
		buf = binary.BigEndian.AppendUint32(buf, n)
		sum := sha256.Sum256(buf)
		ids[i] = MessageID(sum[:16])
	}
	return ids
}

// whatsappFields encodes what identifies a message, each field with its
// length in front.
func whatsappFields(m *whatsapp.Message) []byte {
	var b []byte
	for _, f := range []string{m.Time.Format(time.DateTime), m.Sender, string(m.Kind), m.Text, m.Attachment} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	if m.Edited {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return b
}
