"""The embedded nats-server's configuration: JetStream, the accounts, the auth callout and the
MQTT listener (the design and its measurements: docs/mqtt-spike.md).

Accounts (config mode, no operator):
  ``APP``    the service's own user (``smq``: its roles, the authorizer); it exports the
             messages subjects as a service and as a stream;
  ``THINGS`` where the auth callout places every MQTT client (the user JWT's ``aud``); it
             imports the messages subjects twice: as a service with ``share: true`` (a thing's
             publish reaches APP with a ``Nats-Request-Info`` header naming it) and as a stream
             (what APP publishes, the HTTP adapter's messages, reaches MQTT subscribers), and
             nothing else; its JetStream (MQTT's state) is bounded (``THINGS_STORE``);
  ``SYS``    the system account (``smq-sys``: closes sessions, ``$SYS.REQ.SERVER.<id>.KICK``).
``smq`` and ``smq-sys`` are the callout's ``auth_users``: they log in with their password and
never reach the callout. Every other client (the MQTT listener's) is asked about on
``$SYS.REQ.USER.AUTH``, answered by ``workers.authorizer`` with the issuer key.

The MQTT topic root is ``channels`` (``channels/<cid>/messages/…``); the service's messages
root (``SMQ_MESSAGES_SUBJECT``) is mapped onto it by the imports.
"""

from __future__ import annotations

import json
from pathlib import Path

APP_ACCOUNT, SYS_ACCOUNT = "APP", "SYS"
SYS_USER = "smq-sys"
MQTT_ROOT = "channels"  # the MQTT topic root the things see
# What the things' account may keep in JetStream (memory, file): MQTT sessions, QoS 1 messages
# and retained messages, which any thing can add to (one per topic of its channels); bounded so
# that things cannot fill the disk the service's event stream lives on.
THINGS_STORE = ("256M", "1G")


def _q(text: str) -> str:
    return json.dumps(text)  # a quoted string (the config format reads JSON strings)


def config(*, store: Path, user: str, password: str, sys_password: str, issuer: str,
           things: str, mqtt_host: str, mqtt_port: int, root: str = MQTT_ROOT,
           tls: tuple[Path, Path, Path] | None = None,
           things_store: tuple[str, str] = THINGS_STORE) -> str:
    """The configuration text (it holds passwords: written to a file of ours, mode 0600).
    With ``tls`` (certificate, key, CA files) the MQTT listener takes only clients whose
    certificate the CA signed; the callout sees the verified chain."""
    mqtt_tls = ""
    if tls is not None:
        cert, key, ca = (_q(str(p)) for p in tls)
        mqtt_tls = f"\n  tls {{\n    cert_file: {cert}\n    key_file: {key}\n    ca_file: {ca}\n    verify: true\n  }}"
    remap = f", to: {_q(MQTT_ROOT + '.>')}" if root != MQTT_ROOT else ""
    subject = _q(root + ".>")
    return f"""server_name: smq
jetstream {{
  store_dir: {_q(str(store))}
}}
accounts {{
  {APP_ACCOUNT} {{
    jetstream: enabled
    exports: [ {{service: {subject}}}, {{stream: {subject}}} ]
    users: [ {{user: {_q(user)}, password: {_q(password)}}} ]
  }}
  {things} {{
    jetstream: {{ max_mem: {things_store[0]}, max_file: {things_store[1]} }}
    imports: [
      {{service: {{account: {APP_ACCOUNT}, subject: {subject}}}{remap}, share: true}}
      {{stream: {{account: {APP_ACCOUNT}, subject: {subject}}}{remap}}}
    ]
  }}
  {SYS_ACCOUNT} {{
    users: [ {{user: {_q(SYS_USER)}, password: {_q(sys_password)}}} ]
  }}
}}
system_account: {SYS_ACCOUNT}
authorization {{
  auth_callout {{
    issuer: {issuer}
    auth_users: [ {_q(user)}, {_q(SYS_USER)} ]
    account: {APP_ACCOUNT}
  }}
}}
mqtt {{
  listen: {_q(f"{mqtt_host}:{mqtt_port}")}{mqtt_tls}
}}
"""


def adopt_global_account(store: Path) -> bool:
    """A data folder of a release before MQTT kept its streams in the global account (``$G``);
    they move to APP, where the service's user is now (a rename: the stream data is the same).
    True when something moved."""
    old, new = store / "jetstream" / "$G", store / "jetstream" / APP_ACCOUNT
    if old.is_dir() and not new.exists():
        old.rename(new)
        return True
    return False
