package gcmsiv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

const (
	// NonceSize is the nonce length; RFC 8452 defines only 96-bit nonces.
	NonceSize = 12
	// TagSize is the length of the tag appended to each ciphertext.
	TagSize = 16

	// MaxPlaintextSize is RFC 8452's limit on plaintext length, 2^36 bytes:
	// 2^32 blocks, all the 32-bit block counter can number before it would
	// repeat a keystream block.
	MaxPlaintextSize = 1 << 36
	// MaxAADSize is RFC 8452's limit on additional data, 2^36 bytes, which
	// keeps its bit length well inside the 64-bit length block.
	MaxAADSize = 1 << 36
	// MaxCiphertextSize is the longest ciphertext Open accepts: the longest
	// plaintext plus its tag.
	MaxCiphertextSize = MaxPlaintextSize + TagSize
)

// blockSize is the AES block size, which is also POLYVAL's block size.
const blockSize = aes.BlockSize

// ctrBatchBlocks is how many counter blocks ctr encrypts into its keystream
// buffer before one XOR pass over the data: enough to amortise the XOR
// call, small enough (128 bytes) to stay on the stack.
const ctrBatchBlocks = 8

var (
	// ErrKeySize is returned by New for a key that is neither 16 nor 32
	// bytes long.
	ErrKeySize = errors.New("gcmsiv: key must be 16 or 32 bytes")
	// ErrOpen is the one error Open returns: the ciphertext is truncated,
	// too long, or fails authentication. The causes are deliberately not
	// distinguished.
	ErrOpen = errors.New("gcmsiv: message authentication failed")
)

// sivAEAD is AES-GCM-SIV under one key-generating key.
type sivAEAD struct {
	// kgk is AES under the key-generating key.
	kgk cipher.Block
	// encKeySize is the length of the per-nonce encryption key: that of the
	// key-generating key.
	encKeySize int
}

// New returns AES-GCM-SIV under key: AEAD_AES_128_GCM_SIV for a 16-byte key,
// AEAD_AES_256_GCM_SIV for a 32-byte key. It does not retain key. The
// returned AEAD is safe for concurrent use. It returns an error wrapping
// ErrKeySize for any other key length.
func New(key []byte) (cipher.AEAD, error) {
	if len(key) != 16 && len(key) != 32 {
		return nil, fmt.Errorf("%w, got %d", ErrKeySize, len(key))
	}
	kgk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("gcmsiv: %w", err)
	}
	return &sivAEAD{kgk: kgk, encKeySize: len(key)}, nil
}

// NonceSize returns 12, the only nonce size RFC 8452 defines.
func (*sivAEAD) NonceSize() int { return NonceSize }

// Overhead returns 16, the tag size.
func (*sivAEAD) Overhead() int { return TagSize }

// Seal encrypts and authenticates plaintext and authenticates
// additionalData, appends ciphertext || tag to dst and returns the updated
// slice. To seal in place, pass plaintext[:0] as dst; otherwise dst's spare
// capacity must not overlap plaintext, and nothing may overlap
// additionalData. Like crypto/cipher's GCM, Seal panics if nonce is not 12
// bytes, if plaintext or additionalData exceeds its RFC 8452 limit, or on
// invalid overlap: all are programming errors.
func (a *sivAEAD) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != NonceSize {
		panic("gcmsiv: incorrect nonce length given to AES-GCM-SIV")
	}
	if uint64(len(plaintext)) > MaxPlaintextSize {
		panic("gcmsiv: plaintext too large for AES-GCM-SIV")
	}
	if uint64(len(additionalData)) > MaxAADSize {
		panic("gcmsiv: additional data too large for AES-GCM-SIV")
	}
	ret, out := sliceForAppend(dst, len(plaintext)+TagSize)
	if inexactOverlap(out, plaintext) {
		panic("gcmsiv: invalid buffer overlap of output and plaintext")
	}
	if anyOverlap(out, additionalData) {
		panic("gcmsiv: invalid buffer overlap of output and additional data")
	}

	authKey, enc := a.deriveKeys(nonce)
	// The tag covers the plaintext, so compute it before an in-place
	// encryption overwrites it.
	tag := computeTag(&authKey, enc, nonce, additionalData, plaintext)
	ctr(enc, &tag, out[:len(plaintext)], plaintext)
	copy(out[len(plaintext):], tag[:])
	return ret
}

// Open authenticates ciphertext || tag and additionalData and, if they are
// authentic, appends the plaintext to dst and returns the updated slice. To
// open in place, pass ciphertext[:0] as dst; otherwise dst's spare capacity
// must not overlap ciphertext, and nothing may overlap additionalData. On
// any failure Open returns ErrOpen and zeroes the bytes it wrote after
// len(dst), so no unauthenticated plaintext escapes (in place, that erases
// the ciphertext). It panics only if nonce is not 12 bytes or on invalid
// overlap.
func (a *sivAEAD) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		panic("gcmsiv: incorrect nonce length given to AES-GCM-SIV")
	}
	if len(ciphertext) < TagSize ||
		uint64(len(ciphertext)) > MaxCiphertextSize ||
		uint64(len(additionalData)) > MaxAADSize {
		return nil, ErrOpen
	}
	var tag [TagSize]byte
	copy(tag[:], ciphertext[len(ciphertext)-TagSize:])
	ciphertext = ciphertext[:len(ciphertext)-TagSize]

	ret, out := sliceForAppend(dst, len(ciphertext))
	if inexactOverlap(out, ciphertext) {
		panic("gcmsiv: invalid buffer overlap of output and ciphertext")
	}
	if anyOverlap(out, additionalData) {
		panic("gcmsiv: invalid buffer overlap of output and additional data")
	}

	authKey, enc := a.deriveKeys(nonce)
	// The SIV tag authenticates the plaintext, so decrypt first, then
	// recompute the tag over the result and compare.
	ctr(enc, &tag, out, ciphertext)
	want := computeTag(&authKey, enc, nonce, additionalData, out)
	if subtle.ConstantTimeCompare(want[:], tag[:]) != 1 {
		clear(out)
		return nil, ErrOpen
	}
	return ret, nil
}

// deriveKeys derives the message authentication key and the message
// encryption key for nonce (RFC 8452, Section 4) and returns the former and
// AES under the latter.
func (a *sivAEAD) deriveKeys(nonce []byte) (authKey [16]byte, enc cipher.Block) {
	authKey, encKey := a.deriveKeyBytes(nonce)
	enc, err := aes.NewCipher(encKey[:a.encKeySize])
	clear(encKey[:])
	if err != nil {
		panic("gcmsiv: internal error: derived key rejected: " + err.Error())
	}
	return authKey, enc
}

// deriveKeyBytes returns the message authentication key and the message
// encryption key (in encKey[:a.encKeySize]) for nonce: the first half of
// AES_K(LE32(i) || nonce) for i = 0, 1 makes the 16-byte authentication key,
// and for i = 2, 3 (and 4, 5 with a 256-bit key) the encryption key.
func (a *sivAEAD) deriveKeyBytes(nonce []byte) (authKey [16]byte, encKey [32]byte) {
	var in, out [blockSize]byte
	copy(in[4:], nonce)
	for i := range 2 + a.encKeySize/8 {
		binary.LittleEndian.PutUint32(in[:4], uint32(i))
		a.kgk.Encrypt(out[:], in[:])
		if i < 2 {
			copy(authKey[8*i:], out[:8])
		} else {
			copy(encKey[8*(i-2):], out[:8])
		}
	}
	clear(out[:])
	return authKey, encKey
}

// computeTag returns the tag for nonce, additional data and plaintext:
// AES_enc(POLYVAL(authKey, pad(aad) || pad(plaintext) || lengths) XOR nonce,
// with the top bit of the last byte cleared).
func computeTag(authKey *[16]byte, enc cipher.Block, nonce, aad, plaintext []byte) [TagSize]byte {
	p := newPolyval(authKey)
	p.updatePadded(aad)
	p.updatePadded(plaintext)
	var lengths [blockSize]byte
	binary.LittleEndian.PutUint64(lengths[:8], uint64(len(aad))*8)
	binary.LittleEndian.PutUint64(lengths[8:], uint64(len(plaintext))*8)
	p.updateBlocks(lengths[:])

	s := p.sum()
	subtle.XORBytes(s[:NonceSize], s[:NonceSize], nonce)
	s[15] &= 0x7f
	enc.Encrypt(s[:], s[:])
	return s
}

// ctr XORs src with the AES-GCM-SIV keystream into dst (len(dst) >=
// len(src); they may overlap exactly). The initial counter block is the tag
// with the top bit of its last byte set; its first four bytes are a
// little-endian counter incremented modulo 2^32 per block, the rest fixed.
func ctr(enc cipher.Block, tag *[TagSize]byte, dst, src []byte) {
	counter := *tag
	counter[15] |= 0x80
	n := binary.LittleEndian.Uint32(counter[:4])
	var ks [ctrBatchBlocks * blockSize]byte
	for len(src) > 0 {
		k := 0
		for k < len(ks) && k < len(src) {
			binary.LittleEndian.PutUint32(counter[:4], n)
			n++ // wraps modulo 2^32, as RFC 8452 requires
			enc.Encrypt(ks[k:k+blockSize], counter[:])
			k += blockSize
		}
		done := subtle.XORBytes(dst, src, ks[:k])
		dst, src = dst[done:], src[done:]
	}
	clear(ks[:])
}

// sliceForAppend extends in by n bytes, reallocating if its capacity is too
// small, and returns the whole slice and the new n bytes.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}

// anyOverlap reports whether x and y share any memory.
func anyOverlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}

// inexactOverlap reports whether x and y share memory other than at the
// same starting position: the only overlap the AEAD contract allows is an
// exactly in-place operation.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	return anyOverlap(x, y)
}
