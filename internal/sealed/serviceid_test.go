package sealed

import (
	"bytes"
	"errors"
	"testing"
)

func TestServiceIDForms(t *testing.T) {
	// The UUID from libsignal's core/src/address.rs tests.
	const u = "8c78cd2a-16ff-427d-83dc-1a5e36ce713d"
	raw := unhex(t, "8c78cd2a16ff427d83dc1a5e36ce713d")
	tests := []struct {
		name       string
		in         string
		kind       ServiceIDKind
		str        string
		binary     []byte
		fixedWidth []byte
	}{
		{"aci", u, KindACI, u, raw, append([]byte{0}, raw...)},
		{"aci upper case", "8C78CD2A-16FF-427D-83DC-1A5E36CE713D", KindACI, u, raw, append([]byte{0}, raw...)},
		{"pni", "PNI:" + u, KindPNI, "PNI:" + u, append([]byte{1}, raw...), append([]byte{1}, raw...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ParseServiceID(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if id.Kind() != tt.kind || id.String() != tt.str {
				t.Fatalf("got %v %q", id.Kind(), id.String())
			}
			if !bytes.Equal(id.Binary(), tt.binary) {
				t.Fatalf("Binary = %x, want %x", id.Binary(), tt.binary)
			}
			fw := id.FixedWidth()
			if !bytes.Equal(fw[:], tt.fixedWidth) {
				t.Fatalf("FixedWidth = %x, want %x", fw, tt.fixedWidth)
			}
			if back, err := ParseServiceIDFixedWidth(fw[:]); err != nil || back != id {
				t.Fatalf("fixed-width round trip: %v %v", back, err)
			}
			if back, err := ParseServiceIDBinary(id.Binary()); err != nil || back != id {
				t.Fatalf("binary round trip: %v %v", back, err)
			}
			if back, err := ParseServiceID(id.String()); err != nil || back != id {
				t.Fatalf("string round trip: %v %v", back, err)
			}
			if id.UUID() != [16]byte(raw) {
				t.Fatal("UUID differs")
			}
		})
	}
}

func TestServiceIDRejects(t *testing.T) {
	const u = "8c78cd2a-16ff-427d-83dc-1a5e36ce713d"
	for _, s := range []string{
		"", "PNI:", "PNI:11", "pni:" + u, "ACI:" + u, "{" + u + "}", "8c78cd2a16ff427d83dc1a5e36ce713d",
		"8c78cd2a-16ff-427d-83dc-1a5e36ce713", "8c78cd2a-16ff-427d-83dc-1a5e36ce713dd", "8c78cd2a_16ff-427d-83dc-1a5e36ce713d",
		"8c78cd2a-16ff-427d-83dc-1a5e36ce713g", "urn:uuid:" + u, "PNI:PNI:" + u,
	} {
		if id, err := ParseServiceID(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseServiceID(%q) = %v, %v; want ErrMalformed", s, id, err)
		}
	}
	raw := unhex(t, "8c78cd2a16ff427d83dc1a5e36ce713d")
	for _, b := range [][]byte{nil, raw[:15], append([]byte{0}, raw...), append([]byte{2}, raw...), append([]byte{1, 1}, raw...)} {
		if _, err := ParseServiceIDBinary(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseServiceIDBinary(%x): %v; want ErrMalformed", b, err)
		}
	}
	for _, b := range [][]byte{nil, raw, append([]byte{2}, raw...), append([]byte{0xff}, raw...), append([]byte{0, 0}, raw...)} {
		if _, err := ParseServiceIDFixedWidth(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseServiceIDFixedWidth(%x): %v; want ErrMalformed", b, err)
		}
	}
}
