package fingerprint

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// Known answers from libsignal 0.72.1's fingerprint.rs tests (the same
// values as libsignal-protocol-java's testVectorsVersion1/2).
const (
	aliceIdentity = "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"
	bobIdentity   = "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"
	aliceStableID = "+14152222222"
	bobStableID   = "+14153333333"

	displayable = "300354477692869396892869876765458257569162576843440918079131"

	aliceScannableV1 = "080112220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df1a220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d"
	bobScannableV1   = "080112220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d1a220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df"
	aliceScannableV2 = "080212220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df1a220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d"
	bobScannableV2   = "080212220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d1a220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustKey(t testing.TB, s string) keys.PublicKey {
	t.Helper()
	k, err := keys.ParsePublicKey(mustHex(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomKey(t testing.TB, seed string) keys.PublicKey {
	t.Helper()
	kp, err := keys.GenerateKeyPair(testkit.Rand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return kp.Public
}

func mustNew(t testing.TB, version uint32, iterations int, localID string, localKey keys.PublicKey, remoteID string, remoteKey keys.PublicKey) Fingerprint {
	t.Helper()
	f, err := New(version, iterations, []byte(localID), localKey, []byte(remoteID), remoteKey)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestKnownAnswers(t *testing.T) {
	alice, bob := mustKey(t, aliceIdentity), mustKey(t, bobIdentity)
	tests := []struct {
		name                     string
		version                  uint32
		aliceScannable, bobScann string
	}{
		{"v1", VersionPhoneNumber, aliceScannableV1, bobScannableV1},
		{"v2", VersionServiceID, aliceScannableV2, bobScannableV2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := mustNew(t, tc.version, Iterations, aliceStableID, alice, bobStableID, bob)
			b := mustNew(t, tc.version, Iterations, bobStableID, bob, aliceStableID, alice)
			if got := hex.EncodeToString(a.Scannable()); got != tc.aliceScannable {
				t.Errorf("alice scannable = %s, want %s", got, tc.aliceScannable)
			}
			if got := hex.EncodeToString(b.Scannable()); got != tc.bobScann {
				t.Errorf("bob scannable = %s, want %s", got, tc.bobScann)
			}
			// The digits do not depend on the version.
			if got := a.Display(); got != displayable {
				t.Errorf("alice display = %s, want %s", got, displayable)
			}
			if got := b.Display(); got != displayable {
				t.Errorf("bob display = %s, want %s", got, displayable)
			}
			if a.Version() != tc.version {
				t.Errorf("Version() = %d", a.Version())
			}
			for _, c := range []struct {
				name       string
				ours, thrs string
				want       bool
			}{
				{"alice scans bob", tc.aliceScannable, tc.bobScann, true},
				{"bob scans alice", tc.bobScann, tc.aliceScannable, true},
				{"alice scans herself", tc.aliceScannable, tc.aliceScannable, false},
				{"bob scans himself", tc.bobScann, tc.bobScann, false},
			} {
				got, err := CompareScannable(mustHex(t, c.ours), mustHex(t, c.thrs))
				if err != nil || got != c.want {
					t.Errorf("%s: CompareScannable = %v, %v; want %v", c.name, got, err, c.want)
				}
			}
		})
	}
}

// TestEncoding is libsignal's fingerprint_encodings test.
func TestEncoding(t *testing.T) {
	s := Scannable{Version: 2, Local: bytes.Repeat([]byte{0x12}, 32), Remote: bytes.Repeat([]byte{0xba}, 32)}
	want := "080212220a20" + strings.Repeat("12", 32) + "1a220a20" + strings.Repeat("ba", 32)
	got := s.Marshal()
	if hex.EncodeToString(got) != want {
		t.Fatalf("Marshal = %x, want %s", got, want)
	}
	p, err := ParseScannable(got)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != 2 || !bytes.Equal(p.Local, s.Local) || !bytes.Equal(p.Remote, s.Remote) {
		t.Fatalf("ParseScannable = %+v", p)
	}
}

func TestSymmetric(t *testing.T) {
	a, b := randomKey(t, "a"), randomKey(t, "b")
	const iterations = 1024
	fa := mustNew(t, VersionPhoneNumber, iterations, aliceStableID, a, bobStableID, b)
	fb := mustNew(t, VersionPhoneNumber, iterations, bobStableID, b, aliceStableID, a)
	if fa.Display() != fb.Display() {
		t.Fatalf("displays differ: %s vs %s", fa.Display(), fb.Display())
	}
	if len(fa.Display()) != DisplaySize {
		t.Fatalf("display has %d digits", len(fa.Display()))
	}
	for _, c := range []struct {
		name string
		f    Fingerprint
		thrs []byte
		want bool
	}{
		{"a scans b", fa, fb.Scannable(), true},
		{"b scans a", fb, fa.Scannable(), true},
		{"a scans a", fa, fa.Scannable(), false},
		{"b scans b", fb, fb.Scannable(), false},
	} {
		if got, err := c.f.Compare(c.thrs); err != nil || got != c.want {
			t.Errorf("%s: Compare = %v, %v; want %v", c.name, got, err, c.want)
		}
		if got, err := CompareScannable(c.f.Scannable(), c.thrs); err != nil || got != c.want {
			t.Errorf("%s: CompareScannable = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

func TestMismatch(t *testing.T) {
	a, b, m := randomKey(t, "a"), randomKey(t, "b"), randomKey(t, "mitm")
	const iterations = 1024
	tests := []struct {
		name   string
		fa, fb Fingerprint
	}{
		{
			// Alice sees the attacker's key where Bob's should be.
			name: "keys",
			fa:   mustNew(t, 1, iterations, aliceStableID, a, bobStableID, m),
			fb:   mustNew(t, 1, iterations, bobStableID, b, aliceStableID, a),
		},
		{
			name: "identifiers",
			fa:   mustNew(t, 1, iterations, "+141512222222", a, bobStableID, b),
			fb:   mustNew(t, 1, iterations, bobStableID, b, aliceStableID, a),
		},
		{
			name: "iterations",
			fa:   mustNew(t, 1, iterations, aliceStableID, a, bobStableID, b),
			fb:   mustNew(t, 1, iterations+1, bobStableID, b, aliceStableID, a),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fa.Display() == tc.fb.Display() {
				t.Error("displays match")
			}
			if ok, err := tc.fa.Compare(tc.fb.Scannable()); ok || err != nil {
				t.Errorf("a.Compare(b) = %v, %v", ok, err)
			}
			if ok, err := tc.fb.Compare(tc.fa.Scannable()); ok || err != nil {
				t.Errorf("b.Compare(a) = %v, %v", ok, err)
			}
		})
	}
}

func TestVersionMismatch(t *testing.T) {
	alice, bob := mustKey(t, aliceIdentity), mustKey(t, bobIdentity)
	v1 := mustNew(t, 1, Iterations, aliceStableID, alice, bobStableID, bob)
	v2 := mustNew(t, 2, Iterations, bobStableID, bob, aliceStableID, alice)
	if v1.Display() != v2.Display() {
		t.Error("display depends on version")
	}
	if bytes.Equal(v1.Scannable(), v2.Scannable()) {
		t.Error("scannable does not depend on version")
	}
	tests := []struct {
		name        string
		ours, thrs  []byte
		theirs, our uint32
	}{
		{"v1 scans v2", v1.Scannable(), v2.Scannable(), 2, 1},
		{"v2 scans v1", v2.Scannable(), v1.Scannable(), 1, 2},
		{"missing version is 0", v2.Scannable(), v1.Scannable()[2:], 0, 2},
		{"empty", v2.Scannable(), nil, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := CompareScannable(tc.ours, tc.thrs)
			var vm *VersionMismatchError
			if ok || !errors.As(err, &vm) {
				t.Fatalf("CompareScannable = %v, %v; want *VersionMismatchError", ok, err)
			}
			if vm.Theirs != tc.theirs || vm.Ours != tc.our {
				t.Fatalf("got %+v", vm)
			}
		})
	}
}

func TestCompareErrors(t *testing.T) {
	ours := mustHex(t, aliceScannableV2)
	bob := mustHex(t, bobScannableV2)
	short := append([]byte{}, bob[:len(bob)-36]...) // drop remote_fingerprint
	tests := []struct {
		name   string
		ours   []byte
		theirs []byte
		want   bool
		parse  bool // want a *ParseError
	}{
		{"ok", ours, bob, true, false},
		{"truncated", ours, bob[:len(bob)-1], false, true},
		{"missing remote", ours, short, false, true},
		{"empty local", ours, []byte{0x08, 0x02, 0x12, 0x00, 0x1a, 0x00}, false, true},
		{"short halves", ours, mustHex(t, "080212030a01aa1a030a01bb"), false, false},
		{"duplicate field", ours, append(append([]byte{}, bob...), 0x08, 0x02), false, true},
		{"our side invalid", ours[:10], bob, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := CompareScannable(tc.ours, tc.theirs)
			var pe *ParseError
			if ok != tc.want || errors.As(err, &pe) != tc.parse || (!tc.parse && err != nil) {
				t.Fatalf("CompareScannable = %v, %v", ok, err)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	k := randomKey(t, "k")
	tests := []struct {
		name       string
		iterations int
		l, r       keys.PublicKey
		want       error
	}{
		{"zero iterations", 0, k, k, ErrIterations},
		{"one iteration", 1, k, k, ErrIterations},
		{"negative", -5, k, k, ErrIterations},
		{"too many", MaxIterations + 1, k, k, ErrIterations},
		{"zero local key", Iterations, keys.PublicKey{}, k, ErrKey},
		{"zero remote key", Iterations, k, keys.PublicKey{}, ErrKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(2, tc.iterations, nil, tc.l, nil, tc.r); !errors.Is(err, tc.want) {
				t.Fatalf("New = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := New(2, MinIterations, nil, k, nil, k); err != nil {
		t.Fatalf("New(MinIterations) = %v", err)
	}
}

func TestParseScannableRejects(t *testing.T) {
	good := mustHex(t, aliceScannableV2)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown field", append(append([]byte{}, good...), 0x20, 0x01)},
		{"overlong varint", append([]byte{0x08, 0x82, 0x00}, good[2:]...)},
		{"reordered", append(append([]byte{}, good[2:]...), good[:2]...)},
		{"short halves", mustHex(t, "080212030a01aa1a030a01bb")},
	}
	for i := range len(good) {
		tests = append(tests, struct {
			name string
			b    []byte
		}{"prefix", good[:i]})
	}
	for _, tc := range tests {
		if _, err := ParseScannable(tc.b); err == nil {
			t.Errorf("%s %x: parsed", tc.name, tc.b)
		} else if pe := (*ParseError)(nil); !errors.As(err, &pe) {
			t.Errorf("%s: error %T is not *ParseError", tc.name, err)
		}
	}
}

func FuzzParseScannable(f *testing.F) {
	for _, s := range []string{aliceScannableV1, bobScannableV1, aliceScannableV2, bobScannableV2, "080212030a01aa1a030a01bb", ""} {
		f.Add(mustHex(f, s))
	}
	ours := mustHex(f, aliceScannableV2)
	f.Fuzz(func(t *testing.T, b []byte) {
		// Comparison must never panic on any input.
		_, _ = CompareScannable(ours, b)
		_, _ = CompareScannable(b, ours)
		s, err := ParseScannable(b)
		if err != nil {
			return
		}
		if got := s.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-marshal %x != input %x", got, b)
		}
		for i := range len(b) {
			if _, err := ParseScannable(b[:i]); err == nil {
				t.Fatalf("strict prefix %x of %x parses", b[:i], b)
			}
		}
	})
}

func BenchmarkNew(b *testing.B) {
	alice, bob := mustKey(b, aliceIdentity), mustKey(b, bobIdentity)
	for b.Loop() {
		if _, err := New(VersionServiceID, Iterations, []byte(aliceStableID), alice, []byte(bobStableID), bob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompareScannable(b *testing.B) {
	ours, theirs := mustHex(b, aliceScannableV2), mustHex(b, bobScannableV2)
	for b.Loop() {
		if ok, err := CompareScannable(ours, theirs); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
