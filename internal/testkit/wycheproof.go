package testkit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// WycheproofModule is the Go module that carries the Wycheproof test
// vectors. The module proxy serves it like any other module, so tests reach
// the vectors through the module cache and the repository commits none of
// them.
const WycheproofModule = "github.com/C2SP/wycheproof"

// WycheproofVersion pins the Wycheproof commit (b51abcfb8daf, 2025-09-01)
// the tests read. It is a fixed pseudo-version, never "latest", so new or
// corrected upstream vectors reach the tests only through a reviewed change
// of this line, and the module proxy's checksum database pins the bytes.
const WycheproofVersion = "v0.0.0-20250901140545-b51abcfb8daf"

// wycheproofVectorDir is the directory inside the module that holds the
// JSON files of the current (v1) schema.
const wycheproofVectorDir = "testvectors_v1"

// wycheproofDownloadTimeout bounds `go mod download`. The module zip is
// about 28 MiB; once it is in the module cache the command takes
// milliseconds, and five minutes covers a cold cache on a slow proxy while
// still failing a hung CI run well inside its time limit.
const wycheproofDownloadTimeout = 5 * time.Minute

// Wycheproof returns the contents of testvectors_v1/file from the pinned
// Wycheproof module ([WycheproofModule] at [WycheproofVersion]).
//
// It finds the module with `go mod download -json`, which fetches it into
// the module cache on first use and is fast afterwards, so it runs the
// command on each call rather than keeping package state. The go command is
// the one of the toolchain that built the test if present, else the first
// "go" on PATH. file must be a bare file name such as
// "aes_gcm_siv_test.json". Any failure — no go command, no network on a cold
// cache, a missing file — calls t.Fatalf: it never skips. The returned slice
// belongs to the caller.
func Wycheproof(t testing.TB, file string) []byte {
	t.Helper()
	if file == "" || !filepath.IsLocal(file) || strings.ContainsAny(file, `/\`) {
		t.Fatalf("testkit: Wycheproof file %q is not a bare file name", file)
	}
	dir := wycheproofModuleDir(t)
	data, err := os.ReadFile(filepath.Join(dir, wycheproofVectorDir, file))
	if err != nil {
		t.Fatalf("testkit: read Wycheproof vectors %s@%s/%s/%s: %v",
			WycheproofModule, WycheproofVersion, wycheproofVectorDir, file, err)
	}
	return data
}

// wycheproofModuleDir returns the module cache directory of the pinned
// Wycheproof module, downloading it if needed.
func wycheproofModuleDir(t testing.TB) string {
	t.Helper()
	gocmd, err := goCommand()
	if err != nil {
		t.Fatalf("testkit: find the go command to download Wycheproof vectors: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wycheproofDownloadTimeout)
	defer cancel()
	mod := WycheproofModule + "@" + WycheproofVersion
	cmd := exec.CommandContext(ctx, gocmd, "mod", "download", "-json", mod)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	// On failure `go mod download -json` still prints a JSON object, with
	// the reason in its Error field.
	var info struct {
		Dir   string
		Error string
	}
	jsonErr := json.Unmarshal(stdout.Bytes(), &info)
	switch {
	case runErr != nil || info.Error != "":
		t.Fatalf("testkit: %s mod download %s: %v: %s %s",
			gocmd, mod, runErr, info.Error, strings.TrimSpace(stderr.String()))
	case jsonErr != nil:
		t.Fatalf("testkit: %s mod download %s: decode output %q: %v", gocmd, mod, stdout.String(), jsonErr)
	case info.Dir == "":
		t.Fatalf("testkit: %s mod download %s: no Dir in output %q", gocmd, mod, stdout.String())
	}
	return info.Dir
}

// goCommand returns the go command of the toolchain that built the test
// binary if it is still there, else the first "go" on PATH. `go test` also
// puts that toolchain's bin directory first on PATH, so both normally agree.
func goCommand() (string, error) {
	exe := "go"
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	//lint:ignore SA1019 a test binary runs where it was built, so the build-time GOROOT is meaningful; PATH is the fallback.
	if root := runtime.GOROOT(); root != "" {
		p := filepath.Join(root, "bin", exe)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath("go")
}

// WycheproofFile is the top level of a Wycheproof testvectors_v1 JSON file,
// generic over the schema's test-group type G.
type WycheproofFile[G any] struct {
	Algorithm     string `json:"algorithm"`
	Schema        string `json:"schema"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []G    `json:"testGroups"`
}

// LoadWycheproof reads and decodes a Wycheproof vector file (see
// [Wycheproof]). Fields of the file that G does not declare are ignored.
// It calls t.Fatalf if the file does not decode or holds no test groups.
func LoadWycheproof[G any](t testing.TB, file string) WycheproofFile[G] {
	t.Helper()
	var f WycheproofFile[G]
	if err := json.Unmarshal(Wycheproof(t, file), &f); err != nil {
		t.Fatalf("testkit: decode Wycheproof vectors %s: %v", file, err)
	}
	if len(f.TestGroups) == 0 || f.NumberOfTests == 0 {
		t.Fatalf("testkit: Wycheproof vectors %s hold no tests", file)
	}
	return f
}

// WycheproofGroups returns the test groups of a Wycheproof vector file,
// decoded into G. It is [LoadWycheproof] for callers that need only the
// groups.
//
// The pattern is to declare, in the test, a group type with the fields the
// schema gives that group and a test type that embeds [WycheproofTest]:
//
//	type aeadTest struct {
//		testkit.WycheproofTest
//		Key testkit.Hex `json:"key"`
//		IV  testkit.Hex `json:"iv"`
//		Msg testkit.Hex `json:"msg"`
//	}
//	type aeadGroup struct {
//		KeySize int        `json:"keySize"`
//		Tests   []aeadTest `json:"tests"`
//	}
//	for _, g := range testkit.WycheproofGroups[aeadGroup](t, "aes_gcm_siv_test.json") {
//		for _, tc := range g.Tests {
//			t.Run(tc.Name(), func(t *testing.T) { ... })
//		}
//	}
func WycheproofGroups[G any](t testing.TB, file string) []G {
	t.Helper()
	return LoadWycheproof[G](t, file).TestGroups
}

// WycheproofTest holds the fields every Wycheproof test case has. Embed it
// in a schema-specific test type.
type WycheproofTest struct {
	// TCID numbers the case uniquely within its file.
	TCID int `json:"tcId"`
	// Comment says what the case tests; it may be empty.
	Comment string `json:"comment"`
	// Result is the expected outcome.
	Result WycheproofResult `json:"result"`
	// Flags name entries of the file's "notes" that describe the case.
	Flags []string `json:"flags"`
}

// Name returns a subtest name for the case, such as "tcId17".
func (w WycheproofTest) Name() string {
	return fmt.Sprintf("tcId%d", w.TCID)
}

// HasFlag reports whether the case carries flag.
func (w WycheproofTest) HasFlag(flag string) bool {
	return slices.Contains(w.Flags, flag)
}

// WycheproofResult is the expected outcome of a Wycheproof case.
type WycheproofResult string

// The outcomes Wycheproof defines.
const (
	// WycheproofValid cases must be accepted and produce the given output.
	WycheproofValid WycheproofResult = "valid"
	// WycheproofInvalid cases must be rejected.
	WycheproofInvalid WycheproofResult = "invalid"
	// WycheproofAcceptable cases may be accepted or rejected; the flags say
	// why they are borderline.
	WycheproofAcceptable WycheproofResult = "acceptable"
)

// UnmarshalText accepts only the three defined outcomes, so a schema change
// upstream fails the test instead of being read as "not valid".
func (r *WycheproofResult) UnmarshalText(text []byte) error {
	switch v := WycheproofResult(text); v {
	case WycheproofValid, WycheproofInvalid, WycheproofAcceptable:
		*r = v
		return nil
	default:
		return fmt.Errorf("testkit: unknown Wycheproof result %q", text)
	}
}

// Hex is a byte string written in JSON as a hex string, the way Wycheproof
// and Sotto's own vector files write bytes. An empty string decodes to an
// empty, non-nil slice.
type Hex []byte

// UnmarshalText decodes a hex string; upper and lower case are accepted.
func (h *Hex) UnmarshalText(text []byte) error {
	b := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(b, text); err != nil {
		return fmt.Errorf("testkit: decode hex %q: %w", text, err)
	}
	*h = b
	return nil
}

// MarshalText encodes h as lower-case hex.
func (h Hex) MarshalText() ([]byte, error) {
	return hex.AppendEncode(nil, h), nil
}
