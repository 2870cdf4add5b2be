package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// collect returns a Feed callback that appends copies of what it is given
// to *msgs.
func collect(msgs *[]msg) func(Opcode, []byte) error {
	return func(op Opcode, data []byte) error {
		*msgs = append(*msgs, msg{op, string(data)})
		return nil
	}
}

// parseAll feeds stream whole to a new parser and returns what it
// delivered; it fails the test on an error.
func parseAll(t testing.TB, role Role, maxMessage int, stream []byte) []msg {
	t.Helper()
	p := NewParser(role, maxMessage)
	var got []msg
	if err := p.Feed(bytes.Clone(stream), collect(&got)); err != nil {
		t.Fatalf("Feed: %v", err)
	}
	return got
}

// feedSplit feeds a copy of stream to p in pieces of the sizes next
// returns, and returns what p delivered and its error.
func feedSplit(p *Parser, stream []byte, next func() int) ([]msg, error) {
	stream = bytes.Clone(stream)
	var got []msg
	for len(stream) > 0 {
		n := min(max(next(), 1), len(stream))
		if err := p.Feed(stream[:n], collect(&got)); err != nil {
			return got, err
		}
		stream = stream[n:]
	}
	return got, nil
}

// keyFor returns the masking key a peer of a reader in role uses.
func keyFor(role Role) *[4]byte {
	if role == Server {
		return &rfcKey
	}
	return nil
}

// frame returns one frame for a reader in role (masked if role is Server).
func frame(role Role, op Opcode, fin bool, payload string) []byte {
	b := AppendHeader(nil, op, fin, len(payload), keyFor(role))
	n := len(b)
	b = append(b, payload...)
	if role == Server {
		mask(rfcKey, 0, b[n:])
	}
	return b
}

// raw returns a frame with the given first byte and length bytes (the
// 7-bit length and any extended length), masked for a Server reader.
func raw(role Role, b0 byte, length []byte, payload string) []byte {
	b := []byte{b0, length[0]}
	b = append(b, length[1:]...)
	if role == Server {
		b[1] |= maskBit
		b = append(b, rfcKey[:]...)
	}
	n := len(b)
	b = append(b, payload...)
	if role == Server {
		mask(rfcKey, 0, b[n:])
	}
	return b
}

func closePayload(code StatusCode, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, uint16(code))) + reason
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

func TestParserRFCExamples(t *testing.T) {
	for _, ex := range rfcExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			if got := parseAll(t, ex.role, 1<<20, ex.frames); !reflect.DeepEqual(got, ex.want) {
				t.Fatalf("got %.40v, want %.40v", got, ex.want)
			}
			p := NewParser(ex.role, 1<<20)
			got, err := feedSplit(&p, ex.frames, func() int { return 1 })
			if err != nil || !reflect.DeepEqual(got, ex.want) {
				t.Fatalf("byte by byte: got %.40v, %v", got, err)
			}
			// The other role refuses the example: the masking is wrong.
			other := Server + Client - ex.role
			p = NewParser(other, 1<<20)
			var pe *ProtocolError
			if err := p.Feed(bytes.Clone(ex.frames), collect(new([]msg))); !errors.As(err, &pe) || pe.Code != StatusProtocolError {
				t.Fatalf("as %v: %v", other, err)
			}
		})
	}
}

func TestParserViolations(t *testing.T) {
	const max = 1000
	var (
		S = Server
		C = Client
	)
	tooMany := frame(S, OpBinary, false, "")
	for range MaxFragments - 2 {
		tooMany = append(tooMany, frame(S, OpContinuation, false, "")...)
	}
	tooMany = append(tooMany, frame(S, OpContinuation, true, "")...)
	tests := []struct {
		name   string
		role   Role
		stream []byte
		code   StatusCode // 0: valid
	}{
		{"RSV1", S, raw(S, 0xC2, []byte{1}, "x"), StatusProtocolError},
		{"RSV2", C, raw(C, 0xA2, []byte{1}, "x"), StatusProtocolError},
		{"RSV3", S, raw(S, 0x92, []byte{1}, "x"), StatusProtocolError},
		{"RSV on a control frame", S, raw(S, 0xC9, []byte{0}, ""), StatusProtocolError},
		{"reserved data opcode 3", S, raw(S, 0x83, []byte{0}, ""), StatusProtocolError},
		{"reserved data opcode 7", C, raw(C, 0x87, []byte{0}, ""), StatusProtocolError},
		{"reserved control opcode 0xB", S, raw(S, 0x8B, []byte{0}, ""), StatusProtocolError},
		{"reserved control opcode 0xF", C, raw(C, 0x8F, []byte{0}, ""), StatusProtocolError},
		{"fragmented ping", S, raw(S, 0x09, []byte{0}, ""), StatusProtocolError},
		{"fragmented close", C, raw(C, 0x08, []byte{0}, ""), StatusProtocolError},
		{"ping of 126 bytes", S, raw(S, 0x89, []byte{126, 0, 126}, strings.Repeat("p", 126)), StatusProtocolError},
		{"pong of 125 bytes", S, raw(S, 0x8A, []byte{125}, strings.Repeat("p", 125)), 0},
		{"close of 1 byte", S, raw(S, 0x88, []byte{1}, "\x03"), StatusProtocolError},
		{"close of 0 bytes", S, raw(S, 0x88, []byte{0}, ""), 0},
		{"close 1000", C, frame(C, OpClose, true, closePayload(1000, "bye")), 0},
		{"close 1003", S, frame(S, OpClose, true, closePayload(1003, "")), 0},
		{"close 1007", S, frame(S, OpClose, true, closePayload(1007, "")), 0},
		{"close 1011", S, frame(S, OpClose, true, closePayload(1011, "")), 0},
		{"close 3000", S, frame(S, OpClose, true, closePayload(3000, "")), 0},
		{"close 4999", S, frame(S, OpClose, true, closePayload(4999, "")), 0},
		{"close 0", S, frame(S, OpClose, true, closePayload(0, "")), StatusProtocolError},
		{"close 999", S, frame(S, OpClose, true, closePayload(999, "")), StatusProtocolError},
		{"close 1004", S, frame(S, OpClose, true, closePayload(1004, "")), StatusProtocolError},
		{"close 1005", C, frame(C, OpClose, true, closePayload(1005, "")), StatusProtocolError},
		{"close 1006", S, frame(S, OpClose, true, closePayload(1006, "")), StatusProtocolError},
		{"close 1012", S, frame(S, OpClose, true, closePayload(1012, "")), StatusProtocolError},
		{"close 1015", S, frame(S, OpClose, true, closePayload(1015, "")), StatusProtocolError},
		{"close 2999", S, frame(S, OpClose, true, closePayload(2999, "")), StatusProtocolError},
		{"close 5000", S, frame(S, OpClose, true, closePayload(5000, "")), StatusProtocolError},
		{"close reason not UTF-8", S, frame(S, OpClose, true, closePayload(1000, "a\xc3")), StatusInvalidPayload},
		{"text not UTF-8", S, frame(S, OpText, true, "\xff"), StatusInvalidPayload},
		{"text a surrogate", C, frame(C, OpText, true, "\xed\xa0\x80"), StatusInvalidPayload},
		{"fragmented text not UTF-8", S, cat(frame(S, OpText, false, "é"), frame(S, OpContinuation, true, "\xc3")), StatusInvalidPayload},
		{"fragmented text split inside a character", S, cat(frame(S, OpText, false, "\xc3"), frame(S, OpContinuation, true, "\xa9")), 0},
		{"binary not UTF-8", S, frame(S, OpBinary, true, "\xff"), 0},
		{"continuation first", S, frame(S, OpContinuation, true, "x"), StatusProtocolError},
		{"continuation after a complete message", C, cat(frame(C, OpBinary, true, "x"), frame(C, OpContinuation, true, "x")), StatusProtocolError},
		{"text inside a fragmented message", S, cat(frame(S, OpBinary, false, "x"), frame(S, OpText, true, "x")), StatusProtocolError},
		{"binary inside a fragmented message", C, cat(frame(C, OpText, false, "x"), frame(C, OpBinary, false, "x")), StatusProtocolError},
		{"ping inside a fragmented message", S, cat(frame(S, OpBinary, false, "x"), frame(S, OpPing, true, "p"), frame(S, OpContinuation, true, "y")), 0},
		{"unmasked frame to a server", S, frame(C, OpBinary, true, "x"), StatusProtocolError},
		{"masked frame to a client", C, frame(S, OpBinary, true, "x"), StatusProtocolError},
		{"unmasked ping to a server", S, frame(C, OpPing, true, ""), StatusProtocolError},
		{"64-bit length with the top bit set", C, raw(C, 0x82, []byte{127, 0x80, 0, 0, 0, 0, 0, 0, 1}, ""), StatusProtocolError},
		{"16-bit length of 125", S, raw(S, 0x82, []byte{126, 0, 125}, strings.Repeat("x", 125)), StatusProtocolError},
		{"16-bit length of 0", C, raw(C, 0x82, []byte{126, 0, 0}, ""), StatusProtocolError},
		{"16-bit length of 126", S, raw(S, 0x82, []byte{126, 0, 126}, strings.Repeat("x", 126)), 0},
		{"64-bit length of 65535", S, raw(S, 0x82, []byte{127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, ""), StatusProtocolError},
		{"64-bit length of 126", C, raw(C, 0x82, []byte{127, 0, 0, 0, 0, 0, 0, 0, 126}, ""), StatusProtocolError},
		{"message of max bytes", S, frame(S, OpBinary, true, strings.Repeat("x", max)), 0},
		{"message over max", S, frame(S, OpBinary, true, strings.Repeat("x", max+1)), StatusMessageTooBig},
		{"fragments over max", C, cat(frame(C, OpBinary, false, strings.Repeat("x", max/2)), frame(C, OpContinuation, false, strings.Repeat("x", max/2)), frame(C, OpContinuation, true, "x")), StatusMessageTooBig},
		{"fragments of max", C, cat(frame(C, OpText, false, strings.Repeat("x", max/2)), frame(C, OpContinuation, true, strings.Repeat("x", max/2))), 0},
		{"huge 64-bit length", S, raw(S, 0x82, []byte{127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, ""), StatusMessageTooBig},
		{"MaxFragments frames", S, tooMany, 0},
		{"MaxFragments+1 frames", S, cat(tooMany[:len(tooMany)-6], frame(S, OpContinuation, false, ""), frame(S, OpContinuation, true, "")), StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, split := range []int{len(tt.stream), 1, 3} {
				p := NewParser(tt.role, max)
				_, err := feedSplit(&p, tt.stream, func() int { return split })
				if tt.code == 0 {
					if err != nil {
						t.Fatalf("split %d: %v", split, err)
					}
					if p.inFrame || p.msgOp != 0 || p.nhdr != 0 {
						t.Fatalf("split %d: the stream did not end on a message boundary", split)
					}
					continue
				}
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != tt.code {
					t.Fatalf("split %d: got %v, want status %d", split, err, tt.code)
				}
				// The error is sticky.
				if err2 := p.Feed(frame(tt.role, OpBinary, true, "x"), collect(new([]msg))); err2 != err {
					t.Fatalf("Feed after an error: %v", err2)
				}
				if p.Buffered() != 0 {
					t.Fatalf("a failed parser keeps %d bytes", p.Buffered())
				}
			}
		})
	}
}

// validStream returns a stream for a reader in role exercising fragments,
// control frames between them, empty messages and every length encoding
// (the 64-bit one only if long), and the messages it holds.
func validStream(role Role, long bool) ([]byte, []msg) {
	big := strings.Repeat("0123456789abcdef", 70000/16)
	var b []byte
	var want []msg
	add := func(f []byte, m ...msg) {
		b = append(b, f...)
		want = append(want, m...)
	}
	add(frame(role, OpText, true, "Hello"), msg{OpText, "Hello"})
	add(frame(role, OpBinary, true, ""), msg{OpBinary, ""})
	add(frame(role, OpText, false, "Hel"))
	add(frame(role, OpPing, true, "between"), msg{OpPing, "between"})
	add(frame(role, OpContinuation, false, ""))
	add(frame(role, OpPong, true, ""), msg{OpPong, ""})
	add(frame(role, OpContinuation, true, "lo"), msg{OpText, "Hello"})
	add(frame(role, OpBinary, true, big[:126]), msg{OpBinary, big[:126]})
	end := 400
	if long {
		add(frame(role, OpBinary, true, big[:65535]), msg{OpBinary, big[:65535]})
		add(frame(role, OpBinary, true, big[:65536]), msg{OpBinary, big[:65536]})
		end = 70000
	}
	add(frame(role, OpBinary, false, big[:300]))
	add(frame(role, OpPing, true, strings.Repeat("p", 125)), msg{OpPing, strings.Repeat("p", 125)})
	add(frame(role, OpContinuation, true, big[300:end]), msg{OpBinary, big[:end]})
	add(frame(role, OpText, true, "héllo wörld ✓"), msg{OpText, "héllo wörld ✓"})
	add(frame(role, OpClose, true, closePayload(StatusGoingAway, "done")), msg{OpClose, closePayload(StatusGoingAway, "done")})
	return b, want
}

func TestParserSplitFeeds(t *testing.T) {
	for _, role := range []Role{Server, Client} {
		stream, want := validStream(role, true)
		r := rand.New(rand.NewPCG(3, uint64(role)))
		splits := []struct {
			name string
			next func() int
		}{
			{"whole", func() int { return len(stream) }},
			{"byte by byte", func() int { return 1 }},
			{"small random", func() int { return 1 + r.IntN(20) }},
			{"large random", func() int { return 1 + r.IntN(20000) }},
			{"4 KiB reads", func() int { return 4096 }},
		}
		for _, s := range splits {
			t.Run(role.String()+" "+s.name, func(t *testing.T) {
				for range 5 {
					p := NewParser(role, 1<<20)
					got, err := feedSplit(&p, stream, s.next)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("got %d messages, want %d (or different contents)", len(got), len(want))
					}
				}
			})
		}
	}
}

func TestParserTooBigFromHeader(t *testing.T) {
	for _, n := range []uint64{1<<20 + 1, 1 << 40, 1<<63 - 1} {
		// Only the header of a frame of n bytes: the payload never comes.
		h := raw(Server, 0x82, binary.BigEndian.AppendUint64([]byte{127}, n), "")
		p := NewParser(Server, 1<<20)
		var pe *ProtocolError
		if err := p.Feed(h, collect(new([]msg))); !errors.As(err, &pe) || pe.Code != StatusMessageTooBig {
			t.Fatalf("header of %d bytes: %v", n, err)
		}
	}
	// The same for a continuation pushing the total over the limit.
	p := NewParser(Client, 100)
	b := cat(frame(Client, OpBinary, false, strings.Repeat("x", 60)), raw(Client, 0x80, []byte{41}, ""))
	var pe *ProtocolError
	if err := p.Feed(b, collect(new([]msg))); !errors.As(err, &pe) || pe.Code != StatusMessageTooBig {
		t.Fatalf("continuation over the limit: %v", err)
	}
}

func TestParserBuffer(t *testing.T) {
	if s := unsafe.Sizeof(Parser{}); s > 128 {
		t.Errorf("Parser is %d bytes, want at most 128: it is the whole cost of an idle connection", s)
	}
	p := NewParser(Server, 1<<20)
	var got []msg
	payload := strings.Repeat("z", 100000)
	f := frame(Server, OpBinary, true, payload)

	// A header alone allocates nothing, however long the frame it announces.
	if err := p.Feed(bytes.Clone(f[:14]), collect(&got)); err != nil {
		t.Fatal(err)
	}
	if p.Buffered() != 0 {
		t.Fatalf("after the header: %d bytes buffered", p.Buffered())
	}
	// The buffer grows as bytes arrive: at most twice what arrived plus
	// minBuffer.
	for off := 14; off < len(f); off += 1000 {
		end := min(off+1000, len(f))
		if err := p.Feed(bytes.Clone(f[off:end]), collect(&got)); err != nil {
			t.Fatal(err)
		}
		if arrived := end - 14; end < len(f) && p.Buffered() > 2*arrived+minBuffer {
			t.Fatalf("%d bytes arrived, %d buffered", arrived, p.Buffered())
		}
	}
	if len(got) != 1 || got[0].data != payload {
		t.Fatalf("got %d messages", len(got))
	}
	if p.Buffered() != 0 {
		t.Fatalf("idle parser keeps %d bytes", p.Buffered())
	}

	// A whole frame is delivered in place: nothing is buffered.
	var seen []byte
	b := frame(Server, OpBinary, true, "in place")
	if err := p.Feed(b, func(_ Opcode, data []byte) error { seen = data; return nil }); err != nil {
		t.Fatal(err)
	}
	if &seen[0] != &b[len(b)-len("in place")] || string(seen) != "in place" {
		t.Fatalf("not delivered in place: %q", seen)
	}

	// The buffer is kept while a fragmented message is open, and dropped
	// when it completes.
	if err := p.Feed(frame(Server, OpText, false, "open"), collect(&got)); err != nil {
		t.Fatal(err)
	}
	if p.Buffered() == 0 {
		t.Fatal("open message not buffered")
	}
	if err := p.Feed(frame(Server, OpContinuation, true, "ed"), collect(&got)); err != nil {
		t.Fatal(err)
	}
	if p.Buffered() != 0 || got[len(got)-1] != (msg{OpText, "opened"}) {
		t.Fatalf("buffered %d, last message %v", p.Buffered(), got[len(got)-1])
	}
}

func TestParserAfterClose(t *testing.T) {
	stream := cat(
		frame(Client, OpBinary, true, "before"),
		frame(Client, OpClose, true, closePayload(1000, "")),
		frame(Client, OpBinary, true, "after"),
		[]byte("garbage that is not a frame"),
	)
	p := NewParser(Client, 100)
	var got []msg
	if err := p.Feed(stream, collect(&got)); err != nil {
		t.Fatal(err)
	}
	if err := p.Feed([]byte{0xFF, 0xFF}, collect(&got)); err != nil {
		t.Fatal(err)
	}
	want := []msg{{OpBinary, "before"}, {OpClose, closePayload(1000, "")}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
}

func TestParserCallbackError(t *testing.T) {
	errStop := errors.New("stop")
	p := NewParser(Client, 100)
	n := 0
	stream := cat(frame(Client, OpBinary, true, "1"), frame(Client, OpBinary, true, "2"))
	err := p.Feed(stream, func(Opcode, []byte) error { n++; return errStop })
	if err != errStop || n != 1 {
		t.Fatalf("got %v after %d calls", err, n)
	}
	if err := p.Feed(frame(Client, OpBinary, true, "3"), collect(new([]msg))); err != errStop {
		t.Fatalf("Feed after a callback error: %v", err)
	}
}

func TestNewParserPanics(t *testing.T) {
	for _, tt := range []struct {
		role Role
		max  int
	}{{0, 10}, {3, 10}, {Server, -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewParser(%v, %d) did not panic", tt.role, tt.max)
				}
			}()
			NewParser(tt.role, tt.max)
		}()
	}
}
