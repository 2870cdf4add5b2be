// Package certs is sottod's sealed-sender certificate authority: the trust
// root clients pin, the server certificate it signs, and the short-lived
// sender certificates the server issues to authenticated devices (package
// sealed has the formats).
//
// A self-hosted server makes its own trust root at first start and keeps it
// in its data directory (mode 0600); clients learn the root's public key when
// they register and pin it. The root signs one server certificate, whose key
// signs sender certificates.
package certs

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/sealed"
)

// SenderCertificateTTL is how long an issued sender certificate is valid:
// a day, as Signal does — short enough that a removed device's certificates
// lapse soon, long enough that a client fetches one daily, not per message.
const SenderCertificateTTL = 24 * time.Hour

// ServerKeyID is the key id of the server certificate a new data directory
// gets; rotation will use higher ids.
const ServerKeyID = 1

// Authority issues sender certificates. It is safe for concurrent use.
type Authority struct {
	root      keys.PublicKey
	server    *sealed.ServerCertificate
	serverKey keys.PrivateKey
	rand      io.Reader
}

// stored is the on-disk form of the authority's keys.
type stored struct {
	Root      []byte `json:"trust_root_private"`
	ServerKey []byte `json:"server_private"`
	ServerID  uint32 `json:"server_key_id"`
}

// fileName is the authority's file in the data directory.
const fileName = "sealed-sender-keys.json"

// Open loads the authority from dir, creating its keys on first use.
func Open(dir string) (*Authority, error) {
	path := filepath.Join(dir, fileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return create(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return fromStored(s)
}

func create(path string) (*Authority, error) {
	root, err := keys.GenerateKeyPair(rand.Reader)
	if err != nil {
		return nil, err
	}
	server, err := keys.GenerateKeyPair(rand.Reader)
	if err != nil {
		return nil, err
	}
	s := stored{Root: root.Private.Bytes(), ServerKey: server.Private.Bytes(), ServerID: ServerKeyID}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("install %s: %w", path, err)
	}
	return fromStored(s)
}

func fromStored(s stored) (*Authority, error) {
	root, err := keys.NewKeyPair(s.Root)
	if err != nil {
		return nil, fmt.Errorf("trust root: %w", err)
	}
	server, err := keys.NewKeyPair(s.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	cert, err := sealed.NewServerCertificate(rand.Reader, root.Private, s.ServerID, server.Public)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	return &Authority{root: root.Public, server: cert, serverKey: server.Private, rand: rand.Reader}, nil
}

// TrustRoot returns the public key clients pin.
func (a *Authority) TrustRoot() keys.PublicKey { return a.root }

// Trust returns the trust configuration that validates this authority's
// certificates.
func (a *Authority) Trust() sealed.Trust { return sealed.Trust{Roots: []keys.PublicKey{a.root}} }

// Issue makes a sender certificate for a device, valid for
// SenderCertificateTTL from now.
func (a *Authority) Issue(sender sealed.Sender, now time.Time) (*sealed.SenderCertificate, error) {
	return sealed.NewSenderCertificate(a.rand, a.server, a.serverKey, sender, now.Add(SenderCertificateTTL))
}
