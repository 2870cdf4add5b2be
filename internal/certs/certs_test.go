package certs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/testkit"
)

func TestOpenCreatesOnceAndIssues(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, fileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !a.TrustRoot().Equal(b.TrustRoot()) {
		t.Fatal("reopening made a new trust root")
	}
	id, _ := keys.GenerateKeyPair(testkit.Rand("id"))
	now := time.Unix(1_800_000_000, 0)
	c, err := b.Issue(sealed.Sender{UUID: "0f3c2b1a-9d8e-4f70-a1b2-c3d4e5f60718", Device: 2, IdentityKey: id.Public}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(a.Trust(), now.Add(SenderCertificateTTL-time.Second)); err != nil {
		t.Fatalf("fresh certificate: %v", err)
	}
	if err := c.Validate(a.Trust(), now.Add(SenderCertificateTTL+time.Second)); err == nil {
		t.Fatal("certificate valid past its TTL")
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, fileName), []byte("{"), 0o600)
	if _, err := Open(dir); err == nil {
		t.Fatal("corrupt key file accepted")
	}
}
