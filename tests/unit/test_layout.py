"""The provision layout: the guide's by default, shipped with the package, its cloud MQTT
addresses this service's; a user's file (or content) taken as written."""

from __future__ import annotations

import fnmatch
import json
import tomllib
import uuid
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path

from domain.base import derived_id
from domain.provisioning import Layout, Provisioning
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


def test_the_effective_layout_is_made_once_per_address_and_not_carried_to_another() -> None:
    conf = layout.load(Settings(mqtt_url=URL))
    first = conf.effective(URL)
    assert conf.effective(URL) is first  # made once, not a copy of the content per request
    assert conf.effective("tcp://other:1").content["agent"]["mqtt"]["url"] == "tcp://other:1"
    assert conf.effective(URL).content["agent"]["mqtt"]["url"] == URL
    # A settings made from another (a test's, a reload's) has its own: not the first one's.
    other = replace(conf, layout=replace(conf.layout, content={"agent": {"mqtt": {"url": "x"}}}))
    assert other.effective(URL).content == {"agent": {"mqtt": {"url": URL}}}
    assert conf.effective(URL) is first


def test_a_layout_s_dict_is_asdict_s_a_deep_copy() -> None:
    lay = layout.load(Settings(mqtt_url=URL)).effective(URL)
    odd = replace(lay, things=[{"name": "t", "metadata": {"n": (1, 2.5, None, True), "at": date(2026, 1, 2)}}])
    for each in (lay, odd, Layout()):
        got = each.as_dict()
        assert got == asdict(each) and json.dumps(got, default=str) == json.dumps(asdict(each), default=str)
        assert type(got["things"][0]["metadata"].get("n", ())) is tuple
    got = lay.as_dict()
    got["content"]["agent"]["mqtt"]["url"] = "changed"
    got["things"][0]["metadata"]["external_id"] = "changed"
    assert lay.content["agent"]["mqtt"]["url"] == URL
    assert lay.things[0]["metadata"]["external_id"] == "xxxxxx"


def test_made_ids_are_the_derived_ids_of_the_attempt() -> None:
    owner = uuid.uuid4()
    p = Provisioning(owner=owner, external_id="ext", external_key="k", name="gw", layout=Layout().as_dict())
    assert p.made_id("thing", 0) == derived_id(p.id, 1, "thing", 0)
    p.fail(step="things", reason="r", kind="Conflict")
    p.finish_compensation()
    p.restart(external_key="k", name="gw", layout=Layout().as_dict())
    assert p.made_id("thing", 0) == derived_id(p.id, 2, "thing", 0) != derived_id(p.id, 1, "thing", 0)
