package wire

import (
	"errors"
	"strconv"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// Causes a [ParseError] wraps, for the conditions a reader answers
// differently from a plain bad request.
var (
	// ErrTooLarge: the frame is over MaxFrameSize. A server answers
	// TOO_LARGE and closes the connection.
	ErrTooLarge = errors.New("wire: frame too large")
	// ErrUnsupportedVersion: the frame's version is not Version. A server
	// answers UNSUPPORTED_VERSION (to the request's id, if it could be
	// read); a client reconnects or asks its user to update.
	ErrUnsupportedVersion = errors.New("wire: unsupported protocol version")
	// ErrUnknownKind: the frame, request or push is of a kind this
	// version of the package does not know (the peer is newer). A server
	// answers UNIMPLEMENTED; a client ignores an unknown push.
	ErrUnknownKind = errors.New("wire: unknown frame, request or push kind")
)

// ParseError is the single error type of [Decode], [Validate] and [Encode]:
// a frame that is malformed, of another version, or outside a bound.
type ParseError struct {
	// Field is the path of the offending field, in the .proto's names,
	// like "request.send.envelopes[2].content"; "" for the frame as a
	// whole.
	Field string
	// Reason says what is wrong, for debug logs and Status.message. It
	// never contains field contents.
	Reason string
	// ID is the id of the request or response in the frame, when one could
	// be read, so that a server can answer the request with an error
	// instead of closing the connection; 0 otherwise.
	ID uint64
	// Err is the cause: ErrTooLarge, ErrUnsupportedVersion,
	// ErrUnknownKind, a protobuf decoding error, or nil for a bound or a
	// missing field.
	Err error
}

func (e *ParseError) Error() string {
	s := "wire: "
	if e.Field != "" {
		s += e.Field + ": "
	}
	s += e.Reason
	if e.Err != nil && e.Err != ErrTooLarge && e.Err != ErrUnsupportedVersion && e.Err != ErrUnknownKind {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ParseError) Unwrap() error { return e.Err }

// Code is the status a server answers the frame with: TOO_LARGE,
// UNSUPPORTED_VERSION, UNIMPLEMENTED or BAD_REQUEST.
func (e *ParseError) Code() wirepb.Code {
	switch e.Err {
	case ErrTooLarge:
		return wirepb.Code_TOO_LARGE
	case ErrUnsupportedVersion:
		return wirepb.Code_UNSUPPORTED_VERSION
	case ErrUnknownKind:
		return wirepb.Code_UNIMPLEMENTED
	}
	return wirepb.Code_BAD_REQUEST
}

// bad returns a ParseError for a field.
func bad(field, reason string) *ParseError {
	return &ParseError{Field: field, Reason: reason}
}

// in prefixes the error's field path with the path of the message that
// holds it. It returns nil for a nil receiver, so validators chain it.
func (e *ParseError) in(prefix string) *ParseError {
	if e == nil {
		return nil
	}
	if e.Field == "" {
		e.Field = prefix
	} else if e.Field[0] == '[' {
		e.Field = prefix + e.Field
	} else {
		e.Field = prefix + "." + e.Field
	}
	return e
}

// at prefixes the error's field path with an element of a list.
func (e *ParseError) at(list string, i int) *ParseError {
	if e == nil {
		return nil
	}
	return e.in(list + "[" + strconv.Itoa(i) + "]")
}
