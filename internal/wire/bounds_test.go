package wire

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// sampleNamed returns a fresh copy of the sample frame called name.
func sampleNamed(t testing.TB, name string) *wirepb.Frame {
	t.Helper()
	for _, s := range samples() {
		if s.name == name {
			return s.frame
		}
	}
	t.Fatalf("no sample %q", name)
	return nil
}

// sizeBound is the accepted length (of a byte field or string) or count (of
// a repeated field) of one schema field, and how to build a frame where it
// is n.
type sizeBound struct {
	field    protoreflect.FullName // in the schema
	path     string                // ParseError.Field when out of bounds
	min, max int
	optional bool // 0 is accepted too
	frame    func(t testing.TB, n int) *wirepb.Frame
}

// bytesBound builds a sizeBound for a byte field of sample, set by set.
func bytesBound(field, path, sample string, min, max int, set func(f *wirepb.Frame, b []byte)) sizeBound {
	return sizeBound{field: protoreflect.FullName("sotto.wire.v1." + field), path: path, min: min, max: max,
		frame: func(t testing.TB, n int) *wirepb.Frame {
			f := sampleNamed(t, sample)
			set(f, fill(n, 0xA5))
			return f
		}}
}

func optionalBound(b sizeBound) sizeBound { b.optional = true; return b }

func sizeBounds() []sizeBound {
	rq := func(f *wirepb.Frame) *wirepb.Request { return f.GetRequest() }
	rs := func(f *wirepb.Frame) *wirepb.Response { return f.GetResponse() }
	return []sizeBound{
		// Requests.
		bytesBound("Authenticate.account_id", "request.authenticate.account_id", "request-authenticate", AccountIDSize, AccountIDSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetAuthenticate().AccountId = b }),
		bytesBound("Authenticate.signature", "request.authenticate.signature", "request-authenticate", SignatureSize, SignatureSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetAuthenticate().Signature = b }),
		bytesBound("Register.seed", "request.register.seed", "request-register", SeedSize, SeedSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetRegister().Seed = b }),
		bytesBound("Register.solution", "request.register.solution", "request-register", 0, MaxSolutionSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetRegister().Solution = b }),
		bytesBound("Register.identity_key", "request.register.identity_key", "request-register", PublicKeySize, PublicKeySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetRegister().IdentityKey = b }),
		bytesBound("Register.auth_key", "request.register.auth_key", "request-register", PublicKeySize, PublicKeySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetRegister().AuthKey = b }),
		optionalBound(bytesBound("Register.unidentified_access_key", "request.register.unidentified_access_key", "request-register", AccessKeySize, AccessKeySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetRegister().UnidentifiedAccessKey = b })),
		bytesBound("PreKey.key", "request.upload_prekeys.one_time_ec[1].key", "request-upload_prekeys", PublicKeySize, PublicKeySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetUploadPrekeys().OneTimeEc[1].Key = b }),
		bytesBound("SignedPreKey.key", "request.upload_prekeys.signed_prekey.key", "request-upload_prekeys", PublicKeySize, PublicKeySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetUploadPrekeys().SignedPrekey.Key = b }),
		bytesBound("SignedPreKey.signature", "request.upload_prekeys.signed_prekey.signature", "request-upload_prekeys", SignatureSize, SignatureSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetUploadPrekeys().SignedPrekey.Signature = b }),
		bytesBound("KEMPreKey.key", "request.upload_prekeys.kem_last_resort.key", "request-upload_prekeys", KEMPublicKeySize, KEMPublicKeySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetUploadPrekeys().KemLastResort.Key = b }),
		bytesBound("KEMPreKey.signature", "request.upload_prekeys.one_time_kem[0].signature", "request-upload_prekeys", SignatureSize, SignatureSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetUploadPrekeys().OneTimeKem[0].Signature = b }),
		bytesBound("GetBundles.account_id", "request.get_bundles.account_id", "request-get_bundles", AccountIDSize, AccountIDSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetGetBundles().AccountId = b }),
		bytesBound("Send.recipient", "request.send.recipient", "request-send", AccountIDSize, AccountIDSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetSend().Recipient = b }),
		optionalBound(bytesBound("Send.access_key", "request.send.access_key", "request-send", AccessKeySize, AccessKeySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetSend().AccessKey = b })),
		bytesBound("OutgoingEnvelope.content", "request.send.envelopes[1].content", "request-send", 1, MaxContentSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetSend().Envelopes[1].Content = b }),
		bytesBound("SendMulti.payload", "request.send_multi.payload", "request-send_multi", 1, MaxMultiPayloadSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetSendMulti().Payload = b }),
		bytesBound("SendMulti.access_key", "request.send_multi.access_key", "request-send_multi", AccessKeySize, AccessKeySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetSendMulti().AccessKey = b }),
		optionalBound(bytesBound("SetUnidentifiedAccessKey.key", "request.set_unidentified_access_key.key", "request-set_unidentified_access_key", AccessKeySize, AccessKeySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetSetUnidentifiedAccessKey().Key = b })),
		bytesBound("SetUsername.hash", "request.set_username.hash", "request-set_username", UsernameHashSize, UsernameHashSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetSetUsername().Hash = b }),
		bytesBound("SetProfile.ciphertext", "request.set_profile.ciphertext", "request-set_profile", 0, MaxProfileSize,
			func(f *wirepb.Frame, b []byte) { f.GetRequest().GetSetProfile().Ciphertext = b }),
		bytesBound("GetProfile.account_id", "request.get_profile.account_id", "request-get_profile", AccountIDSize, AccountIDSize,
			func(f *wirepb.Frame, b []byte) { f.GetRequest().GetGetProfile().AccountId = b }),
		bytesBound("Profile.ciphertext", "response.profile.ciphertext", "response-profile", 0, MaxProfileSize,
			func(f *wirepb.Frame, b []byte) { f.GetResponse().GetProfile().Ciphertext = b }),
		bytesBound("LookupUsername.hash", "request.lookup_username.hash", "request-lookup_username", UsernameHashSize, UsernameHashSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetLookupUsername().Hash = b }),
		bytesBound("SendProvisioning.address", "request.send_provisioning.address", "request-send_provisioning", ProvisioningAddressSize, ProvisioningAddressSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetSendProvisioning().Address = b }),
		bytesBound("SendProvisioning.body", "request.send_provisioning.body", "request-send_provisioning", 1, MaxProvisioningBodySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetSendProvisioning().Body = b }),
		bytesBound("LinkDevice.link_token", "request.link_device.link_token", "request-link_device", LinkTokenSize, LinkTokenSize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetLinkDevice().LinkToken = b }),
		bytesBound("LinkDevice.auth_key", "request.link_device.auth_key", "request-link_device", PublicKeySize, PublicKeySize,
			func(f *wirepb.Frame, b []byte) { rq(f).GetLinkDevice().AuthKey = b }),

		// Responses.
		bytesBound("Challenge.nonce", "response.challenge.nonce", "response-challenge", NonceSize, NonceSize,
			func(f *wirepb.Frame, b []byte) { rs(f).GetChallenge().Nonce = b }),
		bytesBound("RegistrationChallenge.seed", "response.registration_challenge.seed", "response-registration_challenge", SeedSize, SeedSize,
			func(f *wirepb.Frame, b []byte) { rs(f).GetRegistrationChallenge().Seed = b }),
		bytesBound("Registered.account_id", "response.registered.account_id", "response-registered", AccountIDSize, AccountIDSize,
			func(f *wirepb.Frame, b []byte) { rs(f).GetRegistered().AccountId = b }),
		bytesBound("Registered.trust_root", "response.registered.trust_root", "response-registered", PublicKeySize, PublicKeySize,
			func(f *wirepb.Frame, b []byte) { rs(f).GetRegistered().TrustRoot = b }),
		bytesBound("Bundles.identity_key", "response.bundles.identity_key", "response-bundles", PublicKeySize, PublicKeySize,
			func(f *wirepb.Frame, b []byte) { rs(f).GetBundles().IdentityKey = b }),
		bytesBound("SenderCertificate.certificate", "response.sender_certificate.certificate", "response-sender_certificate", 1, MaxCertificateSize,
			func(f *wirepb.Frame, b []byte) { rs(f).GetSenderCertificate().Certificate = b }),
		bytesBound("UsernameAccount.account_id", "response.username_account.account_id", "response-username_account", AccountIDSize, AccountIDSize,
			func(f *wirepb.Frame, b []byte) { rs(f).GetUsernameAccount().AccountId = b }),
		bytesBound("LinkToken.token", "response.link_token.token", "response-link_token", LinkTokenSize, LinkTokenSize,
			func(f *wirepb.Frame, b []byte) { rs(f).GetLinkToken().Token = b }),
		bytesBound("ProvisioningAddress.address", "response.provisioning_address.address", "response-provisioning_address", ProvisioningAddressSize, ProvisioningAddressSize,
			func(f *wirepb.Frame, b []byte) { rs(f).GetProvisioningAddress().Address = b }),
		bytesBound("Status.message", "response.status.message", "response-error", 0, MaxStatusMessageSize,
			func(f *wirepb.Frame, b []byte) { rs(f).Status.Message = strings.Repeat("a", len(b)) }),
		bytesBound("Status.unknown_accounts", "response.status.unknown_accounts[1]", "response-unknown-accounts", AccountIDSize, AccountIDSize,
			func(f *wirepb.Frame, b []byte) { rs(f).Status.UnknownAccounts[1] = b }),
		bytesBound("RecipientMismatch.account_id", "response.status.mismatches[1].account_id", "response-mismatched", AccountIDSize, AccountIDSize,
			func(f *wirepb.Frame, b []byte) { rs(f).Status.Mismatches[1].AccountId = b }),

		// Pushes.
		bytesBound("Envelope.content", "push.envelopes.envelopes[2].content", "push-envelopes", 1, MaxContentSize,
			func(f *wirepb.Frame, b []byte) { f.GetPush().GetEnvelopes().Envelopes[2].Content = b }),
		bytesBound("ProvisioningMessage.body", "push.provisioning_message.body", "push-provisioning_message", 1, MaxProvisioningBodySize,
			func(f *wirepb.Frame, b []byte) { f.GetPush().GetProvisioningMessage().Body = b }),
		bytesBound("EphemeralEnvelope.content", "push.ephemeral_envelope.content", "push-ephemeral_envelope", 1, MaxContentSize,
			func(f *wirepb.Frame, b []byte) { f.GetPush().GetEphemeralEnvelope().Content = b }),

		// Repeated fields.
		countBound("Send.envelopes", "request.send.envelopes", 1, MaxEnvelopesPerSend, func(t testing.TB, n int) *wirepb.Frame {
			f := sendFrame(min(n, MaxDeviceID), 10)
			s := f.GetRequest().GetSend()
			for len(s.Envelopes) < n { // over the bound: ids must repeat
				s.Envelopes = append(s.Envelopes, s.Envelopes[0])
			}
			return f
		}),
		countBound("SendToOwnDevices.envelopes", "request.send_to_own_devices.envelopes", 1, MaxEnvelopesPerSend-1, func(t testing.TB, n int) *wirepb.Frame {
			envs := sendFrame(min(n, MaxDeviceID), 10).GetRequest().GetSend().GetEnvelopes()
			for len(envs) < n { // over the bound: ids must repeat
				envs = append(envs, envs[0])
			}
			return NewRequest(42, &wirepb.SendToOwnDevices{Envelopes: envs})
		}),
		countBound("Ack.ids", "request.ack.ids", 1, MaxAckIDs, func(t testing.TB, n int) *wirepb.Frame {
			a := &wirepb.Ack{}
			for i := range n {
				a.Ids = append(a.Ids, uint64(i+1))
			}
			return NewRequest(1, a)
		}),
		countBound("UploadPreKeys.one_time_ec", "request.upload_prekeys.one_time_ec", 0, MaxOneTimePreKeysPerUpload, func(t testing.TB, n int) *wirepb.Frame {
			f := sampleNamed(t, "request-upload_prekeys")
			u := f.GetRequest().GetUploadPrekeys()
			u.OneTimeEc = nil
			for i := range n {
				u.OneTimeEc = append(u.OneTimeEc, samplePreKey(uint32(i)))
			}
			return f
		}),
		countBound("UploadPreKeys.one_time_kem", "request.upload_prekeys.one_time_kem", 0, MaxOneTimePreKeysPerUpload, func(t testing.TB, n int) *wirepb.Frame {
			f := sampleNamed(t, "request-upload_prekeys")
			u := f.GetRequest().GetUploadPrekeys()
			u.OneTimeKem = nil
			for i := range n {
				u.OneTimeKem = append(u.OneTimeKem, sampleKEMPreKey(uint32(i)))
			}
			return f
		}),
		countBound("Bundles.bundles", "response.bundles.bundles", 1, MaxDeviceID, func(t testing.TB, n int) *wirepb.Frame {
			b := &wirepb.Bundles{IdentityKey: sampleKey()}
			for i := range n {
				b.Bundles = append(b.Bundles, sampleBundle(uint32(i%MaxDeviceID+1)))
			}
			return Respond(1, b)
		}),
		countBound("DeviceList.devices", "response.device_list.devices", 1, MaxDeviceID, func(t testing.TB, n int) *wirepb.Frame {
			l := &wirepb.DeviceList{}
			for i := range n {
				l.Devices = append(l.Devices, &wirepb.DeviceInfo{Id: uint32(i + 1), RegistrationId: 1})
			}
			return Respond(1, l)
		}),
		countBound("Status.mismatches", "response.status.mismatches", 1, MaxMismatchedRecipients, func(t testing.TB, n int) *wirepb.Frame {
			var ms []*wirepb.RecipientMismatch
			for i := range n {
				ms = append(ms, &wirepb.RecipientMismatch{AccountId: fill(AccountIDSize, byte(i)), Stale: []uint32{1}})
			}
			return Mismatched(1, ms)
		}),
		countBound("Status.unknown_accounts", "response.status.unknown_accounts", 0, MaxMismatchedRecipients, func(t testing.TB, n int) *wirepb.Frame {
			f := Error(1, wirepb.Code_NOT_FOUND, "")
			for i := range n {
				f.GetResponse().Status.UnknownAccounts = append(f.GetResponse().Status.UnknownAccounts, fill(AccountIDSize, byte(i)))
			}
			return f
		}),
		countBound("RecipientMismatch.missing", "response.status.mismatches[0].missing", 0, MaxDeviceID, mismatchList("missing")),
		countBound("RecipientMismatch.extra", "response.status.mismatches[0].extra", 0, MaxDeviceID, mismatchList("extra")),
		countBound("RecipientMismatch.stale", "response.status.mismatches[0].stale", 0, MaxDeviceID, mismatchList("stale")),
		countBound("Envelopes.envelopes", "push.envelopes.envelopes", 1, MaxEnvelopesPerPush, func(t testing.TB, n int) *wirepb.Frame {
			return envelopesFrame(n, 10)
		}),
	}
}

func countBound(field, path string, min, max int, frame func(t testing.TB, n int) *wirepb.Frame) sizeBound {
	return sizeBound{field: protoreflect.FullName("sotto.wire.v1." + field), path: path, min: min, max: max, frame: frame}
}

// mismatchList builds a mismatch response whose one entry has n device ids
// in list (and one device in another list, so it is never empty); ids
// repeat only beyond MaxDeviceID.
func mismatchList(list string) func(t testing.TB, n int) *wirepb.Frame {
	return func(t testing.TB, n int) *wirepb.Frame {
		ids := make([]uint32, n)
		for i := range ids {
			ids[i] = uint32(i%MaxDeviceID + 1)
		}
		m := &wirepb.RecipientMismatch{AccountId: sampleAccount()}
		switch list {
		case "missing":
			m.Missing, m.Stale = ids, []uint32{1}
		case "extra":
			m.Extra, m.Missing = ids, []uint32{1}
		case "stale":
			m.Stale, m.Missing = ids, []uint32{1}
		}
		return Mismatched(1, []*wirepb.RecipientMismatch{m})
	}
}

// TestSizeBounds: every byte field, string and repeated field is accepted
// at its bounds and refused just outside them, by Decode and by Encode, with
// the field named.
func TestSizeBounds(t *testing.T) {
	for _, b := range sizeBounds() {
		t.Run(string(b.field), func(t *testing.T) {
			accept := []int{b.min, b.max}
			if b.optional {
				accept = append(accept, 0)
			}
			for _, n := range accept {
				f := b.frame(t, n)
				enc, err := Encode(f)
				if err != nil {
					t.Fatalf("n = %d: Encode: %v", n, err)
				}
				if _, err := Decode(enc); err != nil {
					t.Fatalf("n = %d: Decode: %v", n, err)
				}
			}
			reject := []int{b.max + 1}
			if b.min > 0 && !(b.optional && b.min == 1) {
				reject = append(reject, b.min-1)
			}
			for _, n := range reject {
				f := b.frame(t, n)
				if _, err := Encode(f); err == nil {
					t.Errorf("n = %d: Encode accepts it", n)
				}
				enc, err := marshalOptions().Marshal(f)
				if err != nil {
					t.Fatal(err)
				}
				_, err = Decode(enc)
				if err == nil {
					t.Fatalf("n = %d: Decode accepts it", n)
				}
				if pe := parseError(t, err); pe.Field != b.path || pe.Code() != wirepb.Code_BAD_REQUEST {
					t.Errorf("n = %d: error %q at %q, want one at %q", n, err, pe.Field, b.path)
				}
			}
		})
	}
}

// TestSchemaBounds checks that every byte field, string and repeated field
// of the schema has a row in sizeBounds, that the scan's count bounds agree
// with it, and that field numbers fit the scan's arrays.
func TestSchemaBounds(t *testing.T) {
	rows := map[protoreflect.FullName]sizeBound{}
	for _, b := range sizeBounds() {
		rows[b.field] = b
	}
	msgs := wirepb.File_sotto_wire_v1_wire_proto.Messages()
	for i := range msgs.Len() {
		fields := msgs.Get(i).Fields()
		for j := range fields.Len() {
			fd := fields.Get(j)
			if fd.Number() >= maxFieldNumber {
				t.Errorf("%s: number %d, scan tracks numbers below %d", fd.FullName(), fd.Number(), maxFieldNumber)
			}
			if !fd.IsList() && fd.Kind() != protoreflect.BytesKind && fd.Kind() != protoreflect.StringKind {
				continue
			}
			row, ok := rows[fd.FullName()]
			if !ok {
				t.Errorf("%s: no bound in sizeBounds", fd.FullName())
				continue
			}
			if fd.IsList() && fd.Kind() != protoreflect.BytesKind && maxCount(fd) != row.max {
				t.Errorf("%s: scan bound %d, validator bound %d", fd.FullName(), maxCount(fd), row.max)
			}
			if fd.IsList() && maxCount(fd) == 0 {
				t.Errorf("%s: repeated field without a scan bound", fd.FullName())
			}
		}
	}
	if maxCount(msgs.ByName("Status").Fields().ByName("unknown_accounts")) != MaxMismatchedRecipients {
		t.Error("Status.unknown_accounts: scan bound")
	}
}

// numberBound is the accepted range of a number field.
type numberBound struct {
	name   string
	path   string
	lo, hi uint32
	frame  func(t testing.TB, v uint32) *wirepb.Frame
}

func TestNumberBounds(t *testing.T) {
	req := func(sample string, set func(r *wirepb.Request, v uint32)) func(t testing.TB, v uint32) *wirepb.Frame {
		return func(t testing.TB, v uint32) *wirepb.Frame {
			f := sampleNamed(t, sample)
			set(f.GetRequest(), v)
			return f
		}
	}
	resp := func(sample string, set func(r *wirepb.Response, v uint32)) func(t testing.TB, v uint32) *wirepb.Frame {
		return func(t testing.TB, v uint32) *wirepb.Frame {
			f := sampleNamed(t, sample)
			set(f.GetResponse(), v)
			return f
		}
	}
	dev, reg := uint32(MaxDeviceID), uint32(MaxRegistrationID)
	tests := []numberBound{
		{"Authenticate.device_id", "request.authenticate.device_id", 1, dev, req("request-authenticate", func(r *wirepb.Request, v uint32) { r.GetAuthenticate().DeviceId = v })},
		{"Register.registration_id", "request.register.registration_id", 1, reg, req("request-register", func(r *wirepb.Request, v uint32) { r.GetRegister().RegistrationId = v })},
		{"GetBundles.device_id", "request.get_bundles.device_id", 0, dev, req("request-get_bundles", func(r *wirepb.Request, v uint32) { r.GetGetBundles().DeviceId = v })},
		{"OutgoingEnvelope.device_id", "request.send.envelopes[0].device_id", 1, dev, req("request-send", func(r *wirepb.Request, v uint32) { r.GetSend().Envelopes[0].DeviceId = v })},
		{"OutgoingEnvelope.registration_id", "request.send.envelopes[1].registration_id", 1, reg, req("request-send", func(r *wirepb.Request, v uint32) { r.GetSend().Envelopes[1].RegistrationId = v })},
		{"RemoveDevice.device_id", "request.remove_device.device_id", 1, dev, req("request-remove_device", func(r *wirepb.Request, v uint32) { r.GetRemoveDevice().DeviceId = v })},
		{"LinkDevice.registration_id", "request.link_device.registration_id", 1, reg, req("request-link_device", func(r *wirepb.Request, v uint32) { r.GetLinkDevice().RegistrationId = v })},
		{"RegistrationChallenge.difficulty", "response.registration_challenge.difficulty", 0, MaxRegistrationDifficulty, resp("response-registration_challenge", func(r *wirepb.Response, v uint32) { r.GetRegistrationChallenge().Difficulty = v })},
		{"Registered.device_id", "response.registered.device_id", 1, dev, resp("response-registered", func(r *wirepb.Response, v uint32) { r.GetRegistered().DeviceId = v })},
		{"Bundle.device_id", "response.bundles.bundles[0].device_id", 1, dev, resp("response-bundles", func(r *wirepb.Response, v uint32) { r.GetBundles().Bundles[0].DeviceId = v })},
		{"Bundle.registration_id", "response.bundles.bundles[0].registration_id", 1, reg, resp("response-bundles", func(r *wirepb.Response, v uint32) { r.GetBundles().Bundles[0].RegistrationId = v })},
		{"DeviceInfo.id", "response.device_list.devices[1].id", 2, dev, resp("response-device_list", func(r *wirepb.Response, v uint32) { r.GetDeviceList().Devices[1].Id = v })},
		{"DeviceInfo.registration_id", "response.device_list.devices[0].registration_id", 1, reg, resp("response-device_list", func(r *wirepb.Response, v uint32) { r.GetDeviceList().Devices[0].RegistrationId = v })},
		{"RecipientMismatch.missing", "response.status.mismatches[0].missing[0]", 1, dev, resp("response-mismatched", func(r *wirepb.Response, v uint32) { r.Status.Mismatches[0].Missing[0] = v })},
		{"Status.retry_after_ms", "response.status.retry_after_ms", 0, uint32(MaxRetryAfter.Milliseconds()), resp("response-rate-limited", func(r *wirepb.Response, v uint32) { r.Status.RetryAfterMs = v })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []uint32{tc.lo, tc.hi} {
				if _, err := Decode(mustEncode(t, tc.frame(t, v))); err != nil {
					t.Errorf("%d: %v", v, err)
				}
			}
			reject := []uint32{tc.hi + 1}
			if tc.lo > 0 {
				reject = append(reject, tc.lo-1)
			}
			for _, v := range reject {
				b, err := marshalOptions().Marshal(tc.frame(t, v))
				if err != nil {
					t.Fatal(err)
				}
				_, err = Decode(b)
				if err == nil {
					t.Fatalf("%d accepted", v)
				}
				if pe := parseError(t, err); pe.Field != tc.path {
					t.Errorf("%d: error %q at %q, want one at %q", v, err, pe.Field, tc.path)
				}
			}
		})
	}
}

// TestDistinct: per-device lists and id lists refuse repeats.
func TestDistinct(t *testing.T) {
	tests := []struct {
		name, path string
		frame      *wirepb.Frame
	}{
		{"send devices", "request.send.envelopes[1].device_id", func() *wirepb.Frame {
			f := sendFrame(2, 1)
			f.GetRequest().GetSend().Envelopes[1].DeviceId = 1
			return f
		}()},
		{"one-time EC ids", "request.upload_prekeys.one_time_ec[1].id", func() *wirepb.Frame {
			f := sampleNamed(t, "request-upload_prekeys")
			f.GetRequest().GetUploadPrekeys().OneTimeEc[1].Id = 1
			return f
		}()},
		{"one-time KEM ids", "request.upload_prekeys.one_time_kem[1].id", func() *wirepb.Frame {
			f := sampleNamed(t, "request-upload_prekeys")
			f.GetRequest().GetUploadPrekeys().OneTimeKem[1].Id = 2
			return f
		}()},
		{"bundle devices", "response.bundles.bundles[1].device_id", func() *wirepb.Frame {
			f := sampleNamed(t, "response-bundles")
			f.GetResponse().GetBundles().Bundles[1].DeviceId = 1
			return f
		}()},
		{"device list order", "response.device_list.devices[1].id", func() *wirepb.Frame {
			f := sampleNamed(t, "response-device_list")
			f.GetResponse().GetDeviceList().Devices[1].Id = 1
			return f
		}()},
		{"mismatch devices", "response.status.mismatches[0].extra[1]", func() *wirepb.Frame {
			f := sampleNamed(t, "response-mismatched")
			f.GetResponse().Status.Mismatches[0].Extra[1] = 4
			return f
		}()},
		{"pushed envelope ids", "push.envelopes.envelopes[2].id", func() *wirepb.Frame {
			f := envelopesFrame(3, 1)
			f.GetPush().GetEnvelopes().Envelopes[2].Id = 1000
			return f
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.frame)
			if err == nil {
				t.Fatal("accepted")
			}
			if pe := parseError(t, err); pe.Field != tc.path {
				t.Errorf("error %q at %q, want one at %q", err, pe.Field, tc.path)
			}
		})
	}
	// Envelope ids out of order but distinct are fine.
	f := envelopesFrame(3, 1)
	f.GetPush().GetEnvelopes().Envelopes[0].Id = 5000
	if err := Validate(f); err != nil {
		t.Fatal(err)
	}
}

// TestPresence: required messages and non-empty uploads.
func TestPresence(t *testing.T) {
	tests := []struct {
		name, sample, path string
		change             func(f *wirepb.Frame)
	}{
		{"register signed prekey", "request-register", "request.register.signed_prekey", func(f *wirepb.Frame) { f.GetRequest().GetRegister().SignedPrekey = nil }},
		{"register KEM prekey", "request-register", "request.register.kem_last_resort", func(f *wirepb.Frame) { f.GetRequest().GetRegister().KemLastResort = nil }},
		{"empty upload", "request-upload_prekeys", "request.upload_prekeys", func(f *wirepb.Frame) {
			*f.GetRequest().GetUploadPrekeys() = wirepb.UploadPreKeys{}
		}},
		{"bundle KEM prekey", "response-bundles", "response.bundles.bundles[0].kem_prekey", func(f *wirepb.Frame) { f.GetResponse().GetBundles().Bundles[0].KemPrekey = nil }},
		{"mismatch without devices", "response-mismatched", "response.status.mismatches[1]", func(f *wirepb.Frame) { f.GetResponse().Status.Mismatches[1].Stale = nil }},
		{"mismatched without mismatches", "response-mismatched", "response.status.mismatches", func(f *wirepb.Frame) { f.GetResponse().Status.Mismatches = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := sampleNamed(t, tc.sample)
			tc.change(f)
			b, err := marshalOptions().Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Decode(b)
			if err == nil {
				t.Fatal("accepted")
			}
			if pe := parseError(t, err); pe.Field != tc.path {
				t.Errorf("error %q at %q, want one at %q", err, pe.Field, tc.path)
			}
		})
	}
	// A bundle without a one-time prekey is fine.
	f := sampleNamed(t, "response-bundles")
	f.GetResponse().GetBundles().Bundles[0].OneTimePrekey = nil
	if _, err := Decode(mustEncode(t, f)); err != nil {
		t.Fatal(err)
	}
}

// TestFrameSize: a valid frame of exactly MaxFrameSize bytes decodes; one
// byte more is refused before parsing, by Decode and by Encode.
func TestFrameSize(t *testing.T) {
	f := envelopesFrame(2, MaxContentSize)
	last := f.GetPush().GetEnvelopes().Envelopes[1]
	// Shrink the last envelope until the frame is MaxFrameSize bytes; the
	// length prefixes change size near the edges, so step one byte at a time
	// from a close guess.
	last.Content = last.Content[:len(last.Content)-(proto.Size(f)-MaxFrameSize)]
	for proto.Size(f) > MaxFrameSize {
		last.Content = last.Content[:len(last.Content)-1]
	}
	if proto.Size(f) != MaxFrameSize {
		t.Fatalf("could not build a frame of %d bytes (got %d)", MaxFrameSize, proto.Size(f))
	}
	b := mustEncode(t, f)
	if _, err := Decode(b); err != nil {
		t.Fatalf("frame of MaxFrameSize: %v", err)
	}
	last.Content = append(last.Content, 0)
	if _, err := Encode(f); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Encode of MaxFrameSize+1: %v", err)
	}
	b, _ = marshalOptions().Marshal(f)
	if _, err := Decode(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode of MaxFrameSize+1 bytes: %v", err)
	}
}
