package sealed

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sotto-chat/sotto/internal/gcmsiv"
	"github.com/sotto-chat/sotto/internal/keys"
)

// Version bytes of sealed sender v2 (required version 2 in the high nibble).
//
// A sender uploads one SentMessage for all recipients; the server splits it
// into one ReceivedMessage per recipient (see [SentMessage.ForRecipient]).
//
// ReceivedMessage, version 0x22 (any 0x2X is accepted, as in libsignal):
//
//	+---------+--------+---------+------------+-----------------------------+
//	| version | C (32) | AT (16) | E.pub (32) | AES-256-GCM-SIV(USMC) ‖ tag |
//	+---------+--------+---------+------------+-----------------------------+
//
// SentMessage, version 0x23 (0x22: the same with 16-byte ACI UUIDs in place
// of 17-byte service IDs):
//
//	+---------+----------------+-------------------------+------------+--------+
//	| version | count (varint) | count × recipient entry | E.pub (32) | AEAD … |
//	+---------+----------------+-------------------------+------------+--------+
//
//	recipient entry: service ID, fixed-width (17) ‖ device ‖ … ‖ device ‖ C (32) ‖ AT (16)
//	excluded entry:  service ID, fixed-width (17) ‖ 0x00
//	device:          device ID (1, 1..127) ‖ big-endian uint16:
//	                 bit 15 = another device follows, bit 14 unused,
//	                 bits 13..0 = registration ID
//
// count includes excluded entries and is a minimal protobuf varint. E.pub is
// a bare u-coordinate, without the 0x05 type byte.
const (
	VersionV2UUID      byte = 0x22
	VersionV2ServiceID byte = 0x23
	// VersionV2Received is the version byte of every ReceivedMessage
	// libsignal produces, whichever SentMessage it came from.
	VersionV2Received = VersionV2UUID
)

// v2 key derivation (libsignal's sealed_sender_v2 module). All HKDFs use
// SHA-256 and no salt; public keys are in their 33-byte form (0x05 ‖ u):
//
//	M  = 32 random bytes
//	r  = HKDF(M, info = v2LabelR, 32);  E = the X25519 key pair with scalar r
//	K  = HKDF(M, info = v2LabelK, 32)   (AES-256-GCM-SIV key, zero nonce, no AD)
//	Cᵢ = HKDF(DH(E, Rᵢ) ‖ E.pub ‖ Rᵢ.pub, info = v2LabelDH, 32) ⊕ M
//	ATᵢ = HKDF(DH(S, Rᵢ) ‖ E.pub ‖ Cᵢ ‖ S.pub ‖ Rᵢ.pub, info = v2LabelDHS, 16)
//
// The receiver recovers M from C, rederives E and checks it against E.pub,
// decrypts, and only then checks AT against the sender certificate's key S.
const (
	v2LabelR   = "Sealed Sender v2: r (2023-08)"
	v2LabelK   = "Sealed Sender v2: K"
	v2LabelDH  = "Sealed Sender v2: DH"
	v2LabelDHS = "Sealed Sender v2: DH-sender"
)

// Sizes of v2 fields.
const (
	v2MessageKeySize   = 32
	v2AuthTagSize      = 16
	v2KeyMaterialSize  = v2MessageKeySize + v2AuthTagSize // C ‖ AT
	v2PublicKeySize    = 32
	v2AEADTagSize      = 16
	v2ReceivedOverhead = 1 + v2KeyMaterialSize + v2PublicKeySize
)

// Bits of a device entry's second and third bytes.
const (
	v2HasMoreDevices uint16 = 0x8000
	v2RegIDMask      uint16 = 0x3FFF
)

// Limits of multi-recipient messages.
const (
	// MaxDeviceID is the largest device ID sealed sender v2 can address: the
	// format spends one byte on it and libsignal requires 1..127.
	MaxDeviceID DeviceID = 127
	// MaxRegistrationID is the largest registration ID the format carries
	// (14 bits; libsignal refuses to send to a larger one).
	MaxRegistrationID RegistrationID = 0x3FFF
	// MaxDevicesPerRecipient bounds the devices listed for one service ID,
	// merged across repeated entries: with device IDs 1..127, a longer list
	// must repeat a device.
	MaxDevicesPerRecipient = int(MaxDeviceID)
	// MaxSentRecipients bounds the entries (recipients plus excluded ones)
	// of a SentMessage. Signal's server sizes its upload for 5,000
	// recipients (MultiRecipientMessageProvider.MAX_RECIPIENT_COUNT); Sotto
	// refuses more outright.
	MaxSentRecipients = 5000
	// MaxSentMessageSize is the largest SentMessage the other limits allow:
	// every entry at its largest (17-byte ID, 127 devices, C and AT) plus a
	// shared part whose ReceivedMessage fits [MaxMessageSize]. Checked before
	// parsing.
	MaxSentMessageSize = 1 + 3 + MaxSentRecipients*maxEntrySize + MaxMessageSize - 1 - v2KeyMaterialSize
	maxEntrySize       = ServiceIDFixedWidthSize + 3*MaxDevicesPerRecipient + v2KeyMaterialSize
)

// v2ParallelMin is the fewest recipients per goroutine when SealV2 spreads
// the per-recipient agreements over CPUs: each recipient costs two X25519
// agreements (about 100 µs), so smaller batches are not worth a goroutine.
const v2ParallelMin = 8

// RegistrationID is the number a device registered with; sealed sender v2
// carries it so the server can detect stale sessions. Only 14 bits fit.
type RegistrationID uint32

// Device is one device of a recipient.
type Device struct {
	ID             DeviceID
	RegistrationID RegistrationID
}

// Recipient is one recipient of a multi-recipient message: a service ID, the
// devices to deliver to (all share the identity key), and the identity key.
type Recipient struct {
	ServiceID   ServiceID
	Devices     []Device
	IdentityKey keys.PublicKey
}

// SealV2 seals usmc once for many recipients with sealed sender v2 and
// returns the SentMessage (version 0x23) to upload. excluded lists service
// IDs deliberately left out (the server can check the list is complete).
// senderIdentity must be the key pair the usmc's sender certificate names
// ([ErrKeyMismatch] otherwise). Every recipient needs 1 to
// [MaxDevicesPerRecipient] distinct devices with IDs 1..[MaxDeviceID] and
// registration IDs up to [MaxRegistrationID]; no service ID may appear
// twice; there may be at most [MaxSentRecipients] entries in all
// ([ErrInvalidArgument] otherwise). Randomness (32 bytes) comes from rand.
//
// The per-recipient agreements run on up to GOMAXPROCS goroutines; the
// output is allocated once, at its exact size.
func SealV2(rand io.Reader, usmc *USMC, recipients []Recipient, excluded []ServiceID, senderIdentity keys.KeyPair) ([]byte, error) {
	if usmc == nil || senderIdentity.Private.IsZero() {
		return nil, fmt.Errorf("%w: missing content or key for SealV2", ErrInvalidArgument)
	}
	sender := keys.KeyPair{Private: senderIdentity.Private, Public: senderIdentity.Private.PublicKey()}
	if !sender.Public.Equal(usmc.sender.key) {
		return nil, fmt.Errorf("sender identity for SealV2: %w", ErrKeyMismatch)
	}
	return sealV2(rand, usmc.raw, recipients, excluded, sender)
}

// checkV2Recipients validates SealV2's recipient lists and returns the size
// of the recipient entries.
func checkV2Recipients(recipients []Recipient, excluded []ServiceID) (int, error) {
	if n := len(recipients) + len(excluded); n > MaxSentRecipients {
		return 0, fmt.Errorf("%w: %d recipients, limit %d", ErrInvalidArgument, n, MaxSentRecipients)
	}
	seen := make(map[ServiceID]struct{}, len(recipients)+len(excluded))
	size := 0
	for _, r := range recipients {
		if _, dup := seen[r.ServiceID]; dup {
			return 0, fmt.Errorf("%w: recipient %v listed twice", ErrInvalidArgument, r.ServiceID)
		}
		seen[r.ServiceID] = struct{}{}
		if r.IdentityKey.IsZero() {
			return 0, fmt.Errorf("%w: recipient %v has no identity key", ErrInvalidArgument, r.ServiceID)
		}
		if len(r.Devices) == 0 || len(r.Devices) > MaxDevicesPerRecipient {
			return 0, fmt.Errorf("%w: recipient %v has %d devices", ErrInvalidArgument, r.ServiceID, len(r.Devices))
		}
		var used [MaxDeviceID + 1]bool
		for _, d := range r.Devices {
			if d.ID == 0 || d.ID > MaxDeviceID || used[d.ID] {
				return 0, fmt.Errorf("%w: recipient %v: device ID %d invalid or repeated", ErrInvalidArgument, r.ServiceID, d.ID)
			}
			used[d.ID] = true
			if d.RegistrationID > MaxRegistrationID {
				return 0, fmt.Errorf("%w: recipient %v: registration ID %d", ErrInvalidArgument, r.ServiceID, d.RegistrationID)
			}
		}
		size += ServiceIDFixedWidthSize + 3*len(r.Devices) + v2KeyMaterialSize
	}
	for _, id := range excluded {
		if _, dup := seen[id]; dup {
			return 0, fmt.Errorf("%w: excluded recipient %v listed twice", ErrInvalidArgument, id)
		}
		seen[id] = struct{}{}
		size += ServiceIDFixedWidthSize + 1
	}
	return size, nil
}

// sealV2 is SealV2 after the sender key check; sender.Public must match
// sender.Private.
func sealV2(rand io.Reader, usmc []byte, recipients []Recipient, excluded []ServiceID, sender keys.KeyPair) ([]byte, error) {
	entries, err := checkV2Recipients(recipients, excluded)
	if err != nil {
		return nil, err
	}
	if len(usmc) > MaxUSMCSize {
		return nil, fmt.Errorf("%w: content is %d bytes, limit %d", ErrInvalidArgument, len(usmc), MaxUSMCSize)
	}
	var m [v2MessageKeySize]byte
	if _, err := io.ReadFull(rand, m[:]); err != nil {
		return nil, fmt.Errorf("randomness for SealV2: %w", err)
	}
	e, k, err := v2DeriveKeys(&m)
	if err != nil {
		return nil, err
	}
	ePub := e.PublicKey()
	aead, err := gcmsiv.New(k)
	if err != nil {
		return nil, fmt.Errorf("sealed: AES-GCM-SIV: %w", err)
	}

	count := uint64(len(recipients) + len(excluded))
	size := 1 + protowire.SizeVarint(count) + entries + v2PublicKeySize + len(usmc) + aead.Overhead()
	out := make([]byte, 0, size)
	out = append(out, VersionV2ServiceID)
	out = protowire.AppendVarint(out, count)
	holes := make([]int, len(recipients)) // offsets of each Cᵢ ‖ ATᵢ, filled below
	for i, r := range recipients {
		out = r.ServiceID.appendFixedWidth(out)
		for j, d := range r.Devices {
			v := uint16(d.RegistrationID)
			if j < len(r.Devices)-1 {
				v |= v2HasMoreDevices
			}
			out = append(out, byte(d.ID))
			out = binary.BigEndian.AppendUint16(out, v)
		}
		holes[i] = len(out)
		out = out[:len(out)+v2KeyMaterialSize]
	}
	for _, id := range excluded {
		out = id.appendFixedWidth(out)
		out = append(out, 0)
	}
	u := ePub.U()
	out = append(out, u[:]...)
	var nonce [gcmsiv.NonceSize]byte // K seals one message only
	out = aead.Seal(out, nonce[:], usmc, nil)

	if err := v2FillKeyMaterial(out, holes, recipients, e, ePub, &m, sender); err != nil {
		return nil, err
	}
	return out, nil
}

// v2DeriveKeys derives the ephemeral private key E and the AEAD key K from M.
func v2DeriveKeys(m *[v2MessageKeySize]byte) (keys.PrivateKey, []byte, error) {
	prk, err := hkdf.Extract(sha256.New, m[:], nil)
	if err != nil {
		return keys.PrivateKey{}, nil, fmt.Errorf("sealed: HKDF: %w", err)
	}
	r, err := hkdf.Expand(sha256.New, prk, v2LabelR, keys.PrivateKeySize)
	if err != nil {
		return keys.PrivateKey{}, nil, fmt.Errorf("sealed: HKDF: %w", err)
	}
	k, err := hkdf.Expand(sha256.New, prk, v2LabelK, 32)
	if err != nil {
		return keys.PrivateKey{}, nil, fmt.Errorf("sealed: HKDF: %w", err)
	}
	e, err := keys.NewPrivateKey(r)
	if err != nil {
		return keys.PrivateKey{}, nil, fmt.Errorf("sealed: ephemeral key: %w", err)
	}
	return e, k, nil
}

// v2FillKeyMaterial writes Cᵢ ‖ ATᵢ for every recipient into out at holes,
// spreading the work over up to GOMAXPROCS goroutines.
func v2FillKeyMaterial(out []byte, holes []int, recipients []Recipient, e keys.PrivateKey, ePub keys.PublicKey, m *[v2MessageKeySize]byte, sender keys.KeyPair) error {
	n := len(recipients)
	workers := min(runtime.GOMAXPROCS(0), n/v2ParallelMin)
	if workers <= 1 {
		return v2FillRange(out, holes, recipients, 0, n, e, ePub, m, sender)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Go(func() {
			errs[w] = v2FillRange(out, holes, recipients, lo, hi, e, ePub, m, sender)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func v2FillRange(out []byte, holes []int, recipients []Recipient, lo, hi int, e keys.PrivateKey, ePub keys.PublicKey, m *[v2MessageKeySize]byte, sender keys.KeyPair) error {
	var ePubB, sPubB [keys.PublicKeySize]byte
	ePub.AppendBytes(ePubB[:0])
	sender.Public.AppendBytes(sPubB[:0])
	for i := lo; i < hi; i++ {
		r := recipients[i].IdentityKey
		var rPubB [keys.PublicKeySize]byte
		r.AppendBytes(rPubB[:0])
		dst := out[holes[i] : holes[i]+v2KeyMaterialSize]
		dhE, err := e.Agree(r)
		if err != nil {
			return fmt.Errorf("recipient %v: %w", recipients[i].ServiceID, err)
		}
		v2Mask(dst[:v2MessageKeySize], &dhE, ePubB[:], rPubB[:], m)
		dhS, err := sender.Private.Agree(r)
		if err != nil {
			return fmt.Errorf("recipient %v: %w", recipients[i].ServiceID, err)
		}
		at := v2AuthTag(&dhS, ePubB[:], dst[:v2MessageKeySize], sPubB[:], rPubB[:])
		copy(dst[v2MessageKeySize:], at)
	}
	return nil
}

// v2Mask sets dst (32 bytes) to HKDF(dh ‖ ePub ‖ rPub, v2LabelDH) ⊕ in: Cᵢ
// from M when sealing, M from C when opening.
func v2Mask(dst []byte, dh *[32]byte, ePub, rPub []byte, in *[v2MessageKeySize]byte) {
	var ikm [32 + 2*keys.PublicKeySize]byte
	copy(ikm[:], dh[:])
	copy(ikm[32:], ePub)
	copy(ikm[32+keys.PublicKeySize:], rPub)
	mask := hkdfSHA256(ikm[:], nil, v2LabelDH, v2MessageKeySize)
	subtle.XORBytes(dst, mask, in[:])
}

// v2AuthTag computes HKDF(dh ‖ ePub ‖ c ‖ sPub ‖ rPub, v2LabelDHS, 16).
func v2AuthTag(dh *[32]byte, ePub, c, sPub, rPub []byte) []byte {
	var ikm [32 + keys.PublicKeySize + v2MessageKeySize + 2*keys.PublicKeySize]byte
	n := copy(ikm[:], dh[:])
	n += copy(ikm[n:], ePub)
	n += copy(ikm[n:], c)
	n += copy(ikm[n:], sPub)
	copy(ikm[n:], rPub)
	return hkdfSHA256(ikm[:], nil, v2LabelDHS, v2AuthTagSize)
}

// openV2 opens the body of a v2 ReceivedMessage (after the version byte)
// with the recipient's identity key pair.
func openV2(body []byte, identity keys.KeyPair) (*USMC, error) {
	if len(body) < v2KeyMaterialSize+v2PublicKeySize {
		return nil, fmt.Errorf("%w: v2 message of %d bytes", ErrMalformed, len(body)+1)
	}
	c := body[:v2MessageKeySize]
	at := body[v2MessageKeySize:v2KeyMaterialSize]
	eU := body[v2KeyMaterialSize : v2KeyMaterialSize+v2PublicKeySize]
	ct := body[v2KeyMaterialSize+v2PublicKeySize:]

	// libsignal takes any 32 bytes here and fails later, when E does not
	// match; an invalid point is the same authentication failure.
	ePub, err := keys.PublicKeyFromU(eU)
	if err != nil {
		return nil, fmt.Errorf("v2 ephemeral key: %w", ErrBadMAC)
	}
	var ePubB, rPubB [keys.PublicKeySize]byte
	ePub.AppendBytes(ePubB[:0])
	identity.Public.AppendBytes(rPubB[:0])
	dhE, err := identity.Private.Agree(ePub)
	if err != nil {
		return nil, fmt.Errorf("v2 ephemeral agreement: %w", ErrBadMAC)
	}
	var m [v2MessageKeySize]byte
	v2Mask(m[:], &dhE, ePubB[:], rPubB[:], (*[v2MessageKeySize]byte)(c))
	e, k, err := v2DeriveKeys(&m)
	if err != nil {
		return nil, err
	}
	eU2 := e.PublicKey().U()
	if subtle.ConstantTimeCompare(eU2[:], eU) != 1 {
		return nil, fmt.Errorf("v2 derived ephemeral key does not match: %w", ErrBadMAC)
	}
	aead, err := gcmsiv.New(k)
	if err != nil {
		return nil, fmt.Errorf("sealed: AES-GCM-SIV: %w", err)
	}
	var nonce [gcmsiv.NonceSize]byte
	plain, err := aead.Open(nil, nonce[:], ct, nil)
	if err != nil {
		return nil, fmt.Errorf("v2 message: %w", ErrBadMAC)
	}
	if len(plain) > MaxUSMCSize {
		return nil, fmt.Errorf("%w: v2 message content is %d bytes, limit %d", ErrMalformed, len(plain), MaxUSMCSize)
	}
	u, err := parseUSMC(plain, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: v2 message content: %w", ErrMalformed, err)
	}
	// AT binds the certificate's identity key to this message.
	var sPubB [keys.PublicKeySize]byte
	u.sender.key.AppendBytes(sPubB[:0])
	dhS, err := identity.Private.Agree(u.sender.key)
	if err != nil {
		return nil, fmt.Errorf("v2 sender agreement: %w", ErrBadMAC)
	}
	want := v2AuthTag(&dhS, ePubB[:], c, sPubB[:], rPubB[:])
	if subtle.ConstantTimeCompare(want, at) != 1 {
		return nil, fmt.Errorf("v2 sender certificate key does not match authentication tag: %w", ErrBadMAC)
	}
	return u, nil
}
