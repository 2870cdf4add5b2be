package wire

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

var update = flag.Bool("update", false, "rewrite testdata/v1 fixtures and the FuzzDecode seed corpus")

// mustEncode encodes f or fails the test.
func mustEncode(t testing.TB, f *wirepb.Frame) []byte {
	t.Helper()
	b, err := Encode(f)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// parseError returns err as a *ParseError or fails the test.
func parseError(t testing.TB, err error) *ParseError {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	return pe
}

func TestRoundTrip(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			b := mustEncode(t, s.frame)
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !proto.Equal(got, s.frame) {
				t.Fatalf("Decode(Encode(f)) = %v, want %v", got, s.frame)
			}
			if b2 := mustEncode(t, got); !bytes.Equal(b, b2) {
				t.Fatal("re-encoding gives other bytes")
			}
		})
	}
}

// TestSamplesCoverEveryKind checks that the samples hold every request,
// response body and push kind of the schema.
func TestSamplesCoverEveryKind(t *testing.T) {
	seen := map[protoreflect.FullName]bool{}
	for _, s := range samples() {
		s.frame.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Message() == nil {
				return true
			}
			m := v.Message()
			if od := m.Descriptor().Oneofs().ByName("body"); od != nil {
				if w := m.WhichOneof(od); w != nil {
					seen[w.FullName()] = true
				}
			}
			return true
		})
	}
	for _, name := range []protoreflect.Name{"Request", "Response", "Push"} {
		od := wirepb.File_sotto_wire_v1_wire_proto.Messages().ByName(name).Oneofs().ByName("body")
		for i := range od.Fields().Len() {
			if fd := od.Fields().Get(i); !seen[fd.FullName()] {
				t.Errorf("no sample of %s", fd.FullName())
			}
		}
	}
}

// TestFixtures decodes the frames version 1 wrote, kept forever, and checks
// that today's samples still encode to them byte for byte.
func TestFixtures(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			b := mustEncode(t, s.frame)
			path := filepath.Join("testdata", "v1", s.name+".bin")
			seed := filepath.Join("testdata", "fuzz", "FuzzDecode", s.name)
			if *update {
				writeFile(t, path, b)
				writeFile(t, seed, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)))
			}
			old, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			f, err := Decode(old)
			if err != nil {
				t.Fatalf("fixture no longer decodes: %v", err)
			}
			if !proto.Equal(f, s.frame) {
				t.Errorf("fixture decodes to %v, want %v", f, s.frame)
			}
			if !bytes.Equal(old, b) {
				t.Errorf("encoding changed: fixture %x, now %x", old, b)
			}
			if _, err := os.Stat(seed); err != nil {
				t.Errorf("missing fuzz seed: %v", err)
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNoStrictPrefixDecodes: a frame cut short never decodes.
func TestNoStrictPrefixDecodes(t *testing.T) {
	for _, s := range samples() {
		b := mustEncode(t, s.frame)
		step := max(1, len(b)/500)
		for n := 0; n < len(b); n += step {
			if _, err := Decode(b[:n]); err == nil {
				t.Errorf("%s: prefix of %d of %d bytes decodes", s.name, n, len(b))
			}
		}
		if _, err := Decode(b[:len(b)-1]); err == nil {
			t.Errorf("%s: prefix of %d bytes decodes", s.name, len(b)-1)
		}
	}
}

// raw builds protobuf bytes: each argument is a tag-value pair appended by fn.
func raw(fns ...func([]byte) []byte) []byte {
	var b []byte
	for _, fn := range fns {
		b = fn(b)
	}
	return b
}

func varint(num protowire.Number, v uint64) func([]byte) []byte {
	return func(b []byte) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
	}
}

func bytesField(num protowire.Number, v []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
}

// packed is the payload of a packed repeated varint field.
func packed(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = protowire.AppendVarint(b, v)
	}
	return b
}

func TestMalformed(t *testing.T) {
	ack := raw(bytesField(1, packed(5))) // Ack{ids: [5]}
	request := func(fields ...func([]byte) []byte) []byte {
		return raw(varint(1, Version), bytesField(2, raw(fields...)))
	}
	tests := []struct {
		name  string
		in    []byte
		err   error  // wrapped cause, if any
		field string // ParseError.Field, if not "-"
		id    uint64 // ParseError.ID
		code  wirepb.Code
	}{
		{name: "empty", in: nil, err: ErrUnsupportedVersion, field: "version", code: wirepb.Code_UNSUPPORTED_VERSION},
		{name: "garbage", in: []byte{0xff, 0xff, 0xff}, err: ErrUnsupportedVersion, field: "version", code: wirepb.Code_UNSUPPORTED_VERSION},
		{name: "too large", in: make([]byte, MaxFrameSize+1), err: ErrTooLarge, field: "", code: wirepb.Code_TOO_LARGE},
		{name: "version 2 with id", in: raw(varint(1, 2), bytesField(2, raw(varint(1, 77), bytesField(2, nil)))), err: ErrUnsupportedVersion, field: "version", id: 77, code: wirepb.Code_UNSUPPORTED_VERSION},
		{name: "version 2^32+1", in: raw(varint(1, 1<<32+1)), err: ErrUnsupportedVersion, field: "version", code: wirepb.Code_UNSUPPORTED_VERSION},
		{name: "no kind", in: raw(varint(1, Version)), field: "", code: wirepb.Code_BAD_REQUEST},
		{name: "unknown frame kind", in: raw(varint(1, Version), bytesField(9, nil)), err: ErrUnknownKind, field: "", code: wirepb.Code_UNIMPLEMENTED},
		{name: "request without body", in: request(varint(1, 9)), field: "request", id: 9, code: wirepb.Code_BAD_REQUEST},
		{name: "request of unknown kind", in: request(varint(1, 9), bytesField(30, []byte{1, 2})), err: ErrUnknownKind, field: "request", id: 9, code: wirepb.Code_UNIMPLEMENTED},
		{name: "request id 0", in: request(bytesField(11, ack)), field: "request.id", code: wirepb.Code_BAD_REQUEST},
		{name: "push of unknown kind", in: raw(varint(1, Version), bytesField(4, raw(bytesField(17, nil)))), err: ErrUnknownKind, field: "push", code: wirepb.Code_UNIMPLEMENTED},
		{name: "version twice", in: raw(varint(1, Version), varint(1, Version), bytesField(2, raw(varint(1, 3), bytesField(11, ack)))), field: "version", id: 3, code: wirepb.Code_BAD_REQUEST},
		{name: "request and push", in: raw(varint(1, Version), bytesField(2, raw(varint(1, 3), bytesField(11, ack))), bytesField(4, raw(bytesField(2, nil)))), field: "push", id: 3, code: wirepb.Code_BAD_REQUEST},
		{name: "two bodies", in: request(varint(1, 3), bytesField(11, ack), bytesField(2, nil)), field: "request.get_challenge", id: 3, code: wirepb.Code_BAD_REQUEST},
		{name: "id twice", in: request(varint(1, 3), varint(1, 4), bytesField(11, ack)), field: "request.id", id: 4, code: wirepb.Code_BAD_REQUEST},
		{name: "wrong wire type", in: request(varint(1, 3), varint(11, 1)), field: "request.ack", id: 3, code: wirepb.Code_BAD_REQUEST},
		{name: "group", in: raw(varint(1, Version), func(b []byte) []byte {
			return protowire.AppendTag(protowire.AppendTag(b, 5, protowire.StartGroupType), 5, protowire.EndGroupType)
		}), field: "", code: wirepb.Code_BAD_REQUEST},
		{name: "truncated length", in: raw(varint(1, Version), func(b []byte) []byte {
			return protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.BytesType), 100)
		}), field: "request", code: wirepb.Code_BAD_REQUEST},
		{name: "uint32 out of range", in: request(varint(1, 3), bytesField(18, raw(varint(1, 1<<32+1)))), field: "request.remove_device.device_id", id: 3, code: wirepb.Code_BAD_REQUEST},
		{name: "bool out of range", in: request(varint(1, 3), bytesField(10, raw(bytesField(1, []byte{1}), bytesField(2, make([]byte, 16)), varint(3, 2)))), field: "request.send_multi.ephemeral", id: 3, code: wirepb.Code_BAD_REQUEST},
		{name: "status message not UTF-8", in: raw(varint(1, Version), bytesField(3, raw(varint(1, 3), bytesField(2, raw(varint(1, 1), bytesField(2, []byte{0xff})))))), field: "response.status.message", id: 3, code: wirepb.Code_BAD_REQUEST},
		{name: "ack with id 0", in: request(varint(1, 3), bytesField(11, raw(bytesField(1, packed(0))))), field: "request.ack.ids[0]", id: 3, code: wirepb.Code_BAD_REQUEST},
		{name: "packed varint truncated", in: request(varint(1, 3), bytesField(11, raw(bytesField(1, []byte{0x80})))), field: "request.ack.ids", id: 3, code: wirepb.Code_BAD_REQUEST},
		{name: "error response with body", in: raw(varint(1, Version), bytesField(3, raw(varint(1, 3), bytesField(2, raw(varint(1, 4))), bytesField(9, raw(bytesField(1, make([]byte, 16))))))), field: "response", id: 3, code: wirepb.Code_BAD_REQUEST},
		{name: "successful response with id 0", in: raw(varint(1, Version), bytesField(3, nil)), field: "response.id", code: wirepb.Code_BAD_REQUEST},
		{name: "register auth key is identity key", in: func() []byte {
			r := samples()[3].frame.GetRequest().GetRegister()
			r.AuthKey = r.IdentityKey
			b, _ := marshalOptions().Marshal(NewRequest(3, r))
			return b
		}(), field: "request.register.auth_key", id: 3, code: wirepb.Code_BAD_REQUEST},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Decode(tc.in)
			if err == nil {
				t.Fatalf("decoded %v", f)
			}
			pe := parseError(t, err)
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("error %v does not wrap %v", err, tc.err)
			}
			if tc.field != "-" && pe.Field != tc.field {
				t.Errorf("Field = %q, want %q (%v)", pe.Field, tc.field, err)
			}
			if pe.ID != tc.id {
				t.Errorf("ID = %d, want %d", pe.ID, tc.id)
			}
			if pe.Code() != tc.code {
				t.Errorf("Code = %v, want %v", pe.Code(), tc.code)
			}
		})
	}
}

// TestUnknownFieldsDropped: fields a newer peer adds are ignored and not
// kept, even inside known messages.
func TestUnknownFieldsDropped(t *testing.T) {
	want := sendFrame(1, 10)
	b := mustEncode(t, want)
	f, err := Decode(append(b, raw(bytesField(25, fill(1000, 1)))...))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(f, want) || len(f.ProtoReflect().GetUnknown()) != 0 {
		t.Fatalf("unknown field kept or frame changed: %v", f)
	}
}

// TestPackedAndUnpacked: repeated numbers decode whether packed or not.
func TestPackedAndUnpacked(t *testing.T) {
	unpacked := raw(varint(1, Version), bytesField(2, raw(varint(1, 3), bytesField(11, raw(varint(1, 5), varint(1, 6), bytesField(1, packed(7, 8)))))))
	f, err := Decode(unpacked)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.GetRequest().GetAck().GetIds(); fmt.Sprint(got) != "[5 6 7 8]" {
		t.Fatalf("ids = %v", got)
	}
}

func TestEncodeRefuses(t *testing.T) {
	tests := []struct {
		name  string
		frame *wirepb.Frame
		err   error
	}{
		{"nil", nil, nil},
		{"no version", &wirepb.Frame{Kind: &wirepb.Frame_Push{Push: &wirepb.Push{Body: &wirepb.Push_QueueEmpty{QueueEmpty: &wirepb.QueueEmpty{}}}}}, ErrUnsupportedVersion},
		{"empty", &wirepb.Frame{Version: Version}, nil},
		{"nil request", &wirepb.Frame{Version: Version, Kind: &wirepb.Frame_Request{}}, nil},
		{"nil body message", &wirepb.Frame{Version: Version, Kind: &wirepb.Frame_Request{Request: &wirepb.Request{Id: 1, Body: &wirepb.Request_Ack{}}}}, nil},
		{"too large", envelopesFrame(3, MaxFrameSize/3), ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(tc.frame)
			if err == nil {
				t.Fatalf("encoded %d bytes", len(b))
			}
			parseError(t, err)
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("error %v does not wrap %v", err, tc.err)
			}
			if Validate(tc.frame) == nil && tc.err != ErrTooLarge {
				t.Fatal("Validate accepts it")
			}
		})
	}
	dst := []byte("keep")
	if got, err := AppendEncode(dst, &wirepb.Frame{}); err == nil || string(got) != "keep" {
		t.Fatalf("AppendEncode on error = %q, %v", got, err)
	}
}

func TestBuildersPanicOnWrongBody(t *testing.T) {
	for name, fn := range map[string]func(){
		"request with a response body": func() { NewRequest(1, &wirepb.Challenge{}) },
		"response with a request body": func() { Respond(1, &wirepb.Send{}) },
		"push with a request body":     func() { NewPush(&wirepb.Ack{}) },
		"push without body":            func() { NewPush(nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			fn()
		})
	}
}

func TestError(t *testing.T) {
	long := strings.Repeat("é", MaxStatusMessageSize) // 2 bytes a rune
	f := Error(3, wirepb.Code_INTERNAL, "x"+long)
	msg := f.GetResponse().GetStatus().GetMessage()
	if len(msg) > MaxStatusMessageSize || len(msg) < MaxStatusMessageSize-1 || !strings.HasPrefix(msg, "xé") {
		t.Fatalf("message cut to %d bytes: %q", len(msg), msg)
	}
	mustEncode(t, f)
	if got := Error(3, wirepb.Code_INTERNAL, "bad \xff byte").GetResponse().GetStatus().GetMessage(); got != "bad \uFFFD byte" {
		t.Fatalf("invalid UTF-8 kept: %q", got)
	}

	for _, tc := range []struct {
		after time.Duration
		want  uint32
	}{{-time.Second, 0}, {0, 0}, {time.Microsecond, 1}, {1500 * time.Millisecond, 1500}, {30 * 24 * time.Hour, uint32(MaxRetryAfter.Milliseconds())}} {
		f := RetryLater(1, wirepb.Code_RATE_LIMITED, tc.after)
		if got := f.GetResponse().GetStatus().GetRetryAfterMs(); got != tc.want {
			t.Errorf("RetryLater(%v) = %d ms, want %d", tc.after, got, tc.want)
		}
		mustEncode(t, f)
	}
}

func TestAccessOf(t *testing.T) {
	want := map[string]Access{
		"get_challenge": AnyConnection, "authenticate": AnyConnection,
		"get_registration_challenge": Anonymous, "register": Anonymous,
		"get_bundles": Anonymous, "send": Anonymous, "send_multi": Anonymous,
		"lookup_username": Anonymous, "open_provisioning": Anonymous, "link_device": Anonymous,
		"upload_prekeys": Authenticated, "get_prekey_count": Authenticated, "ack": Authenticated,
		"get_sender_certificate": Authenticated, "set_unidentified_access_key": Authenticated,
		"set_username": Authenticated, "delete_username": Authenticated,
		"list_devices": Authenticated, "remove_device": Authenticated,
		"get_link_token": Authenticated, "send_provisioning": Authenticated,
		"delete_account": Authenticated, "send_to_own_devices": Authenticated,
		"set_profile": Authenticated, "get_profile": Anonymous,
	}
	n := 0
	for _, s := range samples() {
		r := s.frame.GetRequest()
		if r == nil {
			continue
		}
		n++
		kind := RequestKind(r)
		a, ok := want[kind]
		if !ok {
			t.Errorf("no expectation for %q", kind)
		}
		if got := AccessOf(r); got != a {
			t.Errorf("AccessOf(%s) = %v, want %v", kind, got, a)
		}
	}
	if n != len(want) {
		t.Errorf("%d request samples, %d expectations", n, len(want))
	}
	if RequestKind(&wirepb.Request{}) != "" || AccessOf(&wirepb.Request{}) != Authenticated {
		t.Error("a request without body")
	}
}

func TestAuthMessage(t *testing.T) {
	m := AuthMessage(sampleNonce(), sampleAccount(), 0x01020304)
	want := append(append(append([]byte("sotto-auth-v1"), sampleNonce()...), sampleAccount()...), 1, 2, 3, 4)
	if !bytes.Equal(m, want) || len(m) != 13+NonceSize+AccountIDSize+4 {
		t.Fatalf("AuthMessage = %x", m)
	}
}
