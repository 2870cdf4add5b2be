package ws

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// fuzzMaxMessage bounds the message size limit the fuzzer picks, so that
// it can reach the limit with inputs of reasonable size.
const fuzzMaxMessage = 1 << 17

// FuzzParser checks, for any stream, role and size limit: Feed never
// panics and returns only *ProtocolError; it never buffers more than the
// limit plus a control frame; feeding the stream in random pieces gives
// the same messages and the same error as feeding it whole; and the
// messages of a stream it accepts, written again with AppendFrame, parse
// to the same messages. Seeds: the short examples of RFC 6455 section 5.7, a
// stream of fragments and control frames, and violations.
func FuzzParser(f *testing.F) {
	for _, ex := range rfcExamples(f) {
		if len(ex.frames) < 1000 { // big seeds slow the fuzzer down
			f.Add(ex.frames, ex.role == Client, uint32(1<<17), uint64(1))
		}
	}
	for _, role := range []Role{Server, Client} {
		s, _ := validStream(role, false)
		f.Add(s, role == Client, uint32(1<<17), uint64(2))
		f.Add(s, role == Client, uint32(100), uint64(3))
	}
	f.Add(raw(Server, 0xC2, []byte{1}, "x"), false, uint32(10), uint64(4))
	f.Add(raw(Client, 0x82, []byte{126, 0, 125}, strings.Repeat("x", 125)), true, uint32(1000), uint64(5))
	f.Add(raw(Client, 0x82, []byte{127, 0x80, 0, 0, 0, 0, 0, 0, 1}, ""), true, uint32(1000), uint64(6))
	f.Add(frame(Server, OpClose, true, closePayload(1000, "\xff")), false, uint32(10), uint64(7))
	f.Add(frame(Client, OpText, true, "\xed\xa0\x80"), true, uint32(10), uint64(8))
	f.Add(cat(frame(Client, OpBinary, false, "a"), frame(Client, OpText, true, "b")), true, uint32(10), uint64(9))
	f.Add(cat(frame(Server, OpBinary, false, "ab"), frame(Server, OpContinuation, true, "cd")), false, uint32(3), uint64(10))

	f.Fuzz(func(t *testing.T, stream []byte, client bool, maxMessage uint32, seed uint64) {
		role := Server
		if client {
			role = Client
		}
		limit := int(maxMessage % (fuzzMaxMessage + 1))
		bound := limit + MaxControlPayload

		p := NewParser(role, limit)
		var whole []msg
		werr := p.Feed(bytes.Clone(stream), func(op Opcode, data []byte) error {
			if p.Buffered() > bound {
				t.Fatalf("buffered %d bytes, limit %d", p.Buffered(), limit)
			}
			whole = append(whole, msg{op, string(data)})
			return nil
		})
		var pe *ProtocolError
		if werr != nil && !errors.As(werr, &pe) {
			t.Fatalf("error of type %T: %v", werr, werr)
		}
		for _, m := range whole {
			if len(m.data) > limit && !m.op.IsControl() || m.op.IsControl() && len(m.data) > MaxControlPayload {
				t.Fatalf("%v of %d bytes delivered, limit %d", m.op, len(m.data), limit)
			}
		}

		r := rand.New(rand.NewPCG(seed, seed>>32))
		maxPiece := 1 + r.IntN(64)
		if r.IntN(2) == 0 {
			maxPiece = 1 + r.IntN(len(stream)+1)
		}
		sp := NewParser(role, limit)
		split, serr := feedSplit(&sp, stream, func() int {
			if sp.Buffered() > bound {
				t.Fatalf("buffered %d bytes, limit %d", sp.Buffered(), limit)
			}
			return 1 + r.IntN(maxPiece)
		})
		if sp.Buffered() > bound {
			t.Fatalf("buffered %d bytes, limit %d", sp.Buffered(), limit)
		}
		if !reflect.DeepEqual(split, whole) || !sameError(serr, werr) {
			t.Fatalf("split feed: %d messages, %v; whole: %d messages, %v", len(split), serr, len(whole), werr)
		}
		if werr != nil {
			return
		}

		var again []byte
		for _, m := range whole {
			again = AppendFrame(again, m.op, []byte(m.data), keyFor(role))
		}
		rp := NewParser(role, limit)
		var reparsed []msg
		if err := rp.Feed(again, collect(&reparsed)); err != nil {
			t.Fatalf("rewritten stream: %v", err)
		}
		if !reflect.DeepEqual(reparsed, whole) {
			t.Fatalf("rewritten stream gives %d messages, want %d", len(reparsed), len(whole))
		}
		if rp.Buffered() != 0 {
			t.Fatalf("parser idle after whole messages keeps %d bytes", rp.Buffered())
		}
	})
}

// sameError reports whether a and b are both nil or both the same
// ProtocolError.
func sameError(a, b error) bool {
	var pa, pb *ProtocolError
	if a == nil || b == nil {
		return a == b
	}
	return errors.As(a, &pa) && errors.As(b, &pb) && *pa == *pb
}
