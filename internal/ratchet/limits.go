package ratchet

import "time"

// Limits on what a peer can make a session store or compute. They are
// libsignal's values, so a Sotto device accepts exactly what a libsignal
// device does.
const (
	// MaxForwardJump is how far ahead of its chain a message counter may
	// be. Reaching a counter costs two HMACs per skipped message, so an
	// unbounded counter (2³² from one forged header) would be a CPU attack;
	// 25,000 covers any realistic burst of lost or delayed messages.
	MaxForwardJump = 25_000

	// MaxSkippedKeys is how many skipped message keys one receiving chain
	// keeps for late messages. Beyond it the oldest are dropped (those
	// messages become undecryptable), which bounds the stored state at
	// 32 bytes × 2,000 per chain.
	MaxSkippedKeys = 2_000

	// MaxReceiverChains is how many of the peer's ratchet keys a session
	// remembers. Messages from an older chain than the last five are very
	// late (five round trips), and each chain may hold MaxSkippedKeys keys.
	MaxReceiverChains = 5

	// MaxUnacknowledgedSessionAge is how long a session we initiated may go
	// unanswered before we stop sending on it and fetch a new bundle: the
	// peer deletes unused prekeys on about this schedule, so older first
	// messages would likely be undecryptable.
	MaxUnacknowledgedSessionAge = 30 * 24 * time.Hour

	// MaxMessageSize bounds a SignalMessage (and the inner message of a
	// PreKeySignalMessage). Signal's content messages stay far below it
	// (attachments travel separately); it keeps a forged length from
	// making a parser copy or a CBC decryption allocate without bound.
	MaxMessageSize = 256 << 10

	// MaxPlaintextSize is the largest plaintext Encrypt takes: what fits in
	// MaxMessageSize after CBC padding (up to 16 bytes), the header fields
	// (at most 60 bytes) and the MAC, with room to spare.
	MaxPlaintextSize = MaxMessageSize - 128
)
