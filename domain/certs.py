"""Client certificates of things: issued by the service's CA, revoked all at once per thing.

The private key of a certificate is handed to the caller once and never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import event

from domain.attempt import Attempt, Core
from domain.base import Entity, Meta, derived_id
from domain.commands import IssueCert, RevokeCerts
from domain.common import NO_META, Done, Principal, check_uuid
from domain.errors import Invalid
from domain.things import _thing_for

MAX_TTL = 10 * 365 * 86400.0


class IssuedCert(Protocol):
    serial: str
    cert_pem: str
    key_pem: str
    expires_at: datetime


# (common name, ttl in seconds, thing id) -> a signed certificate and its key
Issuer = Callable[[str, float, str], IssuedCert]


def certbook_id(thing_id: UUID) -> UUID:
    return derived_id("certs", thing_id)


class CertBook(Entity):
    """Every certificate issued to one thing, and which of them are revoked."""

    @staticmethod
    def create_id(thing_id: UUID, **_: Any) -> UUID:
        return certbook_id(thing_id)

    @event("Opened")
    def __init__(self, thing_id: UUID, owner: UUID) -> None:
        self.thing_id, self.owner = thing_id, owner
        self.serials: dict[str, str] = {}   # serial -> expiry (ISO)
        self.revoked: set[str] = set()

    @event("Issued")
    def issued(self, serial: str, thing_id: str, owner: str, cert: str, expires_at: str) -> None:
        self.serials[serial] = expires_at

    def revoke_all(self, at: str) -> list[str]:
        live = [s for s in self.serials if s not in self.revoked]
        if live:
            self._revoked(serials=live, revoked_at=at)
        return live

    @event("Revoked")
    def _revoked(self, serials: list[str], revoked_at: str) -> None:
        self.revoked.update(serials)


def check_ttl(seconds: float) -> float:
    if not 0 < seconds <= MAX_TTL:
        raise Invalid("ttl must be positive and at most 10 years")
    return seconds


def issue_changes(at: Attempt, who: Principal, thing_id: UUID, ttl: float, issuer: Issuer
                  ) -> tuple[IssuedCert, CertBook]:
    """A certificate for a thing the caller may change, recorded in its book, unsaved."""
    thing = _thing_for(at, who, thing_id, "c_update")
    book = at.get_or_none(CertBook, certbook_id(thing_id)) or CertBook(thing_id=thing_id, owner=thing.owner)
    issued = issuer(thing.secret, ttl, str(thing_id))
    book.issued(serial=issued.serial, thing_id=str(thing_id), owner=str(thing.owner), cert=issued.cert_pem,
                expires_at=issued.expires_at.isoformat())
    return issued, book


class CertHandlers:
    """The use cases of certificates."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def issue_cert(self, who: Principal, cmd: IssueCert, meta: Meta = NO_META) -> Done:
        """A new certificate for a thing the caller may change; its common name is the thing's secret."""
        tid = check_uuid(cmd.thing_id, "thing_id")
        ttl = check_ttl(cmd.ttl_seconds)

        def build(at: Attempt) -> tuple[tuple[IssuedCert, CertBook], list[Entity]]:
            issued, book = issue_changes(at, who, tid, ttl, cmd.issuer)
            return (issued, book), [book]

        return self.core.commit(build, meta)

    def revoke_certs(self, who: Principal, cmd: RevokeCerts, meta: Meta = NO_META) -> Done:
        """Revoke every live certificate of the thing; the revoked serials are the result."""
        tid = check_uuid(cmd.thing_id, "thing_id")

        def build(at: Attempt) -> tuple[list[str], list[Entity]]:
            _thing_for(at, who, tid, "c_update")
            book = at.get_or_none(CertBook, certbook_id(tid))
            if book is None:
                return [], []
            return book.revoke_all(cmd.now.isoformat()), [book]

        return self.core.commit(build, meta)
