package wire

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The scan runs over a frame's bytes before protobuf decoding allocates
// anything, guided by the schema's descriptors. It refuses what would make
// decoding ambiguous or expensive:
//
//   - malformed tags, lengths and varints, and groups (proto3 has none);
//   - a known field with the wrong wire type;
//   - a second occurrence of a singular field, or a second member of a
//     oneof (protobuf would keep the last: two encodings, one message);
//   - a 32-bit or boolean field whose varint is out of its range;
//   - a string that is not UTF-8;
//   - messages nested deeper than the schema allows (maxDepth);
//   - a repeated field with more elements than its bound (maxCount).
//
// Unknown fields are skipped without looking inside. With repeated fields
// bounded and singular ones unique, what decoding allocates is bounded by
// the schema and proportional to the input (see FuzzDecode).

// maxFieldNumber bounds the field numbers the schema uses, so that the scan
// tracks them in fixed-size arrays; TestSchemaBounds checks it.
const maxFieldNumber = 32

// maxCount returns the bound of a repeated field, or 0 for a field that is
// not repeated. Every repeated field of the schema has one (TestSchemaBounds).
func maxCount(fd protoreflect.FieldDescriptor) int {
	switch fd.FullName() {
	case "sotto.wire.v1.Status.mismatches", "sotto.wire.v1.Status.unknown_accounts":
		return MaxMismatchedRecipients
	case "sotto.wire.v1.RecipientMismatch.missing",
		"sotto.wire.v1.RecipientMismatch.extra",
		"sotto.wire.v1.RecipientMismatch.stale",
		"sotto.wire.v1.Bundles.bundles",
		"sotto.wire.v1.DeviceList.devices":
		return MaxDeviceID
	case "sotto.wire.v1.UploadPreKeys.one_time_ec", "sotto.wire.v1.UploadPreKeys.one_time_kem":
		return MaxOneTimePreKeysPerUpload
	case "sotto.wire.v1.Send.envelopes":
		return MaxEnvelopesPerSend
	case "sotto.wire.v1.SendToOwnDevices.envelopes":
		return MaxEnvelopesPerSend - 1 // every device but the sender's
	case "sotto.wire.v1.Ack.ids":
		return MaxAckIDs
	case "sotto.wire.v1.Envelopes.envelopes":
		return MaxEnvelopesPerPush
	}
	return 0
}

// requiredOneof returns the oneof of md that must be set (a frame's kind, a
// request's or push's body), or nil.
func requiredOneof(md protoreflect.MessageDescriptor) protoreflect.OneofDescriptor {
	switch md.FullName() {
	case "sotto.wire.v1.Frame":
		return md.Oneofs().ByName("kind")
	case "sotto.wire.v1.Request", "sotto.wire.v1.Push":
		return md.Oneofs().ByName("body")
	}
	return nil
}

// pathElem is one step of the scan's path, for error messages.
type pathElem struct {
	name  protoreflect.Name
	index int // element index in a repeated field, or -1
}

// scanner walks one frame. Its path is only turned into a string on error.
type scanner struct {
	path        []pathElem
	requestOnly bool // refuse a frame's response and push
}

// fail returns a ParseError at the current path, extended by a field.
func (s *scanner) fail(fd protoreflect.FieldDescriptor, reason string, err error) *ParseError {
	var b strings.Builder
	for i, p := range s.path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(string(p.name))
		if p.index >= 0 {
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
		}
	}
	if fd != nil {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(string(fd.Name()))
	}
	return &ParseError{Field: b.String(), Reason: reason, Err: err}
}

// message scans b as a message of type md at nesting depth depth (1 for
// the frame).
func (s *scanner) message(b []byte, md protoreflect.MessageDescriptor, depth int) *ParseError {
	if depth > maxDepth {
		return s.fail(nil, fmt.Sprintf("nested deeper than %d messages", maxDepth), nil)
	}
	fields := md.Fields()
	var (
		seen    uint64 // singular fields seen, by number
		oneofs  uint64 // oneofs with a member seen, by index
		unknown bool   // an unknown field was seen
		counts  [maxFieldNumber]int
	)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s.fail(nil, "malformed field tag", protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.StartGroupType || typ == protowire.EndGroupType {
			return s.fail(nil, fmt.Sprintf("field %d is a group", num), nil)
		}
		fd := fields.ByNumber(num)
		if fd == nil || num >= maxFieldNumber {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return s.fail(nil, fmt.Sprintf("malformed unknown field %d", num), protowire.ParseError(n))
			}
			b = b[n:]
			unknown = true
			continue
		}
		if depth == 1 && s.requestOnly && fd.ContainingOneof() != nil && fd.Name() != "request" {
			return s.fail(fd, "a client sends only requests", nil)
		}
		if fd.IsList() {
			k, err := s.element(fd, typ, b, depth, counts[num])
			if err != nil {
				return err
			}
			n, counts[num] = k.n, counts[num]+k.count
			if limit := maxCount(fd); counts[num] > limit {
				return s.fail(fd, fmt.Sprintf("more than %d elements", limit), nil)
			}
		} else {
			if seen&(1<<num) != 0 {
				return s.fail(fd, "occurs twice", nil)
			}
			seen |= 1 << num
			if od := fd.ContainingOneof(); od != nil {
				if oneofs&(1<<od.Index()) != 0 {
					return s.fail(fd, fmt.Sprintf("second member of oneof %s", od.Name()), nil)
				}
				oneofs |= 1 << od.Index()
			}
			k, err := s.element(fd, typ, b, depth, -1)
			if err != nil {
				return err
			}
			n = k.n
		}
		b = b[n:]
	}
	if od := requiredOneof(md); od != nil && oneofs&(1<<od.Index()) == 0 {
		if unknown {
			return s.fail(nil, fmt.Sprintf("%s of an unknown kind", md.Name()), ErrUnknownKind)
		}
		return s.fail(nil, fmt.Sprintf("%s has no %s", md.Name(), od.Name()), nil)
	}
	return nil
}

// consumed is what one occurrence of a field took: n bytes holding count
// elements (more than one for a packed repeated field).
type consumed struct{ n, count int }

// element scans one occurrence of a known field whose tag has been
// consumed; b starts at its value. index is the element index of a repeated
// field's first element here, or -1.
func (s *scanner) element(fd protoreflect.FieldDescriptor, typ protowire.Type, b []byte, depth, index int) (consumed, *ParseError) {
	kind := fd.Kind()
	want := wireType(kind)
	if typ != want {
		if fd.IsList() && typ == protowire.BytesType && want != protowire.BytesType {
			return s.packed(fd, b)
		}
		return consumed{}, s.fail(fd, fmt.Sprintf("wire type %d, want %d", typ, want), nil)
	}
	switch want {
	case protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return consumed{}, s.fail(fd, "malformed varint", protowire.ParseError(n))
		}
		if !inRange(kind, v) {
			return consumed{}, s.fail(fd, fmt.Sprintf("%d is out of range for %s", v, kind), nil)
		}
		return consumed{n, 1}, nil
	case protowire.Fixed32Type:
		_, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return consumed{}, s.fail(fd, "truncated", protowire.ParseError(n))
		}
		return consumed{n, 1}, nil
	case protowire.Fixed64Type:
		_, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return consumed{}, s.fail(fd, "truncated", protowire.ParseError(n))
		}
		return consumed{n, 1}, nil
	}
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return consumed{}, s.fail(fd, "malformed length", protowire.ParseError(n))
	}
	switch kind {
	case protoreflect.StringKind:
		if !utf8.Valid(v) {
			return consumed{}, s.fail(fd, "not UTF-8", nil)
		}
	case protoreflect.MessageKind:
		s.path = append(s.path, pathElem{fd.Name(), index})
		if err := s.message(v, fd.Message(), depth+1); err != nil {
			return consumed{}, err
		}
		s.path = s.path[:len(s.path)-1]
	}
	return consumed{n, 1}, nil
}

// packed scans a packed repeated scalar field.
func (s *scanner) packed(fd protoreflect.FieldDescriptor, b []byte) (consumed, *ParseError) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return consumed{}, s.fail(fd, "malformed length", protowire.ParseError(n))
	}
	count := 0
	switch wireType(fd.Kind()) {
	case protowire.VarintType:
		for len(v) > 0 {
			x, k := protowire.ConsumeVarint(v)
			if k < 0 {
				return consumed{}, s.fail(fd, "malformed packed varint", protowire.ParseError(k))
			}
			if !inRange(fd.Kind(), x) {
				return consumed{}, s.fail(fd, fmt.Sprintf("%d is out of range for %s", x, fd.Kind()), nil)
			}
			v = v[k:]
			count++
		}
	case protowire.Fixed32Type:
		if len(v)%4 != 0 {
			return consumed{}, s.fail(fd, "packed fixed32 length is not a multiple of 4", nil)
		}
		count = len(v) / 4
	case protowire.Fixed64Type:
		if len(v)%8 != 0 {
			return consumed{}, s.fail(fd, "packed fixed64 length is not a multiple of 8", nil)
		}
		count = len(v) / 8
	}
	return consumed{n, count}, nil
}

// wireType is the wire type of an unpacked value of kind k.
func wireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.BoolKind, protoreflect.EnumKind,
		protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
		return protowire.VarintType
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	}
	return protowire.BytesType
}

// inRange reports whether a varint fits its field's type, which protobuf
// decoding would otherwise truncate silently.
func inRange(k protoreflect.Kind, v uint64) bool {
	switch k {
	case protoreflect.BoolKind:
		return v <= 1
	case protoreflect.Uint32Kind:
		return v <= math.MaxUint32
	case protoreflect.Int32Kind, protoreflect.EnumKind:
		return int64(v) >= math.MinInt32 && int64(v) <= math.MaxInt32
	case protoreflect.Sint32Kind:
		return v <= math.MaxUint32
	}
	return true
}

// peek reads a frame's version and the id of its request or response,
// checking nothing else, so that a frame of another version can still be
// answered. Field numbers 1 (version), 2 (request), 3 (response) and the
// id's number 1 are frozen across versions.
func peek(b []byte) (version uint32, id uint64) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return version, id
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return version, id
			}
			version = uint32(min(v, math.MaxUint32))
		case (num == 2 || num == 3) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return version, id
			}
			id = peekID(v)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return version, id
		}
		b = b[n:]
	}
	return version, id
}

// peekID reads field 1 (the id) of a request or response.
func peekID(b []byte) uint64 {
	var id uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return id
		}
		b = b[n:]
		if num == 1 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return id
			}
			id = v
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return id
		}
		b = b[n:]
	}
	return id
}
