// Package pb reads and writes the protocol-buffer wire format that libsignal's
// messages and Sotto's stored state use, without generated code.
//
// The protocol packages hand-write their codecs on top of this package so that
// every field is bounded and checked where it is defined, duplicates of known
// fields are refused (no two encodings of one message), and nothing is kept
// from the input beyond the returned sub-slices.
//
// # Security
//
// [Walk] never allocates in proportion to its input and never panics on any
// input. Byte fields returned by it alias the input; callers copy what they
// keep.
//
// # Compatibility
//
// Encoding follows https://protobuf.dev/programming-guides/encoding/: fields
// are written in the order the caller appends them, which for libsignal's
// messages is the order prost writes them (ascending field number), so
// re-encoding a parsed message gives back the same bytes.
package pb

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Number is a protobuf field number.
type Number = protowire.Number

// Field is one decoded field. Exactly one of Varint, Fixed64, Fixed32 or
// Bytes is meaningful, chosen by Type.
type Field struct {
	Num     Number
	Type    protowire.Type
	Varint  uint64
	Fixed64 uint64
	Fixed32 uint32
	Bytes   []byte // aliases the input
}

// ErrMalformed is returned (wrapped) for any input that is not well-formed
// protobuf, or that repeats a field the caller tracks.
var ErrMalformed = errors.New("pb: malformed message")

// Walk calls fn for each field of b in order. It fails on malformed input, on
// a group (deprecated wire type, never used by Signal's messages), and on a
// second occurrence of any field number below 64 (the fields Sotto and
// libsignal define are numbered below 64, and a repeated singular field is
// either a bug or an attempt to make one message parse two ways). Unknown
// fields are passed to fn like the others; fn ignores the ones it does not
// know.
func Walk(b []byte, fn func(f Field) error) error { return WalkRepeated(b, 0, fn) }

// Repeated returns the mask of field numbers that [WalkRepeated] lets repeat.
// Every number must be below 64.
func Repeated(nums ...Number) uint64 {
	var m uint64
	for _, n := range nums {
		if n >= 64 {
			panic("pb: repeated field number must be below 64")
		}
		m |= 1 << uint(n)
	}
	return m
}

// WalkRepeated is [Walk] for messages with repeated fields: the fields in the
// mask (see [Repeated]) may occur any number of times. Callers bound how many
// they accept.
func WalkRepeated(b []byte, repeated uint64, fn func(f Field) error) error {
	var seen uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if num < 64 {
			bit := uint64(1) << uint(num)
			if seen&bit != 0 && repeated&bit == 0 {
				return fmt.Errorf("%w: field %d repeated", ErrMalformed, num)
			}
			seen |= bit
		}
		f := Field{Num: num, Type: typ}
		switch typ {
		case protowire.VarintType:
			f.Varint, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			f.Fixed64, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			f.Fixed32, n = protowire.ConsumeFixed32(b)
		case protowire.BytesType:
			f.Bytes, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("%w: field %d has unsupported wire type %d", ErrMalformed, num, typ)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// Uint32 returns the field as a uint32 varint, or an error if it has another
// type or does not fit.
func (f Field) Uint32() (uint32, error) {
	if f.Type != protowire.VarintType || f.Varint > 1<<32-1 {
		return 0, fmt.Errorf("%w: field %d is not a uint32", ErrMalformed, f.Num)
	}
	return uint32(f.Varint), nil
}

// Uint64 returns the field as a uint64 varint.
func (f Field) Uint64() (uint64, error) {
	if f.Type != protowire.VarintType {
		return 0, fmt.Errorf("%w: field %d is not a varint", ErrMalformed, f.Num)
	}
	return f.Varint, nil
}

// Bool returns the field as a bool varint (0 or 1 only).
func (f Field) Bool() (bool, error) {
	if f.Type != protowire.VarintType || f.Varint > 1 {
		return false, fmt.Errorf("%w: field %d is not a bool", ErrMalformed, f.Num)
	}
	return f.Varint == 1, nil
}

// Fixed returns the field as a fixed64.
func (f Field) Fixed() (uint64, error) {
	if f.Type != protowire.Fixed64Type {
		return 0, fmt.Errorf("%w: field %d is not a fixed64", ErrMalformed, f.Num)
	}
	return f.Fixed64, nil
}

// BytesMax returns the field as bytes of at most max length. The result
// aliases the input.
func (f Field) BytesMax(max int) ([]byte, error) {
	if f.Type != protowire.BytesType {
		return nil, fmt.Errorf("%w: field %d is not bytes", ErrMalformed, f.Num)
	}
	if len(f.Bytes) > max {
		return nil, fmt.Errorf("%w: field %d is %d bytes, limit %d", ErrMalformed, f.Num, len(f.Bytes), max)
	}
	return f.Bytes, nil
}

// BytesExact returns the field as bytes of exactly n length.
func (f Field) BytesExact(n int) ([]byte, error) {
	if f.Type != protowire.BytesType || len(f.Bytes) != n {
		return nil, fmt.Errorf("%w: field %d must be %d bytes", ErrMalformed, f.Num, n)
	}
	return f.Bytes, nil
}

// AppendBytes appends field num with value v.
func AppendBytes(b []byte, num Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// AppendUint appends field num as a varint.
func AppendUint(b []byte, num Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// AppendBool appends field num as a bool varint.
func AppendBool(b []byte, num Number, v bool) []byte {
	return AppendUint(b, num, protowire.EncodeBool(v))
}

// AppendFixed64 appends field num as a fixed64.
func AppendFixed64(b []byte, num Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

// SizeBytes is the encoded size of a bytes field num holding n bytes.
func SizeBytes(num Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}
