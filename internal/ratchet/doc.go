// Package ratchet implements the Double Ratchet as libsignal runs it: the
// state of one session between two devices, the KDF chains, and the v4
// SignalMessage and PreKeySignalMessage formats.
//
// A [State] is created by [NewAlice] or [NewBob] from the secrets of a PQXDH
// agreement (package x3dh), encrypts with [State.Encrypt], and decrypts with
// [State.Decrypt]. The package does no I/O and keeps no global state;
// storage goes through [State.MarshalBinary] / [State.UnmarshalBinary].
//
// Specification: [Double Ratchet] (revision 4), with libsignal's choices:
//
//	KDF_RK(rk, dh)  = HKDF-SHA-256(salt=rk, ikm=dh, info="WhisperRatchet", 64)
//	                  → (new root key, chain key)
//	KDF_CK(ck)      = (HMAC-SHA-256(ck, 0x01) = message key seed,
//	                   HMAC-SHA-256(ck, 0x02) = next chain key)
//	message keys    = HKDF-SHA-256(salt=nil, ikm=seed, info="WhisperMessageKeys", 80)
//	                  → cipher key 32 ‖ MAC key 32 ‖ IV 16
//	ENCRYPT         = AES-256-CBC with PKCS#7 padding
//	MAC             = HMAC-SHA-256(MAC key, sender identity ‖ receiver identity ‖
//	                  version byte ‖ SignalMessage protobuf)[:8]
//
// # Security
//
// Decryption computes every change to the state first, checks the MAC, and
// only then commits: a forged, replayed or corrupted message leaves the state
// exactly as it was. Message keys are deleted when used (forward secrecy);
// a new ratchet key from the peer triggers a DH ratchet step with a fresh key
// pair (post-compromise security). Attacker-controlled counters are bounded
// by [MaxForwardJump]; stored keys by [MaxSkippedKeys] per chain and
// [MaxReceiverChains] chains.
//
// # Compatibility
//
// Messages are libsignal's version 4 (version byte 0x44):
//
//	SignalMessage       = 0x44 ‖ protobuf{1: ratchet_key (33), 2: counter,
//	                      3: previous_counter, 4: ciphertext} ‖ MAC (8)
//	PreKeySignalMessage = 0x44 ‖ protobuf{1: pre_key_id?, 2: base_key (33),
//	                      3: identity_key (33), 4: message (SignalMessage),
//	                      5: registration_id, 6: signed_pre_key_id,
//	                      7: kyber_pre_key_id, 8: kyber_ciphertext (1+1568)}
//
// History: version 3 (2013–2023) had no KEM fields and is refused here;
// version 4 (libsignal 0.30, 2023) added them for PQXDH. Stored states use
// libsignal's SessionStructure layout behind a one-byte format version.
//
// [Double Ratchet]: https://signal.org/docs/specifications/doubleratchet/
package ratchet
