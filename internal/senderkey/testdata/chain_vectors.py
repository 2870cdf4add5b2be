#!/usr/bin/env python3
"""Independent generator for chain-vectors.json (Python's hmac/hashlib and
pyca/cryptography, not Sotto's code). Run from this directory:

    python3 chain_vectors.py > chain-vectors.json

Derivation (libsignal's sender_keys.rs):
    seed_i   = HMAC-SHA256(CK_i, 0x01)
    CK_{i+1} = HMAC-SHA256(CK_i, 0x02)
    iv || key = HKDF-SHA256(salt=none, ikm=seed_i, info="WhisperGroup", L=48)
    ct_i     = AES-256-CBC(key, iv, PKCS7(plaintext_i))
"""
import hashlib, hmac, json
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ck0 = bytes(range(32))
wanted = [0, 1, 2, 99, 100, 2000, 2001]
out = {"chain_key": ck0.hex(), "steps": []}
ck = ck0
for i in range(max(wanted) + 1):
    seed = hmac.new(ck, b"\x01", hashlib.sha256).digest()
    if i in wanted:
        okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=None, info=b"WhisperGroup").derive(seed)
        iv, key = okm[:16], okm[16:]
        pt = ("nefarious plotting %d" % i).encode()
        padder = padding.PKCS7(128).padder()
        padded = padder.update(pt) + padder.finalize()
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        ct = enc.update(padded) + enc.finalize()
        out["steps"].append({
            "iteration": i, "chain_key": ck.hex(), "seed": seed.hex(),
            "iv": iv.hex(), "cipher_key": key.hex(),
            "plaintext": pt.decode(), "ciphertext": ct.hex(),
        })
    ck = hmac.new(ck, b"\x02", hashlib.sha256).digest()
print(json.dumps(out, indent=1))
