package interop

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sotto-chat/sotto/internal/oracle"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/senderkey"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpora made from libsignal's messages")

// seed is one fuzz seed: a message libsignal produced, stored in the seed
// corpus of the fuzz target that parses it, and the parser that must accept
// it.
type seed struct {
	dir   string // testdata/fuzz/<target> of a package, relative to internal/
	name  string
	data  []byte
	parse func([]byte) error
}

func writeOrCheckSeeds(t *testing.T, seeds []seed) {
	t.Helper()
	for _, s := range seeds {
		if err := s.parse(s.data); err != nil {
			t.Fatalf("%s/%s: Sotto rejects libsignal's message: %v", s.dir, s.name, err)
		}
		path := filepath.Join("..", s.dir, s.name)
		if *updateSeeds {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s.data)) + ")\n"
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("seed corpus missing (run this test with -update-seeds): %v", err)
		}
		body, ok := strings.CutPrefix(string(raw), "go test fuzz v1\n[]byte(")
		if !ok {
			t.Fatalf("%s: not a fuzz corpus file", path)
		}
		q, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(body), ")"))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := s.parse([]byte(q)); err != nil {
			t.Fatalf("%s: stored libsignal seed no longer parses: %v", path, err)
		}
	}
}

// TestLibsignalFuzzSeeds keeps real libsignal messages in the seed corpora
// of the fuzz targets, so fuzzing starts from the shapes the wire carries.
func TestLibsignalFuzzSeeds(t *testing.T) {
	ctx := context.Background()
	o := oracle.Start(t)
	l := newLibsignal(t, o, t.Name())
	s := newSotto(t, t.Name(), 1, nil)
	if err := l.ProcessBundle(ctx, s.addr, s.bundle(true)); err != nil {
		t.Fatal(err)
	}
	first := libsignalEncrypt(t, l, s.addr, "a PreKeySignalMessage from libsignal")
	s.mustDecrypt(l.Address(), first, "a PreKeySignalMessage from libsignal")
	libsignalDecrypt(t, l, s.addr, s.encrypt(l.Address(), "reply"), "reply")
	whisper := libsignalEncrypt(t, l, s.addr, "a SignalMessage from libsignal")

	const dist = "6c1f2a8e-4b0d-4e62-9d8a-1f7b3c5e9a20"
	skdm, err := l.SenderKeyDistribution(ctx, dist)
	if err != nil {
		t.Fatal(err)
	}
	group, err := l.GroupEncrypt(ctx, dist, []byte("a SenderKeyMessage from libsignal"))
	if err != nil {
		t.Fatal(err)
	}

	seeds := []seed{
		{"ratchet/testdata/fuzz/FuzzParsePreKeyMessage", "libsignal", first.Body, func(b []byte) error {
			_, err := ratchet.ParsePreKeyMessage(b)
			return err
		}},
		{"ratchet/testdata/fuzz/FuzzParseMessage", "libsignal", whisper.Body, func(b []byte) error {
			_, err := ratchet.ParseMessage(b)
			return err
		}},
		{"senderkey/testdata/fuzz/FuzzParseDistributionMessage", "libsignal", skdm, func(b []byte) error {
			_, err := senderkey.ParseDistributionMessage(b)
			return err
		}},
		{"senderkey/testdata/fuzz/FuzzParseMessage", "libsignal", group, func(b []byte) error {
			_, err := senderkey.ParseMessage(b)
			return err
		}},
	}
	seeds = append(seeds, sealedSeeds(t, o, l)...)
	writeOrCheckSeeds(t, seeds)
	if *updateSeeds {
		fmt.Println("rewrote", len(seeds), "seed files")
	}
}
