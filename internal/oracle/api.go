package oracle

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"
)

// Every wrapper below returns what [Oracle.Call] returns on failure: a
// *[Error] when libsignal (or the harness) rejected the request, or a
// wrapped transport error. Byte slices in results are freshly decoded and
// owned by the caller; byte slices passed in are only read.

// MessageType is libsignal's CiphertextMessageType.
type MessageType int

// CiphertextMessageType values (libsignal protocol.rs).
const (
	MessageWhisper   MessageType = 2 // SignalMessage
	MessagePreKey    MessageType = 3 // PreKeySignalMessage
	MessageSenderKey MessageType = 7 // SenderKeyMessage
	MessagePlaintext MessageType = 8 // PlaintextContent
)

// ContentHint is the sealed-sender content hint.
type ContentHint uint32

// Content hints of UnidentifiedSenderMessageContent.
const (
	HintDefault    ContentHint = 0
	HintResendable ContentHint = 1
	HintImplicit   ContentHint = 2
)

// Address is a libsignal ProtocolAddress. Name is a ServiceId string (a
// UUID for an ACI); sealed sender v2 requires that, and DeviceID ≤ 127.
type Address struct {
	Name     string `json:"name"`
	DeviceID uint32 `json:"deviceId"`
}

func (a Address) String() string { return fmt.Sprintf("%s.%d", a.Name, a.DeviceID) }

// Ping returns the version of the libsignal-client package the harness
// loaded.
func (o *Oracle) Ping(ctx context.Context) (string, error) {
	var r struct {
		Version string `json:"version"`
	}
	err := o.Call(ctx, "ping", nil, &r)
	return r.Version, err
}

// PartyConfig configures [Oracle.NewParty].
type PartyConfig struct {
	// Name is the party's ProtocolAddress name; empty means a random UUID.
	Name string
	// DeviceID is the party's device; 0 means 1.
	DeviceID uint32
	// RegistrationID is the party's registration id (≤ 0x3FFF); 0 means a
	// random one.
	RegistrationID uint32
	// IdentityPrivate is a 32-byte Curve25519 private key to use as the
	// identity key; nil means a fresh one.
	IdentityPrivate []byte
	// TrustAll turns off the identity store's trust-on-first-use check.
	TrustAll bool
}

// Party is a libsignal client living in the harness: an identity key pair,
// a registration id and in-memory session, identity, prekey, signed prekey,
// Kyber prekey and sender-key stores. Its methods are safe for concurrent
// use.
type Party struct {
	o              *Oracle
	Name           string
	DeviceID       uint32
	IdentityKey    []byte // 33 bytes, 0x05 ‖ u
	RegistrationID uint32
}

// partyRef names the party a request acts for.
type partyRef struct {
	Party         string `json:"party"`
	PartyDeviceID uint32 `json:"partyDeviceId"`
}

func (p *Party) ref() partyRef { return partyRef{Party: p.Name, PartyDeviceID: p.DeviceID} }

// Address returns the party's ProtocolAddress.
func (p *Party) Address() Address { return Address{Name: p.Name, DeviceID: p.DeviceID} }

// NewParty creates a party in the harness, replacing any party with the
// same name and device.
func (o *Oracle) NewParty(ctx context.Context, cfg PartyConfig) (*Party, error) {
	if cfg.Name == "" {
		id, err := randomUUID()
		if err != nil {
			return nil, err
		}
		cfg.Name = id
	}
	if cfg.DeviceID == 0 {
		cfg.DeviceID = 1
	}
	params := struct {
		Name            string `json:"name"`
		DeviceID        uint32 `json:"deviceId"`
		RegistrationID  uint32 `json:"registrationId,omitempty"`
		IdentityPrivate []byte `json:"identityPrivate"`
		TrustAll        bool   `json:"trustAll"`
	}{cfg.Name, cfg.DeviceID, cfg.RegistrationID, cfg.IdentityPrivate, cfg.TrustAll}
	var r struct {
		IdentityKey    []byte `json:"identityKey"`
		RegistrationID uint32 `json:"registrationId"`
	}
	if err := o.Call(ctx, "newParty", params, &r); err != nil {
		return nil, err
	}
	return &Party{o: o, Name: cfg.Name, DeviceID: cfg.DeviceID, IdentityKey: r.IdentityKey, RegistrationID: r.RegistrationID}, nil
}

// randomUUID returns a random (version 4) UUID string.
func randomUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// Bundle is a prekey bundle in libsignal's terms. PreKeyID and PreKey are
// absent (nil) without a one-time prekey; KyberPreKey and
// KyberPreKeySignature are nil in a bundle without a Kyber prekey (then
// KyberPreKeyID is ignored).
type Bundle struct {
	RegistrationID        uint32  `json:"registrationId"`
	DeviceID              uint32  `json:"deviceId"`
	PreKeyID              *uint32 `json:"preKeyId,omitempty"`
	PreKey                []byte  `json:"preKey"`                // 33 bytes
	SignedPreKeyID        uint32  `json:"signedPreKeyId"`        //
	SignedPreKey          []byte  `json:"signedPreKey"`          // 33 bytes
	SignedPreKeySignature []byte  `json:"signedPreKeySignature"` // 64 bytes, XEdDSA
	IdentityKey           []byte  `json:"identityKey"`           // 33 bytes
	KyberPreKeyID         uint32  `json:"kyberPreKeyId"`         //
	KyberPreKey           []byte  `json:"kyberPreKey"`           // 1 + 1568 bytes, type 0x08
	KyberPreKeySignature  []byte  `json:"kyberPreKeySignature"`  // 64 bytes, XEdDSA
}

// BundleOptions configures [Party.BundleWith].
type BundleOptions struct {
	OneTimePreKey   bool
	NoKyber         bool // an X3DH-only bundle
	KyberLastResort bool // keep the Kyber prekey after use
	// Fixed ids; nil means the party's next counter value.
	PreKeyID, SignedPreKeyID, KyberPreKeyID *uint32
}

// Bundle makes a fresh bundle with a new signed prekey, a new Kyber-1024
// prekey signed by the identity key, and a one-time prekey if asked, and
// stores their private halves in the party's stores.
func (p *Party) Bundle(ctx context.Context, oneTimePreKey bool) (Bundle, error) {
	return p.BundleWith(ctx, BundleOptions{OneTimePreKey: oneTimePreKey})
}

// BundleWith is [Party.Bundle] with every option.
func (p *Party) BundleWith(ctx context.Context, opts BundleOptions) (Bundle, error) {
	params := struct {
		partyRef
		OneTimePreKey   bool    `json:"oneTimePreKey"`
		Kyber           bool    `json:"kyber"`
		KyberLastResort bool    `json:"kyberLastResort"`
		PreKeyID        *uint32 `json:"preKeyId,omitempty"`
		SignedPreKeyID  *uint32 `json:"signedPreKeyId,omitempty"`
		KyberPreKeyID   *uint32 `json:"kyberPreKeyId,omitempty"`
	}{p.ref(), opts.OneTimePreKey, !opts.NoKyber, opts.KyberLastResort, opts.PreKeyID, opts.SignedPreKeyID, opts.KyberPreKeyID}
	var b Bundle
	err := p.o.Call(ctx, "bundle", params, &b)
	return b, err
}

// Records are serialized libsignal records to put in a party's stores.
type Records struct {
	PreKeys       [][]byte `json:"preKeys"`       // PreKeyRecord
	SignedPreKeys [][]byte `json:"signedPreKeys"` // SignedPreKeyRecord
	KyberPreKeys  [][]byte `json:"kyberPreKeys"`  // KyberPreKeyRecord
}

// ImportRecords stores records built elsewhere (e.g. from Go-generated
// keys) in the party's stores, under the ids they carry.
func (p *Party) ImportRecords(ctx context.Context, r Records) error {
	params := struct {
		partyRef
		Records
	}{p.ref(), r}
	return p.o.Call(ctx, "importRecords", params, nil)
}

// ProcessBundle starts a session with peer from b (processPreKeyBundle).
func (p *Party) ProcessBundle(ctx context.Context, peer Address, b Bundle) error {
	params := struct {
		partyRef
		Peer   Address `json:"peer"`
		Bundle Bundle  `json:"bundle"`
	}{p.ref(), peer, b}
	return p.o.Call(ctx, "processBundle", params, nil)
}

// Ciphertext is a libsignal CiphertextMessage.
type Ciphertext struct {
	Type MessageType `json:"type"`
	Body []byte      `json:"body"`
}

// Encrypt encrypts plaintext to peer (signalEncrypt).
func (p *Party) Encrypt(ctx context.Context, peer Address, plaintext []byte) (Ciphertext, error) {
	params := struct {
		partyRef
		Peer      Address `json:"peer"`
		Plaintext []byte  `json:"plaintext"`
	}{p.ref(), peer, nonNil(plaintext)}
	var c Ciphertext
	err := p.o.Call(ctx, "encrypt", params, &c)
	return c, err
}

// Decrypt decrypts a message from peer: signalDecrypt for MessageWhisper,
// signalDecryptPreKey for MessagePreKey, groupDecrypt for MessageSenderKey,
// and the body of a PlaintextContent for MessagePlaintext.
func (p *Party) Decrypt(ctx context.Context, peer Address, c Ciphertext) ([]byte, error) {
	params := struct {
		partyRef
		Peer Address     `json:"peer"`
		Type MessageType `json:"type"`
		Body []byte      `json:"body"`
	}{p.ref(), peer, c.Type, nonNil(c.Body)}
	var r struct {
		Plaintext []byte `json:"plaintext"`
	}
	if err := p.o.Call(ctx, "decrypt", params, &r); err != nil {
		return nil, err
	}
	return nonNil(r.Plaintext), nil
}

// SessionInfo describes the party's session with a peer. Everything but
// Exists is zero when there is no session.
type SessionInfo struct {
	Exists               bool   `json:"exists"`
	HasCurrentState      bool   `json:"hasCurrentState"`
	LocalRegistrationID  uint32 `json:"localRegistrationId"`
	RemoteRegistrationID uint32 `json:"remoteRegistrationId"`
	// SessionVersion is 4 for PQXDH sessions, 3 for X3DH ones.
	SessionVersion        uint32 `json:"sessionVersion"`
	PreviousSessions      int    `json:"previousSessions"`
	HasPendingPreKey      bool   `json:"hasPendingPreKey"`
	HasPendingKyberPreKey bool   `json:"hasPendingKyberPreKey"`
	LocalIdentity         []byte `json:"localIdentity"`
	RemoteIdentity        []byte `json:"remoteIdentity"`
	AliceBaseKey          []byte `json:"aliceBaseKey"`
	// Record is the serialized SessionRecord.
	Record []byte `json:"record"`
}

// SessionInfo reports on the party's session with peer.
func (p *Party) SessionInfo(ctx context.Context, peer Address) (SessionInfo, error) {
	params := struct {
		partyRef
		Peer Address `json:"peer"`
	}{p.ref(), peer}
	var s SessionInfo
	err := p.o.Call(ctx, "sessionInfo", params, &s)
	return s, err
}

// PeerIdentity returns the identity key the party has stored for peer, or
// nil.
func (p *Party) PeerIdentity(ctx context.Context, peer Address) ([]byte, error) {
	params := struct {
		partyRef
		Peer Address `json:"peer"`
	}{p.ref(), peer}
	var r struct {
		IdentityKey []byte `json:"identityKey"`
	}
	err := p.o.Call(ctx, "identity", params, &r)
	return r.IdentityKey, err
}

// KeyPair is a Curve25519 key pair: Public is 33 bytes, Private 32.
type KeyPair struct {
	Public  []byte `json:"public"`
	Private []byte `json:"private"`
}

// KeyPair generates a Curve25519 key pair (PrivateKey.generate).
func (o *Oracle) KeyPair(ctx context.Context) (KeyPair, error) {
	var k KeyPair
	err := o.Call(ctx, "keyPair", nil, &k)
	return k, err
}

// TrustRoot generates a sealed-sender trust root key pair.
func (o *Oracle) TrustRoot(ctx context.Context) (KeyPair, error) {
	var k KeyPair
	err := o.Call(ctx, "trustRoot", nil, &k)
	return k, err
}

// ServerCertificateRequest configures [Oracle.ServerCertificate]. With
// neither server key given, a server key pair is generated.
type ServerCertificateRequest struct {
	KeyID            uint32 `json:"keyId"`
	TrustRootPrivate []byte `json:"trustRootPrivate"`
	ServerKeyPublic  []byte `json:"serverKeyPublic"`
	ServerKeyPrivate []byte `json:"serverKeyPrivate"`
}

// ServerCertificate is a signed server certificate and its key pair.
// KeyPrivate is nil when only the public key was supplied.
type ServerCertificate struct {
	Serialized []byte `json:"serialized"`
	KeyPublic  []byte `json:"serverKeyPublic"`
	KeyPrivate []byte `json:"serverKeyPrivate"`
}

// ServerCertificate signs a server certificate with the trust root
// (ServerCertificate.new).
func (o *Oracle) ServerCertificate(ctx context.Context, req ServerCertificateRequest) (ServerCertificate, error) {
	var c ServerCertificate
	err := o.Call(ctx, "serverCertificate", req, &c)
	return c, err
}

// SenderCertificateRequest configures [Oracle.SenderCertificate].
type SenderCertificateRequest struct {
	SenderUUID        string
	SenderE164        string // "" for none
	SenderDeviceID    uint32
	SenderKey         []byte // the sender's identity key, 33 bytes
	Expiration        time.Time
	ServerCertificate []byte
	ServerKeyPrivate  []byte
}

// SenderCertificate issues a sender certificate (SenderCertificate.new) and
// returns its serialization.
func (o *Oracle) SenderCertificate(ctx context.Context, req SenderCertificateRequest) ([]byte, error) {
	params := struct {
		SenderUUID        string `json:"senderUuid"`
		SenderE164        string `json:"senderE164,omitempty"`
		SenderDeviceID    uint32 `json:"senderDeviceId"`
		SenderKey         []byte `json:"senderKey"`
		Expiration        int64  `json:"expiration"`
		ServerCertificate []byte `json:"serverCertificate"`
		ServerKeyPrivate  []byte `json:"serverKeyPrivate"`
	}{req.SenderUUID, req.SenderE164, req.SenderDeviceID, req.SenderKey, req.Expiration.UnixMilli(), req.ServerCertificate, req.ServerKeyPrivate}
	var r struct {
		Serialized []byte `json:"serialized"`
	}
	err := o.Call(ctx, "senderCertificate", params, &r)
	return r.Serialized, err
}

// SenderCertificateInfo is a parsed sender certificate and whether it
// validated.
type SenderCertificateInfo struct {
	Valid             bool
	SenderUUID        string
	SenderE164        string
	SenderDeviceID    uint32
	SenderKey         []byte
	Expiration        time.Time
	ServerKeyID       uint32
	ServerKey         []byte
	ServerCertificate []byte
	Certificate       []byte // the signed Certificate bytes
	Signature         []byte
}

// ValidateSenderCertificate parses a sender certificate and validates it
// against trustRoot at time at (SenderCertificate.validate). An invalid
// certificate is not an error: Valid is false.
func (o *Oracle) ValidateSenderCertificate(ctx context.Context, serialized, trustRoot []byte, at time.Time) (SenderCertificateInfo, error) {
	params := struct {
		Serialized []byte `json:"serialized"`
		TrustRoot  []byte `json:"trustRoot"`
		Time       int64  `json:"time"`
	}{serialized, trustRoot, at.UnixMilli()}
	var r struct {
		Valid             bool   `json:"valid"`
		SenderUUID        string `json:"senderUuid"`
		SenderE164        string `json:"senderE164"`
		SenderDeviceID    uint32 `json:"senderDeviceId"`
		SenderKey         []byte `json:"senderKey"`
		Expiration        int64  `json:"expiration"`
		ServerKeyID       uint32 `json:"serverKeyId"`
		ServerKey         []byte `json:"serverKey"`
		ServerCertificate []byte `json:"serverCertificate"`
		Certificate       []byte `json:"certificate"`
		Signature         []byte `json:"signature"`
	}
	if err := o.Call(ctx, "validateSenderCertificate", params, &r); err != nil {
		return SenderCertificateInfo{}, err
	}
	return SenderCertificateInfo{
		Valid: r.Valid, SenderUUID: r.SenderUUID, SenderE164: r.SenderE164, SenderDeviceID: r.SenderDeviceID,
		SenderKey: r.SenderKey, Expiration: time.UnixMilli(r.Expiration), ServerKeyID: r.ServerKeyID,
		ServerKey: r.ServerKey, ServerCertificate: r.ServerCertificate, Certificate: r.Certificate, Signature: r.Signature,
	}, nil
}

// SealedContent is what a sealed-sender message carries: an
// UnidentifiedSenderMessageContent. Set SenderCertificate and exactly one
// of:
//   - Plaintext and DistributionID: the party's groupEncrypt of Plaintext
//     (a SENDERKEY_MESSAGE, as Signal groups send);
//   - Plaintext alone: the party's signalEncrypt of Plaintext to the one
//     recipient;
//   - USMCType and Contents: those bytes, as they are;
//   - USMC: a serialized UnidentifiedSenderMessageContent, as it is.
//
// ContentHint and GroupID apply to every form but USMC.
type SealedContent struct {
	SenderCertificate []byte
	Plaintext         []byte
	DistributionID    string
	USMCType          MessageType
	Contents          []byte
	USMC              []byte
	ContentHint       ContentHint
	GroupID           []byte
}

type sealedContentParams struct {
	SenderCertificate []byte      `json:"senderCertificate"`
	Plaintext         []byte      `json:"plaintext"`
	DistributionID    string      `json:"distributionId,omitempty"`
	USMCType          MessageType `json:"usmcType,omitempty"`
	Contents          []byte      `json:"contents"`
	USMC              []byte      `json:"usmc"`
	ContentHint       ContentHint `json:"contentHint,omitempty"`
	GroupID           []byte      `json:"groupId"`
}

func (c SealedContent) params() sealedContentParams {
	return sealedContentParams(c)
}

// SealedEncrypt seals c for peer with Sealed Sender v1 and returns the
// message bytes. Plaintext alone, with no hint or group id, goes through
// sealedSenderEncryptMessage; other forms through sealedSenderEncrypt.
func (p *Party) SealedEncrypt(ctx context.Context, peer Address, c SealedContent) ([]byte, error) {
	params := struct {
		partyRef
		Peer Address `json:"peer"`
		sealedContentParams
	}{p.ref(), peer, c.params()}
	var r struct {
		Body []byte `json:"body"`
	}
	err := p.o.Call(ctx, "sealedEncrypt", params, &r)
	return r.Body, err
}

// SealedResult is a decrypted sealed-sender message. Type, ContentHint and
// GroupID are set by [Party.SealedGroupDecrypt] only.
type SealedResult struct {
	SenderUUID     string      `json:"senderUuid"`
	SenderE164     string      `json:"senderE164"`
	SenderDeviceID uint32      `json:"senderDeviceId"`
	Plaintext      []byte      `json:"plaintext"`
	Type           MessageType `json:"type"`
	ContentHint    ContentHint `json:"contentHint"`
	GroupID        []byte      `json:"groupId"`
}

// SealedDecrypt opens a sealed-sender message (v1, or a v2 ReceivedMessage)
// with sealedSenderDecryptMessage, validating the sender certificate against
// trustRoot at time at, with the party as the local address. libsignal
// accepts only whisper and prekey contents here.
func (p *Party) SealedDecrypt(ctx context.Context, body, trustRoot []byte, at time.Time) (SealedResult, error) {
	params := struct {
		partyRef
		Body      []byte `json:"body"`
		TrustRoot []byte `json:"trustRoot"`
		Timestamp int64  `json:"timestamp"`
	}{p.ref(), body, trustRoot, at.UnixMilli()}
	var r SealedResult
	if err := p.o.Call(ctx, "sealedDecrypt", params, &r); err != nil {
		return SealedResult{}, err
	}
	r.Plaintext = nonNil(r.Plaintext)
	return r, nil
}

// SealedGroupDecrypt opens a sealed-sender message the way a Signal client
// handles group traffic: sealedSenderDecryptToUsmc, validate the sender
// certificate against trustRoot at time at (failing with Name
// "InvalidCertificate"), reject the party's own device, then decrypt the
// contents from the certificate's address (groupDecrypt for sender-key
// messages).
func (p *Party) SealedGroupDecrypt(ctx context.Context, body, trustRoot []byte, at time.Time) (SealedResult, error) {
	params := struct {
		partyRef
		Body      []byte `json:"body"`
		TrustRoot []byte `json:"trustRoot"`
		Timestamp int64  `json:"timestamp"`
	}{p.ref(), body, trustRoot, at.UnixMilli()}
	var r SealedResult
	if err := p.o.Call(ctx, "sealedGroupDecrypt", params, &r); err != nil {
		return SealedResult{}, err
	}
	r.Plaintext = nonNil(r.Plaintext)
	return r, nil
}

// USMC is a decrypted UnidentifiedSenderMessageContent.
type USMC struct {
	Type              MessageType `json:"type"`
	Contents          []byte      `json:"contents"`
	SenderCertificate []byte      `json:"senderCertificate"`
	SenderUUID        string      `json:"senderUuid"`
	SenderE164        string      `json:"senderE164"`
	SenderDeviceID    uint32      `json:"senderDeviceId"`
	ContentHint       ContentHint `json:"contentHint"`
	GroupID           []byte      `json:"groupId"`
}

// SealedDecryptToUSMC removes the sealed-sender layer (v1 or v2) without
// validating the certificate or decrypting the contents
// (sealedSenderDecryptToUsmc).
func (p *Party) SealedDecryptToUSMC(ctx context.Context, body []byte) (USMC, error) {
	params := struct {
		partyRef
		Body []byte `json:"body"`
	}{p.ref(), body}
	var u USMC
	err := p.o.Call(ctx, "sealedDecryptToUsmc", params, &u)
	return u, err
}

// SealedMultiEncrypt seals c for every recipient device with Sealed Sender
// v2 (sealedSenderMultiRecipientEncrypt) and returns the SentMessage a
// client uploads. The party needs a session with every recipient. excluded
// lists ServiceId strings recorded as deliberately left out.
func (p *Party) SealedMultiEncrypt(ctx context.Context, recipients []Address, excluded []string, c SealedContent) ([]byte, error) {
	params := struct {
		partyRef
		Recipients []Address `json:"recipients"`
		Excluded   []string  `json:"excludedRecipients"`
		sealedContentParams
	}{p.ref(), recipients, excluded, c.params()}
	var r struct {
		Sent []byte `json:"sent"`
	}
	err := p.o.Call(ctx, "sealedMultiEncrypt", params, &r)
	return r.Sent, err
}

// MultiRecipient is one recipient of a Sealed Sender v2 SentMessage;
// DeviceIDs and RegistrationIDs are parallel.
type MultiRecipient struct {
	ServiceID       string   `json:"serviceId"`
	DeviceIDs       []uint32 `json:"deviceIds"`
	RegistrationIDs []uint32 `json:"registrationIds"`
}

// MultiRecipientMessage is a parsed Sealed Sender v2 SentMessage, with
// recipients in the order they first appear.
type MultiRecipientMessage struct {
	Recipients []MultiRecipient `json:"recipients"`
	Excluded   []string         `json:"excluded"`
}

// MultiRecipientParse parses a SentMessage as libsignal's server-side
// SealedSenderMultiRecipientMessage does.
func (o *Oracle) MultiRecipientParse(ctx context.Context, sent []byte) (MultiRecipientMessage, error) {
	params := struct {
		Sent []byte `json:"sent"`
	}{sent}
	var m MultiRecipientMessage
	err := o.Call(ctx, "multiRecipientParse", params, &m)
	return m, err
}

// MultiRecipientForSingle returns the ReceivedMessage the server delivers
// to serviceID (and, if deviceID is not 0, checks that device is listed),
// cut out with SealedSenderMultiRecipientMessage.messageForRecipient. When
// the SentMessage has a single recipient the harness also derives it with
// sealedSenderMultiRecipientMessageForSingleRecipient, fails on any
// difference, and reports crossChecked.
func (o *Oracle) MultiRecipientForSingle(ctx context.Context, sent []byte, serviceID string, deviceID uint32) (received []byte, crossChecked bool, err error) {
	params := struct {
		Sent      []byte `json:"sent"`
		ServiceID string `json:"serviceId"`
		DeviceID  uint32 `json:"deviceId,omitempty"`
	}{sent, serviceID, deviceID}
	var r struct {
		Received     []byte `json:"received"`
		CrossChecked bool   `json:"crossChecked"`
	}
	err = o.Call(ctx, "multiRecipientForSingle", params, &r)
	return r.Received, r.CrossChecked, err
}

// SenderKeyDistribution creates (or reuses) the party's sender key for
// distributionID, a UUID string, and returns a SenderKeyDistributionMessage.
func (p *Party) SenderKeyDistribution(ctx context.Context, distributionID string) ([]byte, error) {
	params := struct {
		partyRef
		DistributionID string `json:"distributionId"`
	}{p.ref(), distributionID}
	var r struct {
		Message []byte `json:"message"`
	}
	err := p.o.Call(ctx, "senderKeyDistribution", params, &r)
	return r.Message, err
}

// SenderKeyDistributionInfo is what a processed distribution message held.
type SenderKeyDistributionInfo struct {
	DistributionID string `json:"distributionId"`
	ChainID        uint32 `json:"chainId"`
	Iteration      uint32 `json:"iteration"`
}

// ProcessSenderKeyDistribution stores sender's key from a
// SenderKeyDistributionMessage.
func (p *Party) ProcessSenderKeyDistribution(ctx context.Context, sender Address, msg []byte) (SenderKeyDistributionInfo, error) {
	params := struct {
		partyRef
		Sender  Address `json:"sender"`
		Message []byte  `json:"message"`
	}{p.ref(), sender, msg}
	var r SenderKeyDistributionInfo
	err := p.o.Call(ctx, "processSenderKeyDistribution", params, &r)
	return r, err
}

// GroupEncrypt encrypts plaintext with the party's sender key for
// distributionID and returns the SenderKeyMessage.
func (p *Party) GroupEncrypt(ctx context.Context, distributionID string, plaintext []byte) ([]byte, error) {
	params := struct {
		partyRef
		DistributionID string `json:"distributionId"`
		Plaintext      []byte `json:"plaintext"`
	}{p.ref(), distributionID, nonNil(plaintext)}
	var r struct {
		Body []byte `json:"body"`
	}
	err := p.o.Call(ctx, "groupEncrypt", params, &r)
	return r.Body, err
}

// GroupDecrypt decrypts a SenderKeyMessage from sender.
func (p *Party) GroupDecrypt(ctx context.Context, sender Address, body []byte) ([]byte, error) {
	params := struct {
		partyRef
		Sender Address `json:"sender"`
		Body   []byte  `json:"body"`
	}{p.ref(), sender, body}
	var r struct {
		Plaintext []byte `json:"plaintext"`
	}
	if err := p.o.Call(ctx, "groupDecrypt", params, &r); err != nil {
		return nil, err
	}
	return nonNil(r.Plaintext), nil
}

// FingerprintRequest configures [Oracle.Fingerprint]; keys are 33-byte
// identity keys.
type FingerprintRequest struct {
	Iterations       int    `json:"iterations"`
	Version          int    `json:"version"`
	LocalIdentifier  []byte `json:"localIdentifier"`
	LocalKey         []byte `json:"localKey"`
	RemoteIdentifier []byte `json:"remoteIdentifier"`
	RemoteKey        []byte `json:"remoteKey"`
}

// Fingerprint is a safety number: the 60-digit display string and the
// scannable (QR) encoding.
type Fingerprint struct {
	DisplayString string `json:"displayString"`
	Scannable     []byte `json:"scannable"`
}

// Fingerprint computes a safety number (Fingerprint.new).
func (o *Oracle) Fingerprint(ctx context.Context, req FingerprintRequest) (Fingerprint, error) {
	var f Fingerprint
	err := o.Call(ctx, "fingerprint", req, &f)
	return f, err
}

// CompareScannable compares two scannable fingerprints
// (ScannableFingerprint.compare); mismatched versions are an error.
func (o *Oracle) CompareScannable(ctx context.Context, a, b []byte) (bool, error) {
	params := struct {
		A []byte `json:"a"`
		B []byte `json:"b"`
	}{a, b}
	var r struct {
		Equal bool `json:"equal"`
	}
	err := o.Call(ctx, "compareScannable", params, &r)
	return r.Equal, err
}

// XEdDSASign signs message with a 32-byte Curve25519 private key
// (PrivateKey.sign); libsignal randomizes the signature.
func (o *Oracle) XEdDSASign(ctx context.Context, private, message []byte) ([]byte, error) {
	params := struct {
		Private []byte `json:"private"`
		Message []byte `json:"message"`
	}{private, nonNil(message)}
	var r struct {
		Signature []byte `json:"signature"`
	}
	err := o.Call(ctx, "xeddsaSign", params, &r)
	return r.Signature, err
}

// XEdDSAVerify verifies an XEdDSA signature with a 33-byte public key
// (PublicKey.verify).
func (o *Oracle) XEdDSAVerify(ctx context.Context, public, message, signature []byte) (bool, error) {
	params := struct {
		Public    []byte `json:"public"`
		Message   []byte `json:"message"`
		Signature []byte `json:"signature"`
	}{public, nonNil(message), nonNil(signature)}
	var r struct {
		Valid bool `json:"valid"`
	}
	err := o.Call(ctx, "xeddsaVerify", params, &r)
	return r.Valid, err
}

// Agree computes X25519(private, public) (PrivateKey.agree).
func (o *Oracle) Agree(ctx context.Context, private, public []byte) ([]byte, error) {
	params := struct {
		Private []byte `json:"private"`
		Public  []byte `json:"public"`
	}{private, public}
	var r struct {
		Shared []byte `json:"shared"`
	}
	err := o.Call(ctx, "agree", params, &r)
	return r.Shared, err
}

// KEMKeyPair is a serialized Kyber-1024 key pair, type byte 0x08 included:
// Public is 1+1568 bytes, Secret 1+3168.
type KEMKeyPair struct {
	Public []byte `json:"public"`
	Secret []byte `json:"secret"`
}

// KEMGenerate generates a Kyber-1024 key pair (KEMKeyPair.generate).
// libsignal 0.72.1's Node API has no raw encapsulate or decapsulate.
func (o *Oracle) KEMGenerate(ctx context.Context) (KEMKeyPair, error) {
	var k KEMKeyPair
	err := o.Call(ctx, "kemGenerate", nil, &k)
	return k, err
}

// AES256GCMSIVEncrypt seals plaintext with libsignal's Aes256GcmSiv (32-byte
// key, 12-byte nonce); the result is ciphertext ‖ 16-byte tag.
func (o *Oracle) AES256GCMSIVEncrypt(ctx context.Context, key, nonce, aad, plaintext []byte) ([]byte, error) {
	params := struct {
		Key       []byte `json:"key"`
		Nonce     []byte `json:"nonce"`
		AAD       []byte `json:"aad"`
		Plaintext []byte `json:"plaintext"`
	}{key, nonce, nonNil(aad), nonNil(plaintext)}
	var r struct {
		Ciphertext []byte `json:"ciphertext"`
	}
	err := o.Call(ctx, "aes256GcmSivEncrypt", params, &r)
	return r.Ciphertext, err
}

// AES256GCMSIVDecrypt opens ciphertext ‖ tag with libsignal's Aes256GcmSiv.
func (o *Oracle) AES256GCMSIVDecrypt(ctx context.Context, key, nonce, aad, ciphertext []byte) ([]byte, error) {
	params := struct {
		Key        []byte `json:"key"`
		Nonce      []byte `json:"nonce"`
		AAD        []byte `json:"aad"`
		Ciphertext []byte `json:"ciphertext"`
	}{key, nonce, nonNil(aad), nonNil(ciphertext)}
	var r struct {
		Plaintext []byte `json:"plaintext"`
	}
	if err := o.Call(ctx, "aes256GcmSivDecrypt", params, &r); err != nil {
		return nil, err
	}
	return nonNil(r.Plaintext), nil
}

// BenchOp names an operation [Oracle.Bench] can time.
type BenchOp string

// Benchmarked libsignal operations; setup happens outside the timed loop.
const (
	// BenchPQXDHAlice is processPreKeyBundle of a PQXDH bundle with a
	// one-time prekey, to a new peer address each run.
	BenchPQXDHAlice BenchOp = "pqxdh_alice"
	// BenchPQXDHBob is deserializing and decrypting a first
	// PreKeySignalMessage (1 KiB payload) from a new sender, including the
	// prekey, signed prekey and Kyber prekey lookups.
	BenchPQXDHBob BenchOp = "pqxdh_bob"
	// BenchEncryptDecrypt1K is signalEncrypt plus signalDecrypt of 1 KiB in
	// one direction of an established session.
	BenchEncryptDecrypt1K BenchOp = "encrypt_decrypt_1k"
	// BenchSealedV2x1024 is sealedSenderMultiRecipientEncrypt of a 1 KiB
	// sender-key message to 1,024 devices (1,024 ACIs, device 1 each).
	BenchSealedV2x1024 BenchOp = "sealed_v2_1024"
	// BenchSenderKeyEncrypt is groupEncrypt of 1 KiB.
	BenchSenderKeyEncrypt BenchOp = "sender_key_encrypt"
)

// BenchResult is one timing of libsignal. The times include the Node
// bridge: every store access is an async call back into JavaScript, which
// dominates the cheap operations.
type BenchResult struct {
	Op         BenchOp `json:"op"`
	Iterations int     `json:"iterations"`
	Warmup     int     `json:"warmup"`
	NsPerOp    float64 `json:"nsPerOp"`
}

// Bench times iterations runs of op inside the harness with
// process.hrtime, after a warm-up of ceil(iterations/10) runs (at most 100).
func (o *Oracle) Bench(ctx context.Context, op BenchOp, iterations int) (BenchResult, error) {
	params := struct {
		Op         BenchOp `json:"op"`
		Iterations int     `json:"iterations"`
	}{op, iterations}
	var r BenchResult
	err := o.Call(ctx, "bench", params, &r)
	return r, err
}

// nonNil maps nil to an empty slice, so that an empty message is sent as ""
// rather than null (absent), and results compare equal to []byte{}.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
