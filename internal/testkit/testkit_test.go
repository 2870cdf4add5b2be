package testkit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestRandDeterministic(t *testing.T) {
	read := func(seed string, n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(Rand(seed), b); err != nil {
			t.Fatalf("read Rand(%q): %v", seed, err)
		}
		return b
	}
	a, b := read("sotto", 1000), read("sotto", 1000)
	if !bytes.Equal(a, b) {
		t.Fatal("Rand gave different streams for the same seed")
	}
	if bytes.Equal(a, read("sotto2", 1000)) {
		t.Fatal("Rand gave the same stream for different seeds")
	}
	// The stream is part of the contract: golden transcripts depend on it.
	const want = "99cf6c92546d083e134f1abebde26879"
	if got := hex.EncodeToString(a[:16]); got != want {
		t.Errorf("Rand(%q) starts %s, want %s", "sotto", got, want)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the calling goroutine, so a test can check that a helper fails.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalMessage runs fn with a fatalRecorder in its own goroutine and
// returns the message fn failed with, or "" if it returned normally.
func fatalMessage(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(rec)
	}()
	<-done
	return rec.msg
}

func TestWycheproofBadNames(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{name: "empty", file: "", want: "not a bare file name"},
		{name: "parent", file: "../go.mod", want: "not a bare file name"},
		{name: "subdir", file: "x/aes_gcm_siv_test.json", want: "not a bare file name"},
		{name: "absolute", file: "/etc/passwd", want: "not a bare file name"},
		{name: "missing", file: "no_such_file_test.json", want: "read Wycheproof vectors"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := fatalMessage(t, func(tb testing.TB) { Wycheproof(tb, tc.file) })
			if !strings.Contains(msg, tc.want) {
				t.Errorf("Wycheproof(%q) failed with %q, want a message containing %q", tc.file, msg, tc.want)
			}
		})
	}
}

func TestLoadWycheproof(t *testing.T) {
	type aeadTest struct {
		WycheproofTest
		Key Hex `json:"key"`
		IV  Hex `json:"iv"`
		Tag Hex `json:"tag"`
	}
	type aeadGroup struct {
		KeySize int        `json:"keySize"`
		Tests   []aeadTest `json:"tests"`
	}
	f := LoadWycheproof[aeadGroup](t, "aes_gcm_siv_test.json")
	if f.Algorithm != "AES-GCM-SIV" {
		t.Errorf("algorithm = %q, want AES-GCM-SIV", f.Algorithm)
	}
	n := 0
	results := map[WycheproofResult]int{}
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			n++
			results[tc.Result]++
			if len(tc.Key)*8 != g.KeySize || len(tc.IV) != 12 || len(tc.Tag) != 16 {
				t.Errorf("%s: key %d bytes (group %d bits), iv %d, tag %d", tc.Name(), len(tc.Key), g.KeySize, len(tc.IV), len(tc.Tag))
			}
		}
	}
	if n != f.NumberOfTests {
		t.Errorf("decoded %d tests, file says %d", n, f.NumberOfTests)
	}
	if results[WycheproofValid] == 0 || results[WycheproofInvalid] == 0 {
		t.Errorf("results = %v, want both valid and invalid cases", results)
	}
	if g := WycheproofGroups[aeadGroup](t, "aes_gcm_siv_test.json"); len(g) != len(f.TestGroups) {
		t.Errorf("WycheproofGroups returned %d groups, want %d", len(g), len(f.TestGroups))
	}
}

func TestWycheproofTest(t *testing.T) {
	var tc WycheproofTest
	in := `{"tcId": 7, "comment": "c", "result": "acceptable", "flags": ["A", "B"]}`
	if err := json.Unmarshal([]byte(in), &tc); err != nil {
		t.Fatal(err)
	}
	if tc.Name() != "tcId7" || tc.Result != WycheproofAcceptable || !tc.HasFlag("B") || tc.HasFlag("C") {
		t.Errorf("decoded %+v", tc)
	}
	if err := json.Unmarshal([]byte(`{"result": "Valid"}`), &tc); err == nil {
		t.Error("unknown result decoded without error")
	}
}

func TestHex(t *testing.T) {
	var v struct{ B Hex }
	if err := json.Unmarshal([]byte(`{"B": "00ffAb"}`), &v); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.B, []byte{0, 0xff, 0xab}) {
		t.Errorf("decoded %x", []byte(v.B))
	}
	out, err := json.Marshal(v)
	if err != nil || string(out) != `{"B":"00ffab"}` {
		t.Errorf("Marshal = %s, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"B": ""}`), &v); err != nil || v.B == nil || len(v.B) != 0 {
		t.Errorf("empty string decoded to %#v, %v", v.B, err)
	}
	for _, bad := range []string{`"0"`, `"zz"`} {
		if err := json.Unmarshal([]byte(`{"B": `+bad+`}`), &v); err == nil {
			t.Errorf("%s decoded without error", bad)
		}
	}
}
