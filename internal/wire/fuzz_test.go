package wire

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// Allocation bound of Decode: allocPerByte bytes per input byte plus
// allocFixed. The worst inputs are lists of empty messages (2 bytes on the
// wire, ~175 bytes as Go structs: ~90× for a server's Status, ~55× for a
// request's prekeys); the repeated-field bounds cap the total, so a 1 MiB
// frame allocates a few MiB at most.
const (
	allocPerByte = 128
	allocFixed   = 16 << 10
)

// allocated returns the bytes fn allocates on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// FuzzDecode checks, for any input: Decode never panics, returns only
// *ParseError, allocates in proportion to the input, and what it accepts
// re-encodes canonically (decode → encode → decode gives the same frame,
// and encoding that gives the same bytes); DecodeRequest agrees with it;
// and no strict prefix of an encoded frame decodes. (Split feeds do not
// apply: a WebSocket delivers whole messages, one frame each.) Seeds: one
// frame of every kind (testdata/fuzz/FuzzDecode, written by TestFixtures
// -update, and generated here).
//
// The seeds with KEM keys are 2–5 KiB, and the fuzzer minimizes every new
// interesting input for up to -fuzzminimizetime (a minute by default),
// which shows as minutes of "0/sec". Pass -fuzzminimizetime=2s for short
// runs.
func FuzzDecode(f *testing.F) {
	for _, s := range samples() {
		b := mustEncode(f, s.frame)
		f.Add(b)
		// Warm up: the first decoding of each message type allocates its
		// reflection tables once per process.
		if _, err := Decode(b); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			fr  *wirepb.Frame
			err error
		)
		if a := allocated(func() { fr, err = Decode(b) }); a > uint64(allocPerByte*len(b)+allocFixed) {
			t.Fatalf("Decode of %d bytes allocated %d bytes", len(b), a)
		}
		r, rerr := DecodeRequest(b)
		if err != nil {
			parseError(t, err)
			if rerr == nil {
				t.Fatalf("DecodeRequest accepts what Decode refuses: %v", err)
			}
			return
		}
		switch {
		case fr.GetRequest() != nil && (rerr != nil || !proto.Equal(r, fr.GetRequest())):
			t.Fatalf("DecodeRequest of a request: %v", rerr)
		case fr.GetRequest() == nil && rerr == nil:
			t.Fatal("DecodeRequest accepts a response or push")
		}
		enc, err := Encode(fr)
		if err != nil {
			t.Fatalf("Encode of a decoded frame: %v", err)
		}
		fr2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode of Encode: %v", err)
		}
		if !proto.Equal(fr, fr2) {
			t.Fatalf("decode → encode → decode changed the frame: %v → %v", fr, fr2)
		}
		if enc2 := mustEncode(t, fr2); !bytes.Equal(enc, enc2) {
			t.Fatal("encoding is not stable")
		}
		for _, n := range []int{0, len(enc) / 2, len(enc) - 1} {
			if _, err := Decode(enc[:n]); err == nil {
				t.Fatalf("strict prefix of %d of %d bytes decodes", n, len(enc))
			}
		}
	})
}

// TestRequestAllocation: the most a request can make a server allocate,
// beyond copies of its byte fields, is small: lists of empty messages at
// their bounds.
func TestRequestAllocation(t *testing.T) {
	req := func(num protowire.Number, body []byte) []byte {
		return raw(varint(1, Version), bytesField(2, raw(varint(1, 3), bytesField(num, body))))
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty prekeys", req(6, append(bytes.Repeat([]byte{0x1a, 0x00}, MaxOneTimePreKeysPerUpload), bytes.Repeat([]byte{0x22, 0x00}, MaxOneTimePreKeysPerUpload)...))},
		{"empty envelopes", req(9, bytes.Repeat([]byte{0x12, 0x00}, MaxEnvelopesPerSend))},
		{"unpacked ids", req(11, bytes.Repeat([]byte{0x08, 0x01}, MaxAckIDs))},
		{"response to the server", raw(varint(1, Version), bytesField(3, raw(varint(1, 3), bytesField(2, append([]byte{0x08, 0x07}, bytes.Repeat([]byte{0x22, 0x00}, MaxMismatchedRecipients)...)))))},
	}
	for _, s := range samples() {
		Decode(mustEncode(t, s.frame)) // warm up
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			DecodeRequest(tc.in)
			if a := allocated(func() { DecodeRequest(tc.in) }); a > 64<<10 {
				t.Errorf("%d bytes allocated %d bytes", len(tc.in), a)
			}
		})
	}
}

func TestDecodeRequest(t *testing.T) {
	for _, s := range samples() {
		b := mustEncode(t, s.frame)
		r, err := DecodeRequest(b)
		if s.frame.GetRequest() != nil {
			if err != nil || !proto.Equal(r, s.frame.GetRequest()) {
				t.Errorf("%s: %v", s.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted by DecodeRequest", s.name)
		} else if pe := parseError(t, err); pe.Field != "response" && pe.Field != "push" {
			t.Errorf("%s: error %v", s.name, err)
		}
	}
	if _, err := DecodeRequest(make([]byte, MaxFrameSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("large frame: %v", err)
	}
}
