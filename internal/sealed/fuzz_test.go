package sealed

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// Fuzz targets. Each is seeded from testdata/vectors.json and freshly made
// messages, and checks that parsing never panics, that what parses
// re-encodes to the same bytes, and that no strict prefix of a canonical
// encoding parses (for protobuf: to the same value, since dropping a
// trailing optional field yields another valid message).

// fuzzWorld is the fixed world every fuzz target opens messages in.
type fuzzWorld struct {
	*world
	bob   party
	trust Trust
}

func newFuzzWorld(f *testing.F) *fuzzWorld {
	w := newWorld(f, "fuzz")
	return &fuzzWorld{world: w, bob: makeParties(f, w, 1)[0], trust: w.trust}
}

func loadVectors(f *testing.F) vectors {
	var v vectors
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		f.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		f.Fatal(err)
	}
	return v
}

// maxPrefixCheck bounds the inputs whose every prefix a fuzz target
// re-parses, to keep each iteration fast.
const maxPrefixCheck = 4096

func FuzzParseServerCertificate(f *testing.F) {
	w := newFuzzWorld(f)
	f.Add(w.serverCert.Bytes())
	f.Add([]byte(loadVectors(f).ServerCertificate))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseServerCertificate(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Fatal("Bytes() differs from the input")
		}
		_ = c.Validate(w.trust)
		canon := appendSigned(nil, c.Certificate(), c.Signature())
		c2, err := ParseServerCertificate(canon)
		if err != nil || c2.KeyID() != c.KeyID() || !c2.Key().Equal(c.Key()) {
			t.Fatalf("canonical re-encoding: %v", err)
		}
		if bytes.Equal(canon, b) && len(b) <= maxPrefixCheck {
			for n := range len(b) {
				if _, err := ParseServerCertificate(b[:n]); err == nil {
					t.Fatalf("prefix of %d bytes parses", n)
				}
			}
		}
	})
}

func FuzzParseSenderCertificate(f *testing.F) {
	w := newFuzzWorld(f)
	f.Add(w.senderCert.Bytes())
	f.Add([]byte(loadVectors(f).SenderCertificate))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseSenderCertificate(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Fatal("Bytes() differs from the input")
		}
		if err := c.Validate(w.trust, testExpires); err == nil && !bytes.Equal(c.Certificate(), w.senderCert.Certificate()) {
			t.Fatal("a certificate nobody signed validates")
		}
		_ = c.Expires()
		canon := appendSigned(nil, c.Certificate(), c.Signature())
		c2, err := ParseSenderCertificate(canon)
		if err != nil || c2.UUID() != c.UUID() || c2.Device() != c.Device() || c2.ExpiresMillis() != c.ExpiresMillis() {
			t.Fatalf("canonical re-encoding: %v", err)
		}
		if bytes.Equal(canon, b) && len(b) <= maxPrefixCheck {
			for n := range len(b) {
				if _, err := ParseSenderCertificate(b[:n]); err == nil {
					t.Fatalf("prefix of %d bytes parses", n)
				}
			}
		}
	})
}

func FuzzUSMC(f *testing.F) {
	w := newFuzzWorld(f)
	f.Add(w.usmc(f, TypeWhisper, []byte("hello")).Bytes())
	if u, err := NewUSMC(TypeSenderKey, w.senderCert, nil, ContentHint(1<<31+5), []byte("g")); err == nil {
		f.Add(u.Bytes())
	}
	f.Add([]byte(loadVectors(f).USMC))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseUSMC(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(u.Bytes(), b) {
			t.Fatal("Bytes() differs from the input")
		}
		// Rebuild from the fields: the same content, and for a canonical
		// input (no unknown fields, prost's order) the same bytes.
		re, err := NewUSMC(u.Type(), u.Sender(), u.Contents(), u.ContentHint(), u.GroupID())
		if err != nil {
			t.Fatalf("NewUSMC from parsed fields: %v", err)
		}
		back, err := ParseUSMC(re.Bytes())
		if err != nil || back.Type() != u.Type() || back.ContentHint() != u.ContentHint() ||
			!bytes.Equal(back.Contents(), u.Contents()) || !bytes.Equal(back.GroupID(), u.GroupID()) {
			t.Fatalf("rebuilt USMC: %v", err)
		}
		if bytes.Equal(re.Bytes(), b) && len(b) <= maxPrefixCheck {
			for n := range len(b) {
				p, err := ParseUSMC(b[:n])
				if err == nil && p.ContentHint() == u.ContentHint() && bytes.Equal(p.GroupID(), u.GroupID()) && bytes.Equal(p.Contents(), u.Contents()) {
					t.Fatalf("prefix of %d bytes parses to the same content", n)
				}
			}
		}
	})
}

// fuzzOpen is the body of FuzzOpenV1 and FuzzOpenV2: nothing opens but what
// the world's sender sealed, and no strict prefix of that opens.
func fuzzOpen(t *testing.T, w *fuzzWorld, b []byte) {
	u, err := Open(b, w.bob.key)
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadMAC) && !errors.Is(err, ErrVersion) {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	if !u.Sender().IdentityKey().Equal(w.sender.Public) {
		t.Fatal("opened a message bound to a key other than the sender's")
	}
	for n := range len(b) {
		if _, err := Open(b[:n], w.bob.key); err == nil {
			t.Fatalf("prefix of %d bytes opens", n)
		}
	}
}

func FuzzOpenV1(f *testing.F) {
	w := newFuzzWorld(f)
	for _, s := range []string{"", "hello", strings.Repeat("x", 300)} {
		ct, err := SealV1(w.rand, w.usmc(f, TypeWhisper, []byte(s)), w.bob.key.Public, w.sender)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOpen(t, w, b) })
}

func FuzzOpenV2(f *testing.F) {
	w := newFuzzWorld(f)
	for _, s := range []string{"", "hello", strings.Repeat("x", 300)} {
		sent, err := SealV2(w.rand, w.usmc(f, TypeWhisper, []byte(s)), []Recipient{w.bob.recipient()}, nil, w.sender)
		if err != nil {
			f.Fatal(err)
		}
		m, err := ParseSentMessage(sent)
		if err != nil {
			f.Fatal(err)
		}
		rm, err := m.ForRecipient(w.bob.id)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rm)
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOpen(t, w, b) })
}

func FuzzParseSentMessage(f *testing.F) {
	w := newFuzzWorld(f)
	ps := makeParties(f, w.world, 3)
	sent, err := SealV2(w.rand, w.usmc(f, TypeWhisper, []byte("x")), recipientsOf(ps), []ServiceID{PNI(numberedUUID(7))}, w.sender)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sent)
	f.Add([]byte(loadVectors(f).V2Sent))
	f.Add(unhex(f, "22"+"03"+nodeAliceBytes+"0111aa"+nodeAliceKey+nodeBobBytes+"0111bb"+nodeBobKey+nodeBobBytes+"0333bb"+nodeBobKey+nodeShared))
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		m, err := ParseSentMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if time.Since(start) > time.Second {
			t.Fatal("parsing took over a second")
		}
		devices := 0
		for _, r := range m.Recipients {
			devices += len(r.Devices)
			if len(r.Devices) == 0 || len(r.Devices) > MaxDevicesPerRecipient {
				t.Fatalf("recipient with %d devices", len(r.Devices))
			}
			rm, err := m.ForRecipient(r.ServiceID)
			if err != nil || len(rm) != m.ReceivedSize() || rm[0] != VersionV2Received {
				t.Fatalf("ForRecipient: %v", err)
			}
			if !bytes.HasSuffix(b, rm[1+v2KeyMaterialSize:]) {
				t.Fatal("the shared part is not the end of the message")
			}
			if _, ok := m.Recipient(r.ServiceID); !ok {
				t.Fatal("Recipient does not find a listed recipient")
			}
		}
		if 3*devices+ServiceIDFixedWidthSize*len(m.Excluded) > len(b) {
			t.Fatal("more devices than bytes")
		}
		for _, id := range m.Excluded {
			if _, err := m.ForRecipient(id); !errors.Is(err, ErrExcludedRecipient) {
				t.Fatalf("excluded: %v", err)
			}
		}
		if len(b) <= maxPrefixCheck {
			for n := range m.shared + v2PublicKeySize {
				if _, err := ParseSentMessage(b[:n]); err == nil {
					t.Fatalf("prefix of %d bytes parses", n)
				}
			}
		}
		// A recipient of the fuzz world's message can still open it only if
		// nothing it depends on changed; either way Open must not panic.
		if rm, err := m.ForRecipient(ps[0].id); err == nil {
			if u, err := Open(rm, ps[0].key); err == nil && !u.Sender().IdentityKey().Equal(w.sender.Public) {
				t.Fatal("opened a forged message")
			}
		}
	})
}
