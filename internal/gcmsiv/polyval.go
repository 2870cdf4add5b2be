package gcmsiv

import (
	"encoding/binary"
	"math/bits"
)

// This file implements POLYVAL (RFC 8452, Section 3) in portable Go.
//
// # Representation
//
// A field element of GF(2^128) = GF(2)[x]/(x^128 + x^127 + x^126 + x^121 + 1)
// is held as two little-endian 64-bit words: bit i of lo is the coefficient
// of x^i and bit i of hi that of x^(64+i). That is exactly how POLYVAL reads
// a 16-byte block, so blocks load with two little-endian loads and no bit
// reversal (unlike GHASH).
//
// # Constant time
//
// Nothing here branches on, or indexes memory with, secret data: the usual
// 4- or 8-bit multiplication tables are avoided because their
// secret-indexed loads leak through the cache. Instead a carry-less 64×64
// multiplication is built from ordinary integer multiplications
// (math/bits.Mul64, a single constant-time instruction on amd64, arm64 and
// the other 64-bit platforms Sotto ships on) on masked operands, after the
// technique of Thomas Pornin's BearSSL "ctmul64":
//
// Split each operand into five interleaved parts, x = x0|x1|x2|x3|x4, where
// part i keeps only the bits whose position is ≡ i (mod 5). In the integer
// product of part i and part j every partial product lands on a position
// ≡ i+j (mod 5), and at most 13 of them land on the same position (each
// part has at most 13 bits). Their sum there is at most 13 < 32, so its
// carries reach only the next four positions, which belong to the other four
// residue classes; the parity at the position itself, which is the
// carry-less result, is exact. XOR-ing the products whose classes sum to k
// and masking to class k therefore yields the carry-less product's bits of
// class k. Five classes (rather than BearSSL's four) let the full 128-bit
// products from bits.Mul64 be used directly: with four classes a position
// can collect 16 partial products, whose carry would corrupt its own class.
//
// A 128×128 product takes three such 64×64 products (Karatsuba), 75
// multiplications, followed by a Montgomery reduction by x^128 in two
// 64-bit folds.

// Masks selecting bit positions congruent to 0..4 (mod 5) in a 64-bit word.
const (
	mask0 uint64 = 0x1084210842108421 // bits 0, 5, 10, ..., 60
	mask1        = mask0 << 1         // bits 1, 6, ..., 61
	mask2        = mask0 << 2         // bits 2, 7, ..., 62
	mask3        = mask0 << 3         // bits 3, 8, ..., 63
	mask4 uint64 = 0x0842108421084210 // bits 4, 9, ..., 59 (mask0 << 4 without bit 64)
)

// split5 is a 64-bit operand split into its five residue classes.
type split5 struct{ c0, c1, c2, c3, c4 uint64 }

func split(y uint64) split5 {
	return split5{y & mask0, y & mask1, y & mask2, y & mask3, y & mask4}
}

// clmul64 returns the 128-bit carry-less product of x and y as (hi, lo).
func clmul64(x uint64, y *split5) (hi, lo uint64) {
	x0, x1, x2, x3, x4 := x&mask0, x&mask1, x&mask2, x&mask3, x&mask4

	// For each class k, XOR the products of classes i and j with
	// i+j ≡ k (mod 5) into z, then keep only z's class-k positions. Bit q
	// of the high word is product position 64+q, and 64 ≡ 4 (mod 5), so
	// class k sits on the high word's positions ≡ k+1 (mod 5). Folding each
	// class in before starting the next keeps few values live.
	var zh, zl, h, l uint64

	// Class 0.
	zh, zl = bits.Mul64(x0, y.c0)
	h, l = bits.Mul64(x1, y.c4)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x2, y.c3)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x3, y.c2)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x4, y.c1)
	zh, zl = zh^h, zl^l
	lo = zl & mask0
	hi = zh & mask1

	// Class 1.
	zh, zl = bits.Mul64(x0, y.c1)
	h, l = bits.Mul64(x1, y.c0)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x2, y.c4)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x3, y.c3)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x4, y.c2)
	zh, zl = zh^h, zl^l
	lo |= zl & mask1
	hi |= zh & mask2

	// Class 2.
	zh, zl = bits.Mul64(x0, y.c2)
	h, l = bits.Mul64(x1, y.c1)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x2, y.c0)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x3, y.c4)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x4, y.c3)
	zh, zl = zh^h, zl^l
	lo |= zl & mask2
	hi |= zh & mask3

	// Class 3.
	zh, zl = bits.Mul64(x0, y.c3)
	h, l = bits.Mul64(x1, y.c2)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x2, y.c1)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x3, y.c0)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x4, y.c4)
	zh, zl = zh^h, zl^l
	lo |= zl & mask3
	hi |= zh & mask4

	// Class 4.
	zh, zl = bits.Mul64(x0, y.c4)
	h, l = bits.Mul64(x1, y.c3)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x2, y.c2)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x3, y.c1)
	zh, zl = zh^h, zl^l
	h, l = bits.Mul64(x4, y.c0)
	zh, zl = zh^h, zl^l
	lo |= zl & mask4
	hi |= zh & mask0
	return hi, lo
}

// polyval computes POLYVAL(H, X_1, ..., X_n) incrementally. Its zero value
// is not usable; make one with newPolyval.
type polyval struct {
	// hLo, hHi and hMid are H's low word, high word and their XOR, each
	// split for clmul64 (the three operands of a Karatsuba product by H).
	hLo, hHi, hMid split5
	// sLo and sHi are the running value S_j.
	sLo, sHi uint64
}

func newPolyval(h *[16]byte) polyval {
	lo := binary.LittleEndian.Uint64(h[:8])
	hi := binary.LittleEndian.Uint64(h[8:])
	return polyval{hLo: split(lo), hHi: split(hi), hMid: split(lo ^ hi)}
}

// mulH sets S to dot(S XOR X, H) = (S XOR X) * H * x^-128, for X = (xLo, xHi).
func (p *polyval) mulH(xLo, xHi uint64) {
	aLo, aHi := p.sLo^xLo, p.sHi^xHi

	// Karatsuba: (aHi·x^64 + aLo)(hHi·x^64 + hLo).
	h0, l0 := clmul64(aLo, &p.hLo)
	h2, l2 := clmul64(aHi, &p.hHi)
	h1, l1 := clmul64(aLo^aHi, &p.hMid)
	h1 ^= h0 ^ h2
	l1 ^= l0 ^ l2

	// The 256-bit product, least significant word first.
	d0, d1, d2, d3 := l0, h0^l1, l2^h1, h2

	// Montgomery reduction: twice, add a multiple of
	// P = x^128 + x^127 + x^126 + x^121 + 1 that clears the lowest word,
	// then divide by x^64. Since P ≡ 1 (mod x^64), the multiple is that
	// lowest word w itself, and (D + w·P)/x^64 = D/x^64 + w·(x^64 + x^63 +
	// x^62 + x^57). The result has degree < 128, so it is fully reduced.
	e0 := d1 ^ d0<<63 ^ d0<<62 ^ d0<<57
	e1 := d2 ^ d0 ^ d0>>1 ^ d0>>2 ^ d0>>7
	p.sLo = e1 ^ e0<<63 ^ e0<<62 ^ e0<<57
	p.sHi = d3 ^ e0 ^ e0>>1 ^ e0>>2 ^ e0>>7
}

// updateBlocks absorbs whole 16-byte blocks; len(b) must be a multiple of 16.
func (p *polyval) updateBlocks(b []byte) {
	for len(b) >= blockSize {
		p.mulH(binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:16]))
		b = b[blockSize:]
	}
	if len(b) != 0 {
		panic("gcmsiv: internal error: partial POLYVAL block")
	}
}

// updatePadded absorbs b followed by zero bytes up to a multiple of 16, as
// RFC 8452 pads the additional data and the plaintext.
func (p *polyval) updatePadded(b []byte) {
	full := len(b) &^ (blockSize - 1)
	p.updateBlocks(b[:full])
	if full < len(b) {
		var last [blockSize]byte
		copy(last[:], b[full:])
		p.updateBlocks(last[:])
	}
}

// sum returns S, the POLYVAL of everything absorbed so far.
func (p *polyval) sum() [blockSize]byte {
	var out [blockSize]byte
	binary.LittleEndian.PutUint64(out[:8], p.sLo)
	binary.LittleEndian.PutUint64(out[8:], p.sHi)
	return out
}
