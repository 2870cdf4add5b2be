package wire

import (
	"fmt"
	"testing"
)

// BenchmarkDecodeSend decodes, as a server does, Sends of 1 KiB envelopes
// to recipients with 1, 4 and 16 devices.
func BenchmarkDecodeSend(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			enc := mustEncode(b, sendFrame(n, 1<<10))
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeRequest(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodePush encodes, as a server does, pushes of 1, 16 and 256
// envelopes of 1 KiB into a reused buffer.
func BenchmarkEncodePush(b *testing.B) {
	for _, n := range []int{1, 16, MaxEnvelopesPerPush} {
		b.Run(fmt.Sprintf("envelopes=%d", n), func(b *testing.B) {
			f := envelopesFrame(n, 1<<10)
			buf, err := AppendEncode(nil, f)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if buf, err = AppendEncode(buf[:0], f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
