"""AES-CFB as upstream's secure bootstrap uses it: a random IV, then the ciphertext."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # CFB lives among the "decrepit" modes from cryptography 47 on
    from cryptography.hazmat.decrepit.ciphers import modes
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers import modes  # type: ignore[no-redef]

BLOCK = 16


def encrypt(key: bytes, plain: bytes) -> bytes:
    iv = os.urandom(BLOCK)
    enc = Cipher(algorithms.AES(key), modes.CFB(iv)).encryptor()
    return iv + enc.update(plain) + enc.finalize()


def decrypt(key: bytes, data: bytes) -> bytes:
    if len(data) < BLOCK:
        raise ValueError("ciphertext shorter than one block")
    dec = Cipher(algorithms.AES(key), modes.CFB(data[:BLOCK])).decryptor()
    return dec.update(data[BLOCK:]) + dec.finalize()
