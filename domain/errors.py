"""Domain errors, each with a stable message; the API maps them to statuses in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    """The request is malformed or breaks a rule of its fields."""


class NotFound(DomainError):
    """The entity does not exist or the caller may not see it."""


class Conflict(DomainError):
    """A unique value is taken, or a concurrent change won."""


class Forbidden(DomainError):
    """The caller sees the entity but may not do this to it."""


class Unauthenticated(DomainError):
    """Missing or wrong credentials."""


class Unavailable(DomainError):
    """A service a command depends on (the certificate authority) refused or failed."""
