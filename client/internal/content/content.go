// Package content encodes and decodes what Sotto clients say to each other
// end to end (proto/sotto/content/v1/content.proto): the plaintext of a
// Double Ratchet message, padded so that its length says little.
//
// Decode is strict: it refuses padding that is not ISO/IEC 7816-4, a
// version it does not know, and any field outside its bound (the constants
// below), so that the rest of the client handles only well-formed content.
package content

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/client/internal/content/contentpb"
)

// Bounds, each with its reason.
const (
	// Version is the schema version this package writes and reads.
	Version = 1
	// PadBlock is the padding block: Signal pads message plaintexts to a
	// multiple of 160 bytes, which hides the length of short texts among
	// the many that fit one block.
	PadBlock = 160
	// MaxContent is the largest padded content: what fits in one sealed
	// envelope (512 KiB on the wire) with room for the ratchet's and
	// sealed sender's overhead.
	MaxContent = 500 << 10
	// MaxText bounds a message's text: 64 KiB is far beyond what a person
	// types into one message (longer texts are attachments).
	MaxText = 64 << 10
	// MaxReceiptIDs bounds the messages one receipt covers: a device that
	// was away sends many in a few receipts.
	MaxReceiptIDs = 256
	// IDSize is a message id: 16 random bytes, unique without
	// coordination.
	IDSize = 16
	// ProfileKeySize is a profile key.
	ProfileKeySize = 32
	// AccountIDSize is an account id.
	AccountIDSize = 16
)

// ErrMalformed is wrapped by every Decode error.
var ErrMalformed = errors.New("content: malformed")

// Encode validates c, sets its version, and returns it encoded and padded.
func Encode(c *contentpb.Content) ([]byte, error) {
	c.Version = Version
	if err := Validate(c); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("content: %w", err)
	}
	return pad(b), nil
}

// Decode strips the padding from b and parses and validates the content.
func Decode(b []byte) (*contentpb.Content, error) {
	if len(b) > MaxContent {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrMalformed, len(b), MaxContent)
	}
	raw, err := unpad(b)
	if err != nil {
		return nil, err
	}
	c := &contentpb.Content{}
	if err := proto.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := Validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// pad appends 0x80 and zeros up to a multiple of PadBlock.
func pad(b []byte) []byte {
	n := (len(b)/PadBlock + 1) * PadBlock
	out := make([]byte, n)
	copy(out, b)
	out[len(b)] = 0x80
	return out
}

// unpad returns b without its padding: the last non-zero byte must be
// 0x80.
func unpad(b []byte) ([]byte, error) {
	for i := len(b) - 1; i >= 0; i-- {
		switch b[i] {
		case 0:
			continue
		case 0x80:
			return b[:i], nil
		}
		break
	}
	return nil, fmt.Errorf("%w: bad padding", ErrMalformed)
}

// Validate checks c against the schema's bounds.
func Validate(c *contentpb.Content) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	if c.GetVersion() != Version {
		return bad("version %d (this client reads %d)", c.GetVersion(), Version)
	}
	if n := len(c.GetProfileKey()); n != 0 && n != ProfileKeySize {
		return bad("profile key of %d bytes", n)
	}
	switch b := c.GetBody().(type) {
	case *contentpb.Content_Data:
		return validateData(b.Data, bad)
	case *contentpb.Content_Receipt:
		ids := b.Receipt.GetIds()
		if len(ids) == 0 || len(ids) > MaxReceiptIDs {
			return bad("receipt for %d messages (1 to %d)", len(ids), MaxReceiptIDs)
		}
		for _, id := range ids {
			if len(id) != IDSize {
				return bad("receipt message id of %d bytes", len(id))
			}
		}
		if t := b.Receipt.GetType(); t != contentpb.ReceiptMessage_DELIVERY && t != contentpb.ReceiptMessage_READ {
			return bad("receipt type %d", t)
		}
	case *contentpb.Content_Typing:
	case *contentpb.Content_Sync:
		s := b.Sync.GetSent()
		if s == nil {
			return bad("empty sync message")
		}
		if len(s.GetRecipient()) != AccountIDSize {
			return bad("sync transcript recipient of %d bytes", len(s.GetRecipient()))
		}
		return validateData(s.GetMessage(), bad)
	case nil:
		if len(c.GetProfileKey()) == 0 {
			return bad("empty content")
		}
	}
	return nil
}

func validateData(d *contentpb.DataMessage, bad func(string, ...any) error) error {
	switch {
	case d == nil:
		return bad("no message")
	case len(d.GetId()) != IDSize:
		return bad("message id of %d bytes", len(d.GetId()))
	case d.GetSentAt() <= 0:
		return bad("message without a time")
	case d.GetText() == "":
		return bad("message without text")
	case len(d.GetText()) > MaxText:
		return bad("text of %d bytes (at most %d)", len(d.GetText()), MaxText)
	case !utf8.ValidString(d.GetText()):
		return bad("text is not UTF-8")
	}
	return nil
}
