package ws

import (
	"strconv"
	"testing"
)

// BenchmarkParse parses a stream of masked 1 KiB binary frames (what a
// server reads from a client), one read of the given size per op. The
// stream is continuous: a frame split between reads is completed by the
// next op, as on a busy connection, and the parser reuses its buffer.
// (Feed unmasks in place, so every pass flips the payloads between masked
// and unmasked; binary payloads are valid either way.)
//
// The idle-between-frames case (64 frames per op) measures the other side
// of the buffer policy: every frame arrives in two reads and the parser is
// idle after each, so it drops its buffer and allocates one for the next
// frame.
func BenchmarkParse(b *testing.B) {
	const frames = 64
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte(i)
	}
	key := [4]byte{1, 2, 3, 4}
	var stream []byte
	for range frames {
		stream = AppendFrame(stream, OpBinary, payload, &key)
	}
	frameSize := len(stream) / frames
	// Two copies, so that a read that wraps around the end of the stream
	// is one slice.
	ring := append(append([]byte(nil), stream...), stream...)
	for _, read := range []int{len(stream), 16 << 10, 4 << 10, 1500, frameSize/2 + 1} {
		name := strconv.Itoa(read) + "B-reads"
		switch read {
		case len(stream):
			name = "whole-stream"
		case frameSize/2 + 1:
			name = "idle-between-frames"
		}
		b.Run(name, func(b *testing.B) {
			p := NewParser(Server, 1<<20)
			n := 0
			fn := func(op Opcode, data []byte) error {
				n += len(data)
				return nil
			}
			pos := 0
			b.SetBytes(int64(read))
			if name == "idle-between-frames" {
				b.SetBytes(int64(len(stream)))
			}
			b.ReportAllocs()
			for b.Loop() {
				if name == "idle-between-frames" {
					for i := 0; i < len(stream); i += frameSize {
						if err := p.Feed(stream[i:i+read], fn); err != nil {
							b.Fatal(err)
						}
						if err := p.Feed(stream[i+read:i+frameSize], fn); err != nil {
							b.Fatal(err)
						}
					}
					continue
				}
				if err := p.Feed(ring[pos:pos+read], fn); err != nil {
					b.Fatal(err)
				}
				pos = (pos + read) % len(stream)
			}
			if n == 0 {
				b.Fatal("nothing parsed")
			}
		})
	}
}

// BenchmarkAppendFrame writes a 1 KiB binary frame into a reused buffer,
// unmasked (a server) and masked (a client).
func BenchmarkAppendFrame(b *testing.B) {
	payload := make([]byte, 1024)
	for _, tt := range []struct {
		name string
		key  *[4]byte
	}{{"unmasked", nil}, {"masked", &[4]byte{1, 2, 3, 4}}} {
		b.Run(tt.name, func(b *testing.B) {
			dst := make([]byte, 0, FrameSize(len(payload), true))
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendFrame(dst[:0], OpBinary, payload, tt.key)
			}
		})
	}
}
