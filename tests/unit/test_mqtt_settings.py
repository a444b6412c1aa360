"""Where the service checks the MQTT listener (/health) and where devices dial are two
addresses: ``SMQ_MQTT_BROKER`` and ``SMQ_MQTT_URL`` (a container network, a load balancer);
``smq serve``'s API children are told the embedded listener's, not the devices' address."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from infra import mqtt
from infra.settings import Settings
from service.runtime import mqtt_env


def _seed(tmp_path: Path) -> str:
    path = tmp_path / mqtt.ISSUER_SEED_FILE
    path.write_bytes(mqtt.new_seed())
    return str(path)


def test_the_broker_checked_is_smq_mqtt_broker_else_the_devices_address(tmp_path: Path) -> None:
    seed = _seed(tmp_path)
    env = {"SMQ_MQTT_ISSUER_SEED_FILE": seed, "SMQ_MQTT_URL": "tcp://mqtt.example.com:18830"}
    auth = mqtt.from_settings(Settings.from_env(env))
    assert auth is not None and auth.brokers == (("mqtt.example.com", 18830),) and auth.url == env["SMQ_MQTT_URL"]
    auth = mqtt.from_settings(Settings.from_env({**env, "SMQ_MQTT_BROKER": "nats1:1883"}))
    assert auth is not None and auth.brokers == (("nats1", 1883),) and auth.url == env["SMQ_MQTT_URL"]
    assert mqtt.addresses(mqtt.host_port((("::1", 1884), ("n2", 1883)))) == (("::1", 1884), ("n2", 1883))


def test_api_children_check_the_embedded_listener_and_tell_devices_the_url(tmp_path: Path) -> None:
    seed = _seed(tmp_path)
    auth = mqtt.MqttAuth(mqtt.keypair(Path(seed).read_bytes()), brokers=(("127.0.0.1", 41883),),
                         url="tcp://gw.example.com:1883")
    c = SimpleNamespace(mqtt=auth, settings=Settings(data_dir=tmp_path, mqtt_url="tcp://gw.example.com:1883"))
    child = mqtt.from_settings(Settings.from_env(mqtt_env(c)))  # type: ignore[arg-type]
    assert child is not None and child.brokers == (("127.0.0.1", 41883),) and child.url == "tcp://gw.example.com:1883"
