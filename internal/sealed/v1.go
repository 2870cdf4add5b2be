package sealed

import (
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pb"
	"github.com/sotto-chat/sotto/internal/symm"
)

// VersionV1 is the version byte of a sealed sender v1 message: required
// version 1 in the high nibble, current version 1 in the low one.
//
// Wire layout of a v1 message:
//
//	+------+------------------------------------------------------------+
//	| 0x11 | UnidentifiedSenderMessage (protobuf):                      |
//	|      |   1: ephemeralPublic   33 bytes, 0x05 ‖ u                  |
//	|      |   2: encryptedStatic   AES-CTR(sender identity key) ‖ MAC  |
//	|      |   3: encryptedMessage  AES-CTR(USMC) ‖ MAC                 |
//	+------+------------------------------------------------------------+
//
// Each MAC is HMAC-SHA256 over the ciphertext, truncated to 10 bytes.
const VersionV1 byte = 0x11

// v1 key derivation (libsignal's sealed_sender_v1 module):
//
//	chain ‖ cipherE ‖ macE = HKDF(ikm = DH(e, R),
//	    salt = "UnidentifiedDelivery" ‖ R.pub ‖ e.pub, info = "", 96 bytes)
//	encryptedStatic = AES-CTR(cipherE, S.pub) ‖ HMAC(macE, ·)[:10]
//	_ ‖ cipherS ‖ macS = HKDF(ikm = DH(S, R),
//	    salt = chain ‖ encryptedStatic, info = "", 96 bytes)
//	encryptedMessage = AES-CTR(cipherS, USMC) ‖ HMAC(macS, ·)[:10]
//
// Public keys are in their 33-byte form. The first 32 bytes of the second
// derivation are discarded.
const (
	v1SaltPrefix = "UnidentifiedDelivery"
	v1KDFSize    = 96
)

// Protobuf field numbers of UnidentifiedSenderMessage.
const (
	fieldV1Ephemeral pb.Number = 1
	fieldV1Static    pb.Number = 2
	fieldV1Message   pb.Number = 3
)

// SealV1 seals usmc for one recipient with sealed sender v1, drawing the
// ephemeral key from rand. senderIdentity must be the identity key pair the
// usmc's sender certificate names ([ErrKeyMismatch] otherwise): the receiver
// checks that binding. The result is the exact wire bytes (see [VersionV1]).
func SealV1(rand io.Reader, usmc *USMC, recipientIdentity keys.PublicKey, senderIdentity keys.KeyPair) ([]byte, error) {
	if usmc == nil || recipientIdentity.IsZero() || senderIdentity.Private.IsZero() {
		return nil, fmt.Errorf("%w: missing content or key for SealV1", ErrInvalidArgument)
	}
	sender := keys.KeyPair{Private: senderIdentity.Private, Public: senderIdentity.Private.PublicKey()}
	if !sender.Public.Equal(usmc.sender.key) {
		return nil, fmt.Errorf("sender identity for SealV1: %w", ErrKeyMismatch)
	}
	return sealV1(rand, usmc.raw, recipientIdentity, sender)
}

// sealV1 is SealV1 without the argument checks, so that tests can build
// messages whose binding is wrong. sender.Public must match sender.Private.
func sealV1(rand io.Reader, usmc []byte, recipient keys.PublicKey, sender keys.KeyPair) ([]byte, error) {
	eph, err := keys.GenerateKeyPair(rand)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key for SealV1: %w", err)
	}
	ephPub := eph.Public.Bytes()
	chain, cipherE, macE, err := v1EphemeralKeys(eph.Private, recipient, recipient.Bytes(), ephPub)
	if err != nil {
		return nil, err
	}
	static, err := symm.EncryptCTRHMAC(cipherE[:], macE[:], sender.Public.Bytes())
	if err != nil {
		return nil, fmt.Errorf("sealed: v1 sender key: %w", err)
	}
	cipherS, macS, err := v1StaticKeys(sender.Private, recipient, chain, static)
	if err != nil {
		return nil, err
	}
	message, err := symm.EncryptCTRHMAC(cipherS[:], macS[:], usmc)
	if err != nil {
		return nil, fmt.Errorf("sealed: v1 message: %w", err)
	}
	out := make([]byte, 0, 1+pb.SizeBytes(fieldV1Ephemeral, len(ephPub))+
		pb.SizeBytes(fieldV1Static, len(static))+pb.SizeBytes(fieldV1Message, len(message)))
	out = append(out, VersionV1)
	out = pb.AppendBytes(out, fieldV1Ephemeral, ephPub)
	out = pb.AppendBytes(out, fieldV1Static, static)
	return pb.AppendBytes(out, fieldV1Message, message), nil
}

// v1EphemeralKeys derives chain, cipher and MAC keys from DH(priv, pub) with
// the salt "UnidentifiedDelivery" ‖ recipientPub ‖ ephemeralPub.
func v1EphemeralKeys(priv keys.PrivateKey, pub keys.PublicKey, recipientPub, ephemeralPub []byte) (chain, cipherKey, macKey *[32]byte, err error) {
	dh, err := priv.Agree(pub)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("v1 ephemeral agreement: %w", err)
	}
	salt := make([]byte, 0, len(v1SaltPrefix)+2*keys.PublicKeySize)
	salt = append(salt, v1SaltPrefix...)
	salt = append(salt, recipientPub...)
	salt = append(salt, ephemeralPub...)
	k := hkdfSHA256(dh[:], salt, "", v1KDFSize)
	return (*[32]byte)(k[0:32]), (*[32]byte)(k[32:64]), (*[32]byte)(k[64:96]), nil
}

// v1StaticKeys derives the cipher and MAC keys for the message from the
// identity agreement, salted with chain ‖ encryptedStatic.
func v1StaticKeys(priv keys.PrivateKey, pub keys.PublicKey, chain *[32]byte, encryptedStatic []byte) (cipherKey, macKey *[32]byte, err error) {
	dh, err := priv.Agree(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("v1 static agreement: %w", err)
	}
	salt := make([]byte, 0, len(chain)+len(encryptedStatic))
	salt = append(salt, chain[:]...)
	salt = append(salt, encryptedStatic...)
	k := hkdfSHA256(dh[:], salt, "", v1KDFSize)
	return (*[32]byte)(k[32:64]), (*[32]byte)(k[64:96]), nil
}

// openV1 opens the body of a v1 message (after the version byte) with the
// recipient's identity key pair.
func openV1(body []byte, identity keys.KeyPair) (*USMC, error) {
	var ephBytes, static, message []byte
	var haveEph, haveStatic, haveMessage bool
	err := pb.Walk(body, func(f pb.Field) error {
		var err error
		switch f.Num {
		case fieldV1Ephemeral:
			ephBytes, err = f.BytesMax(keys.PublicKeySize)
			haveEph = true
		case fieldV1Static:
			static, err = f.BytesMax(MaxMessageSize)
			haveStatic = true
		case fieldV1Message:
			message, err = f.BytesMax(MaxMessageSize)
			haveMessage = true
		}
		return err
	})
	if err == nil && (!haveEph || !haveStatic || !haveMessage) {
		err = fmt.Errorf("%w: field missing", pb.ErrMalformed)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: v1 message: %w", ErrMalformed, err)
	}
	eph, err := keys.ParsePublicKey(ephBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: v1 ephemeral key: %w", ErrMalformed, err)
	}
	chain, cipherE, macE, err := v1EphemeralKeys(identity.Private, eph, identity.Public.Bytes(), ephBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMAC, err)
	}
	senderKey, err := symm.DecryptCTRHMAC(cipherE[:], macE[:], static)
	if err != nil {
		return nil, fmt.Errorf("v1 sender key: %w", ErrBadMAC)
	}
	sender, err := keys.ParsePublicKey(senderKey)
	if err != nil {
		// Authenticated only by the ephemeral agreement, which anyone can
		// make: not a detail worth distinguishing.
		return nil, fmt.Errorf("v1 sender key: %w", ErrBadMAC)
	}
	cipherS, macS, err := v1StaticKeys(identity.Private, sender, chain, static)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMAC, err)
	}
	plain, err := symm.DecryptCTRHMAC(cipherS[:], macS[:], message)
	if err != nil {
		return nil, fmt.Errorf("v1 message: %w", ErrBadMAC)
	}
	if len(plain) > MaxUSMCSize {
		return nil, fmt.Errorf("%w: v1 message content is %d bytes, limit %d", ErrMalformed, len(plain), MaxUSMCSize)
	}
	u, err := parseUSMC(plain, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: v1 message content: %w", ErrMalformed, err)
	}
	// The certificate must name the key that sealed the message.
	if subtle.ConstantTimeCompare(senderKey, u.sender.key.Bytes()) != 1 {
		return nil, fmt.Errorf("v1 sender certificate key does not match message key: %w", ErrBadMAC)
	}
	return u, nil
}
