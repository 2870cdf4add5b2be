package gcmsiv

import (
	"encoding/binary"
	"io"
	"math/bits"
	"testing"

	"github.com/sotto-chat/sotto/internal/testkit"
)

func TestMasks(t *testing.T) {
	masks := []uint64{mask0, mask1, mask2, mask3, mask4}
	var all uint64
	for i, m := range masks {
		if all&m != 0 {
			t.Errorf("mask%d overlaps an earlier mask", i)
		}
		all |= m
		for b := range 64 {
			if got, want := m>>b&1 == 1, b%5 == i; got != want {
				t.Errorf("mask%d bit %d = %v, want %v", i, b, got, want)
			}
		}
	}
	if all != ^uint64(0) {
		t.Errorf("masks cover %#x, want every bit", all)
	}
}

// naiveClmul64 is a bit-at-a-time carry-less multiplication, the
// definition clmul64 must match. It branches on data; tests only.
func naiveClmul64(x, y uint64) (hi, lo uint64) {
	for i := range 64 {
		if y>>i&1 == 1 {
			lo ^= x << i
			if i > 0 {
				hi ^= x >> (64 - i)
			}
		}
	}
	return hi, lo
}

func randUint64s(t *testing.T, seed string, n int) []uint64 {
	t.Helper()
	buf := make([]byte, 8*n)
	if _, err := io.ReadFull(testkit.Rand(seed), buf); err != nil {
		t.Fatal(err)
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(buf[8*i:])
	}
	return out
}

func TestClmul64(t *testing.T) {
	// Dense operands stress the carry bound: all-ones puts the most
	// partial products on one position.
	vals := []uint64{0, 1, 2, 1 << 63, ^uint64(0), ^uint64(0) >> 1, mask0, mask1, mask2, mask3, mask4, ^mask0, 0xaaaaaaaaaaaaaaaa}
	vals = append(vals, randUint64s(t, "clmul64", 64)...)
	for _, x := range vals {
		for _, y := range vals {
			ys := split(y)
			gotHi, gotLo := clmul64(x, &ys)
			wantHi, wantLo := naiveClmul64(x, y)
			if gotHi != wantHi || gotLo != wantLo {
				t.Fatalf("clmul64(%#x, %#x) = %#x:%#x, want %#x:%#x", x, y, gotHi, gotLo, wantHi, wantLo)
			}
		}
	}
}

// elem is a field element as (lo, hi) for the reference arithmetic below.
type elem struct{ lo, hi uint64 }

// naiveMulMod returns a·b mod P, P = x^128 + x^127 + x^126 + x^121 + 1,
// by shift-and-add. Tests only.
func naiveMulMod(a, b elem) elem {
	var r elem
	for i := 127; i >= 0; i-- {
		// r = r·x mod P
		carry := r.hi >> 63
		r.hi = r.hi<<1 | r.lo>>63
		r.lo <<= 1
		if carry == 1 {
			r.lo ^= 1
			r.hi ^= 1<<63 | 1<<62 | 1<<57
		}
		var bit uint64
		if i >= 64 {
			bit = b.hi >> (i - 64) & 1
		} else {
			bit = b.lo >> i & 1
		}
		if bit == 1 {
			r.lo ^= a.lo
			r.hi ^= a.hi
		}
	}
	return r
}

func TestDotMatchesReference(t *testing.T) {
	// dot(a, b) = a·b·x^-128, so dot(a, b)·x^128 must equal a·b (mod P);
	// x^128 ≡ x^127 + x^126 + x^121 + 1.
	x128 := elem{lo: 1, hi: 1<<63 | 1<<62 | 1<<57}
	r := randUint64s(t, "dot", 4*200)
	cases := []elem{{0, 0}, {1, 0}, {^uint64(0), ^uint64(0)}, {0, 1 << 63}, x128}
	for i := 0; i < len(r); i += 2 {
		cases = append(cases, elem{r[i], r[i+1]})
	}
	for i := 0; i+1 < len(cases); i++ {
		a, b := cases[i], cases[i+1]
		var hb [16]byte
		binary.LittleEndian.PutUint64(hb[:8], b.lo)
		binary.LittleEndian.PutUint64(hb[8:], b.hi)
		p := newPolyval(&hb)
		p.mulH(a.lo, a.hi)
		got := naiveMulMod(elem{p.sLo, p.sHi}, x128)
		if want := naiveMulMod(a, b); got != want {
			t.Fatalf("dot(%x, %x)·x^128 = %x, want a·b = %x", a, b, got, want)
		}
	}
}

func TestPolyvalRFC(t *testing.T) {
	for _, v := range loadRFC(t).Polyval {
		t.Run(v.Name, func(t *testing.T) {
			p := newPolyval((*[16]byte)(v.H))
			p.updateBlocks(v.Input)
			if got := p.sum(); [16]byte(v.Result) != got {
				t.Errorf("POLYVAL = %x, want %x", got, []byte(v.Result))
			}
		})
	}
}

func TestPolyvalPadding(t *testing.T) {
	h := [16]byte{0x25, 0x62, 0x93}
	msg := make([]byte, 47)
	if _, err := io.ReadFull(testkit.Rand("padding"), msg); err != nil {
		t.Fatal(err)
	}
	for n := range len(msg) + 1 {
		padded := make([]byte, (n+15)/16*16)
		copy(padded, msg[:n])
		a, b := newPolyval(&h), newPolyval(&h)
		a.updatePadded(msg[:n])
		b.updateBlocks(padded)
		if a.sum() != b.sum() {
			t.Errorf("len %d: updatePadded differs from explicit zero padding", n)
		}
	}
}

func BenchmarkPolyval(b *testing.B) {
	h := [16]byte{1}
	p := newPolyval(&h)
	buf := make([]byte, 16*1024)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		p.updateBlocks(buf)
	}
	_ = bits.OnesCount64(p.sLo)
}
