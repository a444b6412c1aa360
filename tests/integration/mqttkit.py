"""What the MQTT tests share: a service with the MQTT authorizer on the session's embedded
nats-server 2.15 (``mqtt_settings`` in tests/conftest.py), its HTTP client, and a device."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import aiomqtt
import pytest

from infra.mqtt import address
from infra.settings import Settings
from tests.conftest import Client


@pytest.fixture
async def mqtt_service(mqtt_settings: Settings) -> AsyncIterator[Any]:
    from service.runtime import Service

    svc = await Service.start(mqtt_settings)
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture
async def api(mqtt_service: Any) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, mqtt_service.url)


@asynccontextmanager
async def device(settings: Settings, username: str | None, password: str | None = None, identifier: str = "",
                 clean: bool = True) -> AsyncIterator[aiomqtt.Client]:
    """An MQTT client of the service's listener (a fresh client id unless given)."""
    host, port = address(settings.mqtt_url) or ("", 0)
    async with aiomqtt.Client(host, port, username=username, password=password, clean_session=clean,
                              identifier=identifier or f"dev-{uuid.uuid4().hex[:8]}", timeout=10) as c:
        yield c
