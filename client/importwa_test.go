package client_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/client/sqlitestore"
	"github.com/sotto-chat/sotto/client/whatsapp"
	"github.com/sotto-chat/sotto/client/whatsapp/whatsapptest"
	"github.com/sotto-chat/sotto/internal/testserver"
)

// sharedCorpus is the project's folder of sample WhatsApp exports,
// relative to this package's directory. Tests fail if it is missing.
const sharedCorpus = "../../shared/testdata/whatsapp"

// offline creates an account on a test server in st and returns its
// client, not running: imports need no connection.
func offline(t testing.TB, url string, st client.Store) *client.Client {
	t.Helper()
	c, err := client.Create(context.Background(), client.Options{Server: url, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sqliteStore opens an encrypted store in a temporary directory.
func sqliteStore(t testing.TB) *sqlitestore.Store {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "store.db"), bytes.Repeat([]byte{9}, sqlitestore.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// expected is one message of a corpus NAME.expected.json.
type expected struct {
	Time       string  `json:"time"`
	Sender     *string `json:"sender"`
	Kind       string  `json:"kind"`
	Text       string  `json:"text"`
	Attachment string  `json:"attachment"`
	Edited     bool    `json:"edited"`
}

func corpusFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, ext := range []string{"*.txt", "*.zip"} {
		m, err := filepath.Glob(filepath.Join(sharedCorpus, ext))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no exports in %s: the shared corpus is missing", sharedCorpus)
	}
	return files
}

// TestImportWhatsAppCorpus imports every export of the shared corpus and
// reads back exactly its expected messages, with the files of the zips;
// importing it again adds nothing.
func TestImportWhatsAppCorpus(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	for _, path := range corpusFiles(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			// The zips, with their files, go into encrypted SQLite
			// stores; the texts into memory.
			var st client.Store = client.NewMemoryStore()
			if strings.HasSuffix(path, ".zip") {
				st = sqliteStore(t)
			}
			c := offline(t, url, st)
			chat, err := whatsapp.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer chat.Close()
			var progress []int
			res, err := c.ImportWhatsApp(ctx, chat, client.WhatsAppImport{Progress: func(done, total int) {
				if total != len(chat.Messages) {
					t.Errorf("progress total %d, want %d", total, len(chat.Messages))
				}
				progress = append(progress, done)
			}})
			if err != nil {
				t.Fatal(err)
			}
			if len(progress) == 0 || progress[len(progress)-1] != len(chat.Messages) {
				t.Errorf("progress ended at %v, want %d", progress[len(progress)-1:], len(chat.Messages))
			}
			raw, err := os.ReadFile(strings.TrimSuffix(path, filepath.Ext(path)) + ".expected.json")
			if err != nil {
				t.Fatal(err)
			}
			var want []expected
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if res.Added != len(want) || res.Duplicates != 0 {
				t.Fatalf("added %d, duplicates %d; want %d, 0", res.Added, res.Duplicates, len(want))
			}
			got, err := c.ImportedMessages(ctx, res.Import.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d messages stored, want %d", len(got), len(want))
			}
			files := 0
			for i, m := range got {
				w := want[i]
				sender := ""
				if w.Sender != nil {
					sender = *w.Sender
				}
				if m.Time.Format("2006-01-02T15:04:05") != w.Time || m.Sender != sender || string(m.Kind) != w.Kind ||
					m.Text != w.Text || m.Attachment != w.Attachment || m.Edited != w.Edited {
					t.Errorf("message %d: %+v, want %+v", i, m, w)
				}
				f, inZip := chat.Files[m.Attachment]
				if m.Kind != client.ImportedAttachment || !inZip {
					if m.HasFile {
						t.Errorf("message %d has a file the export does not hold", i)
					}
					continue
				}
				files++
				var stored bytes.Buffer
				if err := c.WriteImportedFile(ctx, m, &stored); err != nil {
					t.Fatal(err)
				}
				rc, err := f.Open()
				if err != nil {
					t.Fatal(err)
				}
				var orig bytes.Buffer
				orig.ReadFrom(rc)
				rc.Close()
				if !m.HasFile || m.FileSize != int64(orig.Len()) || !bytes.Equal(stored.Bytes(), orig.Bytes()) {
					t.Errorf("message %d: the file %q does not come back as it was", i, m.Attachment)
				}
			}
			if res.Files != files || res.Import.Files != files {
				t.Errorf("%d files stored (record %d), want %d", res.Files, res.Import.Files, files)
			}

			again, err := c.ImportWhatsApp(ctx, chat, client.WhatsAppImport{})
			if err != nil {
				t.Fatal(err)
			}
			if again.Added != 0 || again.Duplicates != len(want) || again.Files != 0 || again.Import.ID != res.Import.ID {
				t.Fatalf("the second import: %+v", again)
			}
			imps, err := c.Imports(ctx)
			if err != nil || len(imps) != 1 || imps[0].Messages != len(want) {
				t.Fatalf("imports after the second: %+v, %v", imps, err)
			}
		})
	}
}

// TestImportWhatsAppLonger: a later, longer export of the same chat adds
// only its new messages, after the others; a zip after the bare text adds
// the files the text lacked.
func TestImportWhatsAppLonger(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	c := offline(t, url, client.NewMemoryStore())
	full := whatsapptest.Synthetic(300)
	lines := strings.SplitAfter(full, "\n")
	// The first export ends at a message header.
	cut := 0
	for i := len(lines) / 2; i < len(lines); i++ {
		if strings.Contains(lines[i], " - ") && lines[i][0] >= '1' && lines[i][0] <= '9' && strings.Contains(lines[i][:12], "/") {
			cut = i
			break
		}
	}
	first, err := whatsapp.Parse(strings.NewReader(strings.Join(lines[:cut], "")))
	if err != nil {
		t.Fatal(err)
	}
	whole, err := whatsapp.Parse(strings.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	r1, err := c.ImportWhatsApp(ctx, first, client.WhatsAppImport{Title: "Trail club"})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c.ImportWhatsApp(ctx, whole, client.WhatsAppImport{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Import.ID != r1.Import.ID || r2.Added != len(whole.Messages)-len(first.Messages) || r2.Duplicates != len(first.Messages) {
		t.Fatalf("first %+v, then %+v", r1, r2)
	}
	if r2.Import.Title != "Trail club" {
		t.Errorf("the title became %q", r2.Import.Title)
	}
	got, err := c.ImportedMessages(ctx, r1.Import.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(whole.Messages) {
		t.Fatalf("%d messages, want %d", len(got), len(whole.Messages))
	}
	for i, m := range got {
		if w := whole.Messages[i]; m.Text != w.Text || m.Sender != w.Sender || !m.Time.Equal(w.Time) {
			t.Fatalf("message %d is %q, want %q", i, m.Text, w.Text)
		}
	}

	// The same zip's chat text alone, then the zip: the files come with
	// the second.
	zipPath := filepath.Join(sharedCorpus, "android_en_GB_media.zip")
	zchat, err := whatsapp.ParseFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zchat.Close()
	text := zipMember(t, zipPath, zchat.ChatFile)
	bare, err := whatsapp.Parse(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	b1, err := c.ImportWhatsApp(ctx, bare, client.WhatsAppImport{})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := c.ImportWhatsApp(ctx, zchat, client.WhatsAppImport{})
	if err != nil {
		t.Fatal(err)
	}
	if b1.Files != 0 || b1.MissingFiles == 0 || b2.Added != 0 || b2.Files != b1.MissingFiles-b2.MissingFiles || b2.Files == 0 {
		t.Fatalf("text alone %+v, then the zip %+v", b1, b2)
	}
	if b2.Import.Files != b2.Files {
		t.Errorf("the record counts %d files, want %d", b2.Import.Files, b2.Files)
	}
}

func zipMember(t *testing.T, path, name string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, name) {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			var b bytes.Buffer
			b.ReadFrom(rc)
			return b.Bytes()
		}
	}
	t.Fatalf("no %s in %s", name, path)
	return nil
}

// TestImportWhatsAppMapping: "me" and contacts are applied to the
// messages; a 1:1 chat whose other sender is a contact comes before that
// contact's conversation; wrong names are refused.
func TestImportWhatsAppMapping(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	c := offline(t, url, client.NewMemoryStore())
	jordan := offline(t, url, client.NewMemoryStore()).Account()
	path := filepath.Join(sharedCorpus, "android_en_US_12h_nnbsp.txt")
	chat, err := whatsapp.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := client.WhatsAppSenders(chat)
	title, me := client.WhatsAppDefaults("WhatsApp Chat with Jordan Reyes.txt", chat)
	if title != "Jordan Reyes" || me == "" || me == "Jordan Reyes" || len(names) != 2 {
		t.Fatalf("defaults: title %q, me %q, senders %q", title, me, names)
	}
	for _, tc := range []struct {
		name string
		opts client.WhatsAppImport
		want string
	}{
		{"unknown me", client.WhatsAppImport{Me: "Nobody"}, `no sender "Nobody"`},
		{"unknown sender", client.WhatsAppImport{Contacts: map[string]client.AccountID{"Nobody": jordan}}, `no sender "Nobody"`},
		{"me as contact", client.WhatsAppImport{Me: me, Contacts: map[string]client.AccountID{me: jordan}}, "cannot also be a contact"},
		{"self", client.WhatsAppImport{Contacts: map[string]client.AccountID{"Jordan Reyes": c.Account()}}, "this account itself"},
	} {
		if _, err := c.ImportWhatsApp(ctx, chat, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	res, err := c.ImportWhatsApp(ctx, chat, client.WhatsAppImport{Title: title, Me: me,
		Contacts: map[string]client.AccountID{"Jordan Reyes": jordan}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Import.With != jordan || res.Import.Me != me || res.Import.Title != "Jordan Reyes" {
		t.Fatalf("import: %+v", res.Import)
	}
	before, err := c.ImportedWith(ctx, jordan)
	if err != nil || len(before) != res.Added {
		t.Fatalf("history before Jordan's conversation: %d messages, %v", len(before), err)
	}
	mine, theirs := 0, 0
	for _, m := range before {
		switch {
		case m.Me:
			mine++
		case m.Contact == jordan:
			theirs++
		}
	}
	if mine == 0 || theirs == 0 {
		t.Fatalf("%d messages of mine, %d of Jordan's", mine, theirs)
	}
	// Mapped again without the contact: the history stands alone.
	res, err = c.ImportWhatsApp(ctx, chat, client.WhatsAppImport{Me: me})
	if err != nil || res.Added != 0 || res.Import.With != (client.AccountID{}) {
		t.Fatalf("re-mapped: %+v, %v", res, err)
	}
	if before, _ := c.ImportedWith(ctx, jordan); len(before) != 0 {
		t.Fatalf("%d messages still before Jordan's conversation", len(before))
	}
}

func TestWhatsAppDefaults(t *testing.T) {
	chat := func(senders ...string) *whatsapp.Chat {
		c := &whatsapp.Chat{}
		for _, s := range senders {
			c.Messages = append(c.Messages, whatsapp.Message{Sender: s, Kind: whatsapp.KindText})
		}
		return c
	}
	for _, tc := range []struct {
		name, file string
		chat       *whatsapp.Chat
		title, me  string
	}{
		{"android 1:1", "WhatsApp Chat with Jordan Reyes.txt", chat("Jordan Reyes", "Sam"), "Jordan Reyes", "Sam"},
		{"german 1:1 zip", "/tmp/WhatsApp Chat mit Jonas Becker.zip", chat("Mara", "Jonas Becker"), "Jonas Becker", "Mara"},
		{"the longer name wins", "WhatsApp Chat with Jo Ann.txt", chat("Ann", "Jo Ann"), "Jo Ann", "Ann"},
		{"group", "WhatsApp Chat with Flat 4B.txt", chat("Ruth", "Ben", "Ade"), "Flat 4B", ""},
		{"group named after a member", "WhatsApp Chat with Ruth.txt", chat("Ruth", "Ben", "Ade"), "Ruth", ""},
		{"ios", "_chat.txt", chat("Priya", "Sam"), "Priya, Sam", ""},
		{"ios zip", "WhatsApp Chat - Priya Natarajan.zip", chat("Priya Natarajan", "Sam"), "Priya Natarajan", "Sam"},
		{"renamed", "holiday.txt", chat("A", "B"), "holiday", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			title, me := client.WhatsAppDefaults(tc.file, tc.chat)
			if title != tc.title || me != tc.me {
				t.Fatalf("title %q, me %q; want %q, %q", title, me, tc.title, tc.me)
			}
		})
	}
}

// TestImportWhatsAppFailureLeavesNothing: an import that fails half way
// (a file in the zip is corrupt) leaves no trace, in an encrypted SQLite
// store (one transaction) and in a memory store.
func TestImportWhatsAppFailureLeavesNothing(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	zipBytes := brokenZip(t)
	for _, tc := range []struct {
		name string
		st   client.Store
	}{
		{"sqlite", sqliteStore(t)},
		{"memory", client.NewMemoryStore()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := offline(t, url, tc.st)
			before := dump(t, tc.st)
			chat, err := whatsapp.ParseZip(bytes.NewReader(zipBytes), int64(len(zipBytes)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ImportWhatsApp(ctx, chat, client.WhatsAppImport{})
			if err == nil || !strings.Contains(err.Error(), "photo.jpg") {
				t.Fatalf("import of a zip with a corrupt file: %v", err)
			}
			if after := dump(t, tc.st); after != before {
				t.Fatalf("the failed import changed the store:\n%s", after)
			}
			if imps, err := c.Imports(ctx); err != nil || len(imps) != 0 {
				t.Fatalf("imports: %v, %v", imps, err)
			}
		})
	}
}

// brokenZip makes an export zip of many messages whose last attachment's
// data is corrupt (its checksum fails when it is read to the end).
func brokenZip(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("WhatsApp Chat with Dana.txt")
	w.Write([]byte(whatsapptest.Synthetic(500) + "1/2/25, 9:00\u202fAM - Dana: photo.jpg (file attached)\n"))
	w, _ = zw.CreateHeader(&zip.FileHeader{Name: "photo.jpg", Method: zip.Store})
	payload := bytes.Repeat([]byte("jpegdata"), 100_000)
	w.Write(payload)
	zw.Close()
	out := b.Bytes()
	i := bytes.LastIndex(out, payload)
	out[i+len(payload)-1] ^= 0xff // the stored CRC no longer matches
	return out
}

// dump lists a store's keys and value sizes.
func dump(t *testing.T, st client.Store) string {
	t.Helper()
	var b strings.Builder
	err := st.Scan(context.Background(), "", func(k string, v []byte) error {
		fmt.Fprintf(&b, "%s %d\n", k, len(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// failingStore fails every Apply, like a full disk.
type failingStore struct{ client.Store }

func (failingStore) Apply(context.Context, []client.Write) error { return errors.New("disk full") }

func TestImportWhatsAppStoreFails(t *testing.T) {
	url := testserver.Start(t)
	st := client.NewMemoryStore()
	offline(t, url, st)
	c, err := client.Open(testContext(t), client.Options{Store: failingStore{st}})
	if err != nil {
		t.Fatal(err)
	}
	chat, err := whatsapp.Parse(strings.NewReader(whatsapptest.Synthetic(50)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportWhatsApp(testContext(t), chat, client.WhatsAppImport{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("import into a failing store: %v", err)
	}
	if imps, _ := c.Imports(testContext(t)); len(imps) != 0 {
		t.Fatal("a failed import left a conversation")
	}
}

// BenchmarkImportWhatsApp100k imports a synthetic export of 100,000
// messages end to end: parse the text, derive the ids, and store every
// message in a fresh encrypted SQLite store, in one transaction.
func BenchmarkImportWhatsApp100k(b *testing.B) {
	const n = 100_000
	url := testserver.Start(b)
	text := whatsapptest.Synthetic(n)
	b.SetBytes(int64(len(text)))
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		c := offline(b, url, sqliteStore(b))
		b.StartTimer()
		start := time.Now()
		chat, err := whatsapp.Parse(strings.NewReader(text))
		if err != nil {
			b.Fatal(err)
		}
		res, err := c.ImportWhatsApp(context.Background(), chat, client.WhatsAppImport{})
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		if res.Added != n {
			b.Fatalf("added %d, want %d", res.Added, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
}

// BenchmarkExportBackup100k measures, on an account holding an imported
// chat of 100,000 messages in an encrypted SQLite store: an export to a
// directory, a backup (to an age X25519 key, so that the scrypt of a
// passphrase, a fixed second, does not hide the rest) and a restore of
// that backup into a fresh encrypted store.
func BenchmarkExportBackup100k(b *testing.B) {
	const n = 100_000
	url := testserver.Start(b)
	ctx := context.Background()
	c := offline(b, url, sqliteStore(b))
	chat, err := whatsapp.Parse(strings.NewReader(whatsapptest.Synthetic(n)))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.ImportWhatsApp(ctx, chat, client.WhatsAppImport{}); err != nil {
		b.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	var backup bytes.Buffer
	report := func(b *testing.B, d time.Duration) {
		b.ReportMetric(float64(n*b.N)/d.Seconds(), "msgs/s")
	}
	b.Run("export", func(b *testing.B) {
		var d time.Duration
		for b.Loop() {
			dir := filepath.Join(b.TempDir(), "export")
			start := time.Now()
			if _, err := c.Export(ctx, client.DirSink(dir), client.ExportOptions{}); err != nil {
				b.Fatal(err)
			}
			d += time.Since(start)
		}
		report(b, d)
	})
	b.Run("backup", func(b *testing.B) {
		var d time.Duration
		for b.Loop() {
			backup.Reset()
			start := time.Now()
			if _, err := c.Backup(ctx, &backup, []age.Recipient{id.Recipient()}, client.ExportOptions{}); err != nil {
				b.Fatal(err)
			}
			d += time.Since(start)
		}
		b.SetBytes(int64(backup.Len()))
		report(b, d)
	})
	b.Run("restore", func(b *testing.B) {
		var d time.Duration
		for b.Loop() {
			st := sqliteStore(b)
			start := time.Now()
			src, err := client.OpenBackup(bytes.NewReader(backup.Bytes()), id)
			if err != nil {
				b.Fatal(err)
			}
			r, res, err := client.Restore(ctx, src, client.RestoreOptions{Store: st, KeepOldDevice: true})
			if err != nil {
				b.Fatal(err)
			}
			d += time.Since(start)
			r.Close()
			if res.Imported != n {
				b.Fatalf("restored %d messages", res.Imported)
			}
		}
		report(b, d)
	})
}
