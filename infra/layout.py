"""The provision layout and credentials, from the environment and upstream's config.toml.

Without ``SMQ_PROVISION_CONFIG_FILE`` the layout is the provisioning guide's example, shipped
with the package (``infra/default_layout.toml``), whose content points the gateway's Agent and
Export at this service's MQTT listener (``SMQ_MQTT_URL``).
"""

from __future__ import annotations

import copy
import json
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from domain.provisioning import Layout
from infra.settings import Settings, parse_duration

DEFAULT_FILE = "default_layout.toml"
# Where devices dial the MQTT listener when nothing says otherwise (SMQ_MQTT_URL, or the
# embedded listener's own address).
DEFAULT_MQTT_URL = "tcp://localhost:1883"
# Where the guide's content names the cloud's MQTT broker. Its NATS addresses
# (agent.server.nats_url, export.exp.nats) are the gateway's own local NATS and stay.
MQTT_ADDRESSES = (("agent", "mqtt", "url"), ("export", "mqtt", "host"))


@dataclass(frozen=True)
class ProvisionSettings:
    layout: Layout
    api_key: str | None = None
    user: str | None = None
    password: str | None = None
    # The layout is the packaged default: its content's MQTT addresses are this service's.
    # A user's file (or SMQ_PROVISION_BS_CONTENT) is taken as written.
    service_mqtt: bool = False
    # The effective layout by MQTT address, made once (not a deep copy of the content per
    # request); nothing changes a layout after it is made (commands copy it: Layout.as_dict).
    _effective: dict[str, Layout] = field(default_factory=dict, init=False, compare=False, repr=False)

    def effective(self, mqtt_url: str | None) -> Layout:
        """The layout a provisioning gets now: with the MQTT address devices dial
        (``Settings.mqtt_url``, else ``DEFAULT_MQTT_URL``) when the layout is the default."""
        if not self.service_mqtt:
            return self.layout
        url = mqtt_url or DEFAULT_MQTT_URL
        made = self._effective.get(url)
        if made is None:
            made = self._effective[url] = replace(self.layout, content=with_mqtt(self.layout.content, url))
        return made


def with_mqtt(content: dict[str, Any], url: str) -> dict[str, Any]:
    """``content`` with each of its cloud MQTT addresses (``MQTT_ADDRESSES``) set to ``url``;
    an address the content does not hold is not added."""
    out = copy.deepcopy(content)
    for *path, key in MQTT_ADDRESSES:
        table: Any = out
        for name in path:
            table = table.get(name) if isinstance(table, dict) else None
        if isinstance(table, dict) and key in table:
            table[key] = url
    return out


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


def default_config() -> dict[str, Any]:
    """The packaged default layout file (the guide's example), parsed."""
    return tomllib.loads(resources.files("infra").joinpath(DEFAULT_FILE).read_text(encoding="utf-8"))


def layout_of(config: dict[str, Any], layout: Layout | None = None) -> Layout:
    """The layout a parsed config.toml describes (what it leaves out, as ``layout`` has it)."""
    layout = layout or Layout()
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
    return replace(layout, cert_ttl=parse_duration(str(ttl))) if ttl else layout


def guide() -> ProvisionSettings:
    """The default: the guide's layout, its MQTT addresses this service's."""
    return ProvisionSettings(layout_of(default_config()), service_mqtt=True)


def load(settings: Settings) -> ProvisionSettings:
    """Environment first for the switches (as upstream), the file for the layout itself."""
    env = settings.extra
    path = env.get("PROVISION_CONFIG_FILE")
    config = tomllib.loads(Path(path).read_text()) if path else {}
    layout = layout_of(config) if path else layout_of(default_config())
    service_mqtt = not path
    if env.get("PROVISION_BS_CONTENT"):
        layout = replace(layout, content=json.loads(env["PROVISION_BS_CONTENT"]))
        service_mqtt = False
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
        service_mqtt=service_mqtt,
    )
