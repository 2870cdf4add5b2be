package wire

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// NewRequest returns a frame carrying a request with id and body, which
// must be one of the request messages (*wirepb.Send, *wirepb.Ack, …). It
// panics on any other message: that is a programming error.
func NewRequest(id uint64, body proto.Message) *wirepb.Frame {
	r := &wirepb.Request{Id: id}
	setBody(r.ProtoReflect(), body)
	return &wirepb.Frame{Version: Version, Kind: &wirepb.Frame_Request{Request: r}}
}

// Respond returns a frame carrying a successful response to request id,
// with body (one of the response messages, like *wirepb.Bundles), or none
// if body is nil. It panics on any other message.
func Respond(id uint64, body proto.Message) *wirepb.Frame {
	r := &wirepb.Response{Id: id}
	if body != nil {
		setBody(r.ProtoReflect(), body)
	}
	return &wirepb.Frame{Version: Version, Kind: &wirepb.Frame_Response{Response: r}}
}

// Error returns a frame carrying a failed response to request id (0 for a
// frame whose id could not be read). msg is a diagnostic for the client's
// logs; it is cut to MaxStatusMessageSize bytes and made valid UTF-8, so
// the frame always encodes. Never put user data or keys in it.
func Error(id uint64, code wirepb.Code, msg string) *wirepb.Frame {
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	if len(msg) > MaxStatusMessageSize {
		n := MaxStatusMessageSize
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n]
	}
	return &wirepb.Frame{Version: Version, Kind: &wirepb.Frame_Response{Response: &wirepb.Response{
		Id:     id,
		Status: &wirepb.Status{Code: code, Message: msg},
	}}}
}

// RetryLater returns a RATE_LIMITED or UNAVAILABLE response (code) telling
// the client to wait after, rounded up to a millisecond and capped at
// MaxRetryAfter.
func RetryLater(id uint64, code wirepb.Code, after time.Duration) *wirepb.Frame {
	after = min(max(after, 0), MaxRetryAfter)
	f := Error(id, code, "try again in "+after.Round(time.Millisecond).String())
	f.GetResponse().Status.RetryAfterMs = uint32((after + time.Millisecond - 1) / time.Millisecond)
	return f
}

// Mismatched returns a MISMATCHED_DEVICES response listing, per recipient,
// the devices a send must add, drop or renew. The frame keeps the slice.
func Mismatched(id uint64, mismatches []*wirepb.RecipientMismatch) *wirepb.Frame {
	f := Error(id, wirepb.Code_MISMATCHED_DEVICES, "")
	f.GetResponse().Status.Mismatches = mismatches
	return f
}

// NewPush returns a frame carrying a push with body (*wirepb.Envelopes,
// *wirepb.QueueEmpty, *wirepb.PreKeysLow, *wirepb.ProvisioningMessage or
// *wirepb.EphemeralEnvelope).
// It panics on any other message.
func NewPush(body proto.Message) *wirepb.Frame {
	p := &wirepb.Push{}
	setBody(p.ProtoReflect(), body)
	return &wirepb.Frame{Version: Version, Kind: &wirepb.Frame_Push{Push: p}}
}

// setBody sets the member of m's body oneof whose type is body's type.
func setBody(m protoreflect.Message, body proto.Message) {
	if body == nil {
		panic(fmt.Sprintf("wire: nil body for %s", m.Descriptor().Name()))
	}
	bm := body.ProtoReflect()
	fields := m.Descriptor().Oneofs().ByName("body").Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Message() == bm.Descriptor() {
			m.Set(fd, protoreflect.ValueOfMessage(bm))
			return
		}
	}
	panic(fmt.Sprintf("wire: %s is not a %s body", bm.Descriptor().FullName(), m.Descriptor().Name()))
}

// RequestKind returns the name of a request's body in wire.proto, like
// "send" or "get_bundles", for logs and metrics; "" if it has none.
func RequestKind(r *wirepb.Request) string {
	m := r.ProtoReflect()
	if fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("body")); fd != nil {
		return string(fd.Name())
	}
	return ""
}

// Access says on which connections a request kind may be made.
type Access uint8

const (
	// AnyConnection: before or after authenticating.
	AnyConnection Access = iota
	// Authenticated: only after Authenticate succeeded on the connection.
	// A server answers UNAUTHENTICATED otherwise.
	Authenticated
	// Anonymous: only on a connection that has not authenticated, so that
	// the server cannot tie the request to an account. A server answers
	// FORBIDDEN on an authenticated connection.
	Anonymous
)

func (a Access) String() string {
	switch a {
	case AnyConnection:
		return "any connection"
	case Authenticated:
		return "authenticated"
	case Anonymous:
		return "anonymous"
	}
	return fmt.Sprintf("Access(%d)", uint8(a))
}

// AccessOf returns the connections a request may be made on. Sends,
// bundle fetches and username lookups are anonymous: that is what keeps
// the server from learning who talks to whom (DESIGN.md, P3). A request
// without a body, or of an unknown kind, is Authenticated, the most
// restrictive answer that still lets the server reply.
func AccessOf(r *wirepb.Request) Access {
	switch r.GetBody().(type) {
	case *wirepb.Request_GetChallenge, *wirepb.Request_Authenticate:
		return AnyConnection
	case *wirepb.Request_GetRegistrationChallenge, *wirepb.Request_Register,
		*wirepb.Request_GetBundles, *wirepb.Request_Send, *wirepb.Request_SendMulti,
		*wirepb.Request_LookupUsername, *wirepb.Request_OpenProvisioning,
		*wirepb.Request_LinkDevice, *wirepb.Request_GetProfile:
		return Anonymous
	}
	return Authenticated
}

// AuthContext starts the message an Authenticate signature signs,
// separating it from everything else an auth key could sign.
const AuthContext = "sotto-auth-v1"

// AuthMessage returns the message a device signs (XEdDSA, with its auth
// key) to authenticate a connection:
//
//	"sotto-auth-v1" (13) ‖ nonce (32) ‖ account id (16) ‖ device id (4, big-endian)
//
// Binding the account and device means a signature answers one challenge
// for one device only. The caller checks the sizes of nonce and account
// (Decode has, for frames).
func AuthMessage(nonce, account []byte, device uint32) []byte {
	b := make([]byte, 0, len(AuthContext)+len(nonce)+len(account)+4)
	b = append(b, AuthContext...)
	b = append(b, nonce...)
	b = append(b, account...)
	return binary.BigEndian.AppendUint32(b, device)
}
