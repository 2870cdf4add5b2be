package sealed

import (
	"encoding/hex"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// Values from libsignal's tests/sealed_sender.rs, reused so that transcripts
// look familiar.
const (
	aliceUUID   = "9d0652a3-dcc3-4d11-975f-74d61598733f"
	aliceE164   = "+14151111111"
	aliceDevice = DeviceID(23)
	bobUUID     = "796abedb-ca4e-4f18-8803-1fde5b921f9f"
	bobDevice   = DeviceID(42)
)

// expiresMillis is libsignal's test expiration, 1605722925 ms.
var testExpires = time.UnixMilli(1605722925)

// world is a trust root, a server certificate, a sender with a certificate,
// and randomness, all deterministic from a seed.
type world struct {
	rand       io.Reader
	root       keys.KeyPair
	server     keys.KeyPair
	serverCert *ServerCertificate
	sender     keys.KeyPair
	senderCert *SenderCertificate
	trust      Trust
}

func newWorld(t testing.TB, seed string) *world {
	t.Helper()
	w := &world{rand: testkit.Rand(seed)}
	w.root = genKey(t, w.rand)
	w.server = genKey(t, w.rand)
	w.sender = genKey(t, w.rand)
	var err error
	w.serverCert, err = NewServerCertificate(w.rand, w.root.Private, 1, w.server.Public)
	if err != nil {
		t.Fatalf("NewServerCertificate: %v", err)
	}
	w.senderCert, err = NewSenderCertificate(w.rand, w.serverCert, w.server.Private, Sender{
		UUID: aliceUUID, E164: aliceE164, Device: aliceDevice, IdentityKey: w.sender.Public,
	}, testExpires)
	if err != nil {
		t.Fatalf("NewSenderCertificate: %v", err)
	}
	w.trust = Trust{Roots: []keys.PublicKey{w.root.Public}}
	return w
}

func genKey(t testing.TB, rand io.Reader) keys.KeyPair {
	t.Helper()
	kp, err := keys.GenerateKeyPair(rand)
	if err != nil {
		t.Fatalf("GenerateKeyPair: %v", err)
	}
	return kp
}

func (w *world) usmc(t testing.TB, typ MessageType, contents []byte) *USMC {
	t.Helper()
	u, err := NewUSMC(typ, w.senderCert, contents, HintDefault, nil)
	if err != nil {
		t.Fatalf("NewUSMC: %v", err)
	}
	return u
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func mustServiceID(t testing.TB, s string) ServiceID {
	t.Helper()
	id, err := ParseServiceID(s)
	if err != nil {
		t.Fatalf("ParseServiceID(%q): %v", s, err)
	}
	return id
}

// numberedUUID is a recognisable UUID for recipient i.
func numberedUUID(i int) [UUIDSize]byte {
	var u [UUIDSize]byte
	copy(u[:], fmt.Sprintf("recipient-%06d", i))
	return u
}

func sameUSMC(t testing.TB, got, want *USMC) {
	t.Helper()
	if string(got.Bytes()) != string(want.Bytes()) {
		t.Fatalf("USMC bytes differ:\n got %x\nwant %x", got.Bytes(), want.Bytes())
	}
	if got.Type() != want.Type() || got.ContentHint() != want.ContentHint() ||
		string(got.Contents()) != string(want.Contents()) || string(got.GroupID()) != string(want.GroupID()) ||
		string(got.Sender().Bytes()) != string(want.Sender().Bytes()) {
		t.Fatal("USMC fields differ")
	}
}
