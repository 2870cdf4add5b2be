package ws

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// Role says which end of a connection a [Parser] or [Conn] is.
type Role uint8

// Roles. RFC 6455 section 5.1: a client masks every frame it sends, a
// server masks none, and each refuses frames from the other that break this.
const (
	Server Role = iota + 1 // reads masked frames, writes unmasked ones
	Client                 // reads unmasked frames, writes masked ones
)

func (r Role) String() string {
	switch r {
	case Server:
		return "server"
	case Client:
		return "client"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// Parser limits.
const (
	// MaxFragments is the most frames one data message may span. The size
	// limit alone would let a peer send endless empty fragments, each
	// costing a header parse and nothing else, to keep a message open
	// forever; real senders fragment into a handful of large frames.
	MaxFragments = 1024

	// minBuffer is the first allocation for a frame that arrives in
	// pieces (or the frame's size, if smaller): one page, so that frames
	// of a few KiB, the common case, take a single allocation, while a
	// peer sending a header alone makes the parser allocate little. The
	// buffer then doubles as bytes arrive, never beyond what the frame's
	// header announced, so a header alone never allocates its announced
	// size.
	minBuffer = 4096
)

// ProtocolError is the error of [Parser.Feed] for bytes that break RFC 6455
// or the parser's limits. The connection must be closed with Code.
type ProtocolError struct {
	// Code is the status to close the connection with:
	// StatusProtocolError for a framing error, StatusMessageTooBig for a
	// message over the size limit or with too many fragments,
	// StatusInvalidPayload for a text message or close reason that is not
	// UTF-8.
	Code StatusCode
	// Reason says what is wrong. It is short ASCII and contains no peer
	// data, so it may be sent as the close reason.
	Reason string
}

func (e *ProtocolError) Error() string {
	return "ws: " + e.Reason + " (status " + strconv.Itoa(int(e.Code)) + ")"
}

func protocolError(code StatusCode, reason string) *ProtocolError {
	return &ProtocolError{Code: code, Reason: reason}
}

// Parser reassembles WebSocket messages from bytes fed to it in pieces of
// any size (push-based: the caller reads the connection, the parser never
// does). Make one with [NewParser]; the zero Parser panics.
//
// A Parser holds no buffer while idle (between messages, with no partial
// frame pending): it buffers only a frame that arrives in pieces or a
// fragmented message, and drops the buffer at the end of the first Feed
// that leaves it idle. A frame that arrives whole, unfragmented, is
// delivered in place from the fed bytes without copying. The buffer never
// exceeds the maximum message size plus [MaxControlPayload] (a control
// frame arriving in pieces between the fragments of a message).
//
// A Parser is not safe for concurrent use.
type Parser struct {
	// buf holds the open fragmented message (buf[:msgLen]) followed by the
	// payload received so far of the current frame, if it arrives in
	// pieces or belongs to a fragmented message; nil while idle.
	buf       []byte
	max       int // largest message, in bytes
	msgLen    int // bytes of the open fragmented message in buf
	remaining int // payload bytes of the current frame still to come
	got       int // payload bytes of the current frame received so far
	err       error
	frames    int // frames of the open data message so far
	key       [4]byte
	hdr       [MaxHeaderSize]byte // a header that arrived in pieces
	nhdr      uint8               // bytes in hdr
	role      Role
	op        Opcode // opcode of the current frame
	msgOp     Opcode // opcode of the open data message; 0 while none is
	fin       bool   // the current frame is final
	masked    bool   // the current frame is masked with key
	inFrame   bool   // a header was parsed and its payload is pending
	closed    bool   // a close frame was delivered
}

// NewParser returns a parser for the given role (Server parses a client's
// masked frames) that refuses messages over maxMessage bytes. It panics on
// an unknown role or a negative maxMessage.
func NewParser(role Role, maxMessage int) Parser {
	if role != Server && role != Client || maxMessage < 0 {
		panic("ws: NewParser(" + role.String() + ", " + strconv.Itoa(maxMessage) + ")")
	}
	return Parser{role: role, max: maxMessage}
}

// Buffered returns the capacity of the parser's buffer: 0 while idle.
func (p *Parser) Buffered() int { return cap(p.buf) }

// Feed consumes b entirely, and may modify it: it unmasks payloads in
// place. For each complete message it calls fn:
//
//   - text and binary messages, reassembled from their fragments, with the
//     opcode of the first fragment (OpText or OpBinary, never
//     OpContinuation); text is valid UTF-8;
//   - control frames (OpPing, OpPong, OpClose), each on its own, also
//     between the fragments of a message. A close payload is empty or a
//     valid status code and a UTF-8 reason; [ParseClose] reads it.
//
// data is valid only during the call to fn: it aliases b or the parser's
// buffer. fn must not call Feed. If fn returns an error, Feed stops and
// returns it.
//
// After a close frame, Feed discards everything: the rest of b and all
// later input (RFC 6455 section 5.5.1: nothing may follow a close frame).
//
// Bytes that break the protocol or the parser's limits give a
// [*ProtocolError]; a message over the size limit is refused from its
// frame header, before its payload arrives. After an error, from fn or a
// ProtocolError, the parser is unusable: every later Feed returns the
// same error.
func (p *Parser) Feed(b []byte, fn func(op Opcode, data []byte) error) error {
	if p.err != nil {
		return p.err
	}
	if p.role == 0 {
		panic("ws: Feed on a Parser not made by NewParser")
	}
	if err := p.feed(b, fn); err != nil {
		p.err = err
		p.buf = nil
		return err
	}
	if p.closed || !p.inFrame && p.nhdr == 0 && p.msgOp == 0 {
		p.buf = nil // idle: an idle connection costs only the struct
	}
	return nil
}

func (p *Parser) feed(b []byte, fn func(op Opcode, data []byte) error) error {
	for len(b) > 0 && !p.closed {
		if !p.inFrame {
			n, err := p.readHeader(b)
			if err != nil {
				return err
			}
			b = b[n:]
			if !p.inFrame {
				return nil // b ended inside the header
			}
			// An empty payload completes below even if b is now empty.
		}
		n := min(len(b), p.remaining)
		chunk := b[:n]
		b = b[n:]

		// Fast path: a whole frame that is a whole message (or a control
		// frame) is delivered from b, unmasked in place.
		if p.got == 0 && n == p.remaining && (p.op.IsControl() || p.op != OpContinuation && p.fin) {
			if p.masked {
				mask(p.key, 0, chunk)
			}
			p.inFrame = false
			if !p.op.IsControl() {
				p.msgOp = 0
			}
			if err := p.deliver(p.op, chunk, fn); err != nil {
				return err
			}
			continue
		}

		p.appendPayload(chunk)
		if p.remaining > 0 {
			return nil // b is used up
		}
		p.inFrame = false
		if p.op.IsControl() {
			err := p.deliver(p.op, p.buf[p.msgLen:], fn)
			p.buf = p.buf[:p.msgLen]
			if err != nil {
				return err
			}
			continue
		}
		p.msgLen = len(p.buf)
		if !p.fin {
			continue
		}
		op := p.msgOp
		p.msgOp, p.frames = 0, 0
		err := p.deliver(op, p.buf[:p.msgLen], fn)
		p.buf, p.msgLen = p.buf[:0], 0 // kept until Feed returns idle
		if err != nil {
			return err
		}
	}
	return nil
}

// headerLen returns the size of the header whose second byte is b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & lenBits {
	case len16:
		n += 2
	case len64:
		n += 8
	}
	if b1&maskBit != 0 {
		n += 4
	}
	return n
}

// readHeader parses the frame header at the start of b, or stores the part
// of it that b holds in p.hdr. It returns the bytes of b it consumed; it
// sets p.inFrame once the header is complete.
func (p *Parser) readHeader(b []byte) (int, error) {
	if p.nhdr == 0 && len(b) >= 2 {
		if n := headerLen(b[1]); len(b) >= n {
			return n, p.parseHeader(b[:n])
		}
	}
	used := 0
	for {
		need := 2
		if p.nhdr >= 2 {
			need = headerLen(p.hdr[1])
		}
		if int(p.nhdr) == need {
			break
		}
		c := copy(p.hdr[p.nhdr:need], b[used:])
		p.nhdr += uint8(c)
		used += c
		if int(p.nhdr) < need {
			return used, nil // b is used up
		}
	}
	n := p.nhdr
	p.nhdr = 0
	return used, p.parseHeader(p.hdr[:n])
}

// parseHeader checks a complete frame header and starts the frame.
//
//	byte 0:  FIN RSV1 RSV2 RSV3 opcode(4)
//	byte 1:  MASK length(7)   (126: 16-bit length follows; 127: 64-bit)
//	         [2 or 8 bytes of big-endian length] [4 bytes of masking key]
func (p *Parser) parseHeader(h []byte) error {
	b0, b1 := h[0], h[1]
	if b0&rsvBits != 0 {
		return protocolError(StatusProtocolError, "reserved bits set (no extension was negotiated)")
	}
	op := Opcode(b0 & opBits)
	if !op.known() {
		return protocolError(StatusProtocolError, "reserved opcode "+strconv.Itoa(int(op)))
	}
	fin := b0&finBit != 0
	masked := b1&maskBit != 0
	switch {
	case p.role == Server && !masked:
		return protocolError(StatusProtocolError, "unmasked frame from a client")
	case p.role == Client && masked:
		return protocolError(StatusProtocolError, "masked frame from a server")
	}
	length, i := uint64(b1&lenBits), 2
	switch length {
	case len16:
		length, i = uint64(binary.BigEndian.Uint16(h[2:])), 4
		if length < len16 {
			return protocolError(StatusProtocolError, "length not minimally encoded")
		}
	case len64:
		length, i = binary.BigEndian.Uint64(h[2:]), 10
		if length>>63 != 0 {
			return protocolError(StatusProtocolError, "64-bit length with its top bit set")
		}
		if length <= 0xFFFF {
			return protocolError(StatusProtocolError, "length not minimally encoded")
		}
	}
	if masked {
		copy(p.key[:], h[i:i+4])
	}
	if op.IsControl() {
		if !fin {
			return protocolError(StatusProtocolError, "fragmented control frame")
		}
		if length > MaxControlPayload {
			return protocolError(StatusProtocolError, "control frame over 125 bytes")
		}
	} else {
		switch {
		case op == OpContinuation && p.msgOp == 0:
			return protocolError(StatusProtocolError, "continuation frame without a message to continue")
		case op != OpContinuation && p.msgOp != 0:
			return protocolError(StatusProtocolError, "new message inside a fragmented message")
		case length > uint64(p.max-p.msgLen):
			return protocolError(StatusMessageTooBig, "message over "+strconv.Itoa(p.max)+" bytes")
		}
		if op != OpContinuation {
			p.msgOp, p.frames = op, 0
		}
		p.frames++
		if p.frames > MaxFragments {
			return protocolError(StatusMessageTooBig, "message of over "+strconv.Itoa(MaxFragments)+" frames")
		}
	}
	p.op, p.fin, p.masked = op, fin, masked
	p.remaining, p.got = int(length), 0
	p.inFrame = true
	return nil
}

// appendPayload appends a piece of the current frame's payload to p.buf,
// unmasked.
func (p *Parser) appendPayload(chunk []byte) {
	if len(chunk) == 0 {
		return
	}
	if need := len(p.buf) + len(chunk); need > cap(p.buf) {
		frameEnd := len(p.buf) + p.remaining // never more than the header announced
		c := max(min(max(2*cap(p.buf), minBuffer), frameEnd), need)
		nb := make([]byte, len(p.buf), c)
		copy(nb, p.buf)
		p.buf = nb
	}
	start := len(p.buf)
	p.buf = append(p.buf, chunk...)
	if p.masked {
		mask(p.key, p.got, p.buf[start:])
	}
	p.got += len(chunk)
	p.remaining -= len(chunk)
}

// deliver checks a complete message or control frame and passes it to fn.
func (p *Parser) deliver(op Opcode, data []byte, fn func(Opcode, []byte) error) error {
	switch op {
	case OpText:
		if !utf8.Valid(data) {
			return protocolError(StatusInvalidPayload, "text message not valid UTF-8")
		}
	case OpClose:
		switch {
		case len(data) == 1:
			return protocolError(StatusProtocolError, "close payload of 1 byte")
		case len(data) >= 2 && !StatusCode(binary.BigEndian.Uint16(data)).valid():
			return protocolError(StatusProtocolError, "invalid close status "+strconv.Itoa(int(binary.BigEndian.Uint16(data))))
		case len(data) > 2 && !utf8.Valid(data[2:]):
			return protocolError(StatusInvalidPayload, "close reason not valid UTF-8")
		}
		p.closed = true
	}
	return fn(op, data)
}
