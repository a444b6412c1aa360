"""Sealed fields: the credentials in an event's data travel on the bus encrypted.

A sealed value is ``{"sealed": "v1:<key id>:<base64url(nonce + ciphertext)>"}``: AES-256-GCM
with a random 96-bit nonce, the key derived from ``SMQ_BUS_KEY`` (``sha256("smq-es/bus/" +
key)``), and as associated data the event and field it belongs to (``associated``), so a
sealed value copied into another event, or another field, does not open. The key id (the
first 8 hex digits of ``sha256("smq-es/bus-key-id/" + derived key)``) says which key sealed
it: ``SMQ_BUS_KEY`` may list several keys, comma-separated; the first seals, all open.
"""

from __future__ import annotations

import binascii
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Top-level fields of an event's data that hold a credential (a thing's secret, a bootstrap
# external key or client private key, a unique claim's key). Password hashes never leave the
# store at all (envelope.REDACTED).
SEALED = frozenset({"secret", "new_secret", "external_key", "client_key", "key"})
VERSION = "v1"
NONCE = 12
TAG = 16  # AES-GCM's tag, after the ciphertext
MIN_KEY = 32
_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64.urlsafe_b64encode's, without its two calls
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")  # base64url read as base64 (urlsafe_b64decode's way)


class Unsealable(ValueError):
    """A sealed value this process cannot open: another key, or altered."""


def derive(key: str) -> bytes:
    """The AES-256 key of a configured key string."""
    if len(key.encode()) < MIN_KEY:
        raise ValueError(f"SMQ_BUS_KEY must be at least {MIN_KEY} bytes")
    return hashlib.sha256(b"smq-es/bus/" + key.encode()).digest()


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"smq-es/bus-key-id/" + key).hexdigest()[:8]


def associated(aggregate: str, aggregate_id: str, version: int, name: str) -> bytes:
    """What a sealed value is bound to: its event (aggregate, id, version) and its field."""
    return f"smq-es/{VERSION}\n{aggregate}\n{aggregate_id}\n{version}\n{name}".encode()


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("sealed"), str)


def _blob(text: str) -> bytes:
    """The bytes of a sealed value's base64url text (``ValueError`` when it is not base64)."""
    return binascii.a2b_base64(text.encode("ascii").translate(_FROM_URLSAFE))


def seals_empty(value: dict[str, str]) -> bool:
    """Whether a sealed value holds the empty text, told by its length without opening it
    (what the audit log needs of a credential no view opened). ``seal`` writes the 28 bytes
    of an empty one as 40 characters; a longer text holds more."""
    text = value["sealed"].rpartition(":")[2]
    try:
        return len(text) <= 40 and len(_blob(text)) == NONCE + TAG
    except ValueError:
        return False


class Sealer:
    """Seals and opens the credential fields of events with the deployment's bus key(s)."""

    def __init__(self, keys: str | Sequence[str]) -> None:
        listed = [k.strip() for k in keys.split(",")] if isinstance(keys, str) else list(keys)
        derived = [derive(k) for k in listed if k]
        if not derived:
            raise ValueError("SMQ_BUS_KEY is empty")
        self.key_id = key_id(derived[0])
        self._sealing = AESGCM(derived[0])
        self._sealed_prefix = f"{VERSION}:{self.key_id}:"
        self._opening = {key_id(k): AESGCM(k) for k in derived}

    def seal(self, plain: str, ad: bytes) -> dict[str, str]:
        nonce = os.urandom(NONCE)
        blob = nonce + self._sealing.encrypt(nonce, plain.encode(), ad)
        text = binascii.b2a_base64(blob, newline=False).translate(_URLSAFE).decode()
        return {"sealed": self._sealed_prefix + text}

    def open(self, value: dict[str, str], ad: bytes) -> str:
        version, _, rest = value["sealed"].partition(":")
        kid, _, text = rest.partition(":")
        if version != VERSION:
            raise Unsealable(f"sealed with an unknown format {version!r}")
        aead = self._opening.get(kid)
        if aead is None:
            raise Unsealable(f"sealed with key {kid!r}, this process holds {sorted(self._opening)}: "
                             "every role of a deployment must share SMQ_BUS_KEY")
        try:
            blob = _blob(text)
            return aead.decrypt(blob[:NONCE], blob[NONCE:], ad).decode()
        except (InvalidTag, ValueError) as exc:
            raise Unsealable("a sealed value does not open here: altered, or moved from "
                             "another event or field") from exc

    def seal_data(self, data: dict[str, Any], aggregate: str, aggregate_id: str,
                  version: int) -> dict[str, Any]:
        """``data`` with its credential fields sealed (other fields as they are; ``data``
        itself when it holds none, a copy otherwise)."""
        fields = SEALED.intersection(data)
        if not fields:
            return data
        sealed = dict(data)
        for k in fields:
            v = data[k]
            if isinstance(v, str):
                sealed[k] = self.seal(v, associated(aggregate, aggregate_id, version, k))
        return sealed

    def open_data(self, data: dict[str, Any], aggregate: str, aggregate_id: str,
                  version: int) -> dict[str, Any]:
        """``data`` with its sealed fields opened (a plain value, from before sealing, as it is)."""
        opened = None
        for k in SEALED.intersection(data):
            if is_sealed(value := data[k]):
                if opened is None:
                    opened = dict(data)
                try:
                    opened[k] = self.open(value, associated(aggregate, aggregate_id, version, k))
                except Unsealable as exc:
                    raise Unsealable(f"{aggregate} {aggregate_id} version {version}, field {k}: {exc}") from exc
        return data if opened is None else opened
