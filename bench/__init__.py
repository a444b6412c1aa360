"""smq-es benchmarks: a closed-loop load generator over the public HTTP API.

``python -m bench <scenario> [options]`` from the repository root; see
``docs/performance.md``. The HTTP scenarios use only the public API (aiohttp), so they
run against any server of this API, upstream SuperMQ included. Two internal figures,
``projection-lag`` and ``replay``, also read PostgreSQL and use the project's own code. The MQTT
scenarios, ``mqtt-connect`` and ``mqtt-publish`` (``bench/mqttload.py``), provision through the
HTTP API and load the broker's MQTT listener with a raw MQTT 3.1.1 generator (``bench/mqttwire.py``).

Every run prints one JSON line:
``{"scenario", "clients", "requests", "errors", "rps", "p50_ms", "p99_ms", "max_ms",
"status_counts", "extra"}`` (plus ``"unsupported": true`` and ``"reason"`` when the server
has no route for the scenario).
"""
