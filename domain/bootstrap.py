"""Bootstrap configurations: what a gateway fetches by its external id and key."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.attempt import Attempt, Core
from domain.base import Entity, Meta, UniqueKey, derived_id, key_id
from domain.channels import Channel
from domain.commands import (
    AddConfig,
    ChangeConfigState,
    RemoveConfig,
    UpdateConfig,
    UpdateConfigCerts,
    UpdateConfigChannels,
)
from domain.common import NO_META, Done, Principal, authorize, check_text, check_uuid
from domain.connections import connect_changes, disconnect_changes
from domain.errors import Conflict, Invalid, NotFound
from domain.fresh import fresh
from domain.things import Thing, _thing_for, check_new_thing, new_thing_changes

EXTERNAL_ID_KIND = "external_id"
MAX_CONTENT = 256 * 1024
MAX_PEM = 64 * 1024
ACTIVE, INACTIVE = 1, 0


def config_id(thing_id: UUID) -> UUID:
    return derived_id("config", thing_id)


class Config(Entity):
    """A thing's bootstrap configuration; at most one per thing, ``external_id`` unique."""

    @staticmethod
    def create_id(thing_id: UUID, **_: Any) -> UUID:
        return config_id(thing_id)

    @event("Created")
    def __init__(self, thing_id: UUID, owner: UUID, external_id: str, external_key: str, name: str,
                 content: str, channels: list[str], client_cert: str, client_key: str,
                 ca_cert: str) -> None:
        self._set(thing_id, owner, external_id, external_key, name, content, channels, client_cert,
                  client_key, ca_cert)

    def _set(self, thing_id: UUID, owner: UUID, external_id: str, external_key: str, name: str,
             content: str, channels: list[str], client_cert: str, client_key: str, ca_cert: str) -> None:
        self.thing_id, self.owner, self.external_id = thing_id, owner, external_id
        self.external_key, self.name, self.content, self.channels = external_key, name, content, channels
        self.client_cert, self.client_key, self.ca_cert = client_cert, client_key, ca_cert
        self.state, self.removed = INACTIVE, False

    @event("Readded")
    def readd(self, thing_id: UUID, owner: UUID, external_id: str, external_key: str, name: str,
              content: str, channels: list[str], client_cert: str, client_key: str, ca_cert: str) -> None:
        """A config added again after it was removed: a fresh start on the same stream."""
        self._set(thing_id, owner, external_id, external_key, name, content, channels, client_cert,
                  client_key, ca_cert)

    def update(self, name: str, content: str) -> None:
        if (name, content) != (self.name, self.content):
            self._updated(name=name, content=content)

    @event("Updated")
    def _updated(self, name: str, content: str) -> None:
        self.name, self.content = name, content

    def update_certs(self, client_cert: str, client_key: str, ca_cert: str) -> None:
        if (client_cert, client_key, ca_cert) != (self.client_cert, self.client_key, self.ca_cert):
            self._certs_updated(client_cert=client_cert, client_key=client_key, ca_cert=ca_cert)

    @event("CertsUpdated")
    def _certs_updated(self, client_cert: str, client_key: str, ca_cert: str) -> None:
        self.client_cert, self.client_key, self.ca_cert = client_cert, client_key, ca_cert

    def update_channels(self, channels: list[str]) -> None:
        if channels != self.channels:
            self._channels_updated(channels=channels)

    @event("ChannelsUpdated")
    def _channels_updated(self, channels: list[str]) -> None:
        self.channels = channels

    def set_state(self, state: int) -> None:
        if state != self.state:
            self._state_changed(state=state)

    @event("StateChanged")
    def _state_changed(self, state: int) -> None:
        self.state = state

    @event("Removed")
    def remove(self) -> None:
        self.removed, self.state = True, INACTIVE


def check_external(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{what} is required")
    return check_text(value, what, 1024)


def check_channel_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 1000:
        raise Invalid("channels must be a list of channel ids")
    return list(dict.fromkeys(str(check_uuid(c, "channel id")) for c in value))


def check_state(value: Any) -> int:
    if value not in (ACTIVE, INACTIVE) or isinstance(value, bool):
        raise Invalid("state must be 0 or 1")
    return int(value)


def _visible_channels(at: Attempt, who: Principal, ids: list[str]) -> None:
    for cid in ids:
        channel = at.get_or_none(Channel, UUID(cid))
        if channel is None:
            raise NotFound(f"channel {cid} not found")
        authorize(who, channel.owner, channel.shares, None, "channel")


def _checked_certs(client_cert: Any, client_key: Any, ca_cert: Any) -> list[str]:
    """A config's certificates (each may be empty), in the order ``Config`` takes them."""
    return [check_text(v, k, MAX_PEM, document=True) for k, v in
            (("client_cert", client_cert), ("client_key", client_key), ("ca_cert", ca_cert))]


def config_changes(at: Attempt, who: Principal, thing_id: UUID, external_id: str, external_key: str,
                   name: str, content: str, channels: list[str], certs: list[str]
                   ) -> tuple[Config, list[Entity]]:
    """A new config of a thing and the claim on its external id, unsaved."""
    _visible_channels(at, who, channels)
    claim = at.claim(EXTERNAL_ID_KIND, external_id, thing_id, "external_id already exists")
    # A thing made by this same command has no config yet.
    existing = None if at.made_new(thing_id) else at.get_or_none(Config, config_id(thing_id))
    fields: dict[str, Any] = dict(thing_id=thing_id, owner=who.user_id, external_id=external_id, external_key=external_key,
                  name=name, content=content, channels=channels, client_cert=certs[0], client_key=certs[1],
                  ca_cert=certs[2])
    if existing is None:
        config = fresh(Config, **fields)
    elif existing.removed:
        existing.readd(**fields)
        config = existing
    else:
        raise Conflict("the thing has a config already")
    return config, [claim, config]


def state_changes(at: Attempt, who: Principal, config: Config, wanted: int) -> list[Entity]:
    """Connect (1) or disconnect (0) the config's thing and channels, and record the state."""
    changed: list[Entity] = []
    tid = [str(config.thing_id)]
    if wanted != config.state and config.channels:
        if wanted == ACTIVE:
            changed += connect_changes(at, who, config.channels, tid, None)
        else:
            changed += disconnect_changes(at, who, config.channels, tid, True)
    config.set_state(wanted)
    return [*changed, config]


def remove_changes(at: Attempt, who: Principal, config: Config) -> list[Entity]:
    """Remove a config: its thing leaves the config's channels and its external id is freed."""
    changed = state_changes(at, who, config, INACTIVE)[:-1]
    claim = at.get_or_none(UniqueKey, key_id(EXTERNAL_ID_KIND, config.external_id))
    if claim is not None and claim.holder == config.thing_id:
        claim.release()
        changed.append(claim)
    config.remove()
    return [*changed, config]


def _config_for(at: Attempt, who: Principal, thing_id: UUID, action: str | None = None) -> Config:
    config = at.get_or_none(Config, config_id(thing_id))
    if config is None or config.removed:
        raise NotFound("config not found")
    authorize(who, config.owner, {}, action, "config")
    return config


class BootstrapHandlers:
    """The use cases of bootstrap configurations."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def add_config(self, who: Principal, cmd: AddConfig, meta: Meta = NO_META) -> Done:
        """Add a config; with no ``thing_id`` its thing is created in the same transaction."""
        external_id = check_external(cmd.external_id, "external_id")
        external_key = check_external(cmd.external_key, "external_key")
        name = check_text(cmd.name, "name")
        content = check_text(cmd.content, "content", MAX_CONTENT, document=True)
        channels = check_channel_ids(cmd.channels)
        certs = _checked_certs(cmd.client_cert, cmd.client_key, cmd.ca_cert)
        raw_thing = cmd.thing_id
        thing_id = check_uuid(raw_thing, "thing_id") if raw_thing not in (None, "") else None
        new_thing = check_new_thing({"name": name}) if thing_id is None else None

        def build(at: Attempt) -> tuple[Config, list[Entity]]:
            changed: list[Entity] = []
            if new_thing is not None:
                _, made = new_thing_changes(at, who, new_thing)
                changed += made
                tid = new_thing.id
            else:
                assert thing_id is not None
                tid = _thing_for(at, who, thing_id, "c_update").id
            config, made = config_changes(at, who, tid, external_id, external_key, name, content,
                                          channels, certs)
            return config, [*changed, *made]

        return self.core.commit(build, meta)

    def config(self, who: Principal, thing_id: UUID) -> Config:
        return _config_for(self.core.reads(), who, thing_id)

    def update_config(self, who: Principal, cmd: UpdateConfig, meta: Meta = NO_META) -> Done:
        name = check_text(cmd.name, "name")
        content = check_text(cmd.content, "content", MAX_CONTENT, document=True)

        def build(at: Attempt) -> tuple[Config, list[Entity]]:
            config = _config_for(at, who, cmd.thing_id, "owner")
            config.update(name, content)
            return config, [config]

        return self.core.commit(build, meta)

    def update_config_certs(self, who: Principal, cmd: UpdateConfigCerts, meta: Meta = NO_META) -> Done:
        certs = _checked_certs(cmd.client_cert, cmd.client_key, cmd.ca_cert)

        def build(at: Attempt) -> tuple[Config, list[Entity]]:
            config = _config_for(at, who, cmd.thing_id, "owner")
            config.update_certs(*certs)
            return config, [config]

        return self.core.commit(build, meta)

    def update_config_channels(self, who: Principal, cmd: UpdateConfigChannels,
                               meta: Meta = NO_META) -> Done:
        """New channels for the config; an active config's connections follow them."""
        thing_id, wanted = cmd.thing_id, check_channel_ids(cmd.channels)

        def build(at: Attempt) -> tuple[Config, list[Entity]]:
            config = _config_for(at, who, thing_id, "owner")
            _visible_channels(at, who, wanted)
            changed: list[Entity] = []
            if config.state == ACTIVE:
                gone = [c for c in config.channels if c not in wanted]
                new = [c for c in wanted if c not in config.channels]
                if gone:
                    changed += disconnect_changes(at, who, gone, [str(thing_id)], True)
                if new:
                    changed += connect_changes(at, who, new, [str(thing_id)], None)
            config.update_channels(wanted)
            return config, [*changed, config]

        return self.core.commit(build, meta)

    def change_config_state(self, who: Principal, cmd: ChangeConfigState, meta: Meta = NO_META) -> Done:
        """1 connects the thing to the config's channels, 0 disconnects it; repeating is a no-op."""
        wanted = check_state(cmd.state)

        def build(at: Attempt) -> tuple[Config, list[Entity]]:
            config = _config_for(at, who, cmd.thing_id, "owner")
            return config, state_changes(at, who, config, wanted)

        return self.core.commit(build, meta)

    def remove_config(self, who: Principal, cmd: RemoveConfig, meta: Meta = NO_META) -> Done:
        """Remove a config: its thing leaves the config's channels and its external id is freed."""

        def build(at: Attempt) -> tuple[Config | None, list[Entity]]:
            config = at.get_or_none(Config, config_id(cmd.thing_id))
            if config is None or config.removed:
                raise NotFound("config not found")
            authorize(who, config.owner, {}, "owner", "config")
            return config, remove_changes(at, who, config)

        return self.core.commit(build, meta)

    def thing_secret_of(self, thing_id: UUID) -> str:
        thing = self.core.reads().get_or_none(Thing, thing_id)
        if thing is None:
            raise NotFound("thing not found")
        return thing.secret
