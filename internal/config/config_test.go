package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsValid(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := Load(nil, env(nil), &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.PoWDifficulty != DefaultPoWDifficulty {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sottod.json")
	os.WriteFile(file, []byte(`{"listen": "127.0.0.1:1001", "data": "/from/file", "log_level": "warn", "retention": "48h"}`), 0o600)
	c, err := Load(
		[]string{"-config", file, "-listen", "127.0.0.1:1003"},
		env(map[string]string{"SOTTOD_LISTEN": "127.0.0.1:1002", "SOTTOD_DATA": "/from/env"}),
		&strings.Builder{},
	)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1003" {
		t.Errorf("flag did not win: %s", c.Listen)
	}
	if c.DataDir != "/from/env" {
		t.Errorf("environment did not beat the file: %s", c.DataDir)
	}
	if c.LogLevel != "warn" || time.Duration(c.Retention) != 48*time.Hour {
		t.Errorf("file values lost: %s %v", c.LogLevel, time.Duration(c.Retention))
	}
}

func TestValidateJoinsEveryProblem(t *testing.T) {
	c := Defaults()
	c.Listen = "nonsense"
	c.TLSCert = "cert.pem"
	c.PoWDifficulty = 99
	c.LogLevel = "loud"
	c.AllowedOrigins = []string{"ftp://x"}
	err := c.Validate()
	for _, want := range []string{"listen", "tls-cert", "pow-difficulty", "log-level", "allowed origin"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

func TestHelpListsEverything(t *testing.T) {
	var out strings.Builder
	_, err := Load([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, s := range settings() {
		if !strings.Contains(out.String(), "-"+s.name) || !strings.Contains(out.String(), EnvName(s.name)) {
			t.Errorf("usage lacks %s", s.name)
		}
	}
}

func TestBadInputs(t *testing.T) {
	for _, args := range [][]string{
		{"-pow-difficulty", "x"},
		{"-retention", "soon"},
		{"-gc-percent", "10"},
		{"-gc-percent", "5000"},
		{"extra"},
		{"-config", "/does/not/exist.json"},
	} {
		if _, err := Load(args, env(nil), &strings.Builder{}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	file := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(file, []byte(`{"listen": "127.0.0.1:1", "unknown_key": 1}`), 0o600)
	if _, err := Load([]string{"-config", file}, env(nil), &strings.Builder{}); err == nil {
		t.Error("unknown key in the config file accepted")
	}
}

func TestPostgresURLFromFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pg")
	os.WriteFile(file, []byte("postgres://u:secret@127.0.0.1:5/db\n"), 0o600)
	c := Defaults()
	c.PostgresURLFile = file
	u, err := c.PostgresURL()
	if err != nil || u != "postgres://u:secret@127.0.0.1:5/db" {
		t.Fatalf("%q, %v", u, err)
	}
}
