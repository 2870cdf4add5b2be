package sealed

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// party is a recipient with its private key.
type party struct {
	id      ServiceID
	key     keys.KeyPair
	devices []Device
}

func (p party) recipient() Recipient {
	return Recipient{ServiceID: p.id, Devices: p.devices, IdentityKey: p.key.Public}
}

// makeParties makes n recipients; every third has three devices, every
// fourth is a PNI.
func makeParties(t testing.TB, w *world, n int) []party {
	t.Helper()
	ps := make([]party, n)
	for i := range ps {
		id := ACI(numberedUUID(i))
		if i%4 == 3 {
			id = PNI(numberedUUID(i))
		}
		devices := []Device{{ID: 1, RegistrationID: RegistrationID(0x1000 + i)}}
		if i%3 == 0 {
			devices = append(devices, Device{ID: 127, RegistrationID: MaxRegistrationID}, Device{ID: 2, RegistrationID: 0})
		}
		ps[i] = party{id: id, key: genKey(t, w.rand), devices: devices}
	}
	return ps
}

func recipientsOf(ps []party) []Recipient {
	rs := make([]Recipient, len(ps))
	for i, p := range ps {
		rs[i] = p.recipient()
	}
	return rs
}

func TestV2ManyRecipients(t *testing.T) {
	w := newWorld(t, "v2 many")
	ps := makeParties(t, w, 13)
	excluded := []ServiceID{ACI(numberedUUID(100)), PNI(numberedUUID(101))}
	u, err := NewUSMC(TypeSenderKey, w.senderCert, []byte("group message"), HintResendable, []byte("group id"))
	if err != nil {
		t.Fatal(err)
	}
	sent, err := SealV2(w.rand, u, recipientsOf(ps), excluded, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	if sent[0] != VersionV2ServiceID {
		t.Fatalf("version 0x%02x", sent[0])
	}
	m, err := ParseSentMessage(sent)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != VersionV2ServiceID || len(m.Recipients) != len(ps) || !slices.Equal(m.Excluded, excluded) {
		t.Fatalf("parsed %d recipients, excluded %v", len(m.Recipients), m.Excluded)
	}
	var received [][]byte
	for i, p := range ps {
		r := m.Recipients[i]
		if r.ServiceID != p.id || !slices.Equal(r.Devices, p.devices) {
			t.Fatalf("recipient %d: %v %v, want %v %v", i, r.ServiceID, r.Devices, p.id, p.devices)
		}
		if got, ok := m.Recipient(p.id); !ok || !slices.Equal(got.Devices, p.devices) {
			t.Fatalf("Recipient(%v)", p.id)
		}
		rm, err := m.ForRecipient(p.id)
		if err != nil {
			t.Fatal(err)
		}
		if rm[0] != VersionV2Received || len(rm) != m.ReceivedSize() {
			t.Fatalf("received message: version 0x%02x, %d bytes, want %d", rm[0], len(rm), m.ReceivedSize())
		}
		got, err := Open(rm, p.key)
		if err != nil {
			t.Fatalf("recipient %d: Open: %v", i, err)
		}
		sameUSMC(t, got, u)
		// Another recipient's key does not open it.
		if _, err := Open(rm, ps[(i+1)%len(ps)].key); !errors.Is(err, ErrBadMAC) {
			t.Fatalf("recipient %d's message opened by another: %v", i, err)
		}
		received = append(received, rm)
	}
	// Every ReceivedMessage differs only in C ‖ AT.
	for _, rm := range received[1:] {
		if !bytes.Equal(rm[1+48:], received[0][1+48:]) || bytes.Equal(rm[1:1+48], received[0][1:1+48]) {
			t.Fatal("received messages should share everything but C ‖ AT")
		}
	}
	for _, id := range excluded {
		if _, err := m.ForRecipient(id); !errors.Is(err, ErrExcludedRecipient) {
			t.Fatalf("ForRecipient(excluded %v): %v", id, err)
		}
		if _, ok := m.Recipient(id); ok {
			t.Fatal("an excluded service ID is not a recipient")
		}
	}
	stranger := ACI(numberedUUID(999))
	if _, err := m.ForRecipient(stranger); !errors.Is(err, ErrUnknownRecipient) {
		t.Fatalf("ForRecipient(stranger): %v", err)
	}
	// The same UUID as a PNI is a different service ID.
	if _, err := m.ForRecipient(PNI(ps[0].id.UUID())); !errors.Is(err, ErrUnknownRecipient) {
		t.Fatalf("ForRecipient(PNI of an ACI recipient): %v", err)
	}
	// AppendForRecipient reuses a buffer.
	buf := make([]byte, 0, m.ReceivedSize())
	out, err := m.AppendForRecipient(buf[:0], ps[1].id)
	if err != nil || &out[0] != &buf[:1][0] || !bytes.Equal(out, received[1]) {
		t.Fatalf("AppendForRecipient: %v", err)
	}
}

// TestV2Deterministic: the output depends on rand only, not on how many
// goroutines compute the key material.
func TestV2Deterministic(t *testing.T) {
	w := newWorld(t, "v2 deterministic")
	rs := recipientsOf(makeParties(t, w, 50))
	u := w.usmc(t, TypeWhisper, []byte("x"))
	seal := func(procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		b, err := SealV2(testkit.Rand("fixed"), u, rs, nil, w.sender)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, b := seal(1), seal(4); !bytes.Equal(a, b) {
		t.Fatal("SealV2 output depends on GOMAXPROCS")
	}
}

func TestV2SenderBinding(t *testing.T) {
	w := newWorld(t, "v2 binding")
	bob := makeParties(t, w, 1)[0]
	mallory := genKey(t, w.rand)
	u := w.usmc(t, TypeWhisper, []byte("hi"))
	if _, err := SealV2(w.rand, u, []Recipient{bob.recipient()}, nil, mallory); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("SealV2 with a key the certificate does not name: %v", err)
	}
	sent, err := sealV2(w.rand, u.Bytes(), []Recipient{bob.recipient()}, nil, mallory)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseSentMessage(sent)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := m.ForRecipient(bob.id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(rm, bob.key); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("Open of a message bound to another key: %v", err)
	}
}

func TestV2Tamper(t *testing.T) {
	w := newWorld(t, "v2 tamper")
	ps := makeParties(t, w, 2)
	sent, err := SealV2(w.rand, w.usmc(t, TypeWhisper, []byte("tamper with me")), recipientsOf(ps), nil, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseSentMessage(sent)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := m.ForRecipient(ps[0].id)
	if err != nil {
		t.Fatal(err)
	}
	// Named regions of the ReceivedMessage; every byte of each is tried.
	regions := []struct {
		name     string
		from, to int
	}{
		{"C", 1, 33}, {"AT", 33, 49}, {"E.pub", 49, 81}, {"ciphertext", 81, len(rm) - 16}, {"AEAD tag", len(rm) - 16, len(rm)},
	}
	for _, r := range regions {
		t.Run(r.name, func(t *testing.T) {
			for i := r.from; i < r.to; i++ {
				for _, mask := range []byte{0x01, 0x80} {
					b := bytes.Clone(rm)
					b[i] ^= mask
					if _, err := Open(b, ps[0].key); !errors.Is(err, ErrBadMAC) {
						t.Fatalf("byte %d ^ %#x: %v", i, mask, err)
					}
				}
			}
		})
	}
	t.Run("version", func(t *testing.T) {
		// As in libsignal, only the high nibble counts.
		for v := range 256 {
			b := bytes.Clone(rm)
			b[0] = byte(v)
			_, err := Open(b, ps[0].key)
			if (v>>4 == 2) != (err == nil) {
				t.Fatalf("version 0x%02x: %v", v, err)
			}
		}
	})
	t.Run("prefixes", func(t *testing.T) {
		for n := range len(rm) {
			if _, err := Open(rm[:n], ps[0].key); err == nil {
				t.Fatalf("prefix of %d bytes opens", n)
			}
		}
		if _, err := Open(append(bytes.Clone(rm), 0), ps[0].key); err == nil {
			t.Fatal("trailing byte accepted")
		}
	})
	t.Run("sent message", func(t *testing.T) {
		// Flipping any byte of an upload either breaks its structure or
		// leaves at least one recipient unable to open what it receives
		// (or moves the message to a service ID nobody holds keys for).
		for i := range sent {
			b := bytes.Clone(sent)
			b[i] ^= 0x01
			mm, err := ParseSentMessage(b)
			if err != nil {
				continue
			}
			ok := true
			for _, p := range ps {
				rm, err := mm.ForRecipient(p.id)
				if err != nil {
					ok = false
					break
				}
				if _, err := Open(rm, p.key); err != nil {
					ok = false
				}
			}
			// Registration IDs and device IDs are for the server only:
			// changing them changes what the server sees, not what the
			// recipients can open.
			if ok && slices.EqualFunc(mm.Recipients, m.Recipients, func(a, b SentRecipient) bool {
				return a.ServiceID == b.ServiceID && slices.Equal(a.Devices, b.Devices)
			}) {
				t.Fatalf("byte %d flipped: every recipient still opens the same thing", i)
			}
		}
	})
}

func TestV2SealRejects(t *testing.T) {
	w := newWorld(t, "v2 seal rejects")
	ps := makeParties(t, w, 3)
	u := w.usmc(t, TypeWhisper, []byte("x"))
	with := func(f func(rs []Recipient) []Recipient) []Recipient {
		rs := recipientsOf(ps)
		for i := range rs {
			rs[i].Devices = slices.Clone(rs[i].Devices)
		}
		return f(rs)
	}
	tests := []struct {
		name       string
		recipients []Recipient
		excluded   []ServiceID
	}{
		{"duplicate recipient", with(func(rs []Recipient) []Recipient { return append(rs, rs[0]) }), nil},
		{"excluded and included", recipientsOf(ps), []ServiceID{ps[1].id}},
		{"excluded twice", nil, []ServiceID{ps[1].id, ps[1].id}},
		{"no devices", with(func(rs []Recipient) []Recipient { rs[0].Devices = nil; return rs }), nil},
		{"device 0", with(func(rs []Recipient) []Recipient { rs[1].Devices[0].ID = 0; return rs }), nil},
		{"device 128", with(func(rs []Recipient) []Recipient { rs[1].Devices[0].ID = 128; return rs }), nil},
		{"repeated device", with(func(rs []Recipient) []Recipient { rs[0].Devices[1].ID = rs[0].Devices[0].ID; return rs }), nil},
		{"registration ID 0x4000", with(func(rs []Recipient) []Recipient { rs[2].Devices[0].RegistrationID = 0x4000; return rs }), nil},
		{"no identity key", with(func(rs []Recipient) []Recipient { rs[2].IdentityKey = keys.PublicKey{}; return rs }), nil},
		{"too many devices", with(func(rs []Recipient) []Recipient {
			rs[0].Devices = make([]Device, MaxDevicesPerRecipient+1)
			return rs
		}), nil},
		{"too many recipients", nil, func() []ServiceID {
			ids := make([]ServiceID, MaxSentRecipients+1)
			for i := range ids {
				ids[i] = ACI(numberedUUID(i))
			}
			return ids
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SealV2(w.rand, u, tt.recipients, tt.excluded, w.sender); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("got %v, want ErrInvalidArgument", err)
			}
		})
	}
	// The extremes that are allowed.
	full := make([]Device, MaxDevicesPerRecipient)
	for i := range full {
		full[i] = Device{ID: DeviceID(i + 1), RegistrationID: MaxRegistrationID}
	}
	sent, err := SealV2(w.rand, u, []Recipient{{ServiceID: ps[0].id, Devices: full, IdentityKey: ps[0].key.Public}}, nil, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseSentMessage(sent)
	if err != nil || !slices.Equal(m.Recipients[0].Devices, full) {
		t.Fatalf("127 devices: %v", err)
	}
	// No recipients at all is a valid (if useless) message, as in libsignal.
	sent, err = SealV2(w.rand, u, nil, nil, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := ParseSentMessage(sent); err != nil || len(m.Recipients)+len(m.Excluded) != 0 || sent[1] != 0 {
		t.Fatalf("empty message: %v", err)
	}
}

// Known answers from libsignal's node/ts/test/SealedSenderServerAPI.ts.
const (
	nodeAliceUUID    = "9d0652a3-dcc3-4d11-975f-74d61598733f"
	nodeAliceBytes   = "9d0652a3dcc34d11975f74d61598733f"
	nodeBobUUID      = "e80f7bbe-5b94-471e-bd8c-2173654ea3d1"
	nodeBobBytes     = "e80f7bbe5b94471ebd8c2173654ea3d1"
	nodeEveUUID      = "3f0f4734-e331-4434-bd4f-6d8f6ea6dcc7"
	nodeEveBytes     = "3f0f4734e3314434bd4f6d8f6ea6dcc7"
	nodeMalloryUUID  = "5d088142-6fd7-4dbd-af00-fdda1b3ce988"
	nodeMalloryBytes = "5d0881426fd74dbdaf00fdda1b3ce988"
	nodeShared       = "99999999999999999999999999999999999999999999999999999999999999999999"
)

var (
	nodeAliceKey = strings.Repeat("aa", 48)
	nodeBobKey   = strings.Repeat("bb", 48)
)

func TestV2LibsignalServerVectors(t *testing.T) {
	type want struct {
		id      string
		devices []Device
		key     string
	}
	tests := []struct {
		name     string
		in       []string
		want     []want
		excluded []string
	}{
		{
			name: "ACI-only, Bob in two entries",
			in: []string{"22", "03",
				nodeAliceBytes, "0111aa", nodeAliceKey,
				nodeBobBytes, "0111bb", nodeBobKey,
				nodeBobBytes, "0333bb", nodeBobKey,
				nodeShared},
			want: []want{
				{nodeAliceUUID, []Device{{1, 0x11aa}}, nodeAliceKey},
				{nodeBobUUID, []Device{{1, 0x11bb}, {3, 0x33bb}}, nodeBobKey},
			},
		},
		{
			name: "service IDs with compact device lists",
			in: []string{"23", "02",
				"00", nodeAliceBytes, "0111aa", nodeAliceKey,
				"01", nodeBobBytes, "0191bb", "0333bb", nodeBobKey,
				nodeShared},
			want: []want{
				{nodeAliceUUID, []Device{{1, 0x11aa}}, nodeAliceKey},
				{"PNI:" + nodeBobUUID, []Device{{1, 0x11bb}, {3, 0x33bb}}, nodeBobKey},
			},
		},
		{
			name: "excluded recipients",
			in: []string{"23", "04",
				"00", nodeAliceBytes, "0191aa", "0333aa", nodeAliceKey,
				"00", nodeEveBytes, "00",
				"01", nodeBobBytes, "0111bb", nodeBobKey,
				"00", nodeMalloryBytes, "00",
				nodeShared},
			want: []want{
				{nodeAliceUUID, []Device{{1, 0x11aa}, {3, 0x33aa}}, nodeAliceKey},
				{"PNI:" + nodeBobUUID, []Device{{1, 0x11bb}}, nodeBobKey},
			},
			excluded: []string{nodeEveUUID, nodeMalloryUUID},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseSentMessage(unhex(t, strings.Join(tt.in, "")))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Recipients) != len(tt.want) {
				t.Fatalf("%d recipients, want %d", len(m.Recipients), len(tt.want))
			}
			for i, w := range tt.want {
				r := m.Recipients[i]
				if r.ServiceID.String() != w.id || !slices.Equal(r.Devices, w.devices) {
					t.Fatalf("recipient %d = %v %v, want %s %v", i, r.ServiceID, r.Devices, w.id, w.devices)
				}
				rm, err := m.ForRecipient(r.ServiceID)
				if err != nil {
					t.Fatal(err)
				}
				if want := unhex(t, "22"+w.key+nodeShared); !bytes.Equal(rm, want) {
					t.Fatalf("message for %s\n got %x\nwant %x", w.id, rm, want)
				}
			}
			var excluded []string
			for _, id := range m.Excluded {
				excluded = append(excluded, id.String())
			}
			if !slices.Equal(excluded, tt.excluded) {
				t.Fatalf("excluded %v, want %v", excluded, tt.excluded)
			}
		})
	}
}

// TestV2OldUploadFormat is libsignal's check of the 0x22 upload format: the
// same message with bare ACI UUIDs splits into the same ReceivedMessages.
func TestV2OldUploadFormat(t *testing.T) {
	w := newWorld(t, "v2 old format")
	bob := party{id: mustServiceID(t, bobUUID), key: genKey(t, w.rand), devices: []Device{{ID: bobDevice, RegistrationID: 1234}}}
	sent, err := SealV2(w.rand, w.usmc(t, TypeWhisper, []byte{1, 2, 3, 23, 99}), []Recipient{bob.recipient()}, nil, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	old := bytes.Clone(sent)
	old[0] = VersionV2UUID
	if old[2] != 0 {
		t.Fatalf("byte 2 is 0x%02x, want the ACI kind byte", old[2])
	}
	old = slices.Delete(old, 2, 3)
	for _, b := range [][]byte{sent, old} {
		m, err := ParseSentMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		rm, err := m.ForRecipient(bob.id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(rm, bob.key); err != nil {
			t.Fatalf("version 0x%02x: %v", b[0], err)
		}
	}
}

func TestV2ParseRejects(t *testing.T) {
	h := func(parts ...string) []byte { return unhex(t, strings.Join(parts, "")) }
	key := nodeAliceKey
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version 0x11", []byte{0x11}, ErrVersion},
		{"version 0x2f", []byte{0x2f}, ErrVersion},
		{"version 0x77", []byte{0x77}, ErrVersion},
		{"version 0x21", h("21", "00", nodeShared), ErrVersion},
		{"no count", h("23"), ErrMalformed},
		{"non-minimal count", h("23", "8100", "00", nodeAliceBytes, "0111aa", key, nodeShared), ErrMalformed},
		{"count over limit", h("23", "8a27"), ErrMalformed}, // 5002
		{"count 2^64-1", h("23", "ffffffffffffffffff01"), ErrMalformed},
		{"count beyond entries", h("23", "02", "00", nodeAliceBytes, "0111aa", key, nodeShared), ErrMalformed},
		{"no shared part", h("23", "01", "00", nodeAliceBytes, "0111aa", key), ErrMalformed},
		{"short shared part", h("23", "00", strings.Repeat("99", 31)), ErrMalformed},
		{"kind byte 2", h("23", "01", "02", nodeAliceBytes, "0111aa", key, nodeShared), ErrMalformed},
		{"device 128", h("23", "01", "00", nodeAliceBytes, "8011aa", key, nodeShared), ErrMalformed},
		{"device 255", h("23", "01", "00", nodeAliceBytes, "ff11aa", key, nodeShared), ErrMalformed},
		{"device 0 after has-more", h("23", "01", "00", nodeAliceBytes, "0191aa", "00", key, nodeShared), ErrMalformed},
		{"excluded twice", h("23", "03",
			"00", nodeAliceBytes, "0191aa", "0333aa", key,
			"00", nodeEveBytes, "00",
			"00", nodeEveBytes, "00", nodeShared), ErrMalformed},
		{"excluded then included", h("23", "02",
			"00", nodeEveBytes, "00",
			"00", nodeEveBytes, "0111aa", key, nodeShared), ErrMalformed},
		{"included then excluded", h("23", "02",
			"00", nodeEveBytes, "0111aa", key,
			"00", nodeEveBytes, "00", nodeShared), ErrMalformed},
		{"128 devices", h("23", "01", "00", nodeAliceBytes, strings.Repeat("0180aa", 127), "0100aa", key, nodeShared), ErrMalformed},
		{"128 devices over two entries", h("23", "02",
			"00", nodeAliceBytes, strings.Repeat("0180aa", 99), "0100aa", key,
			"00", nodeAliceBytes, strings.Repeat("0180aa", 27), "0100aa", key, nodeShared), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseSentMessage(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Limits are inclusive: 127 devices, and the unused bit 14 is ignored
	// as libsignal ignores it.
	m, err := ParseSentMessage(h("23", "01", "00", nodeAliceBytes, strings.Repeat("01c0aa", 126), "0140aa", key, nodeShared))
	if err != nil {
		t.Fatal(err)
	}
	if d := m.Recipients[0].Devices; len(d) != 127 || d[0].RegistrationID != 0xaa {
		t.Fatalf("devices %v", d[:1])
	}
}

// TestV2NoPrefixParses: a SentMessage prefix that ends before the shared
// part is complete (E.pub) never parses. (Past that, the ciphertext simply
// runs to the end of the message: the format does not delimit it.)
func TestV2NoPrefixParses(t *testing.T) {
	w := newWorld(t, "v2 prefix")
	ps := makeParties(t, w, 4)
	sent, err := SealV2(w.rand, w.usmc(t, TypeWhisper, []byte("x")), recipientsOf(ps), []ServiceID{ACI(numberedUUID(50))}, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseSentMessage(sent)
	if err != nil {
		t.Fatal(err)
	}
	for n := range m.shared + v2PublicKeySize {
		if _, err := ParseSentMessage(sent[:n]); err == nil {
			t.Fatalf("prefix of %d bytes parses", n)
		}
	}
}

// TestV2ParseAllocation: a count read from the input never drives
// allocation; what is allocated follows what is present.
func TestV2ParseAllocation(t *testing.T) {
	lie := unhex(t, "23"+"8827"+strings.Repeat("00", 17)+"00") // claims 5000 entries, has one
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseSentMessage(lie); err == nil {
			t.Fatal("parsed")
		}
	})
	if allocs > 4 {
		t.Fatalf("%v allocations to reject a short message", allocs)
	}
}

func TestV2Malformed(t *testing.T) {
	w := newWorld(t, "v2 malformed")
	bob := genKey(t, w.rand)
	low := make([]byte, 32) // the all-zero u-coordinate has order 4
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"version only", []byte{0x22}, ErrMalformed},
		{"79 bytes", append([]byte{0x22}, make([]byte, 79)...), ErrMalformed},
		{"low-order E", append(append([]byte{0x22}, make([]byte, 48)...), append(low, make([]byte, 16)...)...), ErrBadMAC},
		{"random E", append(append([]byte{0x22}, make([]byte, 48)...), append(genKey(t, w.rand).Public.Bytes()[1:], make([]byte, 16)...)...), ErrBadMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(tt.b, bob); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func ExampleSentMessage_ForRecipient() {
	// A server receives an upload and delivers each recipient its part.
	upload, _ := hex.DecodeString("23" + "02" +
		"00" + nodeAliceBytes + "0111aa" + nodeAliceKey +
		"00" + nodeEveBytes + "00" +
		nodeShared)
	m, err := ParseSentMessage(upload)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range m.Recipients {
		msg, _ := m.ForRecipient(r.ServiceID)
		fmt.Println(r.ServiceID, r.Devices, len(msg))
	}
	fmt.Println("excluded:", m.Excluded)
	// Output:
	// 9d0652a3-dcc3-4d11-975f-74d61598733f [{1 4522}] 83
	// excluded: [3f0f4734-e331-4434-bd4f-6d8f6ea6dcc7]
}
