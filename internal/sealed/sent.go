package sealed

import (
	"encoding/binary"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// SentMessage is a parsed sealed sender v2 upload (see [VersionV2UUID] for
// the layout): what the server needs to fan it out. Parsing checks the
// structure only; the server cannot check any cryptography.
//
// Recipients and Excluded are in order of first appearance. A service ID
// that appears in several entries (libsignal allows this) is listed once,
// with the devices of all its entries, and receives the key material of its
// first entry. The exported fields are for reading; changing them does not
// change what ForRecipient returns. A SentMessage aliases the bytes it was
// parsed from, which must not change while it is in use; it is safe for
// concurrent reads.
type SentMessage struct {
	// Version is 0x22 (ACI-only entries) or 0x23 (service ID entries).
	Version    byte
	Recipients []SentRecipient
	Excluded   []ServiceID

	msg    []byte
	shared int               // offset of E.pub ‖ ciphertext in msg
	keyOff []int             // offset of C ‖ AT in msg, per recipient
	index  map[ServiceID]int // index into Recipients, or -1 if excluded
}

// SentRecipient is one recipient of a [SentMessage] and the devices the
// sender addressed. Device lists are not deduplicated (the server checks
// them against the account anyway), and registration IDs are the 14 bits
// the format carries.
type SentRecipient struct {
	ServiceID ServiceID
	Devices   []Device
}

// sentEntry is one entry of a SentMessage as walkSent finds it.
type sentEntry struct {
	id      ServiceID
	devices []byte // 3 bytes per device, validated
	keyOff  int    // offset of C ‖ AT, or -1 for an excluded entry
}

// ParseSentMessage parses a v2 SentMessage (version 0x22 or 0x23) as
// libsignal's SealedSenderV2SentMessage::parse does, within this package's
// limits, and rejects a message whose per-recipient form would exceed
// [MaxMessageSize]. Errors wrap [ErrVersion] or [ErrMalformed]. The result
// aliases b.
//
// Allocation is proportional to the number of entries and devices actually
// present, never to a count read from the input.
func ParseSentMessage(b []byte) (*SentMessage, error) {
	var nRecipients, nExcluded, nDevices int
	shared, err := walkSent(b, func(e sentEntry) error {
		if e.keyOff < 0 {
			nExcluded++
		} else {
			nRecipients++
			nDevices += len(e.devices) / 3
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n := v2ReceivedOverhead - v2PublicKeySize + len(b) - shared; n > MaxMessageSize {
		return nil, fmt.Errorf("%w: SentMessage: per-recipient message of %d bytes, limit %d", ErrMalformed, n, MaxMessageSize)
	}
	m := &SentMessage{
		Version:    b[0],
		Recipients: make([]SentRecipient, 0, nRecipients),
		Excluded:   make([]ServiceID, 0, nExcluded),
		msg:        b,
		shared:     shared,
		keyOff:     make([]int, 0, nRecipients),
		index:      make(map[ServiceID]int, nRecipients+nExcluded),
	}
	devices := make([]Device, nDevices)
	_, err = walkSent(b, func(e sentEntry) error {
		i, seen := m.index[e.id]
		if e.keyOff < 0 || (seen && i < 0) {
			if seen {
				return fmt.Errorf("%w: SentMessage: recipient %v redundantly encoded as empty", ErrMalformed, e.id)
			}
			m.index[e.id] = -1
			m.Excluded = append(m.Excluded, e.id)
			return nil
		}
		n := len(e.devices) / 3
		ds := devices[:n:n]
		devices = devices[n:]
		for j := range ds {
			d := e.devices[3*j:]
			ds[j] = Device{
				ID:             DeviceID(d[0]),
				RegistrationID: RegistrationID(binary.BigEndian.Uint16(d[1:]) & v2RegIDMask),
			}
		}
		if seen {
			r := &m.Recipients[i]
			if len(r.Devices)+n > MaxDevicesPerRecipient {
				return fmt.Errorf("%w: SentMessage: recipient %v has more than %d devices", ErrMalformed, e.id, MaxDevicesPerRecipient)
			}
			// r.Devices has no spare capacity, so this copies.
			r.Devices = append(r.Devices, ds...)
			return nil
		}
		m.index[e.id] = len(m.Recipients)
		m.Recipients = append(m.Recipients, SentRecipient{ServiceID: e.id, Devices: ds})
		m.keyOff = append(m.keyOff, e.keyOff)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// walkSent checks the structure of a SentMessage, calls fn for each entry,
// and returns the offset of the shared part. It allocates nothing.
func walkSent(b []byte, fn func(sentEntry) error) (int, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("%w: SentMessage: empty", ErrMalformed)
	}
	if len(b) > MaxSentMessageSize {
		return 0, fmt.Errorf("%w: SentMessage of %d bytes, limit %d", ErrMalformed, len(b), MaxSentMessageSize)
	}
	idSize := ServiceIDFixedWidthSize
	switch b[0] {
	case VersionV2ServiceID:
	case VersionV2UUID:
		idSize = UUIDSize // the first format assumed ACIs
	default:
		return 0, fmt.Errorf("%w: SentMessage version 0x%02x", ErrVersion, b[0])
	}
	count, n := protowire.ConsumeVarint(b[1:])
	if n < 0 || n != protowire.SizeVarint(count) {
		// libsignal reads a non-minimal count and then skips only the
		// minimal length, misreading the rest; refuse it instead.
		return 0, fmt.Errorf("%w: SentMessage: bad recipient count", ErrMalformed)
	}
	if count > MaxSentRecipients {
		return 0, fmt.Errorf("%w: SentMessage: %d recipients, limit %d", ErrMalformed, count, MaxSentRecipients)
	}
	truncated := fmt.Errorf("%w: SentMessage truncated", ErrMalformed)
	pos := 1 + n
	for range count {
		if len(b)-pos < idSize {
			return 0, truncated
		}
		var id ServiceID
		if idSize == UUIDSize {
			id = ACI([UUIDSize]byte(b[pos:]))
		} else {
			var err error
			if id, err = ParseServiceIDFixedWidth(b[pos : pos+idSize]); err != nil {
				return 0, fmt.Errorf("SentMessage: %w", err)
			}
		}
		pos += idSize
		start, nDevices := pos, 0
		for {
			if pos >= len(b) {
				return 0, truncated
			}
			d := b[pos]
			if d == 0 {
				if nDevices > 0 {
					return 0, fmt.Errorf("%w: SentMessage: device ID 0 after a device", ErrMalformed)
				}
				pos++
				break
			}
			if DeviceID(d) > MaxDeviceID {
				return 0, fmt.Errorf("%w: SentMessage: device ID %d", ErrMalformed, d)
			}
			if len(b)-pos < 3 {
				return 0, truncated
			}
			v := binary.BigEndian.Uint16(b[pos+1:])
			pos += 3
			if nDevices++; nDevices > MaxDevicesPerRecipient {
				return 0, fmt.Errorf("%w: SentMessage: recipient %v has more than %d devices", ErrMalformed, id, MaxDevicesPerRecipient)
			}
			if v&v2HasMoreDevices == 0 {
				break
			}
		}
		e := sentEntry{id: id, devices: b[start : start+3*nDevices], keyOff: -1}
		if nDevices > 0 {
			if len(b)-pos < v2KeyMaterialSize {
				return 0, truncated
			}
			e.keyOff = pos
			pos += v2KeyMaterialSize
		}
		if err := fn(e); err != nil {
			return 0, err
		}
	}
	if len(b)-pos < v2PublicKeySize {
		return 0, truncated
	}
	return pos, nil
}

// Recipient returns the recipient with service ID id, and whether there is
// one (excluded service IDs are not recipients).
func (m *SentMessage) Recipient(id ServiceID) (SentRecipient, bool) {
	i, ok := m.index[id]
	if !ok || i < 0 {
		return SentRecipient{}, false
	}
	r := m.Recipients[i]
	r.Devices = slices.Clone(r.Devices)
	return r, true
}

// ReceivedSize is the size of every ReceivedMessage of m.
func (m *SentMessage) ReceivedSize() int {
	return 1 + v2KeyMaterialSize + len(m.msg) - m.shared
}

// ForRecipient returns, in a new slice, the ReceivedMessage to deliver to
// every device of recipient id: version 0x22 ‖ the recipient's C ‖ AT ‖ the
// shared E.pub and ciphertext, byte for byte what libsignal's
// SealedSenderV2SentMessage produces. It returns [ErrUnknownRecipient] for a
// service ID not in m and [ErrExcludedRecipient] for an excluded one.
func (m *SentMessage) ForRecipient(id ServiceID) ([]byte, error) {
	return m.AppendForRecipient(nil, id)
}

// AppendForRecipient is [SentMessage.ForRecipient] appending to dst, so that
// a server fanning out to many recipients can reuse one buffer.
func (m *SentMessage) AppendForRecipient(dst []byte, id ServiceID) ([]byte, error) {
	i, ok := m.index[id]
	if !ok {
		return dst, ErrUnknownRecipient
	}
	if i < 0 {
		return dst, ErrExcludedRecipient
	}
	off := m.keyOff[i]
	dst = slices.Grow(dst, m.ReceivedSize())
	dst = append(dst, VersionV2Received)
	dst = append(dst, m.msg[off:off+v2KeyMaterialSize]...)
	return append(dst, m.msg[m.shared:]...), nil
}
