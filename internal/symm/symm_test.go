package symm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/sotto-chat/sotto/internal/testkit"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randBytes(t testing.TB, seed string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(testkit.Rand(seed), b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLibsignalCBC is libsignal's own aes_cbc_test (rust/crypto/src/aes_cbc.rs).
func TestLibsignalCBC(t *testing.T) {
	key := unhex(t, "4e22eb16d964779994222e82192ce9f747da72dc4abe49dfdeeb71d0ffe3796e")
	iv := unhex(t, "6f8a557ddc0a140c878063a6d5f31d3d")
	pt := unhex(t, "30736294a124482a4159")

	ct, err := EncryptCBC(key, iv, pt)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(ct), "dd3f573ab4508b9ed0e45e0baf5608f3"; got != want {
		t.Errorf("EncryptCBC = %s, want %s", got, want)
	}
	got, err := DecryptCBC(key, iv, ct)
	if err != nil || !bytes.Equal(got, pt) {
		t.Errorf("DecryptCBC = %x, %v; want %x", got, err, pt)
	}
	// The padding is invalid when decrypting the plaintext as ciphertext
	// (it is not a whole block) and with the ciphertext as IV.
	if _, err := DecryptCBC(key, iv, pt); !errors.Is(err, ErrBadPadding) {
		t.Errorf("DecryptCBC(plaintext) error = %v, want ErrBadPadding", err)
	}
	if _, err := DecryptCBC(key, ct, ct); !errors.Is(err, ErrBadPadding) {
		t.Errorf("DecryptCBC with the ciphertext as IV: error = %v, want ErrBadPadding", err)
	}
	// Flipping an IV bit flips the same plaintext bit.
	badIV := unhex(t, "ef8a557ddc0a140c878063a6d5f31d3d")
	got, err = DecryptCBC(key, badIV, ct)
	if err != nil || hex.EncodeToString(got) != "b0736294a124482a4159" {
		t.Errorf("DecryptCBC with flipped IV = %x, %v; want b0736294a124482a4159", got, err)
	}
}

// TestLibsignalCTR is libsignal's aes_ctr_test (rust/protocol/src/crypto.rs):
// the keystream must be Ctr32BE from a zero nonce.
func TestLibsignalCTR(t *testing.T) {
	key := unhex(t, "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4")
	macKey := []byte("any mac key")
	ct, err := EncryptCTRHMAC(key, macKey, make([]byte, 35))
	if err != nil {
		t.Fatal(err)
	}
	const want = "e568f68194cf76d6174d4cc04310a85491151e5d0b7a1f1bc0d7acd0ae3e51e4170e23"
	if got := hex.EncodeToString(ct[:35]); got != want {
		t.Errorf("CTR keystream = %s, want %s", got, want)
	}
	mac := HMACSHA256(macKey, ct[:35])
	if !bytes.Equal(ct[35:], mac[:CTRHMACTagSize]) || len(ct) != 35+CTRHMACTagSize {
		t.Errorf("MAC = %x, want the first 10 bytes of %x", ct[35:], mac)
	}
}

type cbcTest struct {
	testkit.WycheproofTest
	Key testkit.Hex `json:"key"`
	IV  testkit.Hex `json:"iv"`
	Msg testkit.Hex `json:"msg"`
	CT  testkit.Hex `json:"ct"`
}

type cbcGroup struct {
	KeySize int       `json:"keySize"`
	IVSize  int       `json:"ivSize"`
	Tests   []cbcTest `json:"tests"`
}

func TestWycheproofCBC(t *testing.T) {
	f := testkit.LoadWycheproof[cbcGroup](t, "aes_cbc_pkcs5_test.json")
	n := 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			n++
			t.Run(fmt.Sprintf("%d/%s", g.KeySize, tc.Name()), func(t *testing.T) {
				b, err := aes.NewCipher(tc.Key)
				if err != nil {
					t.Fatal(err)
				}
				type impl struct {
					name    string
					encrypt func() ([]byte, error)
					decrypt func() ([]byte, error)
				}
				impls := []impl{{
					name:    "crypto/aes",
					encrypt: func() ([]byte, error) { return cbcEncrypt(b, tc.IV, tc.Msg), nil },
					decrypt: func() ([]byte, error) { return cbcDecrypt(b, tc.IV, tc.CT) },
				}}
				if g.KeySize == 256 {
					impls = append(impls, impl{
						name:    "EncryptCBC",
						encrypt: func() ([]byte, error) { return EncryptCBC(tc.Key, tc.IV, tc.Msg) },
						decrypt: func() ([]byte, error) { return DecryptCBC(tc.Key, tc.IV, tc.CT) },
					})
				}
				for _, im := range impls {
					pt, decErr := im.decrypt()
					switch tc.Result {
					case testkit.WycheproofValid:
						ct, err := im.encrypt()
						if err != nil || !bytes.Equal(ct, tc.CT) {
							t.Errorf("%s: encrypt = %x, %v; want %x", im.name, ct, err, []byte(tc.CT))
						}
						if decErr != nil || !bytes.Equal(pt, tc.Msg) {
							t.Errorf("%s: decrypt = %x, %v; want %x", im.name, pt, decErr, []byte(tc.Msg))
						}
					case testkit.WycheproofInvalid:
						if !errors.Is(decErr, ErrBadPadding) {
							t.Errorf("%s: decrypt = %x, %v; want ErrBadPadding (%s)", im.name, pt, decErr, tc.Comment)
						}
					default:
						t.Errorf("unexpected result %q", tc.Result)
					}
				}
			})
		}
	}
	if n != f.NumberOfTests {
		t.Errorf("ran %d cases, file has %d", n, f.NumberOfTests)
	}
}

type macTest struct {
	testkit.WycheproofTest
	Key testkit.Hex `json:"key"`
	Msg testkit.Hex `json:"msg"`
	Tag testkit.Hex `json:"tag"`
}

type macGroup struct {
	KeySize int       `json:"keySize"`
	TagSize int       `json:"tagSize"`
	Tests   []macTest `json:"tests"`
}

func TestWycheproofHMACSHA256(t *testing.T) {
	f := testkit.LoadWycheproof[macGroup](t, "hmac_sha256_test.json")
	n := 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			n++
			t.Run(fmt.Sprintf("key%d/tag%d/%s", g.KeySize, g.TagSize, tc.Name()), func(t *testing.T) {
				size := g.TagSize / 8
				if len(tc.Tag) != size {
					t.Fatalf("tag is %d bytes, group says %d", len(tc.Tag), size)
				}
				mac := HMACSHA256(tc.Key, tc.Msg)
				match := bytes.Equal(mac[:size], tc.Tag)
				verified := VerifyHMACSHA256(tc.Key, tc.Tag, tc.Msg)
				// Split input must give the same MAC as whole input.
				half := len(tc.Msg) / 2
				if split := HMACSHA256(tc.Key, tc.Msg[:half], nil, tc.Msg[half:]); split != mac {
					t.Errorf("split input MAC %x != whole input MAC %x", split, mac)
				}
				switch tc.Result {
				case testkit.WycheproofValid:
					if !match || !verified {
						t.Errorf("MAC %x, verified %v; want prefix %x", mac, verified, []byte(tc.Tag))
					}
				case testkit.WycheproofInvalid:
					if match || verified {
						t.Errorf("invalid tag accepted (%s)", tc.Comment)
					}
				default:
					t.Errorf("unexpected result %q", tc.Result)
				}
			})
		}
	}
	if n != f.NumberOfTests {
		t.Errorf("ran %d cases, file has %d", n, f.NumberOfTests)
	}
}

type hkdfTest struct {
	testkit.WycheproofTest
	IKM  testkit.Hex `json:"ikm"`
	Salt testkit.Hex `json:"salt"`
	Info testkit.Hex `json:"info"`
	Size int         `json:"size"`
	OKM  testkit.Hex `json:"okm"`
}

type hkdfGroup struct {
	KeySize int        `json:"keySize"`
	Tests   []hkdfTest `json:"tests"`
}

// TestWycheproofHKDF pins crypto/hkdf exactly as the protocol packages call
// it: hkdf.Key(sha256.New, ikm, salt, info, size).
func TestWycheproofHKDF(t *testing.T) {
	f := testkit.LoadWycheproof[hkdfGroup](t, "hkdf_sha256_test.json")
	n := 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			n++
			t.Run(tc.Name(), func(t *testing.T) {
				salts := [][]byte{tc.Salt}
				if len(tc.Salt) == 0 {
					// libsignal passes no salt as None; Go callers may pass
					// nil or an empty slice. Both must mean the same.
					salts = append(salts, nil)
				}
				for _, salt := range salts {
					okm, err := hkdf.Key(sha256.New, tc.IKM, salt, string(tc.Info), tc.Size)
					switch tc.Result {
					case testkit.WycheproofValid:
						if err != nil || !bytes.Equal(okm, tc.OKM) {
							t.Errorf("hkdf.Key = %x, %v; want %x", okm, err, []byte(tc.OKM))
						}
					case testkit.WycheproofInvalid:
						if err == nil {
							t.Errorf("hkdf.Key accepted size %d (%s)", tc.Size, tc.Comment)
						}
					default:
						t.Errorf("unexpected result %q", tc.Result)
					}
				}
			})
		}
	}
	if n != f.NumberOfTests {
		t.Errorf("ran %d cases, file has %d", n, f.NumberOfTests)
	}
}

func TestCBCRoundTrip(t *testing.T) {
	key := randBytes(t, "cbc key", KeySize)
	iv := randBytes(t, "cbc iv", IVSize)
	for n := range 70 {
		pt := randBytes(t, fmt.Sprint("cbc pt ", n), n)
		ct, err := EncryptCBC(key, iv, pt)
		if err != nil {
			t.Fatal(err)
		}
		if want := (n/16 + 1) * 16; len(ct) != want {
			t.Errorf("len %d: ciphertext %d bytes, want %d", n, len(ct), want)
		}
		got, err := DecryptCBC(key, iv, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("len %d: DecryptCBC = %x, %v; want %x", n, got, err, pt)
		}
	}
}

// naiveUnpad is the obvious branching PKCS#7 check, the reference for unpad.
func naiveUnpad(b []byte) (int, bool) {
	p := int(b[len(b)-1])
	if p < 1 || p > 16 {
		return 0, false
	}
	for _, c := range b[len(b)-p:] {
		if int(c) != p {
			return 0, false
		}
	}
	return len(b) - p, true
}

func TestUnpad(t *testing.T) {
	r := testkit.Rand("unpad")
	block := make([]byte, 32)
	for i := range 20000 {
		if _, err := io.ReadFull(r, block); err != nil {
			t.Fatal(err)
		}
		// Make valid and nearly valid paddings common.
		p := i % 18
		for j := range p {
			if j < 16 {
				block[31-j] = byte(p)
			}
		}
		if i%3 == 0 {
			block[31-i%16] ^= byte(i >> 4)
		}
		gotN, gotOK := unpad(block)
		wantN, wantOK := naiveUnpad(block)
		if gotOK != wantOK || (gotOK && gotN != wantN) {
			t.Fatalf("unpad(%x) = %d, %v; want %d, %v", block, gotN, gotOK, wantN, wantOK)
		}
	}
}

func TestSizeErrors(t *testing.T) {
	key := make([]byte, KeySize)
	iv := make([]byte, IVSize)
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := EncryptCBC(make([]byte, n), iv, nil); !errors.Is(err, ErrKeySize) {
			t.Errorf("EncryptCBC with %d-byte key: %v, want ErrKeySize", n, err)
		}
		if _, err := DecryptCBC(make([]byte, n), iv, make([]byte, 16)); !errors.Is(err, ErrKeySize) {
			t.Errorf("DecryptCBC with %d-byte key: %v, want ErrKeySize", n, err)
		}
		if _, err := EncryptCTRHMAC(make([]byte, n), key, nil); !errors.Is(err, ErrKeySize) {
			t.Errorf("EncryptCTRHMAC with %d-byte key: %v, want ErrKeySize", n, err)
		}
		if _, err := DecryptCTRHMAC(make([]byte, n), key, make([]byte, 20)); !errors.Is(err, ErrKeySize) {
			t.Errorf("DecryptCTRHMAC with %d-byte key: %v, want ErrKeySize", n, err)
		}
	}
	for _, n := range []int{0, 12, 15, 17, 32} {
		if _, err := EncryptCBC(key, make([]byte, n), nil); !errors.Is(err, ErrIVSize) {
			t.Errorf("EncryptCBC with %d-byte IV: %v, want ErrIVSize", n, err)
		}
		if _, err := DecryptCBC(key, make([]byte, n), make([]byte, 16)); !errors.Is(err, ErrIVSize) {
			t.Errorf("DecryptCBC with %d-byte IV: %v, want ErrIVSize", n, err)
		}
	}
	for _, n := range []int{0, 1, 15, 17, 31} {
		if _, err := DecryptCBC(key, iv, make([]byte, n)); !errors.Is(err, ErrBadPadding) {
			t.Errorf("DecryptCBC of %d bytes: %v, want ErrBadPadding", n, err)
		}
	}
}

func TestCTRHMAC(t *testing.T) {
	cipherKey := randBytes(t, "ctr key", KeySize)
	macKey := randBytes(t, "mac key", 32)
	for _, n := range []int{0, 1, 15, 16, 17, 33, 100} {
		pt := randBytes(t, fmt.Sprint("ctr pt ", n), n)
		ct, err := EncryptCTRHMAC(cipherKey, macKey, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != n+CTRHMACTagSize {
			t.Fatalf("ciphertext %d bytes, want %d", len(ct), n+CTRHMACTagSize)
		}
		// Compose the construction independently from the standard library.
		b, _ := aes.NewCipher(cipherKey)
		want := make([]byte, n)
		cipher.NewCTR(b, make([]byte, 16)).XORKeyStream(want, pt)
		mac := HMACSHA256(macKey, want)
		want = append(want, mac[:10]...)
		if !bytes.Equal(ct, want) {
			t.Errorf("EncryptCTRHMAC = %x, want %x", ct, want)
		}

		got, err := DecryptCTRHMAC(cipherKey, macKey, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("DecryptCTRHMAC = %x, %v; want %x", got, err, pt)
		}
		for i := range ct {
			bad := bytes.Clone(ct)
			bad[i] ^= 0x40
			if out, err := DecryptCTRHMAC(cipherKey, macKey, bad); !errors.Is(err, ErrBadMAC) || out != nil {
				t.Errorf("byte %d flipped: DecryptCTRHMAC = %x, %v; want ErrBadMAC", i, out, err)
			}
		}
		// (Appending a zero byte would not do: HMAC pads short keys with
		// zeros, so that is the same key.)
		otherMAC := bytes.Clone(macKey)
		otherMAC[0] ^= 1
		if _, err := DecryptCTRHMAC(cipherKey, otherMAC, ct); !errors.Is(err, ErrBadMAC) {
			t.Errorf("wrong MAC key: %v, want ErrBadMAC", err)
		}
	}
	for n := range CTRHMACTagSize {
		if _, err := DecryptCTRHMAC(cipherKey, macKey, make([]byte, n)); !errors.Is(err, ErrBadMAC) {
			t.Errorf("%d-byte ciphertext: %v, want ErrBadMAC", n, err)
		}
	}
}

func TestVerifyHMACSHA256(t *testing.T) {
	key := []byte("key")
	mac := HMACSHA256(key, []byte("a"), []byte("b"))
	for n := range MACSize + 2 {
		tag := mac[:min(n, MACSize)]
		if n > MACSize {
			tag = append(tag[:MACSize:MACSize], 0)
		}
		want := n >= MinMACSize && n <= MACSize
		if got := VerifyHMACSHA256(key, tag, []byte("ab")); got != want {
			t.Errorf("%d-byte tag: verified %v, want %v", len(tag), got, want)
		}
	}
	if VerifyHMACSHA256(key, mac[:8], []byte("ac")) {
		t.Error("verified a MAC over different data")
	}
}

func FuzzDecryptCBC(f *testing.F) {
	key := make([]byte, KeySize)
	iv := make([]byte, IVSize)
	for _, n := range []int{0, 5, 16, 40} {
		ct, err := EncryptCBC(key, iv, make([]byte, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(iv, ct)
	}
	f.Add(iv, []byte{})
	f.Add(iv, make([]byte, 17))
	f.Fuzz(func(t *testing.T, iv, ct []byte) {
		pt, err := DecryptCBC(key, iv, ct)
		if err != nil {
			if !errors.Is(err, ErrBadPadding) && !errors.Is(err, ErrIVSize) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Valid PKCS#7 padding is canonical, so re-encrypting must give
		// back exactly the input.
		again, err := EncryptCBC(key, iv, pt)
		if err != nil || !bytes.Equal(again, ct) {
			t.Fatalf("re-encryption = %x, %v; want %x", again, err, ct)
		}
	})
}

func FuzzDecryptCTRHMAC(f *testing.F) {
	cipherKey := make([]byte, KeySize)
	macKey := []byte("mac")
	for _, n := range []int{0, 1, 16, 33} {
		ct, err := EncryptCTRHMAC(cipherKey, macKey, make([]byte, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, ct []byte) {
		pt, err := DecryptCTRHMAC(cipherKey, macKey, ct)
		if err != nil {
			if !errors.Is(err, ErrBadMAC) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again, err := EncryptCTRHMAC(cipherKey, macKey, pt)
		if err != nil || !bytes.Equal(again, ct) {
			t.Fatalf("re-encryption = %x, %v; want %x", again, err, ct)
		}
	})
}
