"""Files written once into the data folder, safely when several processes start at once."""

from __future__ import annotations

import os
import time
from pathlib import Path


def write_once(path: Path, data: bytes) -> bytes:
    """Write ``data`` to ``path`` unless another process got there first; what the file holds.

    The content goes to a private temporary file that is then hard-linked into place: the
    file appears complete or not at all, and a second writer keeps the first one's content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        return path.read_bytes()
    finally:
        tmp.unlink()
    return data


def wait_for(path: Path, bound: float = 10.0) -> bytes:
    """The content of a file another process is about to write."""
    deadline = time.monotonic() + bound
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {bound}s")
        time.sleep(0.05)
    return path.read_bytes()
