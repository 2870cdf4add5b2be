package wire

import (
	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// fill returns n deterministic bytes starting from seed.
func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// Sample field values, each of its exact size; fresh slices on every call.
func sampleAccount() []byte   { return fill(AccountIDSize, 0x10) }
func sampleAccount2() []byte  { return fill(AccountIDSize, 0x20) }
func sampleKey() []byte       { return append([]byte{0x05}, fill(32, 0x30)...) }
func sampleKey2() []byte      { return append([]byte{0x05}, fill(32, 0x40)...) }
func sampleKEMKey() []byte    { return append([]byte{0x0A}, fill(KEMPublicKeySize-1, 0x50)...) }
func sampleSignature() []byte { return fill(SignatureSize, 0x60) }
func sampleAccessKey() []byte { return fill(AccessKeySize, 0x70) }
func sampleHash() []byte      { return fill(UsernameHashSize, 0x80) }
func sampleNonce() []byte     { return fill(NonceSize, 0x90) }

func samplePreKey(id uint32) *wirepb.PreKey { return &wirepb.PreKey{Id: id, Key: sampleKey()} }

func sampleSignedPreKey() *wirepb.SignedPreKey {
	return &wirepb.SignedPreKey{Id: 7, Key: sampleKey2(), Signature: sampleSignature()}
}

func sampleKEMPreKey(id uint32) *wirepb.KEMPreKey {
	return &wirepb.KEMPreKey{Id: id, Key: sampleKEMKey(), Signature: sampleSignature()}
}

func sampleBundle(device uint32) *wirepb.Bundle {
	return &wirepb.Bundle{
		DeviceId:       device,
		RegistrationId: 1000 + device,
		SignedPrekey:   sampleSignedPreKey(),
		OneTimePrekey:  samplePreKey(100 + device),
		KemPrekey:      sampleKEMPreKey(200 + device),
	}
}

// sendFrame is a Send of n envelopes of size bytes each.
func sendFrame(n, size int) *wirepb.Frame {
	s := &wirepb.Send{Recipient: sampleAccount(), AccessKey: sampleAccessKey()}
	for i := range n {
		s.Envelopes = append(s.Envelopes, &wirepb.OutgoingEnvelope{
			DeviceId:       uint32(i + 1),
			RegistrationId: uint32(500 + i),
			Content:        fill(size, byte(i)),
		})
	}
	return NewRequest(42, s)
}

// envelopesFrame is a push of n envelopes of size bytes each.
func envelopesFrame(n, size int) *wirepb.Frame {
	e := &wirepb.Envelopes{}
	for i := range n {
		e.Envelopes = append(e.Envelopes, &wirepb.Envelope{Id: uint64(1000 + i), Content: fill(size, byte(i))})
	}
	return NewPush(e)
}

// sample is a valid frame with a name (its fixture's file name).
type sample struct {
	name  string
	frame *wirepb.Frame
}

// samples returns one valid frame of every kind: every request, every
// response body, error responses, and every push.
func samples() []sample {
	req := func(name string, body proto.Message) sample { return sample{"request-" + name, NewRequest(7, body)} }
	resp := func(name string, body proto.Message) sample { return sample{"response-" + name, Respond(7, body)} }
	push := func(name string, body proto.Message) sample { return sample{"push-" + name, NewPush(body)} }
	return []sample{
		req("get_challenge", &wirepb.GetChallenge{}),
		req("authenticate", &wirepb.Authenticate{AccountId: sampleAccount(), DeviceId: 1, Signature: sampleSignature()}),
		req("get_registration_challenge", &wirepb.GetRegistrationChallenge{}),
		req("register", &wirepb.Register{
			Seed:                  fill(SeedSize, 1),
			Solution:              fill(8, 2),
			IdentityKey:           sampleKey(),
			AuthKey:               sampleKey2(),
			RegistrationId:        uint32(MaxRegistrationID),
			SignedPrekey:          sampleSignedPreKey(),
			KemLastResort:         sampleKEMPreKey(1),
			UnidentifiedAccessKey: sampleAccessKey(),
		}),
		req("upload_prekeys", &wirepb.UploadPreKeys{
			SignedPrekey:  sampleSignedPreKey(),
			KemLastResort: sampleKEMPreKey(1),
			OneTimeEc:     []*wirepb.PreKey{samplePreKey(1), samplePreKey(2)},
			OneTimeKem:    []*wirepb.KEMPreKey{sampleKEMPreKey(2), sampleKEMPreKey(3)},
		}),
		req("get_prekey_count", &wirepb.GetPreKeyCount{}),
		req("get_bundles", &wirepb.GetBundles{AccountId: sampleAccount(), DeviceId: 0}),
		{"request-send", sendFrame(2, 100)},
		req("send_multi", &wirepb.SendMulti{Payload: fill(300, 3), AccessKey: sampleAccessKey(), Ephemeral: true}),
		req("ack", &wirepb.Ack{Ids: []uint64{1, 2, 1 << 40}}),
		req("get_sender_certificate", &wirepb.GetSenderCertificate{}),
		req("set_unidentified_access_key", &wirepb.SetUnidentifiedAccessKey{Key: sampleAccessKey()}),
		req("set_username", &wirepb.SetUsername{Hash: sampleHash()}),
		req("delete_username", &wirepb.DeleteUsername{}),
		req("lookup_username", &wirepb.LookupUsername{Hash: sampleHash()}),
		req("set_profile", &wirepb.SetProfile{Ciphertext: fill(300, 11)}),
		req("get_profile", &wirepb.GetProfile{AccountId: sampleAccount()}),
		req("list_devices", &wirepb.ListDevices{}),
		req("remove_device", &wirepb.RemoveDevice{DeviceId: 2}),
		req("get_link_token", &wirepb.GetLinkToken{}),
		req("open_provisioning", &wirepb.OpenProvisioning{}),
		req("send_provisioning", &wirepb.SendProvisioning{Address: fill(ProvisioningAddressSize, 4), Body: fill(1000, 5)}),
		req("link_device", &wirepb.LinkDevice{
			LinkToken:      fill(LinkTokenSize, 6),
			AuthKey:        sampleKey2(),
			RegistrationId: 1,
			SignedPrekey:   sampleSignedPreKey(),
			KemLastResort:  sampleKEMPreKey(9),
		}),
		req("delete_account", &wirepb.DeleteAccount{}),
		req("send_to_own_devices", &wirepb.SendToOwnDevices{Envelopes: sendFrame(2, 100).GetRequest().GetSend().GetEnvelopes()}),

		resp("ok", nil),
		resp("challenge", &wirepb.Challenge{Nonce: sampleNonce()}),
		resp("registration_challenge", &wirepb.RegistrationChallenge{Seed: fill(SeedSize, 7), Difficulty: 20}),
		resp("registered", &wirepb.Registered{AccountId: sampleAccount(), DeviceId: 1, TrustRoot: sampleKey()}),
		resp("prekey_count", &wirepb.PreKeyCount{Ec: 12, Kem: 3}),
		resp("bundles", &wirepb.Bundles{IdentityKey: sampleKey(), Bundles: []*wirepb.Bundle{sampleBundle(1), sampleBundle(2)}}),
		resp("sender_certificate", &wirepb.SenderCertificate{Certificate: fill(350, 8)}),
		resp("username_account", &wirepb.UsernameAccount{AccountId: sampleAccount2()}),
		resp("device_list", &wirepb.DeviceList{Devices: []*wirepb.DeviceInfo{
			{Id: 1, RegistrationId: 11, CreatedDay: 20000, LastSeenDay: 20417},
			{Id: 3, RegistrationId: 12, CreatedDay: 20100, LastSeenDay: 20417},
		}}),
		resp("link_token", &wirepb.LinkToken{Token: fill(LinkTokenSize, 9)}),
		resp("provisioning_address", &wirepb.ProvisioningAddress{Address: fill(ProvisioningAddressSize, 10)}),
		resp("profile", &wirepb.Profile{Ciphertext: fill(300, 12)}),
		{"response-error", Error(7, wirepb.Code_NOT_FOUND, "no such account")},
		{"response-error-id-0", Error(0, wirepb.Code_UNSUPPORTED_VERSION, "version 2, want 1")},
		{"response-rate-limited", RetryLater(7, wirepb.Code_RATE_LIMITED, 1500e6)},
		{"response-mismatched", Mismatched(7, []*wirepb.RecipientMismatch{
			{AccountId: sampleAccount(), Missing: []uint32{3}, Extra: []uint32{4, 5}, Stale: []uint32{1}},
			{AccountId: sampleAccount2(), Stale: []uint32{uint32(MaxDeviceID)}},
		})},
		{"response-unknown-accounts", func() *wirepb.Frame {
			f := Error(7, wirepb.Code_NOT_FOUND, "")
			f.GetResponse().Status.UnknownAccounts = [][]byte{sampleAccount(), sampleAccount2()}
			return f
		}()},

		{"push-envelopes", envelopesFrame(3, 200)},
		push("queue_empty", &wirepb.QueueEmpty{}),
		push("prekeys_low", &wirepb.PreKeysLow{Ec: 5, Kem: 0}),
		push("provisioning_message", &wirepb.ProvisioningMessage{Body: fill(1000, 11)}),
		push("ephemeral_envelope", &wirepb.EphemeralEnvelope{Content: fill(300, 12)}),
	}
}
