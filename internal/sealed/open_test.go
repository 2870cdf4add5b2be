package sealed

import (
	"errors"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/keys"
)

// TestUnseal follows libsignal's test_sealed_sender and
// test_sealed_sender_multi_recipient: the message opens just before expiry,
// and fails once expired or under another trust root.
func TestUnseal(t *testing.T) {
	w := newWorld(t, "unseal")
	bob := genKey(t, w.rand)
	local := Local{Identity: bob, ACI: mustServiceID(t, bobUUID), E164: "+14151114444", Device: bobDevice}
	u := w.usmc(t, TypeWhisper, []byte{1, 2, 3, 23, 99})

	v1, err := SealV1(w.rand, u, bob.Public, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := SealV2(w.rand, u, []Recipient{{ServiceID: local.ACI, Devices: []Device{{ID: bobDevice, RegistrationID: 1}}, IdentityKey: bob.Public}}, nil, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseSentMessage(sent)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := m.ForRecipient(local.ACI)
	if err != nil {
		t.Fatal(err)
	}

	for name, msg := range map[string][]byte{"v1": v1, "v2": v2} {
		t.Run(name, func(t *testing.T) {
			s, got, err := Unseal(msg, local, w.trust, testExpires.Add(-time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			sameUSMC(t, got, u)
			if s.UUID != aliceUUID || s.E164 != aliceE164 || s.Device != aliceDevice || !s.IdentityKey.Equal(w.sender.Public) {
				t.Fatalf("sender %+v", s)
			}
			tests := []struct {
				name  string
				local Local
				trust Trust
				now   time.Time
				want  error
			}{
				{"expired", local, w.trust, testExpires.Add(11 * time.Millisecond), ErrExpired},
				{"wrong trust root", local, Trust{Roots: []keys.PublicKey{genKey(t, w.rand).Public}}, testExpires, ErrUntrusted},
				{"revoked", local, Trust{Roots: w.trust.Roots, RevokedServerKeyIDs: []uint32{1}}, testExpires, ErrRevoked},
				{"wrong identity", Local{Identity: genKey(t, w.rand), ACI: local.ACI, Device: bobDevice}, w.trust, testExpires, ErrBadMAC},
				{"no identity", Local{ACI: local.ACI}, w.trust, testExpires, ErrInvalidArgument},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if _, _, err := Unseal(msg, tt.local, tt.trust, tt.now); !errors.Is(err, tt.want) {
						t.Fatalf("got %v, want %v", err, tt.want)
					}
				})
			}
		})
	}
}

// TestUnsealSelfSend: a message whose certificate names this device (by
// ACI string or phone number, and device ID) is refused, as libsignal does.
func TestUnsealSelfSend(t *testing.T) {
	w := newWorld(t, "self send")
	u := w.usmc(t, TypeWhisper, []byte("note to self"))
	// Alice sends to her own identity key (another device of hers).
	msg, err := SealV1(w.rand, u, w.sender.Public, w.sender)
	if err != nil {
		t.Fatal(err)
	}
	alice := mustServiceID(t, aliceUUID)
	other := mustServiceID(t, bobUUID)
	tests := []struct {
		name  string
		local Local
		want  error
	}{
		{"same ACI and device", Local{ACI: alice, Device: aliceDevice}, ErrSelfSend},
		{"same E.164 and device", Local{ACI: other, E164: aliceE164, Device: aliceDevice}, ErrSelfSend},
		{"same ACI, other device", Local{ACI: alice, Device: aliceDevice + 1}, nil},
		{"other account, same device ID", Local{ACI: other, E164: "+15555550000", Device: aliceDevice}, nil},
		{"PNI with the same UUID", Local{ACI: PNI(alice.UUID()), Device: aliceDevice}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.local.Identity = w.sender
			_, _, err := Unseal(msg, tt.local, w.trust, testExpires)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpenDispatch(t *testing.T) {
	bob := genKey(t, newWorld(t, "dispatch").rand)
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"v3", []byte{0x33, 1, 2, 3}, ErrVersion},
		{"v15", []byte{0xff}, ErrVersion},
		{"too large", make([]byte, MaxMessageSize+1), ErrMalformed},
		{"v0 body", []byte{0x00}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(tt.b, bob); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
