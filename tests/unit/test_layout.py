"""The provision layout: the guide's by default, shipped with the package, its cloud MQTT
addresses this service's; a user's file (or content) taken as written."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

from infra import layout
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
URL = "tcp://mqtt.example.com:18830"


def test_the_default_is_the_guide_s_example() -> None:
    conf = layout.load(Settings())
    lay = conf.layout
    assert conf.service_mqtt
    assert lay.things == [{"name": "thing", "metadata": {"external_id": "xxxxxx"}}]
    assert lay.channels == [{"name": "control-channel", "metadata": {"type": "control"}},
                            {"name": "data-channel", "metadata": {"type": "data"}}]
    assert lay.bootstrap and lay.whitelist and not lay.x509
    content = lay.content
    assert set(content) == {"agent", "export"}
    assert set(content["agent"]) == {"edgex", "log", "mqtt", "server", "heartbeat", "terminal"}
    assert content["export"]["routes"] == [{"mqtt_topic": "", "nats_topic": ">", "subtopic": "",
                                            "type": "plain", "workers": 10}]
    assert layout.guide() == conf


def test_its_mqtt_addresses_are_the_service_s_and_its_nats_ones_the_gateway_s() -> None:
    conf = layout.load(Settings(mqtt_url=URL))
    content = conf.effective(URL).content
    assert content["agent"]["mqtt"]["url"] == content["export"]["mqtt"]["host"] == URL
    assert content["agent"]["server"]["nats_url"] == "localhost:4222"
    assert content["export"]["exp"]["nats"] == "nats://localhost:4222"
    # Nothing else changes, and the configured layout itself is left as it was.
    rest = json.loads(json.dumps(content))
    del rest["agent"]["mqtt"]["url"], rest["export"]["mqtt"]["host"]
    orig = json.loads(json.dumps(conf.layout.content))
    del orig["agent"]["mqtt"]["url"], orig["export"]["mqtt"]["host"]
    assert rest == orig
    assert conf.layout.content["agent"]["mqtt"]["url"] == "localhost:1883"
    # Unset: the address devices dial by default.
    assert conf.effective(None).content["agent"]["mqtt"]["url"] == layout.DEFAULT_MQTT_URL


def test_a_user_s_file_or_content_is_taken_as_written(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[bootstrap.content.agent.mqtt]\nurl = "broker.local:1883"\n'
                    '[[things]]\nname = "gw"\n[things.metadata]\nexternal_id = "x"\n')
    conf = layout.load(Settings(extra={"PROVISION_CONFIG_FILE": str(path)}))
    assert not conf.service_mqtt
    assert conf.effective(URL).content == {"agent": {"mqtt": {"url": "broker.local:1883"}}}
    assert conf.layout.things == [{"name": "gw", "metadata": {"external_id": "x"}}]
    conf = layout.load(Settings(extra={"PROVISION_BS_CONTENT": '{"agent": {"mqtt": {"url": "b:1"}}}'}))
    assert not conf.service_mqtt and conf.effective(URL).content == {"agent": {"mqtt": {"url": "b:1"}}}
    # A content without the addresses gets none added.
    assert layout.with_mqtt({"agent": {"log": {}}}, URL) == {"agent": {"log": {}}}


def test_the_layout_file_ships_with_the_package() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch.fnmatch(layout.DEFAULT_FILE, pattern) for pattern in data["infra"])
    assert (ROOT / "infra" / layout.DEFAULT_FILE).is_file()
