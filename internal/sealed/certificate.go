package sealed

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
)

// DeviceID names one of an account's devices. Certificates carry any uint32;
// sealed sender v2 can only address 1 through [MaxDeviceID].
type DeviceID uint32

// MaxCertificateSize bounds an encoded sender or server certificate, checked
// before parsing. The certificates libsignal and Signal's server issue are
// about 330 bytes (a 36-character UUID, an E.164 number, two 33-byte keys,
// two 64-byte signatures); twelve times that leaves room for fields added
// later while keeping what a peer can make us parse and verify small.
const MaxCertificateSize = 4 << 10

// RevokedTestServerKeyID is the one server certificate key id libsignal
// 0.72.1 hard-codes as revoked. Signal uses it to test the revocation logic;
// no production certificate has it. It is always treated as revoked, in
// addition to [Trust.RevokedServerKeyIDs].
const RevokedTestServerKeyID uint32 = 0xDEADC357

// Protobuf field numbers, from libsignal's sealed_sender.proto:
//
//	ServerCertificate             { bytes certificate = 1; bytes signature = 2; }
//	ServerCertificate.Certificate { uint32 id = 1; bytes key = 2; }
//	SenderCertificate             { bytes certificate = 1; bytes signature = 2; }
//	SenderCertificate.Certificate { string senderE164 = 1; uint32 senderDevice = 2;
//	                                fixed64 expires = 3; bytes identityKey = 4;
//	                                ServerCertificate signer = 5; string senderUuid = 6; }
//
// Every field is proto2 optional, but libsignal requires all of them except
// senderE164. Fields are written in field-number order, as prost does.
const (
	fieldCertificate pb.Number = 1
	fieldSignature   pb.Number = 2

	fieldServerID  pb.Number = 1
	fieldServerKey pb.Number = 2

	fieldSenderE164   pb.Number = 1
	fieldSenderDevice pb.Number = 2
	fieldExpires      pb.Number = 3
	fieldIdentityKey  pb.Number = 4
	fieldSigner       pb.Number = 5
	fieldSenderUUID   pb.Number = 6
)

// Trust is what a receiver trusts: the roots that sign server certificates
// and the server certificate key ids that are no longer trusted. A server
// certificate is trusted if it is not revoked and any root signed it.
// libsignal 0.72.1 takes a single root and a fixed revocation list; Trust
// with one root and no extra ids behaves exactly like it.
type Trust struct {
	Roots               []keys.PublicKey
	RevokedServerKeyIDs []uint32
}

func (t Trust) revoked(id uint32) bool {
	return id == RevokedTestServerKeyID || slices.Contains(t.RevokedServerKeyIDs, id)
}

// ServerCertificate binds a server signing key to a key id, signed by a trust
// root. It is immutable and safe for concurrent use.
type ServerCertificate struct {
	raw         []byte // the whole encoding
	certificate []byte // the signed bytes, inside raw
	signature   []byte // inside raw
	keyID       uint32
	key         keys.PublicKey
}

// NewServerCertificate issues a certificate for serverKey under key id id,
// signed by trustRoot with randomness from rand.
func NewServerCertificate(rand io.Reader, trustRoot keys.PrivateKey, id uint32, serverKey keys.PublicKey) (*ServerCertificate, error) {
	if trustRoot.IsZero() || serverKey.IsZero() {
		return nil, fmt.Errorf("%w: zero key for server certificate", ErrInvalidArgument)
	}
	cert := pb.AppendUint(nil, fieldServerID, uint64(id))
	cert = pb.AppendBytes(cert, fieldServerKey, serverKey.Bytes())
	sig, err := trustRoot.Sign(rand, cert)
	if err != nil {
		return nil, fmt.Errorf("sign server certificate: %w", err)
	}
	return &ServerCertificate{
		raw:         appendSigned(nil, cert, sig[:]),
		certificate: cert,
		signature:   sig[:],
		keyID:       id,
		key:         serverKey,
	}, nil
}

// appendSigned appends the outer {certificate, signature} message shared by
// both certificate types.
func appendSigned(b, cert, sig []byte) []byte {
	b = pb.AppendBytes(b, fieldCertificate, cert)
	return pb.AppendBytes(b, fieldSignature, sig)
}

// parseSigned splits the outer {certificate, signature} message. Both fields
// are required; the results alias b.
func parseSigned(b []byte) (cert, sig []byte, err error) {
	var haveCert, haveSig bool
	err = pb.Walk(b, func(f pb.Field) error {
		var err error
		switch f.Num {
		case fieldCertificate:
			cert, err = f.BytesMax(MaxCertificateSize)
			haveCert = true
		case fieldSignature:
			sig, err = f.BytesMax(MaxCertificateSize)
			haveSig = true
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if !haveCert || !haveSig {
		return nil, nil, fmt.Errorf("%w: certificate or signature missing", pb.ErrMalformed)
	}
	return cert, sig, nil
}

// ParseServerCertificate decodes a server certificate. It checks the format
// only; call [ServerCertificate.Validate] to check the signature. The result
// does not alias b.
func ParseServerCertificate(b []byte) (*ServerCertificate, error) {
	c, err := parseServerCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%w: server certificate: %w", ErrMalformed, err)
	}
	return c, nil
}

func parseServerCertificate(b []byte) (*ServerCertificate, error) {
	if len(b) > MaxCertificateSize {
		return nil, fmt.Errorf("%d bytes, limit %d", len(b), MaxCertificateSize)
	}
	raw := slices.Clone(b)
	cert, sig, err := parseSigned(raw)
	if err != nil {
		return nil, err
	}
	c := &ServerCertificate{raw: raw, certificate: cert, signature: sig}
	var haveID, haveKey bool
	err = pb.Walk(cert, func(f pb.Field) error {
		var err error
		switch f.Num {
		case fieldServerID:
			c.keyID, err = f.Uint32()
			haveID = true
		case fieldServerKey:
			var kb []byte
			if kb, err = f.BytesMax(keys.PublicKeySize); err == nil {
				c.key, err = keys.ParsePublicKey(kb)
			}
			haveKey = true
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !haveID || !haveKey {
		return nil, fmt.Errorf("%w: id or key missing", pb.ErrMalformed)
	}
	return c, nil
}

// Bytes returns the encoded certificate in a new slice.
func (c *ServerCertificate) Bytes() []byte { return slices.Clone(c.raw) }

// Certificate returns the signed bytes (the inner Certificate message) in a
// new slice.
func (c *ServerCertificate) Certificate() []byte { return slices.Clone(c.certificate) }

// Signature returns the trust root's signature in a new slice. It is not
// necessarily 64 bytes: like libsignal, parsing accepts any length and
// validation rejects the wrong one.
func (c *ServerCertificate) Signature() []byte { return slices.Clone(c.signature) }

// KeyID returns the server key id.
func (c *ServerCertificate) KeyID() uint32 { return c.keyID }

// Key returns the certified server signing key.
func (c *ServerCertificate) Key() keys.PublicKey { return c.key }

// Validate checks that the certificate's key id is not revoked (returning
// [ErrRevoked]) and that one of trust's roots signed it ([ErrUntrusted]),
// in libsignal's order.
func (c *ServerCertificate) Validate(trust Trust) error {
	if trust.revoked(c.keyID) {
		return fmt.Errorf("server certificate key id %#x: %w", c.keyID, ErrRevoked)
	}
	for _, root := range trust.Roots {
		if !root.IsZero() && root.Verify(c.signature, c.certificate) {
			return nil
		}
	}
	return fmt.Errorf("server certificate not signed by a trust root: %w", ErrUntrusted)
}

// Sender identifies the sender of a sealed message: what a sender certificate
// certifies. E164 is empty when the certificate has no phone number.
type Sender struct {
	UUID        string // the sender's ACI, in libsignal's string form
	E164        string
	Device      DeviceID
	IdentityKey keys.PublicKey
}

// SenderCertificate binds a sender's UUID, optional phone number, device and
// identity key to an expiration time, signed by a server key that a
// [ServerCertificate] vouches for. It is immutable and safe for concurrent
// use.
type SenderCertificate struct {
	raw         []byte
	certificate []byte // inside raw
	signature   []byte // inside raw
	uuid        string
	e164        string
	hasE164     bool
	device      DeviceID
	expires     uint64 // milliseconds since the Unix epoch
	key         keys.PublicKey
	signer      *ServerCertificate
}

// NewSenderCertificate issues a certificate for sender, valid until expires
// (inclusive, at millisecond precision), signed by serverKey with randomness
// from rand. serverKey must be the private half of signer's key
// ([ErrKeyMismatch] otherwise). sender.UUID and sender.E164 must be valid
// UTF-8 (protobuf strings); an empty E164 is left out.
func NewSenderCertificate(rand io.Reader, signer *ServerCertificate, serverKey keys.PrivateKey, sender Sender, expires time.Time) (*SenderCertificate, error) {
	switch {
	case signer == nil || serverKey.IsZero() || sender.IdentityKey.IsZero():
		return nil, fmt.Errorf("%w: missing signer or key for sender certificate", ErrInvalidArgument)
	case !utf8.ValidString(sender.UUID) || !utf8.ValidString(sender.E164):
		return nil, fmt.Errorf("%w: sender UUID or E.164 is not UTF-8", ErrInvalidArgument)
	case expires.UnixMilli() < 0:
		return nil, fmt.Errorf("%w: expiration before 1970", ErrInvalidArgument)
	case !serverKey.PublicKey().Equal(signer.key):
		return nil, fmt.Errorf("server key for sender certificate: %w", ErrKeyMismatch)
	}
	var cert []byte
	if sender.E164 != "" {
		cert = pb.AppendBytes(cert, fieldSenderE164, []byte(sender.E164))
	}
	cert = pb.AppendUint(cert, fieldSenderDevice, uint64(sender.Device))
	cert = pb.AppendFixed64(cert, fieldExpires, uint64(expires.UnixMilli()))
	cert = pb.AppendBytes(cert, fieldIdentityKey, sender.IdentityKey.Bytes())
	// Like libsignal, embed the signer re-encoded from its certificate and
	// signature, not its original bytes.
	signerRaw := appendSigned(nil, signer.certificate, signer.signature)
	cert = pb.AppendBytes(cert, fieldSigner, signerRaw)
	cert = pb.AppendBytes(cert, fieldSenderUUID, []byte(sender.UUID))
	sig, err := serverKey.Sign(rand, cert)
	if err != nil {
		return nil, fmt.Errorf("sign sender certificate: %w", err)
	}
	raw := appendSigned(nil, cert, sig[:])
	if len(raw) > MaxCertificateSize {
		return nil, fmt.Errorf("%w: sender certificate is %d bytes, limit %d", ErrInvalidArgument, len(raw), MaxCertificateSize)
	}
	return &SenderCertificate{
		raw:         raw,
		certificate: cert,
		signature:   sig[:],
		uuid:        sender.UUID,
		e164:        sender.E164,
		hasE164:     sender.E164 != "",
		device:      sender.Device,
		expires:     uint64(expires.UnixMilli()),
		key:         sender.IdentityKey,
		signer: &ServerCertificate{
			raw:         signerRaw,
			certificate: signer.certificate,
			signature:   signer.signature,
			keyID:       signer.keyID,
			key:         signer.key,
		},
	}, nil
}

// ParseSenderCertificate decodes a sender certificate and the server
// certificate inside it. It checks the format only; call
// [SenderCertificate.Validate] before trusting the contents. The result does
// not alias b.
func ParseSenderCertificate(b []byte) (*SenderCertificate, error) {
	c, err := parseSenderCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%w: sender certificate: %w", ErrMalformed, err)
	}
	return c, nil
}

func parseSenderCertificate(b []byte) (*SenderCertificate, error) {
	if len(b) > MaxCertificateSize {
		return nil, fmt.Errorf("%d bytes, limit %d", len(b), MaxCertificateSize)
	}
	raw := slices.Clone(b)
	cert, sig, err := parseSigned(raw)
	if err != nil {
		return nil, err
	}
	c := &SenderCertificate{raw: raw, certificate: cert, signature: sig}
	var haveDevice, haveExpires, haveKey, haveSigner, haveUUID bool
	err = pb.Walk(cert, func(f pb.Field) error {
		var err error
		switch f.Num {
		case fieldSenderE164:
			c.e164, err = protoString(f)
			c.hasE164 = true
		case fieldSenderDevice:
			var d uint32
			d, err = f.Uint32()
			c.device = DeviceID(d)
			haveDevice = true
		case fieldExpires:
			c.expires, err = f.Fixed()
			haveExpires = true
		case fieldIdentityKey:
			var kb []byte
			if kb, err = f.BytesMax(keys.PublicKeySize); err == nil {
				c.key, err = keys.ParsePublicKey(kb)
			}
			haveKey = true
		case fieldSigner:
			var sb []byte
			if sb, err = f.BytesMax(MaxCertificateSize); err == nil {
				c.signer, err = parseServerCertificate(sb)
			}
			haveSigner = true
		case fieldSenderUUID:
			c.uuid, err = protoString(f)
			haveUUID = true
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !haveDevice || !haveExpires || !haveKey || !haveSigner || !haveUUID {
		return nil, fmt.Errorf("%w: required field missing", pb.ErrMalformed)
	}
	// libsignal decodes the embedded signer and re-encodes it, so its view of
	// the signer's bytes is the canonical encoding; match it.
	c.signer.raw = appendSigned(nil, c.signer.certificate, c.signer.signature)
	return c, nil
}

// protoString returns a protobuf string field, which must be UTF-8 (prost
// rejects anything else).
func protoString(f pb.Field) (string, error) {
	b, err := f.BytesMax(MaxCertificateSize)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: field %d is not UTF-8", pb.ErrMalformed, f.Num)
	}
	return string(b), nil
}

// Bytes returns the encoded certificate in a new slice: for a parsed
// certificate, exactly the bytes parsed.
func (c *SenderCertificate) Bytes() []byte { return slices.Clone(c.raw) }

// Certificate returns the signed bytes (the inner Certificate message) in a
// new slice.
func (c *SenderCertificate) Certificate() []byte { return slices.Clone(c.certificate) }

// Signature returns the server's signature in a new slice.
func (c *SenderCertificate) Signature() []byte { return slices.Clone(c.signature) }

// Sender returns what the certificate certifies. It is only trustworthy
// after [SenderCertificate.Validate].
func (c *SenderCertificate) Sender() Sender {
	return Sender{UUID: c.uuid, E164: c.e164, Device: c.device, IdentityKey: c.key}
}

// UUID returns the sender's UUID string, as certified (libsignal does not
// require it to be a well-formed UUID).
func (c *SenderCertificate) UUID() string { return c.uuid }

// E164 returns the sender's phone number and whether the certificate has one.
func (c *SenderCertificate) E164() (string, bool) { return c.e164, c.hasE164 }

// Device returns the sender's device ID.
func (c *SenderCertificate) Device() DeviceID { return c.device }

// IdentityKey returns the sender's identity key.
func (c *SenderCertificate) IdentityKey() keys.PublicKey { return c.key }

// ExpiresMillis returns the expiration time in milliseconds since the Unix
// epoch, as encoded.
func (c *SenderCertificate) ExpiresMillis() uint64 { return c.expires }

// Expires returns the expiration time. Values beyond time's range (which no
// real certificate has) come back as the latest representable millisecond.
func (c *SenderCertificate) Expires() time.Time {
	return time.UnixMilli(int64(min(c.expires, math.MaxInt64)))
}

// Signer returns the server certificate inside c. Its Bytes are the
// canonical re-encoding of its certificate and signature (what libsignal
// keeps), not necessarily the bytes embedded in c.
func (c *SenderCertificate) Signer() *ServerCertificate { return c.signer }

// Validate checks the certificate at time now, in libsignal's order: the
// server certificate is not revoked ([ErrRevoked]) and is signed by a root
// of trust ([ErrUntrusted]); c is signed by the server certificate's key
// ([ErrUntrusted]); and now is not after the expiration ([ErrExpired]). A
// certificate is still valid at its exact expiration millisecond.
func (c *SenderCertificate) Validate(trust Trust, now time.Time) error {
	if err := c.signer.Validate(trust); err != nil {
		return fmt.Errorf("sender certificate: %w", err)
	}
	if !c.signer.key.Verify(c.signature, c.certificate) {
		return fmt.Errorf("sender certificate not signed by its server certificate: %w", ErrUntrusted)
	}
	if ms := now.UnixMilli(); ms > 0 && uint64(ms) > c.expires {
		return fmt.Errorf("sender certificate expired at %d ms, now %d ms: %w", c.expires, ms, ErrExpired)
	}
	return nil
}
