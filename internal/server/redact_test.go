package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/config"
)

func TestRedactAddrs(t *testing.T) {
	keep := []string{"127.0.0.1:8080", "[::1]:8443"}
	for _, tc := range []struct{ in, want string }{
		{"http: TLS handshake error from 127.0.0.77:56607: EOF", "http: TLS handshake error from [addr]: EOF"},
		{"read tcp 127.0.0.1:8080->203.0.113.7:40000: read: connection reset by peer", "read tcp 127.0.0.1:8080->[addr]: read: connection reset by peer"},
		{"write tcp [::1]:8443->[2001:db8::1]:51000: broken pipe", "write tcp [::1]:8443->[addr]: broken pipe"},
		{"http2: server: error reading preface from client [fe80::1]:4000: bogus greeting", "http2: server: error reading preface from client [addr]: bogus greeting"},
		{"source 198.51.100.23 limited", "source [addr] limited"},
		{"bare 2001:db8::42 and ::1.", "bare [addr] and [addr]."},
		{"sottod listening on 127.0.0.1:8080", "sottod listening on 127.0.0.1:8080"},
		{"the same host, another port: 127.0.0.1:8081", "the same host, another port: [addr]"},
		{"a time 16:39:24.651843378 and a version 1.2.3 and hex deadbeef: fine", "a time 16:39:24.651843378 and a version 1.2.3 and hex deadbeef: fine"},
		{"no addresses at all", "no addresses at all"},
	} {
		if got := redactAddrs(tc.in, keep); got != tc.want {
			t.Errorf("redactAddrs(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestRedactorAttributes: messages, string, error, net.Addr and grouped
// attributes are redacted; WithAttrs too; kept addresses stay.
func TestRedactorAttributes(t *testing.T) {
	var buf syncBuffer
	r := newRedactor(slog.NewTextHandler(&buf, nil), nil)
	log := slog.New(r).With("peer", "203.0.113.9:1234")
	r.Keep("127.0.0.1:8080")
	log.Info("from 198.51.100.1", "err", errors.New("dial 192.0.2.1:5: refused"),
		"addr", &net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 6},
		slog.Group("g", "inner", "192.0.2.3"), "listen", "127.0.0.1:8080", "n", 7)
	out := buf.String()
	for _, leaked := range []string{"203.0.113.9", "198.51.100.1", "192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if strings.Contains(out, leaked) {
			t.Errorf("%s in %s", leaked, out)
		}
	}
	if !strings.Contains(out, "listen=127.0.0.1:8080") || !strings.Contains(out, "n=7") {
		t.Errorf("lost what is not a client's address: %s", out)
	}
}

func TestPostgresAddrs(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@10.0.0.5:5433/db":             "10.0.0.5:5433",
		"postgresql://db.example/x":                   "db.example:5432",
		"postgres://h1:5432,h2:5433/x":                "h1:5432 h2:5433",
		"postgres://[2001:db8::1]/x":                  "[2001:db8::1]:5432",
		"host=10.0.0.5 port=5432 dbname=x":            "",
		"postgres:///db?host=/var/run/postgresql":     "",
		"http://10.0.0.5:5432/not-postgres-at-all/db": "",
	} {
		if got := strings.Join(postgresAddrs(in), " "); got != want {
			t.Errorf("postgresAddrs(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTLSHandshakeErrorsNameNoClient: net/http logs a failed TLS
// handshake with the client's address; the server's log does not hold
// it.
func TestTLSHandshakeErrorsNameNoClient(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.TLSCert, cfg.TLSKey = writeCert(t, dir)
	logs := &syncBuffer{}
	ctx := context.Background()
	s, err := New(ctx, cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	// Plain HTTP to the TLS port, from another loopback address.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.66")}}
	c, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.66: %v", err)
	}
	client := c.LocalAddr().String()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "TLS handshake error") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, "TLS handshake error from [addr]") {
		t.Errorf("no redacted handshake error in the log:\n%s", out)
	}
	if strings.Contains(out, "127.0.0.66") || strings.Contains(out, client) {
		t.Errorf("the client's address %s is in the log:\n%s", client, out)
	}
	if !strings.Contains(out, s.Addr().String()) {
		t.Errorf("the listen address %s is not in the log:\n%s", s.Addr(), out)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 into dir.
func writeCert(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}
