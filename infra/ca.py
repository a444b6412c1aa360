"""The service's own certificate authority: issues thing client certificates and signs the CRL.

Generated into the data folder on first start (or loaded from configured PEM files). All the
cryptography is the `cryptography` package's; nothing here is hand-written crypto.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from infra.files import wait_for, write_once

UTC = dt.UTC


@dataclass(frozen=True)
class Issued:
    """A client certificate as issued: the key is handed out once and kept nowhere."""

    serial: str
    cert_pem: str
    key_pem: str
    expires_at: dt.datetime


def serial_hex(n: int) -> str:
    return format(n, "x")


class CertificateAuthority:
    """Signs client certificates whose common name is the thing's secret (as upstream)."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert, self.key = cert, key

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def generate(cls, common_name: str = "smq-es CA", years: int = 10) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smq-es"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=365 * years))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key must be an elliptic-curve key")
        return cls(x509.load_pem_x509_certificate(cert_pem), key)

    @classmethod
    def load_or_create(cls, data_dir: Path, cert_file: str | None = None,
                       key_file: str | None = None) -> CertificateAuthority:
        """The configured CA files, else the one in the data folder, made on first use."""
        if cert_file and key_file:
            return cls.from_pem(Path(cert_file).read_bytes(), Path(key_file).read_bytes())
        cert_path, key_path = data_dir / "ca.crt", data_dir / "ca.key"
        if cert_path.exists() and key_path.exists():
            return cls.from_pem(cert_path.read_bytes(), key_path.read_bytes())
        ca = cls.generate()
        # Processes starting together agree on one CA: the first key written wins, and its
        # writer writes the certificate; the others wait for it.
        key = write_once(key_path, ca.key_pem())
        if key != ca.key_pem():
            return cls.from_pem(wait_for(cert_path), key)
        write_once(cert_path, ca.cert_pem().encode())
        return ca

    # -- output -------------------------------------------------------------------------
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def issue(self, common_name: str, ttl: dt.timedelta, thing_id: str = "") -> Issued:
        """A new key pair and a client certificate for it, valid for ``ttl``."""
        if ttl <= dt.timedelta(0):
            raise ValueError("ttl must be positive")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(UTC)
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smq-es"),
                 x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if thing_id:
            attrs.insert(1, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, thing_id))
        serial = x509.random_serial_number()
        expires = now + ttl
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name(attrs)).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(serial)
                .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(expires)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return Issued(serial_hex(serial), cert.public_bytes(serialization.Encoding.PEM).decode(),
                      key_pem, expires.replace(microsecond=0))

    def issue_server(self, hosts: Iterable[str], ttl: dt.timedelta) -> Issued:
        """A server certificate for ``hosts`` (names or addresses): the MQTT listener's, when it
        verifies client certificates issued by this CA."""
        import ipaddress

        hosts = list(hosts)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(UTC)
        names: list[x509.GeneralName] = []
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + ttl)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return Issued(serial_hex(cert.serial_number), cert.public_bytes(serialization.Encoding.PEM).decode(),
                      key_pem, (now + ttl).replace(microsecond=0))

    def crl_pem(self, revoked: Iterable[tuple[str, dt.datetime]], next_update: dt.timedelta = dt.timedelta(days=1)) -> str:
        """The revocation list of the given (serial in hex, revoked at) pairs, signed now."""
        now = dt.datetime.now(UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(now).next_update(now + next_update))
        for serial, when in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(serial, 16)).revocation_date(when).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def leaf_identity(pem: str) -> tuple[str, str]:
    """The common name (a thing's secret, as upstream) and serial (hex) of a client certificate."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise ValueError("the certificate has no common name")
    return str(names[0].value), serial_hex(cert.serial_number)


@dataclass(frozen=True)
class IssuedWithCa:
    """A certificate issued, with the PEM of the CA that signed it (what a provisioning returns)."""

    serial: str
    cert_pem: str
    key_pem: str
    expires_at: dt.datetime
    ca_pem: str


def issue_with_ca(ca: CertificateAuthority | None, common_name: str, ttl: float, thing_id: str) -> IssuedWithCa:
    """A certificate of ``ttl`` seconds from ``ca`` with the CA's own PEM; no CA refuses."""
    if ca is None:
        raise RuntimeError("the certificate authority refused to sign")
    issued = ca.issue(common_name, dt.timedelta(seconds=ttl), thing_id)
    return IssuedWithCa(issued.serial, issued.cert_pem, issued.key_pem, issued.expires_at, ca.cert_pem())
