package senderkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// Values from libsignal 0.72.1's tests (tests/groups.rs and the Node
// PublicAPITest's SenderKeyMessage / SenderKeyDistributionMessage cases).
const (
	testDistributionID = "d1d1d1d1-7000-11eb-b32a-33b8a8a487a6"
	testChainID        = 9
	testIteration      = 101
	// A libsignal identity key (fingerprint.rs tests), used as a signing key.
	testSigningKey = "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"
)

// testPrivate is a fixed, already clamped private scalar, so that it is
// stored exactly as written.
var testPrivate = "48" + strings.Repeat("42", 31)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testID(t testing.TB) DistributionID {
	t.Helper()
	id, err := ParseDistributionID(testDistributionID)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func testKeyPair(t testing.TB) keys.KeyPair {
	t.Helper()
	kp, err := keys.NewKeyPair(mustHex(t, testPrivate))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kp.Private.Bytes(), mustHex(t, testPrivate)) {
		t.Fatal("test private key is not clamped")
	}
	return kp
}

func TestDistributionID(t *testing.T) {
	id := testID(t)
	if want := mustHex(t, "d1d1d1d1700011ebb32a33b8a8a487a6"); !bytes.Equal(id[:], want) {
		t.Fatalf("id = %x", id[:])
	}
	if id.String() != testDistributionID {
		t.Fatalf("String() = %s", id)
	}
	if up, err := ParseDistributionID(strings.ToUpper(testDistributionID)); err != nil || up != id {
		t.Fatalf("upper case: %v, %v", up, err)
	}
	for _, bad := range []string{"", "d1d1d1d1700011ebb32a33b8a8a487a6", "d1d1d1d1-7000-11eb-b32a-33b8a8a487a", "d1d1d1d1-7000-11eb-b32a-33b8a8a487ag", "d1d1d1d1+7000-11eb-b32a-33b8a8a487a6"} {
		if _, err := ParseDistributionID(bad); err == nil {
			t.Errorf("ParseDistributionID(%q) succeeded", bad)
		}
	}
}

// testDistributionMessageHex is the Node test's distribution message,
// assembled by hand from wire.proto.
const testDistributionMessageHex = "33" +
	"0a10 d1d1d1d1700011ebb32a33b8a8a487a6" + // distribution_uuid
	"1009" + // chain_id 9
	"1865" + // iteration 101
	"2220 fefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefe" + // chain_key
	"2a21 05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b" // signing_key

func testDistributionMessage(t testing.TB) DistributionMessage {
	t.Helper()
	k, err := keys.ParsePublicKey(mustHex(t, testSigningKey))
	if err != nil {
		t.Fatal(err)
	}
	var ck ChainKey
	copy(ck[:], bytes.Repeat([]byte{0xfe}, ChainKeySize))
	return DistributionMessage{DistributionID: testID(t), ChainID: testChainID, Iteration: testIteration, ChainKey: ck, SigningKey: k}
}

func TestDistributionMessageKnownAnswer(t *testing.T) {
	m := testDistributionMessage(t)
	want := mustHex(t, testDistributionMessageHex)
	if got := m.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("Marshal = %x\nwant      %x", got, want)
	}
	p, err := ParseDistributionMessage(want)
	if err != nil {
		t.Fatal(err)
	}
	if p.DistributionID != m.DistributionID || p.ChainID != m.ChainID || p.Iteration != m.Iteration || p.ChainKey != m.ChainKey || !p.SigningKey.Equal(m.SigningKey) {
		t.Fatalf("parsed %+v", p)
	}
}

func TestChainKeyRedacted(t *testing.T) {
	m := testDistributionMessage(t)
	for _, s := range []string{m.ChainKey.String(), m.ChainKey.GoString(), sprint(m), sprintGo(m), sprintHex(m.ChainKey)} {
		if strings.Contains(strings.ToLower(s), "fefefe") || strings.Contains(s, "254 254") {
			t.Errorf("chain key shown: %s", s)
		}
	}
}

func TestMessageLayout(t *testing.T) {
	kp := testKeyPair(t)
	ct := bytes.Repeat([]byte{0xfe}, 32)
	m, err := NewMessage(testkit.Rand("sig"), kp.Private, testID(t), testChainID, testIteration, ct)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Bytes()
	head := mustHex(t, "33 0a10 d1d1d1d1700011ebb32a33b8a8a487a6 1009 1865 2220"+strings.Repeat("fe", 32))
	if len(b) != len(head)+SignatureSize || !bytes.Equal(b[:len(head)], head) {
		t.Fatalf("message = %x", b)
	}
	if !kp.Public.Verify(b[len(head):], head) {
		t.Fatal("signature does not cover the bytes before it")
	}
	p, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.DistributionID() != testID(t) || p.ChainID() != testChainID || p.Iteration() != testIteration || !bytes.Equal(p.Ciphertext(), ct) || !bytes.Equal(p.Bytes(), b) {
		t.Fatalf("parsed %v %v %v %x", p.DistributionID(), p.ChainID(), p.Iteration(), p.Ciphertext())
	}
	if !p.Verify(kp.Public) {
		t.Fatal("Verify = false")
	}
	other, _ := keys.GenerateKeyPair(testkit.Rand("other"))
	if p.Verify(other.Public) || (Message{}).Verify(kp.Public) || p.Verify(keys.PublicKey{}) {
		t.Fatal("Verify accepted the wrong key or an empty message")
	}
	// Zero values are encoded (proto2 optional fields are always written).
	z, err := NewMessage(testkit.Rand("sig"), kp.Private, DistributionID{}, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if head := mustHex(t, "33 0a10 00000000000000000000000000000000 1000 1800 2200"); !bytes.HasPrefix(z.Bytes(), head) || len(z.Bytes()) != len(head)+SignatureSize {
		t.Fatalf("zero message = %x", z.Bytes())
	}
	if _, err := ParseMessage(z.Bytes()); err != nil {
		t.Fatalf("zero message: %v", err)
	}
	if _, err := NewMessage(testkit.Rand("sig"), keys.PrivateKey{}, DistributionID{}, 0, 0, nil); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("NewMessage without key: %v", err)
	}
}

func TestParseDistributionMessageRejects(t *testing.T) {
	good := mustHex(t, testDistributionMessageHex)
	with := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	tests := []struct {
		name    string
		b       []byte
		version bool // want ErrVersion
	}{
		{"empty", nil, false},
		{"legacy version", with(0, 0x23), true},
		{"future version", with(0, 0x43), true},
		{"low nibble", with(0, 0x34), true},
		{"unknown field", append(bytes.Clone(good), 0x30, 0x01), false},
		{"duplicate field", append(bytes.Clone(good), 0x10, 0x09), false},
		{"overlong chain id", append(append(bytes.Clone(good[:19]), 0x10, 0x89, 0x00), good[21:]...), false},
		{"reordered", append(append(append([]byte{0x33}, good[19:23]...), good[1:19]...), good[23:]...), false},
		{"short chain key", mustHex(t, "33 0a10 d1d1d1d1700011ebb32a33b8a8a487a6 1009 1865 221f"+strings.Repeat("fe", 31)+"2a21"+testSigningKey), false},
		{"bad key type", with(len(good)-33, 0x06), false},
		{"missing iteration", append(bytes.Clone(good[:21]), good[23:]...), false},
	}
	for i := range len(good) {
		tests = append(tests, struct {
			name    string
			b       []byte
			version bool
		}{"prefix", good[:i], false})
	}
	for _, tc := range tests {
		_, err := ParseDistributionMessage(tc.b)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s %x: err = %v, want *ParseError", tc.name, tc.b, err)
			continue
		}
		if errors.Is(err, ErrVersion) != tc.version {
			t.Errorf("%s: err = %v, ErrVersion want %v", tc.name, err, tc.version)
		}
	}
}

func TestParseMessageRejects(t *testing.T) {
	kp := testKeyPair(t)
	m, err := NewMessage(testkit.Rand("sig"), kp.Private, testID(t), testChainID, testIteration, bytes.Repeat([]byte{0xfe}, 32))
	if err != nil {
		t.Fatal(err)
	}
	good := m.Bytes()
	sig := good[len(good)-SignatureSize:]
	body := good[1 : len(good)-SignatureSize]
	msg := func(parts ...[]byte) []byte { return append(bytes.Join(parts, nil), sig...) }
	tests := []struct {
		name    string
		b       []byte
		version bool
	}{
		{"legacy version", msg([]byte{0x22}, body), true},
		{"future version", msg([]byte{0x43}, body), true},
		{"low nibble", msg([]byte{0x30}, body), true},
		{"unknown field", msg([]byte{0x33}, body, []byte{0x28, 0x01}), false},
		{"duplicate field", msg([]byte{0x33}, body, []byte{0x18, 0x01}), false},
		{"overlong iteration", msg([]byte{0x33}, body[:20], []byte{0x18, 0xe5, 0x00}, body[22:]), false},
		{"reordered", msg([]byte{0x33}, body[18:22], body[:18], body[22:]), false},
		{"short uuid", msg([]byte{0x33}, []byte{0x0a, 0x0f}, body[2:17], body[18:]), false},
		{"missing ciphertext", msg([]byte{0x33}, body[:22]), false},
		{"only signature", msg([]byte{0x33}), false},
	}
	for i := range len(good) {
		tests = append(tests, struct {
			name    string
			b       []byte
			version bool
		}{"prefix", good[:i], false})
	}
	for _, tc := range tests {
		_, err := ParseMessage(tc.b)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s %x: err = %v, want *ParseError", tc.name, tc.b, err)
			continue
		}
		if errors.Is(err, ErrVersion) != tc.version {
			t.Errorf("%s: err = %v, ErrVersion want %v", tc.name, err, tc.version)
		}
	}
}

func sprint(v any) string    { return fmt.Sprint(v) }
func sprintGo(v any) string  { return fmt.Sprintf("%#v", v) }
func sprintHex(v any) string { return fmt.Sprintf("%x", v) }
