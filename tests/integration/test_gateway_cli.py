"""The command line for gateways: provision, bootstrap, certificates, against a running service."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from cryptography import x509

from service.cli import main
from tests.conftest import Client


async def test_provision_fetch_and_certificates_from_the_command_line(client: Client, monkeypatch: Any,
                                                                       capsys: Any) -> None:
    _, token = await client.user()
    monkeypatch.setenv("SMQ_URL", client.base)
    monkeypatch.setenv("SMQ_TOKEN", token)

    async def smq(*argv: str, code: int = 0) -> Any:
        capsys.readouterr()
        got = await asyncio.to_thread(main, list(argv))  # the CLI blocks: keep the loop serving
        out = capsys.readouterr()
        assert got == code, out.err
        return json.loads(out.out) if out.out.startswith(("{", "[")) else out.out

    plan = await smq("provision", "gw-cli", "key-cli", "--name", "edge", "--dry-run")
    assert plan["dry_run"] is True and plan["things"][0]["name"] == "edge"
    res = await smq("provision", "gw-cli", "key-cli", "--name", "edge")
    tid = res["things"][0]["id"]
    boot = await smq("bootstrap", "fetch", "gw-cli", "key-cli")
    assert boot["mainflux_id"] == tid and boot["mainflux_key"] == res["things"][0]["key"]
    await smq("bootstrap", "fetch", "gw-cli", "wrong", code=1)
    assert (await smq("bootstrap", "get", tid))["external_id"] == "gw-cli"
    assert (await smq("bootstrap", "list"))["total"] == 1
    assert (await smq("bootstrap", "state", tid, "0"))["state"] == 0

    issued = await smq("certs", "issue", tid, "--ttl", "2h")
    cert = x509.load_pem_x509_certificate(issued["client_cert"].encode())
    ca = x509.load_pem_x509_certificate((await smq("certs", "ca")).encode())
    cert.verify_directly_issued_by(ca)
    assert (await smq("certs", "serials", tid))["serials"] == [issued["cert_serial"]]
    assert (await smq("certs", "revoke", tid))["revoked"] == [issued["cert_serial"]]
    assert (await smq("certs", "get", issued["cert_serial"]))["revoked"] is True
    await smq("bootstrap", "remove", tid)
    await smq("bootstrap", "fetch", "gw-cli", "key-cli", code=1)
