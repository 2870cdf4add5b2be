package ratchet

import "github.com/sotto-chat/sotto/internal/pb"

// EncodeMessageFields re-encodes a parsed SignalMessage's protobuf body the
// way newMessage writes it (for the canonical-form checks of the fuzz tests).
func EncodeMessageFields(m *Message) []byte {
	var b []byte
	b = pb.AppendBytes(b, 1, m.RatchetKey)
	b = pb.AppendUint(b, 2, uint64(m.Counter))
	b = pb.AppendUint(b, 3, uint64(m.PreviousCounter))
	return pb.AppendBytes(b, 4, m.Ciphertext)
}

// EncodePreKeyMessageFields re-encodes a parsed PreKeySignalMessage's body
// the way newPreKeyMessage writes it.
func EncodePreKeyMessageFields(p *PreKeyMessage) []byte {
	pending := &pendingPreKey{
		hasPreKey: p.HasPreKey, preKeyID: p.PreKeyID, signedPreKeyID: p.SignedPreKeyID,
		kemPreKeyID: p.KEMPreKeyID, kemCiphertext: p.KEMCiphertext, baseKey: p.BaseKey,
	}
	return newPreKeyMessage(pending, p.RegistrationID, p.IdentityKey, p.Message.Bytes())[1:]
}
