package ws

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// rfcKey is the masking key of the examples of RFC 6455 section 5.7.
var rfcKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// rfcExample is one of the frame examples of RFC 6455 section 5.7.
type rfcExample struct {
	name    string
	role    Role   // the role that reads the frames
	frames  []byte // the example's bytes
	want    []msg  // what a parser delivers
	written func() []byte
}

// msg is a message or control frame a parser delivered.
type msg struct {
	op   Opcode
	data string
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rfcExamples(t testing.TB) []rfcExample {
	t.Helper()
	b256 := bytes.Repeat([]byte{0xAB}, 256)
	b64k := bytes.Repeat([]byte{0xCD}, 65536)
	return []rfcExample{
		{
			name:    "unmasked text Hello",
			role:    Client,
			frames:  mustHex(t, "81 05 48 65 6c 6c 6f"),
			want:    []msg{{OpText, "Hello"}},
			written: func() []byte { return AppendFrame(nil, OpText, []byte("Hello"), nil) },
		},
		{
			name:    "masked text Hello",
			role:    Server,
			frames:  mustHex(t, "81 85 37 fa 21 3d 7f 9f 4d 51 58"),
			want:    []msg{{OpText, "Hello"}},
			written: func() []byte { return AppendFrame(nil, OpText, []byte("Hello"), &rfcKey) },
		},
		{
			name:   "fragmented unmasked text Hel lo",
			role:   Client,
			frames: mustHex(t, "01 03 48 65 6c 80 02 6c 6f"),
			want:   []msg{{OpText, "Hello"}},
			written: func() []byte {
				b := AppendHeader(nil, OpText, false, 3, nil)
				b = append(b, "Hel"...)
				b = AppendHeader(b, OpContinuation, true, 2, nil)
				return append(b, "lo"...)
			},
		},
		{
			name:    "unmasked ping Hello",
			role:    Client,
			frames:  mustHex(t, "89 05 48 65 6c 6c 6f"),
			want:    []msg{{OpPing, "Hello"}},
			written: func() []byte { return AppendFrame(nil, OpPing, []byte("Hello"), nil) },
		},
		{
			name:    "masked pong Hello",
			role:    Server,
			frames:  mustHex(t, "8a 85 37 fa 21 3d 7f 9f 4d 51 58"),
			want:    []msg{{OpPong, "Hello"}},
			written: func() []byte { return AppendFrame(nil, OpPong, []byte("Hello"), &rfcKey) },
		},
		{
			name:    "256 bytes binary unmasked",
			role:    Client,
			frames:  append(mustHex(t, "82 7E 0100"), b256...),
			want:    []msg{{OpBinary, string(b256)}},
			written: func() []byte { return AppendFrame(nil, OpBinary, b256, nil) },
		},
		{
			name:    "64KiB binary unmasked",
			role:    Client,
			frames:  append(mustHex(t, "82 7F 0000000000010000"), b64k...),
			want:    []msg{{OpBinary, string(b64k)}},
			written: func() []byte { return AppendFrame(nil, OpBinary, b64k, nil) },
		},
	}
}

func TestAppendFrameRFCExamples(t *testing.T) {
	for _, ex := range rfcExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			if got := ex.written(); !bytes.Equal(got, ex.frames) {
				t.Fatalf("written\n%x\nwant\n%x", head(got), head(ex.frames))
			}
		})
	}
}

// head returns the first bytes of b, for messages.
func head(b []byte) []byte { return b[:min(len(b), 32)] }

func TestFrameSize(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20} {
		for _, key := range []*[4]byte{nil, &rfcKey} {
			got := FrameSize(n, key != nil)
			if want := len(AppendFrame(nil, OpBinary, make([]byte, n), key)); got != want {
				t.Errorf("FrameSize(%d, %v) = %d, want %d", n, key != nil, got, want)
			}
		}
	}
}

func TestAppendFrameLeavesPayload(t *testing.T) {
	p := []byte("payload")
	AppendFrame(nil, OpBinary, p, &rfcKey)
	if string(p) != "payload" {
		t.Fatalf("payload modified: %q", p)
	}
}

func TestAppendHeaderPanics(t *testing.T) {
	tests := []struct {
		name string
		op   Opcode
		fin  bool
		n    int
	}{
		{"reserved opcode", 3, true, 0},
		{"reserved control opcode", 0xB, true, 0},
		{"fragmented ping", OpPing, false, 0},
		{"long ping", OpPing, true, 126},
		{"negative length", OpBinary, true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			AppendHeader(nil, tt.op, tt.fin, tt.n, nil)
		})
	}
}

func TestAppendClose(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes of 2-byte characters
	tests := []struct {
		name   string
		code   StatusCode
		reason string
		want   string // payload after the status code
	}{
		{"short", StatusNormalClosure, "bye", "bye"},
		{"empty reason", StatusGoingAway, "", ""},
		{"cut at a character boundary", 4000, long, strings.Repeat("é", 61)},
		{"exactly 123 bytes", 3000, strings.Repeat("a", 123), strings.Repeat("a", 123)},
		{"invalid UTF-8 replaced", StatusPolicyViolation, "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, key := range []*[4]byte{nil, &rfcKey} {
				role := Client
				if key != nil {
					role = Server
				}
				got := parseAll(t, role, 1<<20, AppendClose(nil, tt.code, tt.reason, key))
				if len(got) != 1 || got[0].op != OpClose {
					t.Fatalf("parsed %v", got)
				}
				code, reason := ParseClose([]byte(got[0].data))
				if code != tt.code || reason != tt.want {
					t.Fatalf("got %v %q, want %v %q", code, reason, tt.code, tt.want)
				}
				if !utf8.ValidString(reason) || len(reason) > MaxCloseReason {
					t.Fatalf("reason %q", reason)
				}
			}
		})
	}
	t.Run("no status", func(t *testing.T) {
		b := AppendClose(nil, StatusNoStatus, "ignored", nil)
		if !bytes.Equal(b, []byte{0x88, 0}) {
			t.Fatalf("got %x", b)
		}
		if code, reason := ParseClose(nil); code != StatusNoStatus || reason != "" {
			t.Fatalf("ParseClose(nil) = %v %q", code, reason)
		}
	})
	for _, code := range []StatusCode{0, 999, 1004, 1006, 1012, 1015, 2999, 5000} {
		t.Run("panics on "+code.String(), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			AppendClose(nil, code, "", nil)
		})
	}
}

func TestMask(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var key [4]byte
		for i := range key {
			key[i] = byte(r.Uint32())
		}
		b := make([]byte, r.IntN(100))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		pos := r.IntN(10)
		want := bytes.Clone(b)
		for i := range want {
			want[i] ^= key[(pos+i)%4]
		}
		if end := mask(key, pos, b); end != pos+len(b) || !bytes.Equal(b, want) {
			t.Fatalf("mask(%x, %d) of %d bytes: got %x (end %d), want %x", key, pos, len(b), b, end, want)
		}
	}
}
