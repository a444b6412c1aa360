"""The provisioning saga's steps and their undo: what each step makes of the layout (things,
channels, bootstrap configs, certificates, connections, the gateway metadata), how it is undone,
and the answer of a completed provisioning. The aggregate is in domain/provisioning.py, the
commands that drive the steps in domain/provisioning_handlers.py.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from uuid import UUID

from domain.attempt import Attempt
from domain.base import Entity
from domain.bootstrap import (
    ACTIVE,
    Config,
    config_changes,
    config_id,
    remove_changes,
    state_changes,
)
from domain.certs import CertBook, Issuer, certbook_id, issue_changes
from domain.channels import Channel
from domain.common import check_metadata
from domain.connections import Connection, connect_changes, connection_id, disconnect_changes
from domain.errors import Conflict, DomainError, NotFound, Unavailable
from domain.fresh import fresh
from domain.provisioning import EXTERNAL_ID, GATEWAY_CHANNELS, Provisioning
from domain.things import NewThing, Thing, new_thing_changes, remove_thing_changes


def things_with_config(p: Provisioning) -> list[UUID]:
    return [p.made_id("thing", i) for i, t in enumerate(p.layout["things"])
            if p.layout["bootstrap"] and EXTERNAL_ID in (t.get("metadata") or {})]


def find_provisioning(at: Attempt, prov_id: UUID) -> Provisioning:
    p = at.get_or_none(Provisioning, prov_id)
    if p is None:
        raise NotFound("provisioning not found")
    return p


def provisioned(at: Attempt, p: Provisioning) -> dict[str, Any]:
    """The answer of a completed provisioning, as upstream's provision service gives it."""
    things, cert, key = [], {}, {}
    for i, spec in enumerate(p.layout["things"]):
        thing = at.get_or_none(Thing, p.made_id("thing", i))
        if thing is None:
            continue
        things.append({"id": str(thing.id), "name": thing.name, "key": thing.secret,
                       "metadata": _thing_metadata(p, spec)})
        config = at.get_or_none(Config, config_id(thing.id))
        if config is not None and config.client_cert:
            cert[str(thing.id)], key[str(thing.id)] = config.client_cert, config.client_key
    channels = [{"id": str(p.made_id("channel", i)), "name": c.get("name", ""),
                 "metadata": c.get("metadata") or {}} for i, c in enumerate(p.layout["channels"])]
    out: dict[str, Any] = {"things": things, "channels": channels,
                           "whitelisted": {str(t): True for t in p.done.get("connections", {})
                                           .get("whitelisted", [])}}
    if cert:
        out.update(client_cert=cert, client_key=key,
                   ca_cert=p.done.get("certs", {}).get("ca_cert", ""))
    return out


def _thing_metadata(p: Provisioning, spec: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(spec.get("metadata") or {})
    if EXTERNAL_ID in metadata:
        metadata[EXTERNAL_ID] = p.external_id
    return metadata


# -- the steps ----------------------------------------------------------------------------
def _make_things(at: Attempt, p: Provisioning, _issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    changed: list[Entity] = []
    for i, spec in enumerate(p.layout["things"]):
        new = NewThing(id=p.made_id("thing", i), name=p.name or spec.get("name", ""), secret=str(uuid.uuid4()),
                       tags=[], metadata=check_metadata(_thing_metadata(p, spec)), enabled=True)
        changed += new_thing_changes(at, p.principal, new)[1]
    return {"count": len(p.layout["things"])}, changed


def _make_channels(at: Attempt, p: Provisioning, _issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    channels: list[Entity] = []
    for i, spec in enumerate(p.layout["channels"]):
        cid = p.made_id("channel", i)
        if not at.absent(cid):
            raise Conflict("channel id already exists")
        channels.append(fresh(Channel, id=cid, owner=p.owner, name=spec.get("name", ""), description="",
                                metadata=check_metadata(spec.get("metadata")), enabled=True))
    return {"count": len(channels)}, channels


def _make_configs(at: Attempt, p: Provisioning, _issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    channels = [str(p.made_id("channel", i)) for i in range(len(p.layout["channels"]))]
    content = json.dumps(p.layout["content"]) if p.layout["content"] else ""
    changed: list[Entity] = []
    for tid in things_with_config(p):
        changed += config_changes(at, p.principal, tid, p.external_id, p.external_key, p.name, content,
                                  channels, ["", "", ""])[1]
    return {"count": len(changed) // 2}, changed


def _make_certs(at: Attempt, p: Provisioning, issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    if not (p.layout["x509"] and p.layout["bootstrap"]):
        return {}, []
    if issuer is None:
        raise Unavailable("no certificate authority")
    changed: list[Entity] = []
    ca_cert = ""
    for tid in things_with_config(p):
        try:
            issued, book = issue_changes(at, p.principal, tid, p.layout["cert_ttl"], issuer)
        except DomainError:
            raise  # the thing's own rules, not the CA's failure
        except Exception as exc:  # noqa: BLE001 - the CA's own failure becomes the step's
            raise Unavailable(f"the certificate authority refused: {type(exc).__name__}") from exc
        ca_cert = getattr(issued, "ca_pem", "") or ca_cert
        config = at.get_or_none(Config, config_id(tid))
        assert config is not None, "the configs step made it"
        config.update_certs(issued.cert_pem, issued.key_pem, ca_cert)
        changed += [book, config]
    return {"ca_cert": ca_cert}, changed


def _connect(at: Attempt, p: Provisioning, _issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    with_config = set(things_with_config(p))
    channels = [str(p.made_id("channel", i)) for i in range(len(p.layout["channels"]))]
    changed: list[Entity] = []
    whitelisted: list[str] = []
    for i in range(len(p.layout["things"])):
        tid = p.made_id("thing", i)
        if tid in with_config:
            if p.layout["whitelist"]:
                config = at.get_or_none(Config, config_id(tid))
                assert config is not None, "the configs step made it"
                changed += state_changes(at, p.principal, config, ACTIVE)
                whitelisted.append(str(tid))
        elif channels:
            changed += connect_changes(at, p.principal, channels, [str(tid)], None)
    return {"whitelisted": whitelisted}, changed


def _gateway(at: Attempt, p: Provisioning, _issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    """The gateway metadata upstream writes onto each configured thing (its key left out)."""
    gw: dict[str, Any] = {}
    for i, spec in enumerate(p.layout["channels"]):
        kind = (spec.get("metadata") or {}).get("type")
        if kind in GATEWAY_CHANNELS:
            gw[GATEWAY_CHANNELS[kind]] = str(p.made_id("channel", i))
    changed: list[Entity] = []
    for tid in things_with_config(p):
        thing = at.get_or_none(Thing, tid)
        assert thing is not None, "the things step made it"
        thing.update(None, {**thing.metadata, **gw, EXTERNAL_ID: p.external_id, "cfg_id": str(tid),
                            "type": "gateway"})
        changed.append(thing)
    return {}, changed


def _undo_things(at: Attempt, p: Provisioning) -> list[Entity]:
    """Remove the things this attempt made (their secrets released): nothing of them is left
    but their history."""
    changed: list[Entity] = []
    for i in range(len(p.layout["things"])):
        thing = at.get_or_none(Thing, p.made_id("thing", i))  # None once removed
        if thing is not None:
            changed += remove_thing_changes(at, thing)
    return changed


def _undo_channels(at: Attempt, p: Provisioning) -> list[Entity]:
    """Remove the channels this attempt made, and any connection of the layout's things to
    them still standing (the connections step's undo, earlier, disconnected them)."""
    things = [str(p.made_id("thing", i)) for i in range(len(p.layout["things"]))]
    changed: list[Entity] = []
    for i in range(len(p.layout["channels"])):
        channel = at.get_or_none(Channel, p.made_id("channel", i))  # None once removed
        if channel is None:
            continue
        for tid in things:
            conn = at.get_or_none(Connection, connection_id(channel.id, UUID(tid)))
            if conn is not None and conn.connected:
                conn.disconnect()
                changed.append(conn)
        channel.remove()
        changed.append(channel)
    return changed


def _undo_configs(at: Attempt, p: Provisioning) -> list[Entity]:
    changed: list[Entity] = []
    for tid in things_with_config(p):
        config = at.get_or_none(Config, config_id(tid))
        if config is not None and not config.removed:
            changed += remove_changes(at, p.principal, config)
    return changed


def _undo_certs(at: Attempt, p: Provisioning) -> list[Entity]:
    from datetime import UTC, datetime

    changed: list[Entity] = []
    for tid in things_with_config(p):
        book = at.get_or_none(CertBook, certbook_id(tid))
        if book is not None and book.revoke_all(datetime.now(UTC).isoformat()):
            changed.append(book)
    return changed


def _undo_connections(at: Attempt, p: Provisioning) -> list[Entity]:
    with_config = set(things_with_config(p))
    channels = [str(p.made_id("channel", i)) for i in range(len(p.layout["channels"]))]
    changed: list[Entity] = []
    for i in range(len(p.layout["things"])):
        tid = p.made_id("thing", i)
        config = at.get_or_none(Config, config_id(tid)) if tid in with_config else None
        if config is not None:
            if not config.removed:
                changed += state_changes(at, p.principal, config, 0)
        elif channels and tid not in with_config:
            changed += disconnect_changes(at, p.principal, channels, [str(tid)], True)
    return changed


def _undo_gateway(at: Attempt, p: Provisioning) -> list[Entity]:
    return []  # the things it wrote on are removed by the things step's compensation


STEP = {"things": _make_things, "channels": _make_channels, "configs": _make_configs,
         "certs": _make_certs, "connections": _connect, "gateway": _gateway}
UNDO = {"things": _undo_things, "channels": _undo_channels, "configs": _undo_configs,
         "certs": _undo_certs, "connections": _undo_connections, "gateway": _undo_gateway}
