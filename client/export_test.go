package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/client/whatsapp"
	"github.com/sotto-chat/sotto/internal/testserver"
)

// readDir returns every file under dir by its slash path.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withoutFields decodes a JSON object and drops some of its fields (at
// a path of object keys).
func withoutFields(t *testing.T, b []byte, paths ...[]string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		o := m
		for _, k := range p[:len(p)-1] {
			o = o[k].(map[string]any)
		}
		delete(o, p[len(p)-1])
	}
	return m
}

// TestExportRestoreRoundTrip: an account with conversations, receipts,
// settings and an imported WhatsApp chat with files is exported with its
// keys and restored into a fresh store; the restored device exports the
// same files (but for its own device's keys and the export's time), and
// it chats with the contact again through the real server, both ways.
func TestExportRestoreRoundTrip(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob := newAccount(t, url), newAccount(t, url)
	if err := bob.SetUsername(ctx, "bob_x"); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetUsername(ctx, "alice_x"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddContact(ctx, "bob_x"); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetProfile(ctx, client.Profile{Name: "Alice A."}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx, bob.Account(), "hello Bob"); err != nil {
		t.Fatal(err)
	}
	bob.next(t)
	if _, err := bob.SendText(ctx, alice.Account(), "hello Alice\nsecond line"); err != nil {
		t.Fatal(err)
	}
	got := alice.next(t)
	if err := alice.MarkRead(ctx, bob.Account(), got.ID); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetSettings(ctx, client.Settings{DeliveryReceipts: true, ReadReceipts: true, Typing: false}); err != nil {
		t.Fatal(err)
	}
	chat, err := whatsapp.ParseFile(filepath.Join(sharedCorpus, "ios_en_US_media.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Close()
	if _, err := alice.ImportWhatsApp(ctx, chat, client.WhatsAppImport{Me: "Ben Carter",
		Contacts: map[string]client.AccountID{"Priya Natarajan": bob.Account()}}); err != nil {
		t.Fatal(err)
	}
	profile, err := alice.ProfileOf(ctx, alice.Account())
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	var progress []int
	res, err := alice.Export(ctx, client.DirSink(first), client.ExportOptions{IncludeKeys: true, Profile: &profile,
		Progress: func(done, total int) { progress = append(progress, done) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Contacts != 1 || res.Messages != 2 || res.Imports != 1 || res.Imported != 21 || res.Files != 5 {
		t.Fatalf("export: %+v", res)
	}
	if len(progress) != 23 || progress[22] != 23 {
		t.Errorf("progress %v", progress)
	}
	aliceOld := alice.Device()
	alice.stop() // the phone is gone

	st := client.NewMemoryStore()
	restored, rr, err := client.Restore(ctx, client.DirSource(first), client.RestoreOptions{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if rr.OldDevice != aliceOld || rr.Device == aliceOld || !rr.OldDeviceRemoved || rr.Messages != 2 || rr.Imported != 21 || rr.Files != 5 {
		t.Fatalf("restore: %+v", rr)
	}
	if restored.Account() != alice.Account() {
		t.Fatalf("restored %s, want %s", restored.Account(), alice.Account())
	}
	if _, err := restored.Export(ctx, client.DirSink(second), client.ExportOptions{IncludeKeys: true, Profile: &profile}); err != nil {
		t.Fatal(err)
	}
	a, b := readDir(t, first), readDir(t, second)
	if !slices.Equal(slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b))) {
		t.Fatalf("files %q, then %q", slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b)))
	}
	for name := range a {
		switch name {
		case "manifest.json":
			ma := withoutFields(t, a[name], []string{"exported_at"}, []string{"device"})
			mb := withoutFields(t, b[name], []string{"exported_at"}, []string{"device"})
			if !jsonEqual(ma, mb) {
				t.Errorf("manifest.json: %v, then %v", ma, mb)
			}
		case "keys.json":
			// The account's keys are the same; the device's are new.
			ka := withoutFields(t, a[name], []string{"device"})
			kb := withoutFields(t, b[name], []string{"device"})
			if !jsonEqual(ka, kb) {
				t.Errorf("keys.json differs beyond the device")
			}
		case "checksums.json":
			// Differs where manifest.json and keys.json do.
		default:
			if !bytes.Equal(a[name], b[name]) {
				t.Errorf("%s differs after the round trip:\n%s\nthen\n%s", name, a[name], b[name])
			}
		}
	}

	// The restored device chats again, both ways; Bob's client learns of
	// the device change from the server.
	d := &device{Client: restored, store: st}
	d.start(t)
	if _, err := restored.SendText(ctx, bob.Account(), "back from a backup"); err != nil {
		t.Fatal(err)
	}
	if m := bob.next(t); m.Text != "back from a backup" || m.With != alice.Account() || m.FromDevice != rr.Device {
		t.Fatalf("Bob got %+v", m)
	}
	if _, err := bob.SendText(ctx, alice.Account(), "welcome back"); err != nil {
		t.Fatal(err)
	}
	if m := d.next(t); m.Text != "welcome back" {
		t.Fatalf("the restored device got %q", m.Text)
	}
	msgs, err := restored.Messages(ctx, bob.Account())
	if err != nil || len(msgs) != 4 || msgs[1].Status != client.StatusRead {
		t.Fatalf("the restored conversation: %+v, %v", msgs, err)
	}
	if s, _ := restored.Settings(ctx); s.Typing {
		t.Error("the typing setting was not restored")
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestImportExportIntoLinkedDevice: a linked device, which starts
// without history, takes it from an export (without keys) of another
// device of the account; a second import adds nothing; an export of
// another account and a damaged one are refused, changing nothing.
func TestImportExportIntoLinkedDevice(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob := newAccount(t, url), newAccount(t, url)
	for _, text := range []string{"one", "two", "three"} {
		if _, err := alice.SendText(ctx, bob.Account(), text); err != nil {
			t.Fatal(err)
		}
		bob.next(t)
	}
	chat, err := whatsapp.ParseFile(filepath.Join(sharedCorpus, "android_en_GB_media.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Close()
	if _, err := alice.ImportWhatsApp(ctx, chat, client.WhatsAppImport{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exp := filepath.Join(dir, "alice")
	if _, err := alice.Export(ctx, client.DirSink(exp), client.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(exp, "keys.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("keys.json without IncludeKeys: %v", err)
	}
	if _, _, err := client.Restore(ctx, client.DirSource(exp), client.RestoreOptions{Store: client.NewMemoryStore()}); !errors.Is(err, client.ErrNoKeys) {
		t.Fatalf("restore without keys: %v", err)
	}

	laptop := link(t, url, alice)
	res, err := laptop.ImportExport(ctx, client.DirSource(exp), client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 3 || res.Imports != 1 || res.Imported != 14 || res.Files != 5 || res.Skipped != 0 {
		t.Fatalf("first import: %+v", res)
	}
	msgs, err := laptop.Messages(ctx, bob.Account())
	if err != nil || len(msgs) != 3 || msgs[2].Text != "three" || !msgs[2].Outgoing {
		t.Fatalf("the laptop's conversation: %+v, %v", msgs, err)
	}
	again, err := laptop.ImportExport(ctx, client.DirSource(exp), client.ReadOptions{})
	if err != nil || again.Messages != 0 || again.Imported != 0 || again.Skipped != 17 {
		t.Fatalf("second import: %+v, %v", again, err)
	}

	before := dump(t, bob.store)
	if _, err := bob.ImportExport(ctx, client.DirSource(exp), client.ReadOptions{}); !errors.Is(err, client.ErrOtherAccount) {
		t.Fatalf("Bob imports Alice's export: %v", err)
	}
	// A changed byte, a missing file: refused, nothing kept.
	msgFile := filepath.Join(exp, "messages.jsonl")
	orig, _ := os.ReadFile(msgFile)
	os.WriteFile(msgFile, bytes.Replace(orig, []byte("three"), []byte("thrее"), 1), 0o600)
	fresh := link(t, url, alice)
	empty := dump(t, fresh.store)
	if _, err := fresh.ImportExport(ctx, client.DirSource(exp), client.ReadOptions{}); !errors.Is(err, client.ErrNotExport) || !strings.Contains(err.Error(), "checksums") {
		t.Fatalf("a tampered export: %v", err)
	}
	os.WriteFile(msgFile, orig, 0o600)
	media, _ := filepath.Glob(filepath.Join(exp, "media", "*", "*"))
	os.Remove(media[0])
	if _, err := fresh.ImportExport(ctx, client.DirSource(exp), client.ReadOptions{}); !errors.Is(err, client.ErrNotExport) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("an export without a file: %v", err)
	}
	if dump(t, fresh.store) != empty || dump(t, bob.store) != before {
		t.Fatal("a refused import changed a store")
	}
}

// TestRestoreBesideOtherDevice: the account has a phone and a laptop;
// the phone is restored from a backup on a new machine. The laptop, Bob
// and the restored device all reach each other afterwards: sync
// transcripts between the account's devices and messages with Bob, both
// ways.
func TestRestoreBesideOtherDevice(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	phone, bob := newAccount(t, url), newAccount(t, url)
	laptop := link(t, url, phone)
	if _, err := phone.SendText(ctx, bob.Account(), "from the phone"); err != nil {
		t.Fatal(err)
	}
	bob.next(t)
	laptop.next(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if _, err := phone.Backup(ctx, &backup, []age.Recipient{id.Recipient()}, client.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	phone.stop()

	src, err := client.OpenBackup(bytes.NewReader(backup.Bytes()), id)
	if err != nil {
		t.Fatal(err)
	}
	st := client.NewMemoryStore()
	restored, rr, err := client.Restore(ctx, src, client.RestoreOptions{Store: st})
	if err != nil || !rr.OldDeviceRemoved {
		t.Fatalf("restore: %+v, %v", rr, err)
	}
	d := &device{Client: restored, store: st}
	d.start(t)

	expect := func(who string, dev *device, text string, outgoing bool) {
		t.Helper()
		if m := dev.next(t); m.Text != text || m.Outgoing != outgoing {
			t.Fatalf("%s got %q (outgoing %v), want %q (outgoing %v)", who, m.Text, m.Outgoing, text, outgoing)
		}
	}
	if _, err := restored.SendText(ctx, bob.Account(), "from the restored phone"); err != nil {
		t.Fatal(err)
	}
	expect("Bob", bob, "from the restored phone", false)
	expect("the laptop", laptop, "from the restored phone", true)

	if _, err := laptop.SendText(ctx, bob.Account(), "from the laptop"); err != nil {
		t.Fatal(err)
	}
	expect("Bob", bob, "from the laptop", false)
	expect("the restored phone", d, "from the laptop", true)

	if _, err := bob.SendText(ctx, phone.Account(), "to both"); err != nil {
		t.Fatal(err)
	}
	expect("the restored phone", d, "to both", false)
	expect("the laptop", laptop, "to both", false)
}

// TestRestoreOfRemovedDevice: a backup of a device that was removed from
// the account meanwhile cannot bring it back, and says so.
func TestRestoreOfRemovedDevice(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	phone := newAccount(t, url)
	laptop := link(t, url, phone)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if _, err := phone.Backup(ctx, &backup, []age.Recipient{id.Recipient()}, client.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	phone.stop()
	if err := laptop.RemoveDevice(ctx, phone.Device()); err != nil {
		t.Fatal(err)
	}
	src, err := client.OpenBackup(bytes.NewReader(backup.Bytes()), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Restore(ctx, src, client.RestoreOptions{Store: client.NewMemoryStore()}); !errors.Is(err, client.ErrOldDeviceGone) {
		t.Fatalf("restore of a removed device: %v", err)
	}
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.OpenBackup(bytes.NewReader(backup.Bytes()), other); !errors.Is(err, client.ErrBackupKey) {
		t.Fatalf("another key: %v", err)
	}
	if _, err := client.OpenBackup(strings.NewReader("not a backup"), id); !errors.Is(err, client.ErrNotBackup) {
		t.Fatalf("not a backup: %v", err)
	}
}
