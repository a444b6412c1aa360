"""The provision layout and credentials, from the environment and upstream's config.toml."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from domain.provisioning import Layout
from infra.settings import Settings, parse_duration


@dataclass(frozen=True)
class ProvisionSettings:
    layout: Layout
    api_key: str | None = None
    user: str | None = None
    password: str | None = None


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _items(raw: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise ValueError(f"[[{what}]] must be a list of tables")
    out = []
    for item in raw:
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValueError(f"{what}.metadata must be a table")
        out.append({"name": str(item.get("name", "")), "metadata": metadata})
    return out


def load(settings: Settings) -> ProvisionSettings:
    """Environment first for the switches (as upstream), the file for the layout itself."""
    env = settings.extra
    layout = Layout()
    config: dict[str, Any] = {}
    path = env.get("PROVISION_CONFIG_FILE")
    if path:
        config = tomllib.loads(Path(path).read_text())
        boot = config.get("bootstrap") or {}
        layout = replace(
            layout,
            things=_items(config["things"], "things") if "things" in config else layout.things,
            channels=_items(config["channels"], "channels") if "channels" in config else layout.channels,
            content=dict(boot.get("content") or {}),
            bootstrap=bool(boot.get("provision", layout.bootstrap)),
            x509=bool(boot.get("x509_provision", layout.x509)),
            whitelist=bool(boot.get("autowhite_list", layout.whitelist)),
        )
        ttl = (config.get("cert") or {}).get("ttl")
        if ttl:
            layout = replace(layout, cert_ttl=parse_duration(str(ttl)))
    if env.get("PROVISION_BS_CONTENT"):
        layout = replace(layout, content=json.loads(env["PROVISION_BS_CONTENT"]))
    layout = replace(
        layout,
        bootstrap=_flag(env.get("PROVISION_BS_CONFIG_PROVISIONING"), layout.bootstrap),
        x509=_flag(env.get("PROVISION_X509_PROVISIONING"), layout.x509),
        whitelist=_flag(env.get("PROVISION_BS_AUTO_WHITELIST"), layout.whitelist),
    )
    if env.get("PROVISION_CERTS_HOURS_VALID"):
        layout = replace(layout, cert_ttl=parse_duration(env["PROVISION_CERTS_HOURS_VALID"]))
    server = config.get("server") or {}
    return ProvisionSettings(
        layout=layout,
        api_key=env.get("PROVISION_API_KEY") or config.get("mf_api_key") or server.get("mf_api_key") or None,
        user=env.get("PROVISION_USER") or config.get("mf_user") or server.get("mf_user") or None,
        password=env.get("PROVISION_PASSWORD") or config.get("mf_pass") or server.get("mf_pass") or None,
    )
