package content

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/client/internal/content/contentpb"
)

func text(s string) *contentpb.Content {
	return &contentpb.Content{Body: &contentpb.Content_Data{Data: &contentpb.DataMessage{
		Id: bytes.Repeat([]byte{1}, IDSize), SentAt: 1_700_000_000_000, Text: s}}}
}

func TestRoundTripAndPadding(t *testing.T) {
	for _, c := range []*contentpb.Content{
		text("hi"),
		text(strings.Repeat("é", 500)),
		{ProfileKey: bytes.Repeat([]byte{2}, ProfileKeySize), Body: &contentpb.Content_Typing{Typing: &contentpb.TypingMessage{Typing: true}}},
		{Body: &contentpb.Content_Receipt{Receipt: &contentpb.ReceiptMessage{Type: contentpb.ReceiptMessage_READ, Ids: [][]byte{make([]byte, IDSize)}}}},
		{Body: &contentpb.Content_Sync{Sync: &contentpb.SyncMessage{Sent: &contentpb.Sent{Recipient: make([]byte, AccountIDSize), Message: text("x").GetData()}}}},
	} {
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(b)%PadBlock != 0 {
			t.Fatalf("%d bytes, not a multiple of %d", len(b), PadBlock)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, c) {
			t.Fatalf("round trip: got %v, want %v", got, c)
		}
	}
	// Short texts of different lengths pad to the same size.
	a, _ := Encode(text("a"))
	b, _ := Encode(text(strings.Repeat("b", 100)))
	if len(a) != len(b) {
		t.Fatalf("1 and 100 characters pad to %d and %d bytes", len(a), len(b))
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, _ := Encode(text("hello"))
	raw, _ := unpad(good)
	long := text(strings.Repeat("x", MaxText+1))
	long.Version = Version
	longRaw, _ := proto.Marshal(long)
	v2 := text("hi")
	v2.Version = 2
	v2Raw, _ := proto.Marshal(v2)
	for name, b := range map[string][]byte{
		"empty":           nil,
		"no padding mark": raw,
		"zeros only":      make([]byte, PadBlock),
		"bad last byte":   append(bytes.Clone(raw), 0x81),
		"not protobuf":    pad([]byte{0xff, 0xff, 0xff}),
		"text too long":   pad(longRaw),
		"other version":   pad(v2Raw),
		"oversize":        make([]byte, MaxContent+1),
	} {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, c := range map[string]*contentpb.Content{
		"empty":       {},
		"no id":       {Body: &contentpb.Content_Data{Data: &contentpb.DataMessage{SentAt: 1, Text: "x"}}},
		"bad utf-8":   text("\xff"),
		"no text":     text(""),
		"short key":   {ProfileKey: []byte{1}},
		"no receipts": {Body: &contentpb.Content_Receipt{Receipt: &contentpb.ReceiptMessage{}}},
	} {
		if _, err := Encode(c); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range []*contentpb.Content{text("hi"), {ProfileKey: make([]byte, ProfileKeySize)}} {
		b, _ := Encode(c)
		f.Add(b)
	}
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// What decodes re-encodes and decodes to the same content.
		again, err := Encode(c)
		if err != nil {
			t.Fatalf("decoded content does not encode: %v", err)
		}
		c2, err := Decode(again)
		if err != nil || !proto.Equal(c, c2) {
			t.Fatalf("re-encoding changed the content: %v", err)
		}
	})
}
