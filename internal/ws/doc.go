// Package ws is a small, strict WebSocket implementation ([RFC 6455]),
// without extensions, made for a server that serves many mostly idle
// connections from its own event loop.
//
// # Design
//
// The core is push-based. A [Parser] never reads a connection: the server
// reads whatever bytes a non-blocking socket has, in pieces of any size,
// and feeds them to [Parser.Feed], which calls back with each complete
// message and control frame. Sending is plain appending: [AppendFrame] and
// [AppendClose] append a frame to a byte slice, so that a server can queue
// frames itself and coalesce many of them into one write.
//
// An idle connection costs only its Parser struct (about 100 bytes): the
// parser holds no buffer between messages, no goroutine waits on the
// connection, and no bufio buffers are kept. A frame that arrives whole is
// delivered in place, unmasked within the caller's read buffer; only a
// frame that arrives in pieces, or a fragmented message, is copied into a
// buffer, which the parser drops once it is idle again.
//
// [Upgrade] answers the opening handshake in an http.Handler, hijacks the
// connection and hands it over with a copy of any bytes the HTTP server
// had read past the request, so that the caller keeps neither the HTTP
// server's goroutine nor its bufio buffers.
//
// # Frame layout
//
//	byte 0:  FIN(1) RSV1(1) RSV2(1) RSV3(1) opcode(4)
//	byte 1:  MASK(1) length(7)
//	         length 0–125: the payload length
//	         length 126:   a 16-bit big-endian length follows (126–65535)
//	         length 127:   a 64-bit big-endian length follows (≥ 65536, top bit 0)
//	         [4-byte masking key, if MASK]
//	         payload (XORed with the masking key, if MASK)
//
// # Security
//
// The parser is strict: reserved bits (no extension is ever negotiated),
// reserved opcodes, fragmented or oversized (> 125 bytes) control frames,
// continuation frames without a message, new messages inside a fragmented
// one, frames masked the wrong way for the role, non-minimal length
// encodings, close payloads of one byte or with a status a peer may not
// send, and text messages or close reasons that are not UTF-8 are all
// refused with a [*ProtocolError] that names the status to close with.
// The size of a message is checked against the limit from each frame's
// header, before its payload is buffered, and the number of fragments of a
// message is bounded ([MaxFragments]). What the parser buffers is at most
// the limit plus [MaxControlPayload] bytes, and it grows only as bytes
// arrive, never to a size a header merely announces.
//
// [Upgrade] checks the Origin of browsers' requests against the request's
// host and the configured patterns, so that another site's page cannot
// open a connection with its visitor's network position.
//
// Extensions (permessage-deflate) and subprotocols are never negotiated.
// Everything Sotto sends is ciphertext, which does not compress, and
// compression next to secrets is an attack surface (CRIME, BREACH).
//
// # Compatibility
//
// Only RFC 6455 version 13 over HTTP/1.1. Status codes 1012–1014, which
// IANA registered after the RFC, are neither sent nor accepted.
//
// [RFC 6455]: https://www.rfc-editor.org/rfc/rfc6455
package ws
