package wire

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// The validators check decoded messages against the bounds documented in
// wire.proto, one function per message. Each returns nil or a *ParseError
// whose Field is relative to the message; callers prefix it with in and at.
// They never return a nil *ParseError as a non-nil error: only Validate and
// Decode convert to error.

func validateFrame(f *wirepb.Frame) *ParseError {
	if f == nil {
		return bad("", "no frame")
	}
	if f.Version != Version {
		return &ParseError{Field: "version", Reason: fmt.Sprintf("version %d, want %d", f.Version, Version), ID: frameID(f), Err: ErrUnsupportedVersion}
	}
	switch k := f.Kind.(type) {
	case *wirepb.Frame_Request:
		return validateRequest(k.Request).in("request")
	case *wirepb.Frame_Response:
		return validateResponse(k.Response).in("response")
	case *wirepb.Frame_Push:
		return validatePush(k.Push).in("push")
	}
	return bad("", "frame has no request, response or push")
}

// ---- Field checks ----

// exact checks a required byte field of a fixed size.
func exact(name string, b []byte, size int) *ParseError {
	if len(b) != size {
		return bad(name, fmt.Sprintf("%d bytes, want %d", len(b), size))
	}
	return nil
}

// optional checks a byte field that is absent or of a fixed size.
func optional(name string, b []byte, size int) *ParseError {
	if len(b) != 0 && len(b) != size {
		return bad(name, fmt.Sprintf("%d bytes, want %d or none", len(b), size))
	}
	return nil
}

// sized checks a byte field of min to max bytes.
func sized(name string, b []byte, min, max int) *ParseError {
	if len(b) < min || len(b) > max {
		return bad(name, fmt.Sprintf("%d bytes, want %d to %d", len(b), min, max))
	}
	return nil
}

// count checks the length of a repeated field.
func count(name string, n, min, max int) *ParseError {
	if n < min || n > max {
		return bad(name, fmt.Sprintf("%d elements, want %d to %d", n, min, max))
	}
	return nil
}

// between checks a number field.
func between(name string, v uint32, min, max int) *ParseError {
	if int64(v) < int64(min) || int64(v) > int64(max) {
		return bad(name, fmt.Sprintf("%d, want %d to %d", v, min, max))
	}
	return nil
}

func deviceID(name string, v uint32) *ParseError { return between(name, v, 1, MaxDeviceID) }

func registrationID(name string, v uint32) *ParseError {
	return between(name, v, 1, MaxRegistrationID)
}

// missing is the error of an absent required message.
func missing(name string) *ParseError { return bad(name, "missing") }

// first returns the first non-nil error.
func first(errs ...*ParseError) *ParseError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// deviceSet records device ids (1 to MaxDeviceID) to find repeats.
type deviceSet [2]uint64

// add records id and reports whether it was new.
func (s *deviceSet) add(id uint32) bool {
	w, bit := id/64, uint64(1)<<(id%64)
	if s[w]&bit != 0 {
		return false
	}
	s[w] |= bit
	return true
}

// ---- Requests ----

func validateRequest(r *wirepb.Request) *ParseError {
	if r == nil {
		return missing("")
	}
	if r.Id == 0 {
		return bad("id", "must not be 0")
	}
	switch b := r.Body.(type) {
	case *wirepb.Request_GetChallenge:
		return present(b.GetChallenge != nil, "get_challenge")
	case *wirepb.Request_Authenticate:
		return validateAuthenticate(b.Authenticate).in("authenticate")
	case *wirepb.Request_GetRegistrationChallenge:
		return present(b.GetRegistrationChallenge != nil, "get_registration_challenge")
	case *wirepb.Request_Register:
		return validateRegister(b.Register).in("register")
	case *wirepb.Request_UploadPrekeys:
		return validateUploadPreKeys(b.UploadPrekeys).in("upload_prekeys")
	case *wirepb.Request_GetPrekeyCount:
		return present(b.GetPrekeyCount != nil, "get_prekey_count")
	case *wirepb.Request_GetBundles:
		return validateGetBundles(b.GetBundles).in("get_bundles")
	case *wirepb.Request_Send:
		return validateSend(b.Send).in("send")
	case *wirepb.Request_SendMulti:
		return validateSendMulti(b.SendMulti).in("send_multi")
	case *wirepb.Request_Ack:
		return validateAck(b.Ack).in("ack")
	case *wirepb.Request_GetSenderCertificate:
		return present(b.GetSenderCertificate != nil, "get_sender_certificate")
	case *wirepb.Request_SetUnidentifiedAccessKey:
		if b.SetUnidentifiedAccessKey == nil {
			return missing("set_unidentified_access_key")
		}
		return optional("key", b.SetUnidentifiedAccessKey.Key, AccessKeySize).in("set_unidentified_access_key")
	case *wirepb.Request_SetUsername:
		if b.SetUsername == nil {
			return missing("set_username")
		}
		return exact("hash", b.SetUsername.Hash, UsernameHashSize).in("set_username")
	case *wirepb.Request_DeleteUsername:
		return present(b.DeleteUsername != nil, "delete_username")
	case *wirepb.Request_LookupUsername:
		if b.LookupUsername == nil {
			return missing("lookup_username")
		}
		return exact("hash", b.LookupUsername.Hash, UsernameHashSize).in("lookup_username")
	case *wirepb.Request_ListDevices:
		return present(b.ListDevices != nil, "list_devices")
	case *wirepb.Request_RemoveDevice:
		if b.RemoveDevice == nil {
			return missing("remove_device")
		}
		return deviceID("device_id", b.RemoveDevice.DeviceId).in("remove_device")
	case *wirepb.Request_GetLinkToken:
		return present(b.GetLinkToken != nil, "get_link_token")
	case *wirepb.Request_OpenProvisioning:
		return present(b.OpenProvisioning != nil, "open_provisioning")
	case *wirepb.Request_SendProvisioning:
		return validateSendProvisioning(b.SendProvisioning).in("send_provisioning")
	case *wirepb.Request_LinkDevice:
		return validateLinkDevice(b.LinkDevice).in("link_device")
	case *wirepb.Request_DeleteAccount:
		return present(b.DeleteAccount != nil, "delete_account")
	case *wirepb.Request_SetProfile:
		if b.SetProfile == nil {
			return missing("set_profile")
		}
		return sized("ciphertext", b.SetProfile.Ciphertext, 0, MaxProfileSize).in("set_profile")
	case *wirepb.Request_GetProfile:
		if b.GetProfile == nil {
			return missing("get_profile")
		}
		return exact("account_id", b.GetProfile.AccountId, AccountIDSize).in("get_profile")
	case *wirepb.Request_SendToOwnDevices:
		if b.SendToOwnDevices == nil {
			return missing("send_to_own_devices")
		}
		return validateOutgoing(b.SendToOwnDevices.Envelopes, MaxEnvelopesPerSend-1).in("send_to_own_devices")
	}
	return bad("", "request has no body")
}

// present checks that a message without fields is set.
func present(ok bool, name string) *ParseError {
	if !ok {
		return missing(name)
	}
	return nil
}

func validateAuthenticate(a *wirepb.Authenticate) *ParseError {
	if a == nil {
		return missing("")
	}
	return first(
		exact("account_id", a.AccountId, AccountIDSize),
		deviceID("device_id", a.DeviceId),
		exact("signature", a.Signature, SignatureSize),
	)
}

func validateRegister(r *wirepb.Register) *ParseError {
	if r == nil {
		return missing("")
	}
	if e := first(
		exact("seed", r.Seed, SeedSize),
		sized("solution", r.Solution, 0, MaxSolutionSize),
		exact("identity_key", r.IdentityKey, PublicKeySize),
		exact("auth_key", r.AuthKey, PublicKeySize),
		registrationID("registration_id", r.RegistrationId),
		validateSignedPreKey(r.SignedPrekey, true).in("signed_prekey"),
		validateKEMPreKey(r.KemLastResort, true).in("kem_last_resort"),
		optional("unidentified_access_key", r.UnidentifiedAccessKey, AccessKeySize),
	); e != nil {
		return e
	}
	if bytes.Equal(r.AuthKey, r.IdentityKey) {
		return bad("auth_key", "equals the identity key")
	}
	return nil
}

// validatePreKey checks a one-time EC prekey.
func validatePreKey(k *wirepb.PreKey, required bool) *ParseError {
	if k == nil {
		if required {
			return missing("")
		}
		return nil
	}
	return exact("key", k.Key, PublicKeySize)
}

// validateSignedPreKey checks a signed EC prekey.
func validateSignedPreKey(k *wirepb.SignedPreKey, required bool) *ParseError {
	if k == nil {
		if required {
			return missing("")
		}
		return nil
	}
	return first(
		exact("key", k.Key, PublicKeySize),
		exact("signature", k.Signature, SignatureSize),
	)
}

// validateKEMPreKey checks a signed KEM prekey.
func validateKEMPreKey(k *wirepb.KEMPreKey, required bool) *ParseError {
	if k == nil {
		if required {
			return missing("")
		}
		return nil
	}
	return first(
		exact("key", k.Key, KEMPublicKeySize),
		exact("signature", k.Signature, SignatureSize),
	)
}

func validateUploadPreKeys(u *wirepb.UploadPreKeys) *ParseError {
	if u == nil {
		return missing("")
	}
	if u.SignedPrekey == nil && u.KemLastResort == nil && len(u.OneTimeEc) == 0 && len(u.OneTimeKem) == 0 {
		return bad("", "uploads nothing")
	}
	if e := first(
		validateSignedPreKey(u.SignedPrekey, false).in("signed_prekey"),
		validateKEMPreKey(u.KemLastResort, false).in("kem_last_resort"),
		count("one_time_ec", len(u.OneTimeEc), 0, MaxOneTimePreKeysPerUpload),
		count("one_time_kem", len(u.OneTimeKem), 0, MaxOneTimePreKeysPerUpload),
	); e != nil {
		return e
	}
	for i, k := range u.OneTimeEc {
		if e := validatePreKey(k, true); e != nil {
			return e.at("one_time_ec", i)
		}
		for _, prev := range u.OneTimeEc[:i] {
			if prev.Id == k.Id {
				return bad("id", fmt.Sprintf("repeats id %d", k.Id)).at("one_time_ec", i)
			}
		}
	}
	for i, k := range u.OneTimeKem {
		if e := validateKEMPreKey(k, true); e != nil {
			return e.at("one_time_kem", i)
		}
		for _, prev := range u.OneTimeKem[:i] {
			if prev.Id == k.Id {
				return bad("id", fmt.Sprintf("repeats id %d", k.Id)).at("one_time_kem", i)
			}
		}
	}
	return nil
}

func validateGetBundles(g *wirepb.GetBundles) *ParseError {
	if g == nil {
		return missing("")
	}
	return first(
		exact("account_id", g.AccountId, AccountIDSize),
		between("device_id", g.DeviceId, 0, MaxDeviceID),
	)
}

func validateSend(s *wirepb.Send) *ParseError {
	if s == nil {
		return missing("")
	}
	if e := first(
		exact("recipient", s.Recipient, AccountIDSize),
		optional("access_key", s.AccessKey, AccessKeySize),
	); e != nil {
		return e
	}
	return validateOutgoing(s.Envelopes, MaxEnvelopesPerSend)
}

// validateOutgoing checks 1 to max outgoing envelopes for distinct devices.
func validateOutgoing(envs []*wirepb.OutgoingEnvelope, max int) *ParseError {
	if e := count("envelopes", len(envs), 1, max); e != nil {
		return e
	}
	var devices deviceSet
	for i, env := range envs {
		if env == nil {
			return missing("").at("envelopes", i)
		}
		if e := first(
			deviceID("device_id", env.DeviceId),
			registrationID("registration_id", env.RegistrationId),
			sized("content", env.Content, 1, MaxContentSize),
		); e != nil {
			return e.at("envelopes", i)
		}
		if !devices.add(env.DeviceId) {
			return bad("device_id", fmt.Sprintf("repeats device %d", env.DeviceId)).at("envelopes", i)
		}
	}
	return nil
}

func validateSendMulti(s *wirepb.SendMulti) *ParseError {
	if s == nil {
		return missing("")
	}
	return first(
		sized("payload", s.Payload, 1, MaxMultiPayloadSize),
		exact("access_key", s.AccessKey, AccessKeySize),
	)
}

func validateAck(a *wirepb.Ack) *ParseError {
	if a == nil {
		return missing("")
	}
	if e := count("ids", len(a.Ids), 1, MaxAckIDs); e != nil {
		return e
	}
	for i, id := range a.Ids {
		if id == 0 {
			return bad("", "id 0").at("ids", i)
		}
	}
	return nil
}

func validateSendProvisioning(s *wirepb.SendProvisioning) *ParseError {
	if s == nil {
		return missing("")
	}
	return first(
		exact("address", s.Address, ProvisioningAddressSize),
		sized("body", s.Body, 1, MaxProvisioningBodySize),
	)
}

func validateLinkDevice(l *wirepb.LinkDevice) *ParseError {
	if l == nil {
		return missing("")
	}
	return first(
		exact("link_token", l.LinkToken, LinkTokenSize),
		exact("auth_key", l.AuthKey, PublicKeySize),
		registrationID("registration_id", l.RegistrationId),
		validateSignedPreKey(l.SignedPrekey, true).in("signed_prekey"),
		validateKEMPreKey(l.KemLastResort, true).in("kem_last_resort"),
	)
}

// ---- Responses ----

func validateResponse(r *wirepb.Response) *ParseError {
	if r == nil {
		return missing("")
	}
	code := r.GetStatus().GetCode()
	if r.Id == 0 && code == wirepb.Code_OK {
		return bad("id", "must not be 0 in a successful response")
	}
	if e := validateStatus(r.Status).in("status"); e != nil {
		return e
	}
	if code != wirepb.Code_OK && r.Body != nil {
		return bad("", "error response with a body")
	}
	switch b := r.Body.(type) {
	case nil:
		return nil
	case *wirepb.Response_Challenge:
		if b.Challenge == nil {
			return missing("challenge")
		}
		return exact("nonce", b.Challenge.Nonce, NonceSize).in("challenge")
	case *wirepb.Response_RegistrationChallenge:
		c := b.RegistrationChallenge
		if c == nil {
			return missing("registration_challenge")
		}
		return first(
			exact("seed", c.Seed, SeedSize),
			between("difficulty", c.Difficulty, 0, MaxRegistrationDifficulty),
		).in("registration_challenge")
	case *wirepb.Response_Registered:
		g := b.Registered
		if g == nil {
			return missing("registered")
		}
		return first(
			exact("account_id", g.AccountId, AccountIDSize),
			deviceID("device_id", g.DeviceId),
			exact("trust_root", g.TrustRoot, PublicKeySize),
		).in("registered")
	case *wirepb.Response_PrekeyCount:
		return present(b.PrekeyCount != nil, "prekey_count")
	case *wirepb.Response_Bundles:
		return validateBundles(b.Bundles).in("bundles")
	case *wirepb.Response_SenderCertificate:
		if b.SenderCertificate == nil {
			return missing("sender_certificate")
		}
		return sized("certificate", b.SenderCertificate.Certificate, 1, MaxCertificateSize).in("sender_certificate")
	case *wirepb.Response_UsernameAccount:
		if b.UsernameAccount == nil {
			return missing("username_account")
		}
		return exact("account_id", b.UsernameAccount.AccountId, AccountIDSize).in("username_account")
	case *wirepb.Response_DeviceList:
		return validateDeviceList(b.DeviceList).in("device_list")
	case *wirepb.Response_LinkToken:
		if b.LinkToken == nil {
			return missing("link_token")
		}
		return exact("token", b.LinkToken.Token, LinkTokenSize).in("link_token")
	case *wirepb.Response_ProvisioningAddress:
		if b.ProvisioningAddress == nil {
			return missing("provisioning_address")
		}
		return exact("address", b.ProvisioningAddress.Address, ProvisioningAddressSize).in("provisioning_address")
	case *wirepb.Response_Profile:
		if b.Profile == nil {
			return missing("profile")
		}
		return sized("ciphertext", b.Profile.Ciphertext, 0, MaxProfileSize).in("profile")
	}
	return bad("", "unknown body")
}

func validateStatus(s *wirepb.Status) *ParseError {
	if s == nil {
		return nil
	}
	if len(s.Message) > MaxStatusMessageSize {
		return bad("message", fmt.Sprintf("%d bytes, at most %d", len(s.Message), MaxStatusMessageSize))
	}
	if e := first(
		count("mismatches", len(s.Mismatches), 0, MaxMismatchedRecipients),
		count("unknown_accounts", len(s.UnknownAccounts), 0, MaxMismatchedRecipients),
	); e != nil {
		return e
	}
	if !utf8.ValidString(s.Message) {
		return bad("message", "not UTF-8")
	}
	if int64(s.RetryAfterMs) > MaxRetryAfter.Milliseconds() {
		return bad("retry_after_ms", fmt.Sprintf("%d, at most %d", s.RetryAfterMs, MaxRetryAfter.Milliseconds()))
	}
	if s.Code == wirepb.Code_MISMATCHED_DEVICES && len(s.Mismatches) == 0 {
		return bad("mismatches", "none for MISMATCHED_DEVICES")
	}
	for i, m := range s.Mismatches {
		if e := validateMismatch(m); e != nil {
			return e.at("mismatches", i)
		}
	}
	for i, a := range s.UnknownAccounts {
		if e := exact("", a, AccountIDSize); e != nil {
			return e.at("unknown_accounts", i)
		}
	}
	return nil
}

func validateMismatch(m *wirepb.RecipientMismatch) *ParseError {
	if m == nil {
		return missing("")
	}
	if e := exact("account_id", m.AccountId, AccountIDSize); e != nil {
		return e
	}
	for _, l := range []struct {
		name string
		ids  []uint32
	}{{"missing", m.Missing}, {"extra", m.Extra}, {"stale", m.Stale}} {
		if e := count(l.name, len(l.ids), 0, MaxDeviceID); e != nil {
			return e
		}
		var devices deviceSet
		for i, id := range l.ids {
			if e := deviceID("", id); e != nil {
				return e.at(l.name, i)
			}
			if !devices.add(id) {
				return bad("", fmt.Sprintf("repeats device %d", id)).at(l.name, i)
			}
		}
	}
	if len(m.Missing)+len(m.Extra)+len(m.Stale) == 0 {
		return bad("", "lists no device")
	}
	return nil
}

func validateBundles(b *wirepb.Bundles) *ParseError {
	if b == nil {
		return missing("")
	}
	if e := first(
		exact("identity_key", b.IdentityKey, PublicKeySize),
		count("bundles", len(b.Bundles), 1, MaxDeviceID),
	); e != nil {
		return e
	}
	var devices deviceSet
	for i, d := range b.Bundles {
		if d == nil {
			return missing("").at("bundles", i)
		}
		if e := first(
			deviceID("device_id", d.DeviceId),
			registrationID("registration_id", d.RegistrationId),
			validateSignedPreKey(d.SignedPrekey, true).in("signed_prekey"),
			validatePreKey(d.OneTimePrekey, false).in("one_time_prekey"),
			validateKEMPreKey(d.KemPrekey, true).in("kem_prekey"),
		); e != nil {
			return e.at("bundles", i)
		}
		if !devices.add(d.DeviceId) {
			return bad("device_id", fmt.Sprintf("repeats device %d", d.DeviceId)).at("bundles", i)
		}
	}
	return nil
}

func validateDeviceList(l *wirepb.DeviceList) *ParseError {
	if l == nil {
		return missing("")
	}
	if e := count("devices", len(l.Devices), 1, MaxDeviceID); e != nil {
		return e
	}
	var prev uint32
	for i, d := range l.Devices {
		if d == nil {
			return missing("").at("devices", i)
		}
		if e := first(
			deviceID("id", d.Id),
			registrationID("registration_id", d.RegistrationId),
		); e != nil {
			return e.at("devices", i)
		}
		if d.Id <= prev {
			return bad("id", "devices not in increasing id order").at("devices", i)
		}
		prev = d.Id
	}
	return nil
}

// ---- Pushes ----

func validatePush(p *wirepb.Push) *ParseError {
	if p == nil {
		return missing("")
	}
	switch b := p.Body.(type) {
	case *wirepb.Push_Envelopes:
		return validateEnvelopes(b.Envelopes).in("envelopes")
	case *wirepb.Push_QueueEmpty:
		return present(b.QueueEmpty != nil, "queue_empty")
	case *wirepb.Push_PrekeysLow:
		return present(b.PrekeysLow != nil, "prekeys_low")
	case *wirepb.Push_ProvisioningMessage:
		if b.ProvisioningMessage == nil {
			return missing("provisioning_message")
		}
		return sized("body", b.ProvisioningMessage.Body, 1, MaxProvisioningBodySize).in("provisioning_message")
	case *wirepb.Push_EphemeralEnvelope:
		if b.EphemeralEnvelope == nil {
			return missing("ephemeral_envelope")
		}
		return sized("content", b.EphemeralEnvelope.Content, 1, MaxContentSize).in("ephemeral_envelope")
	}
	return bad("", "push has no body")
}

func validateEnvelopes(e *wirepb.Envelopes) *ParseError {
	if e == nil {
		return missing("")
	}
	if err := count("envelopes", len(e.Envelopes), 1, MaxEnvelopesPerPush); err != nil {
		return err
	}
	increasing := true
	for i, env := range e.Envelopes {
		if env == nil {
			return missing("").at("envelopes", i)
		}
		if env.Id == 0 {
			return bad("id", "must not be 0").at("envelopes", i)
		}
		if err := sized("content", env.Content, 1, MaxContentSize); err != nil {
			return err.at("envelopes", i)
		}
		if i > 0 && env.Id <= e.Envelopes[i-1].Id {
			increasing = false
		}
	}
	if !increasing {
		// Rare (mailbox order is id order): the quadratic check is at most
		// 256²/2 comparisons.
		for i, env := range e.Envelopes {
			for _, prev := range e.Envelopes[:i] {
				if prev.Id == env.Id {
					return bad("id", fmt.Sprintf("repeats envelope %d", env.Id)).at("envelopes", i)
				}
			}
		}
	}
	return nil
}
