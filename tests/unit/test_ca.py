"""The certificate authority: what it issues parses, verifies, and can be revoked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from infra.ca import CertificateAuthority


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.generate()


def test_issued_certificate_verifies_against_the_ca(ca: CertificateAuthority) -> None:
    issued = ca.issue("thing-secret-1", dt.timedelta(hours=24), thing_id="t1")
    cert = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "thing-secret-1"
    cert.verify_directly_issued_by(ca.cert)  # raises when the signature or issuer is wrong
    assert format(cert.serial_number, "x") == issued.serial
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < left <= dt.timedelta(hours=24)
    assert "PRIVATE KEY" in issued.key_pem


def test_a_certificate_from_another_ca_does_not_verify(ca: CertificateAuthority) -> None:
    other = CertificateAuthority.generate()
    cert = x509.load_pem_x509_certificate(other.issue("x", dt.timedelta(hours=1)).cert_pem.encode())
    with pytest.raises(InvalidSignature):  # same subject name, another key
        cert.verify_directly_issued_by(ca.cert)


def test_revoked_serials_are_in_the_signed_crl(ca: CertificateAuthority) -> None:
    a = ca.issue("a", dt.timedelta(hours=1))
    b = ca.issue("b", dt.timedelta(hours=1))
    crl = x509.load_pem_x509_crl(ca.crl_pem([(a.serial, dt.datetime.now(dt.UTC))]).encode())
    assert crl.is_signature_valid(ca.key.public_key())
    assert crl.get_revoked_certificate_by_serial_number(int(a.serial, 16)) is not None
    assert crl.get_revoked_certificate_by_serial_number(int(b.serial, 16)) is None


def test_non_positive_ttl_is_refused(ca: CertificateAuthority) -> None:
    with pytest.raises(ValueError):
        ca.issue("x", dt.timedelta(0))


def test_ca_is_kept_in_the_data_folder(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path)
    again = CertificateAuthority.load_or_create(tmp_path)
    assert first.cert_pem() == again.cert_pem()
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0


def test_processes_starting_together_agree_on_one_ca(tmp_path: Path) -> None:
    """Several processes sharing a data folder, started at once, end with the same CA."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        pems = pool.map(_ca_pem_in, [tmp_path] * 8)
    assert len(set(pems)) == 1
    assert (tmp_path / "ca.crt").read_text() == pems[0]
    assert not list(tmp_path.glob(".*.tmp"))


def _ca_pem_in(folder: Path) -> str:
    return CertificateAuthority.load_or_create(folder).cert_pem()
