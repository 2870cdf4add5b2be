package sealed

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sotto-chat/sotto/internal/pb"
)

func TestUSMCRoundTrip(t *testing.T) {
	w := newWorld(t, "usmc")
	tests := []struct {
		name     string
		typ      MessageType
		contents []byte
		hint     ContentHint
		group    []byte
	}{
		{"prekey", TypePreKey, []byte("prekey message"), HintDefault, nil},
		{"whisper", TypeWhisper, []byte{1, 2, 3, 23, 99}, HintResendable, nil},
		{"sender key in group", TypeSenderKey, []byte{}, HintImplicit, []byte{42}},
		{"plaintext", TypePlaintext, bytes.Repeat([]byte{7}, 1000), ContentHint(77), bytes.Repeat([]byte{9}, 32)},
		{"hint 2^31", TypeWhisper, []byte("x"), ContentHint(1 << 31), nil},
		{"hint 2^32-1", TypeWhisper, []byte("x"), ContentHint(1<<32 - 1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := NewUSMC(tt.typ, w.senderCert, tt.contents, tt.hint, tt.group)
			if err != nil {
				t.Fatal(err)
			}
			// The exact encoding, field by field in prost's order.
			var want []byte
			want = pb.AppendUint(want, 1, uint64(tt.typ))
			want = pb.AppendBytes(want, 2, w.senderCert.Bytes())
			want = pb.AppendBytes(want, 3, tt.contents)
			if tt.hint != 0 {
				want = pb.AppendUint(want, 4, uint64(int64(int32(tt.hint))))
			}
			if len(tt.group) > 0 {
				want = pb.AppendBytes(want, 5, tt.group)
			}
			if !bytes.Equal(u.Bytes(), want) {
				t.Fatalf("encoding\n got %x\nwant %x", u.Bytes(), want)
			}
			back, err := ParseUSMC(u.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			sameUSMC(t, back, u)
			if back.Type() != tt.typ || back.ContentHint() != tt.hint || !bytes.Equal(back.Contents(), tt.contents) ||
				!bytes.Equal(back.GroupID(), tt.group) || (tt.group == nil) != (back.GroupID() == nil) {
				t.Fatal("fields differ after parsing")
			}
		})
	}
	if u, _ := NewUSMC(TypeWhisper, w.senderCert, nil, HintDefault, []byte{}); u.GroupID() != nil || len(u.Bytes()) != len(w.usmc(t, TypeWhisper, nil).Bytes()) {
		t.Fatal("an empty group ID should be left out")
	}
	// A present but empty group ID parses as present.
	b := pb.AppendBytes(w.usmc(t, TypeWhisper, nil).Bytes(), 5, nil)
	u, err := ParseUSMC(b)
	if err != nil || u.GroupID() == nil || len(u.GroupID()) != 0 || !bytes.Equal(u.Bytes(), b) {
		t.Fatalf("empty group ID field: %v", err)
	}
}

func TestUSMCRejects(t *testing.T) {
	w := newWorld(t, "usmc rejects")
	cert := w.senderCert.Bytes()
	build := func(fs ...func([]byte) []byte) []byte {
		var b []byte
		for _, f := range fs {
			b = f(b)
		}
		return b
	}
	typ := func(v uint64) func([]byte) []byte { return func(b []byte) []byte { return pb.AppendUint(b, 1, v) } }
	sender := func(b []byte) []byte { return pb.AppendBytes(b, 2, cert) }
	content := func(b []byte) []byte { return pb.AppendBytes(b, 3, []byte("c")) }
	hint := func(v uint64) func([]byte) []byte { return func(b []byte) []byte { return pb.AppendUint(b, 4, v) } }
	if _, err := ParseUSMC(build(typ(2), sender, content, hint(0xFFFF_FFFF_FFFF_FFFF))); err != nil {
		t.Fatalf("hint -1 as prost writes it: %v", err)
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no type", build(sender, content)},
		{"no sender", build(typ(1), content)},
		{"no content", build(typ(1), sender)},
		{"type 0", build(typ(0), sender, content)},
		{"type 3 (reserved)", build(typ(3), sender, content)},
		{"type 9", build(typ(9), sender, content)},
		{"type 257", build(typ(257), sender, content)},
		{"hint 2^31 as uint64", build(typ(1), sender, content, hint(1<<31))},
		{"hint 2^63", build(typ(1), sender, content, hint(1<<63))},
		{"repeated content", build(typ(1), sender, content, content)},
		{"bad certificate", build(typ(1), func(b []byte) []byte { return pb.AppendBytes(b, 2, cert[:len(cert)-1]) }, content)},
		{"certificate too large", build(typ(1), func(b []byte) []byte { return pb.AppendBytes(b, 2, make([]byte, MaxCertificateSize+1)) }, content)},
		{"truncated", build(typ(1), sender, content)[:10]},
		{"too large", build(typ(1), sender, func(b []byte) []byte { return pb.AppendBytes(b, 3, make([]byte, MaxUSMCSize)) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseUSMC(tt.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	for name, f := range map[string]func() (*USMC, error){
		"type 3":     func() (*USMC, error) { return NewUSMC(3, w.senderCert, nil, 0, nil) },
		"no sender":  func() (*USMC, error) { return NewUSMC(TypeWhisper, nil, nil, 0, nil) },
		"too large":  func() (*USMC, error) { return NewUSMC(TypeWhisper, w.senderCert, make([]byte, MaxUSMCSize), 0, nil) },
		"group huge": func() (*USMC, error) { return NewUSMC(TypeWhisper, w.senderCert, nil, 0, make([]byte, MaxUSMCSize)) },
	} {
		if _, err := f(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("NewUSMC %s: %v", name, err)
		}
	}
}

// TestUSMCNoPrefixParsesEqual: a protobuf prefix that ends on a field
// boundary may parse, but never to the same content.
func TestUSMCNoPrefixParsesEqual(t *testing.T) {
	w := newWorld(t, "usmc prefix")
	u, err := NewUSMC(TypeSenderKey, w.senderCert, []byte("inner"), HintResendable, []byte("group"))
	if err != nil {
		t.Fatal(err)
	}
	b := u.Bytes()
	for n := range len(b) {
		p, err := ParseUSMC(b[:n])
		if err == nil && p.ContentHint() == u.ContentHint() && bytes.Equal(p.GroupID(), u.GroupID()) && bytes.Equal(p.Contents(), u.Contents()) {
			t.Fatalf("prefix of %d bytes parses to the same content", n)
		}
	}
}
