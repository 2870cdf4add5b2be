package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/sotto-chat/sotto/internal/testserver"
)

// TestRestoreDamagedBackup: a backup cut short or with a byte changed is
// refused with a clear sentence, and no profile is made; the intact one
// restores. A backup to an age key restores with its identity file only.
func TestRestoreDamagedBackup(t *testing.T) {
	url := testserver.Start(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	sotto(t, "--home", home, "init", "--server", url, "--username", "dora_bk")
	sotto(t, "--home", home, "import", "whatsapp", filepath.Join(sharedCorpus, "ios_en_US_media.zip"), "--yes")
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("a long passphrase\n"), 0o600)
	backup := filepath.Join(dir, "dora.backup")
	sotto(t, "--home", home, "backup", backup, "--backup-passphrase-file", pass)
	whole, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", whole[:len(whole)*2/3], "the backup is damaged or incomplete (cut short, or changed since it was made): nothing was changed"},
		{"last byte missing", whole[:len(whole)-1], "the backup is damaged or incomplete"},
		{"tampered", flip(whole, len(whole)/2), "the backup is damaged or incomplete"},
		// The header is text: a changed byte of its salt either still
		// parses (a wrong key) or does not (not a backup).
		{"header tampered", flip(whole, 40), "does not open|is not a Sotto backup"},
		{"empty", nil, "is not a Sotto backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, tc.name+".backup")
			os.WriteFile(f, tc.b, 0o600)
			target := filepath.Join(dir, "restored-"+tc.name)
			got := sottoFails(t, "--home", target, "restore", f, "--backup-passphrase-file", pass)
			if !slices.ContainsFunc(strings.Split(tc.want, "|"), func(w string) bool { return strings.Contains(got, w) }) {
				t.Fatalf("restore: %s\nwant %q", got, tc.want)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Fatalf("a failed restore left %s (%v)", target, err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".restored-*")); len(left) > 0 {
				t.Fatalf("a failed restore left %q", left)
			}
		})
	}

	// To an age key: the passphrase cannot open it, the identity can.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(dir, "key.txt")
	os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600)
	keyed := filepath.Join(dir, "keyed.backup")
	sotto(t, "--home", home, "backup", keyed, "--recipient", id.Recipient().String())
	if got := sottoFails(t, "--home", filepath.Join(dir, "k1"), "restore", keyed, "--backup-passphrase-file", pass); !strings.Contains(got, "does not open") {
		t.Fatalf("a passphrase on a keyed backup: %s", got)
	}
	out := sotto(t, "--home", filepath.Join(dir, "k1"), "restore", keyed, "--identity", idFile, "--keep-old-device")
	if !strings.Contains(out, "with 0 contacts, 0 messages, 21 imported messages and 5 files") {
		t.Fatalf("restore with the identity: %s", out)
	}
	if got := sottoFails(t, "--home", home, "backup", keyed, "--recipient", "age1nope"); !strings.Contains(got, "is not an age public key") {
		t.Fatalf("a bad recipient: %s", got)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x20
	return c
}
