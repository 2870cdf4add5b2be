//go:build unix

package subpoena

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/testserver"
)

// Limits of one run, each with its reason.
const (
	// modeTimeout bounds one mode's workload and collection: it takes
	// well under a minute on two busy cores under the race detector.
	modeTimeout = 3 * time.Minute
	// retention is the configured retention (the default, 30 days):
	// envelopes' expiry days are this far out.
	retention = 30 * 24 * time.Hour
	// registerBurst lets the workload's accounts and devices register
	// from one address at once.
	registerBurst = 1000
	// pingInterval makes the server ping the workload's connections a
	// few times, so that pings and pongs are part of what it logs.
	pingInterval = 2 * time.Second
	// dropTimeout bounds DROP DATABASE at cleanup.
	dropTimeout = 30 * time.Second
)

// mode is one way of running sottod.
type mode struct {
	name string
	// dbURL is the PostgreSQL database; "" means SQLite (with the
	// mailbox queue, the default).
	dbURL string
	// tls serves TLS; the workload is then HTTP only (see workload.tls).
	tls bool
}

// TestSubpoena runs the workload against sottod with SQLite, and with
// PostgreSQL when TEST_POSTGRES_URL is set (on CI it must be), and
// searches what the server holds; then sottod serving TLS, which
// scanners and broken clients reach before any protocol. Each finding is
// printed with where it is and what it is.
func TestSubpoena(t *testing.T) {
	bin := testserver.Build(t)
	t.Run("sqlite", func(t *testing.T) { runMode(t, bin, mode{name: "sqlite"}) })
	t.Run("postgres", func(t *testing.T) { runMode(t, bin, mode{name: "postgres", dbURL: freshDatabase(t)}) })
	t.Run("tls", func(t *testing.T) { runMode(t, bin, mode{name: "sqlite, TLS", tls: true}) })
}

// postgresURL returns TEST_POSTGRES_URL. Without it the test skips,
// except on CI (CI=true), where it fails: CI must never pass by testing
// nothing (as internal/store/postgres).
func postgresURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TEST_POSTGRES_URL is not set: run scripts/test, which starts a private PostgreSQL")
		}
		t.Skip("TEST_POSTGRES_URL is not set; scripts/test starts a private PostgreSQL and sets it")
	}
	return u
}

// freshDatabase creates a database on TEST_POSTGRES_URL's server, dropped
// when the test ends, and returns its URL.
func freshDatabase(t *testing.T) string {
	t.Helper()
	base := postgresURL(t)
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to TEST_POSTGRES_URL: %v", err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	name := "subpoena_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close(ctx)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_POSTGRES_URL must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// runMode runs sottod in mode m, the workload, the collection, the search
// and the report.
func runMode(t *testing.T, bin string, m mode) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), modeTimeout)
	defer cancel()
	dir := t.TempDir()
	data, logPath, cfgPath := filepath.Join(dir, "data"), filepath.Join(dir, "sottod.log"), filepath.Join(dir, "sottod.json")

	// The configuration file: part of what is searched.
	cfg := map[string]any{
		"log_level":      "debug",
		"pow_difficulty": 0,
		"register_burst": registerBurst,
		"retention":      retention.String(),
		"ping_interval":  pingInterval.String(),
	}
	var listen []string
	var config []string
	dbURL := m.dbURL
	if dbURL != "" {
		urlPath := filepath.Join(dir, "postgres-url")
		if err := os.WriteFile(urlPath, []byte(dbURL+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg["postgres_url_file"] = urlPath
		// The goroutine-per-connection reader (as on platforms without
		// epoll), so that its code paths are searched too.
		cfg["netpoll"] = false
		config = append(config, urlPath)
		if u, err := url.Parse(dbURL); err == nil && u.Host != "" {
			host := u.Host
			if u.Port() == "" {
				host = net.JoinHostPort(u.Hostname(), "5432")
			}
			listen = append(listen, host)
		}
	}
	var roots *x509.CertPool
	if m.tls {
		var certPath, keyPath string
		roots, certPath, keyPath = testCertificate(t, dir)
		cfg["tls_cert"], cfg["tls_key"] = certPath, keyPath
		config = append(config, certPath, keyPath)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	config = append([]string{cfgPath}, config...)

	flags := []string{"-config", cfgPath, "-log-level", "debug"}
	if m.tls {
		flags = append(flags, "-tls-cert", cfg["tls_cert"].(string)) // tells StartProcess to probe with TLS
	}
	p := testserver.StartProcess(t, bin, data, logPath, flags...)
	t.Cleanup(func() {
		select {
		case <-p.Exited():
		default:
			p.Kill()
		}
	})
	w := newWorkload(t, ctx, p.URL, p.Addr, roots)
	w.used.listen = append(w.used.listen, listen...)
	err = w.run()
	w.halt()
	if err != nil {
		t.Fatalf("workload: %v\nlog:\n%s", err, testserver.Tail(logPath))
	}
	metrics, err := w.metrics()
	if err != nil {
		t.Fatal(err)
	}
	w.http.CloseIdleConnections()
	running, err := readFiles(data, "running")
	if err != nil {
		t.Fatal(err)
	}
	p.Stop(t)

	h := &holding{mode: m.name, metrics: lines(metrics)}
	scratch := t.TempDir()
	if dbURL == "" {
		h.tables, err = collectSQLite(ctx, data, filepath.Join(scratch, "db"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(data, "mailboxes")); err == nil {
			if h.queue, err = collectQueue(filepath.Join(data, "mailboxes"), filepath.Join(scratch, "queue")); err != nil {
				t.Fatal(err)
			}
		}
	} else if h.tables, err = collectPostgres(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	stopped, err := readFiles(data, "stopped")
	if err != nil {
		t.Fatal(err)
	}
	h.files = dedupeFiles(append(running, stopped...))
	if h.dataFiles, err = listFiles(data); err != nil {
		t.Fatal(err)
	}
	logb, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	h.logs = lines(logb)
	for _, c := range config {
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		h.config = append(h.config, file{filepath.Base(c), b})
	}

	findings := newSearcher(w.used).search(h.units())
	text, all := report(h, newClassifier(w.used, retention, time.Now()), findings, time.Since(began))
	t.Log("\n" + text)
	summary := text[strings.LastIndex(strings.TrimSpace(text), "\n")+1:]
	testkit.Summary(t, strings.TrimSpace(summary))
	for i, f := range all {
		if i == maxShownFindings {
			t.Errorf("… and %d more findings", len(all)-i)
			break
		}
		t.Errorf("finding: %v", f)
	}
	t.Run("doc", func(t *testing.T) { checkDoc(t, h) })
	if err := sanity(w.used, h); err != nil {
		t.Error(err)
	}
	if !m.tls {
		n, err := control(w)
		if err != nil {
			t.Error(err)
		}
		t.Logf("control: the same search finds %d things in the clients' own stores", n)
	}
}

// control is the positive control: the same search over the clients'
// own stores must find every message and username canary and every
// profile key (in whatever encoding the client keeps them), or the
// search is blind to what it looks for.
func control(w *workload) (int, error) {
	units, err := w.clientUnits()
	if err != nil {
		return 0, err
	}
	found := newSearcher(w.used).search(units)
	var missing []string
	check := func(name string) {
		for _, f := range found {
			if strings.HasPrefix(f.what, name+" ") {
				return
			}
		}
		missing = append(missing, name)
	}
	for _, c := range w.used.canaries {
		if strings.HasPrefix(c.what, "message ") || strings.HasPrefix(c.what, "username ") {
			check(fmt.Sprintf("%s %q", c.what, c.value))
		}
	}
	for _, s := range w.used.secrets {
		if strings.HasPrefix(s.what, "profile key ") {
			check(s.what)
		}
	}
	if missing != nil {
		return len(found), fmt.Errorf("control: the search does not find in the clients' stores: %s", strings.Join(missing, "; "))
	}
	return len(found), nil
}

// sanity checks that the collection saw what it must have, so that a
// broken collector cannot pass by finding nothing: every account's id in
// the accounts table, log lines and /metrics lines, the attachment's
// blob among the files.
func sanity(u *used, h *holding) error {
	ids := map[string]bool{}
	for _, tb := range h.tables {
		if tb.name != "accounts" {
			continue
		}
		for _, r := range tb.rows {
			for _, v := range r {
				if b, ok := v.([]byte); ok {
					ids[string(b)] = true
				}
			}
		}
	}
	for _, a := range u.accounts {
		if !ids[string(a.id[:])] {
			return fmt.Errorf("sanity: account %s is not in the accounts table", a.name)
		}
	}
	if len(h.logs) == 0 || len(h.metrics) == 0 {
		return fmt.Errorf("sanity: %d log lines, %d /metrics lines", len(h.logs), len(h.metrics))
	}
	blob := pathPattern("attachments/<id>")
	for _, f := range h.dataFiles {
		if blob.MatchString(f) {
			return nil
		}
	}
	return fmt.Errorf("sanity: no attachment blob among %v", h.dataFiles)
}

// certValidity bounds the test certificate's life: the test takes
// seconds.
const certValidity = time.Hour

// testCertificate makes a self-signed certificate for 127.0.0.1 in dir
// and returns a pool that trusts it and the paths of its PEM files.
func testCertificate(t *testing.T, dir string) (*x509.CertPool, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "subpoena test"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(certValidity),
		IPAddresses:  []net.IP{net.ParseIP(loopbackIP)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, certPath, keyPath
}
