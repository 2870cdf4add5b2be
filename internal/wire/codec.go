package wire

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// unmarshalOptions decode frames that scan accepted. Unknown fields are
// dropped, not kept: a peer newer than this package may send fields it does
// not know, and keeping them would let any peer make a reader hold bytes
// that nothing uses. The recursion limit repeats scan's depth bound.
func unmarshalOptions() proto.UnmarshalOptions {
	return proto.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: maxDepth}
}

// marshalOptions write frames deterministically, so that equal frames are
// equal bytes.
func marshalOptions() proto.MarshalOptions {
	return proto.MarshalOptions{Deterministic: true}
}

// Decode parses one frame (one WebSocket binary message) and checks it
// against every bound of the protocol. b is not retained; the frame owns
// copies of its byte fields. Clients decode the server's frames with it;
// servers use [DecodeRequest].
//
// Errors are *ParseError, whose Code method gives the status to answer with
// and whose ID field the request's id when it could be read. The checks, in
// order: size (over MaxFrameSize: ErrTooLarge, before anything is parsed);
// version (not Version: ErrUnsupportedVersion); structure and repeated-field
// counts (before protobuf decoding allocates; a frame, request or push of
// an unknown kind: ErrUnknownKind); protobuf decoding; then [Validate].
func Decode(b []byte) (*wirepb.Frame, error) {
	f, err := decode(b, false)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// DecodeRequest is [Decode] for a server: it returns the frame's request,
// and refuses a frame carrying a response or a push (clients send only
// requests) before decoding any of it, so that a client cannot make the
// server allocate for the large lists only servers send.
func DecodeRequest(b []byte) (*wirepb.Request, error) {
	f, err := decode(b, true)
	if err != nil {
		return nil, err
	}
	return f.GetRequest(), nil
}

func decode(b []byte, requestOnly bool) (*wirepb.Frame, *ParseError) {
	if len(b) > MaxFrameSize {
		return nil, &ParseError{Reason: fmt.Sprintf("frame of %d bytes, limit %d", len(b), MaxFrameSize), Err: ErrTooLarge}
	}
	version, id := peek(b)
	if version != Version {
		return nil, &ParseError{Field: "version", Reason: fmt.Sprintf("version %d, want %d", version, Version), ID: id, Err: ErrUnsupportedVersion}
	}
	f := new(wirepb.Frame)
	var path [maxDepth]pathElem
	s := scanner{path: path[:0], requestOnly: requestOnly}
	if err := s.message(b, f.ProtoReflect().Descriptor(), 1); err != nil {
		err.ID = id
		return nil, err
	}
	if err := unmarshalOptions().Unmarshal(b, f); err != nil {
		return nil, &ParseError{Reason: "invalid protobuf", ID: id, Err: err}
	}
	if err := validateFrame(f); err != nil {
		err.ID = id
		return nil, err
	}
	return f, nil
}

// Validate checks a frame against every bound and rule of the protocol (the
// checks of [Decode] that apply to a decoded frame): field sizes, counts,
// ranges, required fields, distinct devices and ids. Errors are *ParseError.
func Validate(f *wirepb.Frame) error {
	if err := validateFrame(f); err != nil {
		return err
	}
	return nil
}

// Encode validates a frame and serializes it deterministically. A frame
// that Encode accepts, Decode accepts. Errors are *ParseError: the frame
// breaks a rule (see [Validate]), or is over MaxFrameSize (ErrTooLarge).
func Encode(f *wirepb.Frame) ([]byte, error) {
	return AppendEncode(nil, f)
}

// AppendEncode is [Encode] appending to dst, so that a writer can reuse a
// buffer. On error it returns dst unchanged.
func AppendEncode(dst []byte, f *wirepb.Frame) ([]byte, error) {
	if err := validateFrame(f); err != nil {
		return dst, err
	}
	b, err := marshalOptions().MarshalAppend(dst, f)
	if err != nil {
		return dst, &ParseError{Reason: "marshal", ID: frameID(f), Err: err}
	}
	if n := len(b) - len(dst); n > MaxFrameSize {
		return dst, &ParseError{Reason: fmt.Sprintf("frame of %d bytes, limit %d", n, MaxFrameSize), ID: frameID(f), Err: ErrTooLarge}
	}
	return b, nil
}

// frameID returns the id of a frame's request or response, or 0.
func frameID(f *wirepb.Frame) uint64 {
	if r := f.GetRequest(); r != nil {
		return r.GetId()
	}
	return f.GetResponse().GetId()
}
