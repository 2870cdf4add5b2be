package gcmsiv

import (
	"bytes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/sotto-chat/sotto/internal/testkit"
)

// rfcFile is testdata/rfc8452.json.
type rfcFile struct {
	Polyval []struct {
		Name   string      `json:"name"`
		H      testkit.Hex `json:"h"`
		Input  testkit.Hex `json:"input"`
		Result testkit.Hex `json:"result"`
	} `json:"polyval"`
	AEAD []struct {
		Name      string      `json:"name"`
		Key       testkit.Hex `json:"key"`
		Nonce     testkit.Hex `json:"nonce"`
		AAD       testkit.Hex `json:"aad"`
		Plaintext testkit.Hex `json:"plaintext"`
		AuthKey   testkit.Hex `json:"authKey"`
		EncKey    testkit.Hex `json:"encKey"`
		Polyval   testkit.Hex `json:"polyval"`
		Tag       testkit.Hex `json:"tag"`
		Result    testkit.Hex `json:"result"`
	} `json:"aead"`
}

func loadRFC(t *testing.T) rfcFile {
	t.Helper()
	data, err := os.ReadFile("testdata/rfc8452.json")
	if err != nil {
		t.Fatal(err)
	}
	var f rfcFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("decode testdata/rfc8452.json: %v", err)
	}
	// Appendix C has 24 + 24 + 2 vectors; Appendix A and Section 7 give
	// the two POLYVAL examples.
	if len(f.AEAD) != 50 || len(f.Polyval) != 2 {
		t.Fatalf("testdata/rfc8452.json has %d AEAD and %d POLYVAL vectors, want 50 and 2", len(f.AEAD), len(f.Polyval))
	}
	return f
}

func mustNew(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
	a, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRFC8452(t *testing.T) {
	for _, v := range loadRFC(t).AEAD {
		t.Run(v.Name, func(t *testing.T) {
			a := mustNew(t, v.Key)
			siv := a.(*sivAEAD)

			authKey, encKey := siv.deriveKeyBytes(v.Nonce)
			if !bytes.Equal(authKey[:], v.AuthKey) {
				t.Errorf("authentication key = %x, want %x", authKey, []byte(v.AuthKey))
			}
			if got := encKey[:len(v.Key)]; !bytes.Equal(got, v.EncKey) {
				t.Errorf("encryption key = %x, want %x", got, []byte(v.EncKey))
			}

			p := newPolyval(&authKey)
			p.updatePadded(v.AAD)
			p.updatePadded(v.Plaintext)
			var lengths [16]byte
			lengths[0], lengths[1] = byte(len(v.AAD)*8), byte(len(v.AAD)*8>>8)
			lengths[8], lengths[9] = byte(len(v.Plaintext)*8), byte(len(v.Plaintext)*8>>8)
			p.updateBlocks(lengths[:])
			if got := p.sum(); !bytes.Equal(got[:], v.Polyval) {
				t.Errorf("POLYVAL = %x, want %x", got, []byte(v.Polyval))
			}

			sealed := a.Seal(nil, v.Nonce, v.Plaintext, v.AAD)
			if !bytes.Equal(sealed, v.Result) {
				t.Errorf("Seal = %x, want %x", sealed, []byte(v.Result))
			}
			if !bytes.Equal(sealed[len(sealed)-TagSize:], v.Tag) {
				t.Errorf("tag = %x, want %x", sealed[len(sealed)-TagSize:], []byte(v.Tag))
			}
			opened, err := a.Open(nil, v.Nonce, v.Result, v.AAD)
			if err != nil || !bytes.Equal(opened, v.Plaintext) {
				t.Errorf("Open = %x, %v; want %x", opened, err, []byte(v.Plaintext))
			}
		})
	}
}

type wycheproofAEADTest struct {
	testkit.WycheproofTest
	Key testkit.Hex `json:"key"`
	IV  testkit.Hex `json:"iv"`
	AAD testkit.Hex `json:"aad"`
	Msg testkit.Hex `json:"msg"`
	CT  testkit.Hex `json:"ct"`
	Tag testkit.Hex `json:"tag"`
}

type wycheproofAEADGroup struct {
	KeySize int                  `json:"keySize"`
	IVSize  int                  `json:"ivSize"`
	TagSize int                  `json:"tagSize"`
	Tests   []wycheproofAEADTest `json:"tests"`
}

func TestWycheproof(t *testing.T) {
	f := testkit.LoadWycheproof[wycheproofAEADGroup](t, "aes_gcm_siv_test.json")
	ran := map[testkit.WycheproofResult]int{}
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			ran[tc.Result]++
			t.Run(fmt.Sprintf("%d/%s", g.KeySize, tc.Name()), func(t *testing.T) {
				a, err := New(tc.Key)
				if err != nil {
					// Every key in the file is 128 or 256 bits.
					t.Fatalf("New: %v", err)
				}
				ct := append(append([]byte{}, tc.CT...), tc.Tag...)
				if len(tc.IV) != NonceSize {
					t.Fatalf("file has a %d-byte nonce; update the test", len(tc.IV))
				}
				opened, openErr := a.Open(nil, tc.IV, ct, tc.AAD)
				switch tc.Result {
				case testkit.WycheproofValid:
					if sealed := a.Seal(nil, tc.IV, tc.Msg, tc.AAD); !bytes.Equal(sealed, ct) {
						t.Errorf("Seal = %x, want %x (%s)", sealed, ct, tc.Comment)
					}
					if openErr != nil || !bytes.Equal(opened, tc.Msg) {
						t.Errorf("Open = %x, %v; want %x (%s)", opened, openErr, []byte(tc.Msg), tc.Comment)
					}
				case testkit.WycheproofInvalid:
					if openErr == nil {
						t.Errorf("Open accepted an invalid ciphertext (%s %v)", tc.Comment, tc.Flags)
					} else if !errors.Is(openErr, ErrOpen) {
						t.Errorf("Open error = %v, want ErrOpen", openErr)
					}
				default:
					t.Errorf("unexpected result %q; decide how to treat it", tc.Result)
				}
			})
		}
	}
	if total := ran[testkit.WycheproofValid] + ran[testkit.WycheproofInvalid] + ran[testkit.WycheproofAcceptable]; total != f.NumberOfTests {
		t.Errorf("ran %d cases, file has %d", total, f.NumberOfTests)
	}
}

func TestNewKeySize(t *testing.T) {
	for _, n := range []int{0, 1, 15, 17, 24, 31, 33, 64} {
		if _, err := New(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("New(%d-byte key) error = %v, want ErrKeySize", n, err)
		}
	}
	for _, n := range []int{16, 32} {
		a, err := New(make([]byte, n))
		if err != nil {
			t.Fatalf("New(%d-byte key): %v", n, err)
		}
		if a.NonceSize() != 12 || a.Overhead() != 16 {
			t.Errorf("NonceSize, Overhead = %d, %d; want 12, 16", a.NonceSize(), a.Overhead())
		}
	}
}

func randBytes(t testing.TB, seed string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(testkit.Rand(seed), b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendAndInPlace(t *testing.T) {
	for _, keySize := range []int{16, 32} {
		a := mustNew(t, randBytes(t, "key", keySize))
		nonce := randBytes(t, "nonce", NonceSize)
		aad := []byte("header")
		for _, n := range []int{0, 1, 15, 16, 17, 127, 128, 129, 1000} {
			pt := randBytes(t, fmt.Sprint("pt", n), n)
			want := a.Seal(nil, nonce, pt, aad)
			if len(want) != n+TagSize {
				t.Fatalf("Seal returned %d bytes, want %d", len(want), n+TagSize)
			}

			// Append after a prefix, with and without spare capacity.
			prefix := []byte("prefix")
			for _, spare := range []int{0, n + TagSize, n + TagSize + 10} {
				dst := append(make([]byte, 0, len(prefix)+spare), prefix...)
				got := a.Seal(dst, nonce, pt, aad)
				if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want) {
					t.Errorf("n=%d spare=%d: Seal with prefix = %x", n, spare, got)
				}
				opened, err := a.Open(dst[:len(prefix)], nonce, want, aad)
				if err != nil || !bytes.Equal(opened[:len(prefix)], prefix) || !bytes.Equal(opened[len(prefix):], pt) {
					t.Errorf("n=%d spare=%d: Open with prefix = %x, %v", n, spare, opened, err)
				}
			}

			// In place.
			buf := make([]byte, n, n+TagSize)
			copy(buf, pt)
			sealed := a.Seal(buf[:0], nonce, buf, aad)
			if !bytes.Equal(sealed, want) || &sealed[0] != &buf[:1][0] {
				t.Errorf("n=%d: in-place Seal = %x, want %x in the same buffer", n, sealed, want)
			}
			opened, err := a.Open(sealed[:0], nonce, sealed, aad)
			if err != nil || !bytes.Equal(opened, pt) {
				t.Errorf("n=%d: in-place Open = %x, %v", n, opened, err)
			}
		}
	}
}

func TestOpenRejectsTampering(t *testing.T) {
	key := randBytes(t, "tamper key", 32)
	a := mustNew(t, key)
	nonce := randBytes(t, "tamper nonce", NonceSize)
	aad := []byte("aad")
	pt := randBytes(t, "tamper pt", 40)
	sealed := a.Seal(nil, nonce, pt, aad)

	check := func(name string, a cipher.AEAD, nonce, ct, aad []byte) {
		t.Helper()
		dst := make([]byte, 0, len(ct))
		out, err := a.Open(dst, nonce, ct, aad)
		if !errors.Is(err, ErrOpen) || out != nil {
			t.Errorf("%s: Open = %x, %v; want nil, ErrOpen", name, out, err)
		}
		// No plaintext may be left behind in dst's spare capacity.
		if spare := dst[:cap(dst)]; bytes.Contains(spare, pt[:8]) {
			t.Errorf("%s: plaintext left in dst after failure", name)
		}
	}
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			ct := bytes.Clone(sealed)
			ct[i] ^= bit
			check(fmt.Sprintf("ciphertext byte %d bit %#x", i, bit), a, nonce, ct, aad)
		}
	}
	for i := range nonce {
		n := bytes.Clone(nonce)
		n[i] ^= 1
		check(fmt.Sprintf("nonce byte %d", i), a, n, sealed, aad)
	}
	check("aad changed", a, nonce, sealed, []byte("aae"))
	check("aad dropped", a, nonce, sealed, nil)
	check("aad extended", a, nonce, sealed, []byte("aad\x00"))
	for n := range TagSize + 1 {
		check(fmt.Sprintf("truncated to %d", n), a, nonce, sealed[:n], aad)
	}
	check("truncated by one", a, nonce, sealed[:len(sealed)-1], aad)
	check("extended by one", a, nonce, append(bytes.Clone(sealed), 0), aad)
	other := bytes.Clone(key)
	other[0] ^= 1
	check("other key", mustNew(t, other), nonce, sealed, aad)
	check("AES-128 key", mustNew(t, key[:16]), nonce, sealed, aad)

	// The in-place failure erases the ciphertext rather than leaving
	// unauthenticated plaintext.
	ct := bytes.Clone(sealed)
	ct[0] ^= 1
	if _, err := a.Open(ct[:0], nonce, ct, aad); err == nil {
		t.Fatal("in-place Open accepted tampered ciphertext")
	}
	if !bytes.Equal(ct[:len(pt)], make([]byte, len(pt))) {
		t.Errorf("in-place Open left %x after failure, want zeros", ct[:len(pt)])
	}
}

func expectPanic(t *testing.T, want string, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Errorf("panic = %v, want one containing %q", r, want)
		}
	}()
	fn()
}

func TestProgrammerErrorsPanic(t *testing.T) {
	a := mustNew(t, make([]byte, 32))
	for _, n := range []int{0, 11, 13, 16, 24} {
		expectPanic(t, "nonce length", func() { a.Seal(nil, make([]byte, n), nil, nil) })
		expectPanic(t, "nonce length", func() { _, _ = a.Open(nil, make([]byte, n), make([]byte, 16), nil) })
	}
	nonce := make([]byte, NonceSize)
	buf := make([]byte, 100)
	expectPanic(t, "overlap", func() { a.Seal(buf[1:1], nonce, buf[:50], nil) })
	expectPanic(t, "overlap", func() { a.Seal(buf[:0], nonce, buf[1:50], nil) })
	expectPanic(t, "overlap", func() { a.Seal(buf[:0], nonce, nil, buf[10:20]) })
	sealed := a.Seal(nil, nonce, make([]byte, 50), nil)
	copy(buf, sealed)
	expectPanic(t, "overlap", func() { _, _ = a.Open(buf[1:1], nonce, buf[:len(sealed)], nil) })
	expectPanic(t, "overlap", func() { _, _ = a.Open(buf[:0], nonce, sealed, buf[5:10]) })
}

func TestConcurrentUse(t *testing.T) {
	a := mustNew(t, randBytes(t, "concurrent", 32))
	pt := randBytes(t, "concurrent pt", 300)
	want := a.Seal(nil, make([]byte, NonceSize), pt, nil)
	done := make(chan error)
	for range 4 {
		go func() {
			for range 50 {
				got := a.Seal(nil, make([]byte, NonceSize), pt, nil)
				if !bytes.Equal(got, want) {
					done <- errors.New("concurrent Seal differs")
					return
				}
				if _, err := a.Open(nil, make([]byte, NonceSize), got, nil); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, v := range loadRFCForFuzz(f) {
		f.Add([]byte(v.Key), []byte(v.Nonce), []byte(v.Plaintext), []byte(v.AAD))
	}
	f.Fuzz(func(t *testing.T, key, nonce, pt, aad []byte) {
		a, err := New(key)
		if err != nil {
			if !errors.Is(err, ErrKeySize) {
				t.Fatalf("New: unexpected error %v", err)
			}
			return
		}
		if len(nonce) != NonceSize {
			return
		}
		sealed := a.Seal(nil, nonce, pt, aad)
		if len(sealed) != len(pt)+TagSize {
			t.Fatalf("Seal returned %d bytes for %d of plaintext", len(sealed), len(pt))
		}
		if again := a.Seal(nil, nonce, pt, aad); !bytes.Equal(again, sealed) {
			t.Fatal("Seal is not deterministic")
		}
		opened, err := a.Open(nil, nonce, sealed, aad)
		if err != nil || !bytes.Equal(opened, pt) {
			t.Fatalf("Open = %x, %v; want %x", opened, err, pt)
		}
		// Sealing in place gives the same bytes.
		buf := append(make([]byte, 0, len(pt)+TagSize), pt...)
		if inPlace := a.Seal(buf[:0], nonce, buf, aad); !bytes.Equal(inPlace, sealed) {
			t.Fatal("in-place Seal differs")
		}
	})
}

func FuzzOpen(f *testing.F) {
	for _, v := range loadRFCForFuzz(f) {
		f.Add([]byte(v.Key), []byte(v.Nonce), []byte(v.Result), []byte(v.AAD), uint16(0))
	}
	f.Add(make([]byte, 32), make([]byte, 12), []byte{}, []byte{}, uint16(1))
	f.Fuzz(func(t *testing.T, key, nonce, ct, aad []byte, flip uint16) {
		a, err := New(key)
		if err != nil || len(nonce) != NonceSize {
			return
		}
		// Arbitrary input must not panic, and anything Open accepts must be
		// exactly what Seal produces: AES-GCM-SIV is deterministic.
		if pt, err := a.Open(nil, nonce, ct, aad); err == nil {
			if resealed := a.Seal(nil, nonce, pt, aad); !bytes.Equal(resealed, ct) {
				t.Fatalf("Open accepted %x, but Seal of its plaintext gives %x", ct, resealed)
			}
		} else if !errors.Is(err, ErrOpen) {
			t.Fatalf("Open error = %v, want ErrOpen", err)
		}

		// Treat ct as a plaintext, seal it, flip one bit, and Open must fail.
		sealed := a.Seal(nil, nonce, ct, aad)
		bit := int(flip) % (8 * len(sealed))
		sealed[bit/8] ^= 1 << (bit % 8)
		if out, err := a.Open(nil, nonce, sealed, aad); err == nil {
			t.Fatalf("Open accepted a ciphertext with bit %d flipped: %x", bit, out)
		}
	})
}

// loadRFCForFuzz is loadRFC for fuzz seeds.
func loadRFCForFuzz(f *testing.F) []struct {
	Name      string      `json:"name"`
	Key       testkit.Hex `json:"key"`
	Nonce     testkit.Hex `json:"nonce"`
	AAD       testkit.Hex `json:"aad"`
	Plaintext testkit.Hex `json:"plaintext"`
	AuthKey   testkit.Hex `json:"authKey"`
	EncKey    testkit.Hex `json:"encKey"`
	Polyval   testkit.Hex `json:"polyval"`
	Tag       testkit.Hex `json:"tag"`
	Result    testkit.Hex `json:"result"`
} {
	f.Helper()
	data, err := os.ReadFile("testdata/rfc8452.json")
	if err != nil {
		f.Fatal(err)
	}
	var rf rfcFile
	if err := json.Unmarshal(data, &rf); err != nil {
		f.Fatal(err)
	}
	return rf.AEAD
}

func benchmarkAEAD(b *testing.B, open bool, size int) {
	a := mustNew(b, make([]byte, 32))
	nonce := make([]byte, NonceSize)
	aad := make([]byte, 13)
	pt := make([]byte, size)
	sealed := a.Seal(nil, nonce, pt, aad)
	buf := make([]byte, 0, size+TagSize)
	b.SetBytes(int64(size))
	for b.Loop() {
		if open {
			if _, err := a.Open(buf[:0], nonce, sealed, aad); err != nil {
				b.Fatal(err)
			}
		} else {
			a.Seal(buf[:0], nonce, pt, aad)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) { benchmarkAEAD(b, false, size) })
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) { benchmarkAEAD(b, true, size) })
	}
}
