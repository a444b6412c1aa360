"""Client certificates through the real store and views: issue, verify, list, revoke, CRL."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.conftest import Client


async def test_issue_verify_revoke(client: Client) -> None:
    _, token = await client.user()
    st, thing, _ = await client.call("POST", "/things", {"name": "gw", "credentials": {"secret": "thing-key-1"}},
                                     token=token)
    tid = thing["id"]
    st, issued, _ = await client.call("POST", "/certs", {"thing_id": tid, "ttl": "24h"}, token=token)
    assert st == 201, issued
    assert issued["thing_id"] == tid and "PRIVATE KEY" in issued["client_key"]
    cert = x509.load_pem_x509_certificate(issued["client_cert"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "thing-key-1"
    st, ca_pem, _ = await client.call("GET", "/certs/ca")
    assert st == 200
    ca = x509.load_pem_x509_certificate(ca_pem if isinstance(ca_pem, bytes) else ca_pem.encode())
    cert.verify_directly_issued_by(ca)
    assert issued["issuing_ca"].strip() == (ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem).strip()
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < left <= dt.timedelta(hours=24)

    serial = issued["cert_serial"]
    st, seen, _ = await client.call("GET", f"/certs/{serial}", token=token)
    assert st == 200 and seen["thing_id"] == tid and seen["revoked"] is False and "client_key" not in seen
    st, second, _ = await client.call("POST", "/certs", {"thing_id": tid, "ttl": "90m"}, token=token)
    assert st == 201
    st, page, _ = await client.call("GET", f"/serials/{tid}", token=token)
    assert st == 200 and page["total"] == 2 and page["serials"] == [serial, second["cert_serial"]]

    _, other = await client.user()
    assert (await client.call("GET", f"/certs/{serial}", token=other))[0] == 404
    assert (await client.call("POST", "/certs", {"thing_id": tid, "ttl": "1h"}, token=other))[0] == 404
    assert (await client.call("DELETE", f"/certs/{tid}", token=other))[0] == 404

    st, revoked, _ = await client.call("DELETE", f"/certs/{tid}", token=token)
    assert st == 200 and sorted(revoked["revoked"]) == sorted([serial, second["cert_serial"]])
    st, crl_pem, _ = await client.call("GET", "/certs/crl", token=token)
    assert st == 200
    crl = x509.load_pem_x509_crl(crl_pem if isinstance(crl_pem, bytes) else crl_pem.encode())
    assert crl.is_signature_valid(ca.public_key())
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
    st, seen, _ = await client.call("GET", f"/certs/{serial}", token=token)
    assert seen["revoked"] is True


async def test_bad_requests_issue_nothing(client: Client) -> None:
    _, token = await client.user()
    _, thing, _ = await client.call("POST", "/things", {"name": "t"}, token=token)
    for body, status in [({"thing_id": thing["id"], "ttl": "soon"}, 400),
                         ({"thing_id": thing["id"], "ttl": "-1h"}, 400),
                         ({"thing_id": "not-a-uuid", "ttl": "1h"}, 400),
                         ({"ttl": "1h"}, 400),
                         ({"thing_id": "9dd12d93-21c9-4147-92fe-769386efb6cc", "ttl": "1h"}, 404)]:
        st, err, _ = await client.call("POST", "/certs", body, token=token)
        assert st == status, (body, err)
    st, page, _ = await client.call("GET", f"/serials/{thing['id']}", token=token)
    assert page["total"] == 0
