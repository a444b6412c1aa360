"""The service's own keys: configured, or generated once into the data folder (mode 0600)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from infra.files import write_once
from infra.settings import Settings
from projections.sealing import Sealer


def kept_secret(settings: Settings, configured: str | None, file: str, make: Callable[[], str]) -> str:
    """A configured key, or one generated once into the data folder (readable by us alone)."""
    if configured:
        return configured
    path = Path(settings.data_dir) / file
    if path.exists():
        return path.read_text().strip()
    return write_once(path, make().encode()).decode().strip()


def jwt_secret(settings: Settings) -> str:
    """The configured signing key, or one generated once into the data folder."""
    return kept_secret(settings, settings.jwt_secret, "jwt.key", lambda: secrets.token_urlsafe(48))


def bootstrap_key(settings: Settings) -> bytes:
    """The AES key of the secure bootstrap (as upstream: the key string's bytes)."""
    key = kept_secret(settings, settings.bootstrap_key, "bootstrap.key", lambda: secrets.token_hex(16))
    if len(key.encode()) not in (16, 24, 32):
        raise ValueError("SMQ_BOOTSTRAP_ENCRYPT_KEY must be 16, 24 or 32 bytes")
    return key.encode()


def bus_sealer(settings: Settings) -> Sealer:
    """What seals the credentials of events on the bus and opens them for the views."""
    return Sealer(kept_secret(settings, settings.bus_key, "bus.key", lambda: secrets.token_urlsafe(32)))
