"""Settings: the only reader of the environment (every variable is prefixed ``SMQ_``)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration such as ``15m``, ``24h`` or ``1h30m``."""
    text = text.strip()
    if text.isdigit():
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {text!r}")
    return total


def _pool_size(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a whole number of connections, at least 1 (got {text!r})")
    return int(text)


def _port(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    if not text.strip().isdigit() or int(text) > 65535:
        raise ValueError(f"{name} must be a port number, 0 to 65535 (got {text!r})")
    return int(text)


def _replicas(text: str) -> int:
    n = int(text)
    if not 1 <= n <= 5:  # JetStream's own bound
        raise ValueError(f"SMQ_STREAM_REPLICAS must be 1 to 5, not {n}")
    return n


@dataclass(frozen=True)
class Settings:
    """Every knob of the service, read once from the environment."""

    http_host: str = "127.0.0.1"
    http_port: int = 9000
    data_dir: Path = Path(".smq")
    database_url: str | None = None
    nats_url: str | None = None
    redis_url: str | None = None
    jwt_secret: str | None = None
    access_ttl: float = 15 * 60
    refresh_ttl: float = 24 * 3600
    admin_identity: str | None = None
    admin_secret: str | None = None
    # Names on the shared servers; tests give each run its own.
    stream: str = "SMQ_EVENTS"
    events_subject: str = "events"
    # How long and how much of the events stream JetStream keeps (0 / -1: everything);
    # older positions stay readable with GET /events?after= (from the store).
    stream_max_age: float = 0.0
    stream_max_bytes: int = -1
    # Copies of each stream the service creates, on as many nodes of a NATS cluster (1 to 5).
    stream_replicas: int = 1
    messages_subject: str = "channels"
    redis_prefix: str = "smq:"
    # How long a query waits for the views to reach the caller's last write.
    rw_wait: float = 5.0
    # Admission control: commands wait while the views are further behind this process's
    # commits than this (seconds; 0: never), at most rw_wait each (infra.admission).
    admission_lag: float = 0.25
    # How long POST /mapping waits for its saga, and after how long without a move a
    # provisioning counts as abandoned by a dead process (and is compensated).
    saga_wait: float = 30.0
    saga_stale: float = 30.0
    # The views this process's projector feeds (empty: all); how projectors share the work.
    projector_views: tuple[str, ...] = ()
    store_workers: int = 16
    # PostgreSQL connections of one process at most: the event store's pool and the views'
    # pool (unset: by the process's roles, service.container.POOL_SHARES; docs/deploy.md).
    pg_store_pool: int | None = None
    pg_views_pool: int | None = None
    # POST /mapping: a new gateway in one transaction (every step and its saga record), or
    # step by step, each step committed with its record (the saga's progress visible as it goes).
    provision_at_once: bool = True
    # `smq serve`: the HTTP API in this many child processes beside the workers (0: all in one).
    api_processes: int = 1
    # Failed secret checks (token issue, identify, access, the HTTP adapter, the bootstrap fetch)
    # allowed per window for one identity and for one client address (0: no limit); see
    # command_api.ratelimit for the rule.
    failure_limit_identity: int = 5
    failure_limit_address: int = 30
    failure_limit_window: float = 15 * 60.0
    # The certificate authority's PEM files; unset: one generated into the data folder.
    ca_cert_file: str | None = None
    ca_key_file: str | None = None
    # AES key (16, 24 or 32 bytes) of the secure bootstrap; unset: generated into the data folder.
    bootstrap_key: str | None = None
    # Key(s) that seal the credentials in events on the bus (comma-separated: the first seals,
    # all open); unset: generated into the data folder. Every role of a deployment shares it.
    bus_key: str | None = None
    # MQTT (docs/deploy.md). The embedded NATS listens for MQTT on mqtt_host:mqtt_port (None:
    # 1883, or a free port when 1883 is taken; 0: a free port). mqtt_url is the address devices
    # dial (provisioned content names it); unset, the embedded listener's own. With an external
    # NATS, MQTT authorization is on when the issuer's seed file is set; the system-account URL
    # lets the service close sessions whose rights ended. mqtt_broker is where the service itself
    # reaches the listener (/health), when that differs from where devices dial (a container
    # network, a load balancer); unset, mqtt_url's address.
    mqtt_port: int | None = None
    mqtt_host: str | None = None
    mqtt_url: str = ""
    mqtt_broker: str = ""
    mqtt_issuer_seed_file: str | None = None
    mqtt_sys_url: str | None = None
    mqtt_account: str = "THINGS"
    # The embedded MQTT listener on TLS, every client presenting a certificate of the service's
    # CA (``/certs``; upstream's x509 provisioning); a revoked one is refused at the next connect.
    mqtt_tls: bool = False
    log_level: str = "INFO"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)

        def get(name: str) -> str | None:
            value = e.get("SMQ_" + name)
            return value if value not in (None, "") else None

        s = cls()
        return replace(
            s,
            http_host=get("HTTP_HOST") or s.http_host,
            http_port=int(get("HTTP_PORT") or s.http_port),
            data_dir=Path(get("DATA_DIR") or s.data_dir),
            database_url=get("DATABASE_URL"),
            nats_url=get("NATS_URL"),
            redis_url=get("REDIS_URL"),
            jwt_secret=get("JWT_SECRET"),
            access_ttl=parse_duration(get("ACCESS_TOKEN_TTL") or "15m"),
            refresh_ttl=parse_duration(get("REFRESH_TOKEN_TTL") or "24h"),
            admin_identity=get("ADMIN_IDENTITY"),
            admin_secret=get("ADMIN_SECRET"),
            stream=get("NATS_STREAM") or s.stream,
            events_subject=get("EVENTS_SUBJECT") or s.events_subject,
            stream_max_age=parse_duration(get("STREAM_MAX_AGE") or "0"),
            stream_max_bytes=int(get("STREAM_MAX_BYTES") or s.stream_max_bytes),
            stream_replicas=_replicas(get("STREAM_REPLICAS") or str(s.stream_replicas)),
            messages_subject=get("MESSAGES_SUBJECT") or s.messages_subject,
            redis_prefix=get("REDIS_PREFIX") or s.redis_prefix,
            rw_wait=parse_duration(get("RW_WAIT") or "5s"),
            admission_lag=parse_duration(get("ADMISSION_LAG") or "250ms"),
            saga_wait=parse_duration(get("SAGA_WAIT") or "30s"),
            saga_stale=parse_duration(get("SAGA_STALE") or "30s"),
            projector_views=tuple(v.strip() for v in (get("PROJECTOR_VIEWS") or "").split(",") if v.strip()),
            store_workers=int(get("STORE_WORKERS") or s.store_workers),
            pg_store_pool=_pool_size(get("PG_STORE_POOL"), "SMQ_PG_STORE_POOL"),
            pg_views_pool=_pool_size(get("PG_VIEWS_POOL"), "SMQ_PG_VIEWS_POOL"),
            provision_at_once=(get("PROVISION_AT_ONCE") or "true").strip().lower() not in ("0", "false", "no", "off"),
            api_processes=max(0, int(get("API_PROCESSES") or s.api_processes)),
            # The ISSUE_LIMIT_* names of earlier releases are still read (they now count failures).
            failure_limit_identity=int(get("FAILURE_LIMIT_IDENTITY") or get("ISSUE_LIMIT_IDENTITY")
                                       or s.failure_limit_identity),
            failure_limit_address=int(get("FAILURE_LIMIT_ADDRESS") or get("ISSUE_LIMIT_ADDRESS")
                                      or s.failure_limit_address),
            failure_limit_window=parse_duration(get("FAILURE_LIMIT_WINDOW") or get("ISSUE_LIMIT_WINDOW") or "15m"),
            ca_cert_file=get("CERTS_CA_CERT"),
            ca_key_file=get("CERTS_CA_KEY"),
            bootstrap_key=get("BOOTSTRAP_ENCRYPT_KEY"),
            bus_key=get("BUS_KEY"),
            mqtt_port=_port(get("MQTT_PORT"), "SMQ_MQTT_PORT"),
            mqtt_host=get("MQTT_HOST"),
            mqtt_url=get("MQTT_URL") or "",
            mqtt_broker=get("MQTT_BROKER") or "",
            mqtt_issuer_seed_file=get("MQTT_ISSUER_SEED_FILE"),
            mqtt_sys_url=get("MQTT_SYS_URL"),
            mqtt_account=get("MQTT_ACCOUNT") or s.mqtt_account,
            mqtt_tls=(get("MQTT_TLS") or "false").strip().lower() in ("1", "true", "yes", "on"),
            log_level=get("LOG_LEVEL") or s.log_level,
            extra={k[4:]: v for k, v in e.items() if k.startswith("SMQ_")},
        )
