// Package x3dh implements Signal's PQXDH key agreement: a device (Alice)
// takes another device's published prekey bundle (Bob's) and derives the
// initial root and chain keys of a Double Ratchet session, and Bob derives the
// same keys from Alice's first message.
//
// The name follows the layout every Signal implementation shares; the only
// agreement implemented here is PQXDH, the post-quantum extension of X3DH.
// Sotto never sets up a session without a KEM prekey, so it never falls back
// to plain X3DH (no downgrade).
//
// Specification: [PQXDH] (revision 3), as libsignal 0.72.1 implements it:
//
//	SK = HKDF-SHA-256(salt = nil,
//	                  ikm  = 0xFF×32 ‖ DH(IKa, SPKb) ‖ DH(EKa, IKb) ‖ DH(EKa, SPKb)
//	                         [‖ DH(EKa, OPKb)] ‖ SS_kem,
//	                  info = "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024",
//	                  L    = 64)
//	root key = SK[0:32], first chain key = SK[32:64]
//
// # Security
//
// Every public key in a bundle or message is parsed with
// [keys.ParsePublicKey] (canonical, on the curve, no torsion); the signed
// prekey and the KEM prekey must carry valid XEdDSA signatures by Bob's
// identity key. Identity-key trust (is this the key we expect for Bob?) is
// the caller's decision, made before [Initiate] and after [Respond].
//
// # Compatibility
//
// libsignal uses the same info string whether the KEM is Kyber-1024 (type
// 0x08, every session with libsignal 0.72) or ML-KEM-1024 (type 0x0A, Sotto
// to Sotto); the KEM type travels in the key and ciphertext encodings. The
// resulting sessions are message version 4.
//
// [PQXDH]: https://signal.org/docs/specifications/pqxdh/
package x3dh
