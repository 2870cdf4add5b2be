package attach

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"2147483648", 2 << 30, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"00", 0, false},
		{"01", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1_000", 0, false},
		{"0x10", 0, false},
		{"1e3", 0, false},
		{"١", 0, false}, // an Arabic-Indic digit
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseID(t *testing.T) {
	good := "00112233445566778899aabbccddeeff"
	id, err := ParseID(good)
	if err != nil || id.String() != good || id[15] != 0xff {
		t.Fatalf("ParseID(%q) = %v, %v", good, id, err)
	}
	for _, bad := range []string{
		"", good[:31], good + "0", strings.ToUpper(good), "00112233445566778899aabbccddeefg",
		"../../../../../../../etc/passwd", "0011223344556677/899aabbccddeeff", good[:30] + "\x00f",
		"0011223344556677.899aabbccddeeff", " " + good[1:], good[:16] + "%2e" + good[19:],
	} {
		if _, err := ParseID(bad); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseID(%q): %v", bad, err)
		}
	}
}

func TestParseToken(t *testing.T) {
	tok := bytes.Repeat([]byte{0xfb}, tokenSize)
	s := base64.RawURLEncoding.EncodeToString(tok)
	if got, err := parseToken(s); err != nil || !bytes.Equal(got[:], tok) {
		t.Fatalf("parseToken(%q) = %x, %v", s, got, err)
	}
	last := s[len(s)-1]
	for _, bad := range []string{
		"", s[:42], s + "A", s + "=",
		base64.URLEncoding.EncodeToString(tok),    // padded
		base64.RawStdEncoding.EncodeToString(tok), // + and /
		s[:42] + string(last+1),                   // non-canonical last character
	} {
		if _, err := parseToken(bad); err == nil {
			t.Errorf("parseToken(%q) succeeded", bad)
		}
	}
}

func TestRecord(t *testing.T) {
	r := record{length: 12345, created: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
	r.tokenHash[0], r.tokenHash[31] = 0xab, 0x01
	b := r.marshal()
	want := "v1 12345 ab" + strings.Repeat("0", 60) + "01 2026-11-25\n"
	if string(b) != want {
		t.Fatalf("marshal: %q, want %q", b, want)
	}
	got, err := parseRecord(b)
	if err != nil || got != r {
		t.Fatalf("parseRecord: %+v, %v", got, err)
	}
	for _, bad := range []string{
		strings.TrimSuffix(want, "\n"),
		"v2" + want[2:],
		strings.Replace(want, "12345", "012345", 1),
		strings.Replace(want, "12345", "0", 1),
		strings.Replace(want, "ab00", "AB00", 1),
		strings.Replace(want, "2026-11-25", "2026-11-31", 1),
		strings.Replace(want, "2026-11-25", "2026-11-25T00:00:00Z", 1),
		strings.Replace(want, " ", "  ", 1),
		want + "\n",
	} {
		if _, err := parseRecord([]byte(bad)); !errors.Is(err, errBadRecord) {
			t.Errorf("parseRecord(%q): %v", bad, err)
		}
	}
}

func TestScrub(t *testing.T) {
	id := "00112233445566778899aabbccddeeff"
	err := scrub(&fs.PathError{Op: "open", Path: "/data/attach/" + id, Err: syscall.ENOENT})
	if strings.Contains(err.Error(), id) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("scrub: %v", err)
	}
	err = scrub(errors.Join(errors.New("x"), &fs.PathError{Op: "open", Path: id, Err: syscall.EIO}))
	if strings.Contains(err.Error(), id) {
		t.Errorf("scrub: %v", err)
	}
}

// The fuzz targets check that each parser accepts only canonical input:
// what parses marshals back to the same bytes, and no strict prefix of a
// fixed-length form parses.

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1", "2147483648", "9223372036854775807", "9223372036854775808", "007", "-1", "+5", " 5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if n < 0 || strconv.FormatInt(n, 10) != s {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"00112233445566778899aabbccddeeff", "00112233445566778899AABBCCDDEEFF", "../etc/passwd", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		if id.String() != s {
			t.Fatalf("ParseID(%q) = %s", s, id)
		}
		for i := range len(s) {
			if _, err := ParseID(s[:i]); err == nil {
				t.Fatalf("prefix %q of %q parses", s[:i], s)
			}
		}
	})
}

func FuzzParseToken(f *testing.F) {
	f.Add(base64.RawURLEncoding.EncodeToString(make([]byte, tokenSize)))
	f.Add(base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, tokenSize)))
	f.Add("not a token")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseToken(s)
		if err != nil {
			return
		}
		if base64.RawURLEncoding.EncodeToString(tok[:]) != s {
			t.Fatalf("parseToken(%q) = %x", s, tok)
		}
	})
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte("v1 12345 ab" + strings.Repeat("0", 60) + "01 2026-11-25\n"))
	f.Add([]byte("v1 1 " + strings.Repeat("0", 64) + " 0001-01-01\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(b)
		if err != nil {
			return
		}
		if got := r.marshal(); !bytes.Equal(got, b) {
			t.Fatalf("parseRecord(%q) marshals to %q", b, got)
		}
		for i := range len(b) {
			if _, err := parseRecord(b[:i]); err == nil {
				t.Fatalf("prefix %q of %q parses", b[:i], b)
			}
		}
	})
}
