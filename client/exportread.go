package client

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/sotto-chat/sotto/internal/keys"
)

// Reading an export back: every file is checked (its format, its
// references, its size and hash against checksums.json) while it is
// turned into writes of one atomic change, so that a damaged or
// tampered export changes nothing.

// Limits of an export that is read, each with its reason.
const (
	// maxExportMeta bounds manifest.json, account.json, keys.json and
	// checksums.json: an avatar (MaxAvatar) and a few thousand contacts'
	// keys fit many times over.
	maxExportMeta = 4 << 20
	// maxExportLine bounds one line of a .jsonl file: a WhatsApp message
	// is at most 65,536 characters, a Sotto text 64 KiB; JSON escaping
	// (\uXXXX) at most sextuples them.
	maxExportLine = 4 << 20
	// maxExportEntries bounds the files of an export: the fixed ones and
	// one per imported file (a long chat with media has tens of
	// thousands).
	maxExportEntries = 1 << 20
	// jsonlUnbounded: a .jsonl file is bounded line by line
	// (maxExportLine), not as a whole; a history has no upper size.
	jsonlUnbounded = 1 << 62
)

// ErrNotExport is wrapped by the errors of a file set that is not a Sotto
// export, or is a damaged one.
var ErrNotExport = errors.New("client: not a valid Sotto export")

// ErrExportVersion is returned for an export of a version this client
// does not read (a newer client wrote it).
var ErrExportVersion = errors.New("client: the export is of a newer format version: update sotto to read it")

// ErrOtherAccount is returned by ImportExport for an export of another
// account.
var ErrOtherAccount = errors.New("client: the export is of another account")

// ErrNoKeys is returned by Restore for an export without keys.
var ErrNoKeys = errors.New("client: the export holds no keys (it was made without them), so it cannot restore the account")

// ExportSource gives the files of an export in their order: Open returns
// the next file, which must be name. End checks that nothing follows the
// last file.
type ExportSource interface {
	Open(name string) (io.ReadCloser, error)
	End() error
}

// badExport wraps ErrNotExport with the reason.
func badExport(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotExport, fmt.Sprintf(format, args...))
}

// DirSource reads an export from a directory.
func DirSource(dir string) ExportSource { return dirSource{dir} }

type dirSource struct{ dir string }

func (d dirSource) Open(name string) (io.ReadCloser, error) {
	if !fs.ValidPath(name) {
		return nil, badExport("file name %q", name)
	}
	f, err := os.Open(filepath.Join(d.dir, filepath.FromSlash(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, badExport("%s is missing", name)
	}
	return f, err
}

func (dirSource) End() error { return nil }

// DirSink writes an export into a directory, which must not hold one
// already: files are created, never replaced, readable by their owner
// only.
func DirSink(dir string) ExportSink { return dirSink{dir} }

type dirSink struct{ dir string }

func (d dirSink) WriteFile(name string, size int64, r io.Reader) error {
	p := filepath.Join(d.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// TarSink writes an export as a tar stream (for a backup); Close writes
// the tar's end.
type TarSink struct{ tw *tar.Writer }

// NewTarSink returns a TarSink writing to w.
func NewTarSink(w io.Writer) *TarSink { return &TarSink{tar.NewWriter(w)} }

// WriteFile writes one file as a tar entry (a fixed time and mode, so that
// the same export makes the same tar).
func (t *TarSink) WriteFile(name string, size int64, r io.Reader) error {
	if err := t.tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o600, Typeflag: tar.TypeReg,
		ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := io.Copy(t.tw, r)
	return err
}

// Close ends the tar stream (not the writer under it).
func (t *TarSink) Close() error { return t.tw.Close() }

// TarSource reads an export from a tar stream written by TarSink.
func TarSource(r io.Reader) ExportSource {
	t := &tarSource{r: &tailReader{r: r}}
	t.tr = tar.NewReader(t.r)
	return t
}

type tarSource struct {
	r  *tailReader
	tr *tar.Reader
}

// tarEnd is the end of a tar: two zero blocks of 512 bytes.
const tarEnd = 1024

// tailReader counts what is read through it and keeps the last tarEnd
// bytes, so that the end of the tar can be checked: archive/tar takes a
// stream that stops short of it for a complete one.
type tailReader struct {
	r    io.Reader
	n    int64
	tail [tarEnd]byte
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n >= tarEnd {
		copy(t.tail[:], p[n-tarEnd:n])
	} else if n > 0 {
		copy(t.tail[:], t.tail[n:])
		copy(t.tail[tarEnd-n:], p[:n])
	}
	t.n += int64(n)
	return n, err
}

func (t *tarSource) Open(name string) (io.ReadCloser, error) {
	h, err := t.tr.Next()
	if err == io.EOF {
		return nil, badExport("%s is missing: the archive ends before it", name)
	}
	if err != nil {
		return nil, badExport("the archive is damaged (%v)", err)
	}
	if h.Name != name || h.Typeflag != tar.TypeReg {
		return nil, badExport("the archive holds %q where %s belongs", h.Name, name)
	}
	return io.NopCloser(t.tr), nil
}

// End checks that the tar ends after the last file and reads what the
// stream has after it, so that a damaged end (or a missing one) is
// noticed by whatever checks the stream.
func (t *tarSource) End() error {
	h, err := t.tr.Next()
	switch {
	case err == nil:
		return badExport("the archive holds %q after the checksums", h.Name)
	case err != io.EOF:
		return badExport("the archive is damaged (%v)", err)
	}
	if t.r.n%512 != 0 || t.r.n < tarEnd || t.r.tail != [tarEnd]byte{} {
		return badExport("the archive ends early (truncated?)")
	}
	// Read to the stream's end (where an encrypted stream is checked
	// whole); only zeros may follow the tar.
	var rest [512]byte
	for {
		n, err := t.r.r.Read(rest[:])
		if slices.ContainsFunc(rest[:n], func(b byte) bool { return b != 0 }) {
			return badExport("the archive has data after its end")
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return badExport("the archive is damaged (%v)", err)
		}
	}
}

// exportReader reads the files of an export in order, hashing each.
type exportReader struct {
	src     ExportSource
	sums    []exChecksum
	read    int64
	entries int
	// progress, if set, is called with the bytes read so far.
	progress func(read int64)
}

// open opens the next file, which is name; the returned reader fails
// past limit bytes. Its checksum is kept when it is closed (done).
func (r *exportReader) open(name string, limit int64) (*hashingReader, func() error, error) {
	r.entries++
	if r.entries > maxExportEntries {
		return nil, nil, badExport("more than %d files", maxExportEntries)
	}
	rc, err := r.src.Open(name)
	if err != nil {
		return nil, nil, err
	}
	hr := &hashingReader{r: &limitedReader{r: rc, left: limit, name: name}, h: sha256.New()}
	done := func() error {
		// Read to the end, so that the hash covers the whole file.
		if _, err := io.Copy(io.Discard, hr); err != nil {
			rc.Close()
			return err
		}
		if err := rc.Close(); err != nil {
			return err
		}
		r.read += hr.n
		if r.progress != nil {
			r.progress(r.read)
		}
		if name != exportChecksums {
			r.sums = append(r.sums, exChecksum{Name: name, Size: hr.n, SHA256: hex.EncodeToString(hr.h.Sum(nil))})
		}
		return nil
	}
	return hr, done, nil
}

// limitedReader fails, naming the file, instead of reading past left.
type limitedReader struct {
	r    io.Reader
	left int64
	name string
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		return 0, badExport("%s is over its size limit", l.name)
	}
	l.left -= int64(n)
	return n, err
}

// readJSON reads a whole small file into v, strictly: no unknown fields,
// nothing after the value.
func (r *exportReader) readJSON(name string, v any) error {
	hr, done, err := r.open(name, maxExportMeta)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(hr)
	if err != nil {
		return err
	}
	if err := done(); err != nil {
		return err
	}
	if err := strictJSON(b, v); err != nil {
		return badExport("%s: %v", name, err)
	}
	return nil
}

func strictJSON(b []byte, v any) error {
	if !utf8.Valid(b) {
		return errors.New("not UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("more after the value")
	}
	return nil
}

// readLines calls fn with each line of a .jsonl file (without its
// newline), and the line's number.
func (r *exportReader) readLines(name string, fn func(n int, line []byte) error) error {
	hr, done, err := r.open(name, jsonlUnbounded)
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(hr, 64<<10)
	var line []byte
	for n := 1; ; n++ {
		line = line[:0]
		for {
			chunk, err := br.ReadSlice('\n')
			line = append(line, chunk...)
			if len(line) > maxExportLine+1 {
				return badExport("%s line %d is over %d MiB", name, n, maxExportLine>>20)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				if len(line) > 0 {
					return badExport("%s line %d has no newline at its end (a truncated file?)", name, n)
				}
				return done()
			}
			if err != nil {
				return err
			}
			break
		}
		if err := fn(n, line[:len(line)-1]); err != nil {
			return err
		}
	}
}

// lineJSON decodes one line strictly, naming the file and line in the
// error.
func lineJSON(name string, n int, line []byte, v any) error {
	if err := strictJSON(line, v); err != nil {
		return badExport("%s line %d: %v", name, n, err)
	}
	return nil
}

// hexID decodes 32 hex digits into a 16-byte id.
func hexID(s string) ([16]byte, bool) {
	var id [16]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) || hex.EncodeToString(b) != s {
		return id, false
	}
	copy(id[:], b)
	return id, true
}

// mergeState is what the Store holds before an export is read into it:
// read first, because while the change is being written the Store may
// not be read (a SQLite store has one connection, which the change
// holds).
type mergeState struct {
	account  AccountID // the Store's account; zero for a restore
	seen     map[string]bool
	contacts map[AccountID]*contactRecord
	imports  map[ImportID]*importRecord
	imported map[ImportID]map[MessageID]bool
}

func loadMergeState(ctx context.Context, st Store, account AccountID) (*mergeState, error) {
	m := &mergeState{account: account, seen: map[string]bool{}, contacts: map[AccountID]*contactRecord{},
		imports: map[ImportID]*importRecord{}, imported: map[ImportID]map[MessageID]bool{}}
	err := st.Scan(ctx, prefixSeen, func(k string, _ []byte) error { m.seen[k] = true; return nil })
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	err = st.Scan(ctx, prefixContact, func(k string, v []byte) error {
		var r contactRecord
		if err := jsonUnmarshal(v, &r); err != nil || len(r.Account) != len(AccountID{}) {
			return fmt.Errorf("stored contact %s is malformed", k)
		}
		m.contacts[AccountID(r.Account)] = &r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	recs, err := listImportRecords(ctx, st)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		id := ImportID(r.ID)
		m.imports[id] = r
		ids := map[MessageID]bool{}
		err := st.Scan(ctx, prefixImportedMsg+id.String()+"/", func(k string, v []byte) error {
			var mr importedRecord
			if err := jsonUnmarshal(v, &mr); err != nil || len(mr.ID) != len(MessageID{}) {
				return fmt.Errorf("stored imported message %s is malformed", k)
			}
			ids[MessageID(mr.ID)] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		m.imported[id] = ids
	}
	return m, nil
}

// exportContents is what readExport found, beside the writes it made.
type exportContents struct {
	manifest exManifest
	account  exAccount
	keys     *exKeys
	// queued are outgoing messages that had not gone out.
	queued []Message
	// Counts of what was new to the Store, and of what was already there.
	contacts, messages, imports, imported, files int
	skipped                                      int
}

// readExport reads and checks an export from src and puts the writes
// that merge it into the Store that m describes. Nothing it puts reads
// the Store. An error means the export is damaged, tampered with, of
// another account (ErrOtherAccount), or the writes failed.
func readExport(src ExportSource, m *mergeState, put func(Write) error, progress func(int64)) (*exportContents, error) {
	r := &exportReader{src: src, progress: progress}
	out := &exportContents{}

	if err := r.readJSON(exportManifest, &out.manifest); err != nil {
		return nil, err
	}
	man := &out.manifest
	switch {
	case man.Format != ExportFormat:
		return nil, badExport("manifest.json names the format %q", man.Format)
	case man.Version > ExportVersion:
		return nil, fmt.Errorf("%w (version %d; this sotto reads %d)", ErrExportVersion, man.Version, ExportVersion)
	case man.Version < 1:
		return nil, badExport("manifest.json has version %d", man.Version)
	}
	account, ok := hexID(man.Account)
	if !ok {
		return nil, badExport("manifest.json: account %q", man.Account)
	}
	if _, err := time.Parse(exportInstant, man.ExportedAt); err != nil {
		return nil, badExport("manifest.json: exported_at: %v", err)
	}
	if m.account != (AccountID{}) && AccountID(account) != m.account {
		return nil, fmt.Errorf("%w: it is of %s, this profile is %s", ErrOtherAccount, AccountID(account), m.account)
	}
	if err := r.readJSON(exportAccount, &out.account); err != nil {
		return nil, err
	}
	if out.account.Account != man.Account {
		return nil, badExport("account.json names another account than manifest.json")
	}
	if u := out.account.Username; u != "" {
		if n, err := NormalizeUsername(u); err != nil || n != u {
			return nil, badExport("account.json: username %q", u)
		}
	}
	if p := out.account.Profile; p != nil {
		if err := (Profile{Name: p.Name, Avatar: p.Avatar}).check(); err != nil {
			return nil, badExport("account.json: profile: %v", err)
		}
	}

	// Contacts are written at the end, with the keys of keys.json.
	var contacts []exContact
	err := r.readLines(exportContacts, func(n int, line []byte) error {
		var ct exContact
		if err := lineJSON(exportContacts, n, line, &ct); err != nil {
			return err
		}
		a, ok := hexID(ct.Account)
		if !ok || AccountID(a) == AccountID(account) {
			return badExport("%s line %d: account %q", exportContacts, n, ct.Account)
		}
		if len(ct.IdentityKey) > 0 {
			if _, err := keys.ParsePublicKey(ct.IdentityKey); err != nil {
				return badExport("%s line %d: identity key: %v", exportContacts, n, err)
			}
		}
		if slices.ContainsFunc(contacts, func(c exContact) bool { return c.Account == ct.Account }) {
			return badExport("%s line %d: %s is listed twice", exportContacts, n, ct.Account)
		}
		contacts = append(contacts, ct)
		return nil
	})
	if err != nil {
		return nil, err
	}

	err = r.readLines(exportMessages, func(n int, line []byte) error {
		var em exMessage
		if err := lineJSON(exportMessages, n, line, &em); err != nil {
			return err
		}
		msg, err := em.message()
		if err != nil {
			return badExport("%s line %d: %v", exportMessages, n, err)
		}
		sk := seenKey(msg.With, msg.ID)
		if m.seen[sk] {
			out.skipped++
			return nil
		}
		m.seen[sk] = true
		k := messageKey(&msg)
		if err := put(Write{k, marshalJSON(recordOf(&msg))}); err != nil {
			return err
		}
		if err := put(Write{sk, []byte(k)}); err != nil {
			return err
		}
		if msg.Status == StatusQueued {
			out.queued = append(out.queued, msg)
		}
		out.messages++
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Imports: their records go at the end, with their counts.
	type importState struct {
		line     exImport
		rec      *importRecord
		existing bool
		base     int // batches before it, for messages added to an existing import
		messages int // lines read
		files    int
		added    int             // messages new to the Store
		keys     map[[2]int]bool // (batch, position) of the lines read
	}
	var imports []*importState
	byID := map[ImportID]*importState{}
	err = r.readLines(exportImports, func(n int, line []byte) error {
		var ei exImport
		if err := lineJSON(exportImports, n, line, &ei); err != nil {
			return err
		}
		rec, err := ei.record()
		if err != nil {
			return badExport("%s line %d: %v", exportImports, n, err)
		}
		id := ImportID(rec.ID)
		if byID[id] != nil {
			return badExport("%s line %d: import %s is listed twice", exportImports, n, id)
		}
		is := &importState{line: ei, rec: rec, keys: map[[2]int]bool{}}
		if old, ok := m.imports[id]; ok {
			is.existing, is.base, is.rec = true, old.Batches, old
		} else {
			m.imported[id] = map[MessageID]bool{}
		}
		imports = append(imports, is)
		byID[id] = is
		return nil
	})
	if err != nil {
		return nil, err
	}

	type mediaFile struct {
		path   string
		size   int64
		sha    []byte
		imp    ImportID
		id     MessageID
		wanted bool // the message is new to the Store
	}
	var media []mediaFile
	err = r.readLines(exportImported, func(n int, line []byte) error {
		var ei exImported
		if err := lineJSON(exportImported, n, line, &ei); err != nil {
			return err
		}
		imp, ok := hexID(ei.Import)
		is := byID[ImportID(imp)]
		if !ok || is == nil {
			return badExport("%s line %d: import %q is not in %s", exportImported, n, ei.Import, exportImports)
		}
		rec, err := ei.record()
		if err != nil {
			return badExport("%s line %d: %v", exportImported, n, err)
		}
		if ei.Batch >= is.line.Batches {
			return badExport("%s line %d: batch %d of an import of %d", exportImported, n, ei.Batch, is.line.Batches)
		}
		is.messages++
		at := [2]int{ei.Batch, ei.Position}
		if is.keys[at] {
			return badExport("%s line %d: batch %d position %d is taken", exportImported, n, ei.Batch, ei.Position)
		}
		is.keys[at] = true
		id := MessageID(rec.ID)
		ids := m.imported[ImportID(imp)]
		wanted := !ids[id]
		if !wanted && !is.existing {
			return badExport("%s line %d: message %s is listed twice", exportImported, n, ei.ID)
		}
		ids[id] = true
		if rec.File != nil {
			want := mediaPath(ImportID(imp), id, ei.Attachment)
			if ei.File.Path != want {
				return badExport("%s line %d: file path %q, want %q", exportImported, n, ei.File.Path, want)
			}
			media = append(media, mediaFile{want, rec.File.Size, rec.File.SHA256, ImportID(imp), id, wanted})
			is.files++
		}
		if !wanted {
			out.skipped++
			return nil
		}
		batch := ei.Batch
		if is.existing {
			batch += is.base
			is.rec.Messages++
			if rec.File != nil {
				is.rec.Files++
			}
		}
		out.imported++
		is.added++
		return put(Write{importedMsgKey(ImportID(imp), batch, ei.Position), marshalJSON(rec)})
	})
	if err != nil {
		return nil, err
	}
	for _, is := range imports {
		if is.messages != is.line.Messages || is.files != is.line.Files {
			return nil, badExport("import %s lists %d messages and %d files, but %s holds %d and %d",
				is.line.Import, is.line.Messages, is.line.Files, exportImported, is.messages, is.files)
		}
	}

	for _, f := range media {
		hr, done, err := r.open(f.path, f.size)
		if err != nil {
			return nil, err
		}
		if f.wanted {
			sf, err := putChunks(put, f.imp, f.id, hr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.path, err)
			}
			if sf.Size != f.size || !bytes.Equal(sf.SHA256, f.sha) {
				return nil, badExport("%s does not match the size and hash %s gives", f.path, exportImported)
			}
			out.files++
		}
		if err := done(); err != nil {
			return nil, err
		}
		last := r.sums[len(r.sums)-1]
		if last.Size != f.size || last.SHA256 != hex.EncodeToString(f.sha) {
			return nil, badExport("%s does not match the size and hash %s gives", f.path, exportImported)
		}
	}

	if man.IncludesKeys {
		out.keys = &exKeys{}
		if err := r.readJSON(exportKeys, out.keys); err != nil {
			return nil, err
		}
		if err := out.keys.check(); err != nil {
			return nil, badExport("%s: %v", exportKeys, err)
		}
	}
	var sums exChecksums
	if err := r.readJSON(exportChecksums, &sums); err != nil {
		return nil, err
	}
	if !slices.Equal(sums.Files, r.sums) {
		return nil, badExport("the files do not match %s: the export was changed or damaged", exportChecksums)
	}
	if err := src.End(); err != nil {
		return nil, err
	}

	// Now that all is checked: contacts, with their keys, and imports.
	for _, ct := range contacts {
		a, _ := hexID(ct.Account)
		rec, existing := m.contacts[AccountID(a)]
		changed := !existing
		if !existing {
			rec = &contactRecord{Account: a[:], Accepted: ct.Accepted, Verified: ct.Verified, Changed: ct.IdentityChanged, Blocked: ct.Blocked}
			out.contacts++
		}
		// What the Store knows stays; only what it lacks is filled in
		// (and a record that gains nothing is not written, so that a
		// change made meanwhile, by receiving, is not undone).
		if rec.Name == "" && ct.Name != "" {
			rec.Name, changed = ct.Name, true
		}
		if len(rec.Identity) == 0 && len(ct.IdentityKey) > 0 {
			rec.Identity, changed = ct.IdentityKey, true
		}
		if pk := out.profileKey(ct.Account); len(rec.ProfileKey) == 0 && len(pk) > 0 {
			rec.ProfileKey, changed = pk, true
		}
		if !changed {
			continue
		}
		if err := put(Write{contactKey(AccountID(a)), marshalJSON(rec)}); err != nil {
			return nil, err
		}
	}
	for _, is := range imports {
		switch {
		case !is.existing:
			out.imports++
		case is.added == 0:
			continue // nothing new: the record stays as it is
		default:
			is.rec.Batches += is.line.Batches
		}
		if err := put(Write{importKey(ImportID(is.rec.ID)), marshalJSON(is.rec)}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// profileKey is a contact's profile key from keys.json, or nil.
func (e *exportContents) profileKey(account string) []byte {
	if e.keys == nil {
		return nil
	}
	return e.keys.Contacts[account]
}

// message checks an exported message and converts it.
func (em *exMessage) message() (Message, error) {
	var msg Message
	with, ok1 := hexID(em.Conversation)
	id, ok2 := hexID(em.ID)
	if !ok1 || !ok2 {
		return msg, errors.New("malformed conversation or id")
	}
	sent, err1 := time.Parse(exportInstant, em.SentAt)
	received, err2 := time.Parse(exportInstant, em.ReceivedAt)
	if err1 != nil || err2 != nil {
		return msg, errors.New("malformed time")
	}
	status, ok := parseStatus(em.Status)
	in := em.Direction == "in"
	if !ok || em.Kind != "text" || (!in && em.Direction != "out") || !utf8.ValidString(em.Text) ||
		(in && status != StatusReceived && status != StatusRead) || (!in && status == StatusReceived) {
		return msg, errors.New("malformed direction, status, kind or text")
	}
	msg = Message{ID: MessageID(id), With: AccountID(with), Outgoing: em.Direction == "out", FromDevice: DeviceID(em.Device),
		Text: em.Text, SentAt: sent, ReceivedAt: received, Status: status}
	return msg, nil
}

// record checks an exported import and converts it.
func (ei *exImport) record() (*importRecord, error) {
	id, ok := hexID(ei.Import)
	if !ok || ei.Source == "" || ei.Messages < 0 || ei.Files < 0 || ei.Files > ei.Messages || ei.Batches < 0 || ei.Batches > 0xffff {
		return nil, errors.New("malformed import")
	}
	at, err := time.Parse(exportInstant, ei.ImportedAt)
	if err != nil {
		return nil, errors.New("malformed time")
	}
	r := &importRecord{ID: id[:], Source: ei.Source, Title: ei.Title, Format: ei.Format, Me: ei.Me,
		Messages: ei.Messages, Files: ei.Files, Batches: ei.Batches, ImportedAt: at.UnixMilli()}
	if len(ei.Senders) > 0 {
		r.Senders = slices.Clone(ei.Senders)
	}
	for name, a := range ei.Contacts {
		if _, ok := hexID(a); !ok {
			return nil, errors.New("malformed contact")
		}
		if r.Contacts == nil {
			r.Contacts = map[string]string{}
		}
		r.Contacts[name] = a
	}
	if ei.With != "" {
		w, ok := hexID(ei.With)
		if !ok {
			return nil, errors.New("malformed with")
		}
		r.With = w[:]
	}
	return r, nil
}

// record checks an exported imported message and converts it.
func (ei *exImported) record() (*importedRecord, error) {
	id, ok := hexID(ei.ID)
	if !ok || !ei.Kind.valid() || ei.Position < 0 || ei.Position > 0xffffffff || ei.Batch < 0 {
		return nil, errors.New("malformed id, kind or position")
	}
	t, err := time.Parse(exportWallTime, ei.Time)
	if err != nil {
		return nil, errors.New("malformed time")
	}
	if (ei.Kind == ImportedSystem) != (ei.Sender == "") || (ei.File != nil && ei.Kind != ImportedAttachment) {
		return nil, errors.New("sender, kind and file do not agree")
	}
	r := &importedRecord{ID: id[:], Time: t.Unix(), Sender: ei.Sender, Kind: ei.Kind, Text: ei.Text,
		Attachment: ei.Attachment, Edited: ei.Edited}
	if f := ei.File; f != nil {
		sum, err := hex.DecodeString(f.SHA256)
		if err != nil || len(sum) != sha256.Size || f.Size < 0 || f.Size > MaxImportedFile || path.Clean(f.Path) != f.Path {
			return nil, errors.New("malformed file")
		}
		chunks := int((f.Size + ImportChunkSize - 1) / ImportChunkSize)
		r.File = &storedFile{Size: f.Size, Chunks: chunks, SHA256: sum}
	}
	return r, nil
}

// check checks the keys of an export.
func (k *exKeys) check() error {
	var kp keys.KeyPair
	if err := kp.UnmarshalBinary(k.Identity); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err := kp.UnmarshalBinary(k.Device.Auth); err != nil {
		return fmt.Errorf("device auth key: %w", err)
	}
	if len(k.ProfileKey) != 32 {
		return errors.New("profile key")
	}
	if k.Device.ID == 0 || len(k.Device.TrustRoot) == 0 {
		return errors.New("device")
	}
	for a, pk := range k.Contacts {
		if _, ok := hexID(a); !ok || len(pk) != 32 {
			return fmt.Errorf("contact %q", a)
		}
	}
	return nil
}
