"""compose.yaml holds together for MQTT (Docker is not needed to check it): the NATS nodes run
deploy/nats.conf (which nats-server accepts) with the issuer the `keys` service writes, the
roles read that issuer's seed and name the users the configuration has, MQTT is published, the
authorizer runs, and PostgreSQL allows every role's connections."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import mqtt, natsconf
from infra.embedded import nats_server_binary
from infra.settings import Settings
from service.container import pool_sizes

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def _services(role: str) -> dict[str, dict[str, Any]]:
    """The services running ``smq <role>`` (the image's entrypoint is ``smq``)."""
    return {name: s for name, s in _compose()["services"].items()
            if s.get("image") == "smq-es:latest" and s.get("command") == [role]}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a volume's name or a host path) of a service's volumes."""
    out = {}
    for v in service.get("volumes", []):
        source, target, *_ = v.split(":")
        out[target] = source
    return out


def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Run the `keys` service's script with its volumes as folders of ``tmp_path``."""
    keys = _compose()["services"]["keys"]
    script = keys["command"][0]
    where = {}
    for target, source in _mounts(keys).items():
        where[source] = tmp_path / source
        where[source].mkdir()
        script = script.replace(f'"{target}', f'"{where[source]}')
    monkeypatch.setattr(os, "chown", lambda *_: None)
    exec(compile(script, "compose.yaml:keys", "exec"), {"__name__": "keys"})  # noqa: S102
    return where


def test_nats_runs_the_configuration_with_the_issuer_the_keys_service_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    services = _compose()["services"]
    nodes = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("nats:")}
    assert len(nodes) == 3
    where = _keys(tmp_path, monkeypatch)
    issuer = (where["nats-auth"] / "issuer.conf").read_text()
    seed = (where["mqtt"] / mqtt.ISSUER_SEED_FILE).read_bytes()
    assert issuer == f"issuer: {mqtt.keypair(seed).public_key.decode()}\n"
    assert (where["mqtt"] / mqtt.ISSUER_SEED_FILE).stat().st_mode & 0o077 == 0
    config = (ROOT / "deploy" / "nats.conf").read_text()
    include = re.search(r'include "([^"]+)"', config)
    assert include is not None
    published = []
    for name, node in nodes.items():
        conf_path = node["command"][node["command"].index("-c") + 1]
        mounts = _mounts(node)
        assert mounts[conf_path] == "./deploy/nats.conf", name
        assert mounts[str(Path(conf_path).parent / Path(include.group(1)).parent)] == "nats-auth", name
        assert node["command"][node["command"].index("--server_name") + 1] == name  # MQTT needs one
        assert set(node["environment"]) == {"SMQ_NATS_PASSWORD", "SMQ_NATS_SYS_PASSWORD"}
        assert node["depends_on"]["keys"] == {"condition": "service_completed_successfully"}
        published += [p for p in node["ports"] if p.endswith(":1883")]
    assert "1883:1883" in published and len(published) == 3
    # nats-server itself accepts it, the issuer included as the service wrote it.
    etc = tmp_path / "etc"
    (etc / "auth").mkdir(parents=True)
    (etc / "smq.conf").write_text(config)
    (etc / "auth" / "issuer.conf").write_text(issuer)
    env = {**os.environ, "SMQ_NATS_PASSWORD": "a1", "SMQ_NATS_SYS_PASSWORD": "b2"}
    done = subprocess.run([nats_server_binary(), "-t", "-c", str(etc / "smq.conf")], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr + done.stdout
    for text in (f"{natsconf.APP_ACCOUNT} {{", f"{mqtt.THINGS_ACCOUNT} {{", f"{natsconf.SYS_ACCOUNT} {{",
                 "user: smq,", f"user: {natsconf.SYS_USER},", "mqtt {", f"{natsconf.MQTT_ROOT}.>",
                 "jetstream: {{ max_mem: {}, max_file: {} }}".format(*natsconf.THINGS_STORE)):
        assert text in config, text


def test_the_roles_read_the_issuer_seed_and_authz_runs_with_the_system_user() -> None:
    keys_mounts = _mounts(_compose()["services"]["keys"])
    roles = {r: _services(r) for r in ("api", "relay", "projector", "saga", "authz")}
    assert len(roles["authz"]) >= 1
    for role, services in roles.items():
        for name, s in services.items():
            env, mounts = s["environment"], _mounts(s)
            seed = Path(env["SMQ_MQTT_ISSUER_SEED_FILE"])
            assert seed.name == mqtt.ISSUER_SEED_FILE
            assert mounts[str(seed.parent)] == "mqtt" == keys_mounts[str(seed.parent)], name
            assert env["SMQ_NATS_URL"].startswith("nats://smq:${SMQ_NATS_PASSWORD"), name
            assert env["SMQ_MQTT_URL"] and mqtt.addresses(env["SMQ_MQTT_BROKER"]), name
            assert all(port == 1883 for _, port in mqtt.addresses(env["SMQ_MQTT_BROKER"]))
            if role == "authz":
                assert env["SMQ_MQTT_SYS_URL"].startswith(f"nats://{natsconf.SYS_USER}:${{SMQ_NATS_SYS_PASSWORD"), name
            else:  # the system account closes sessions: only the authorizer holds it
                assert "SMQ_MQTT_SYS_URL" not in env, name


def test_postgresql_allows_every_role_s_connections_and_room() -> None:
    """Each process's pools at peak (docs/deploy.md), the relays' LISTEN and lease, and one
    connection each during a simultaneous start; room for an operator's psql and `smq stream`."""
    command = _compose()["services"]["postgres"]["command"]
    allowed = int(next(c.split("=")[1] for c in command if c.startswith("max_connections=")))
    processes = [r for r in ("api", "relay", "projector", "saga", "authz") for _ in _services(r)]
    peak = sum(sum(pool_sizes(Settings(), {r})) for r in processes) + 2 * processes.count("relay") + len(processes)
    assert peak <= allowed - 3 - 10, (peak, allowed)
