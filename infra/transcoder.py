"""The event store's transcoder: the library's JSON format, encoded and decoded by msgspec.

The eventsourcing ``JSONTranscoder`` writes a UUID, a datetime or a Decimal as
``{"_type_": <name>, "_data_": <text>}`` through ``json`` with a Python ``default`` hook, and
reads them back with an ``object_hook`` called for every JSON object. Here the values of the
registered types are tagged (and untagged) by one walk over the state, and the JSON text is
made and parsed by msgspec: the same text for the same state (compact, key order kept,
non-ASCII as is), about three times less CPU (docs/performance.md). Whatever msgspec cannot
take (text no UTF-8 can hold, stored by an older version) goes through the library's own way.
"""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

_PLAIN = frozenset({str, int, float, bool, type(None)})
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode


class FastTranscoder(JSONTranscoder):
    """``JSONTranscoder``'s format and registrations, msgspec's speed."""

    def encode(self, obj: Any) -> bytes:
        try:
            return _encode(self._tag(obj))
        except (msgspec.EncodeError, UnicodeEncodeError, OverflowError):
            return super().encode(obj)

    def decode(self, data: bytes) -> Any:
        try:
            obj = _decode(data)
        except msgspec.DecodeError:
            return super().decode(data)
        return self._untag(obj)

    def _tag(self, o: Any) -> Any:
        t = type(o)
        if t is dict:
            return {k: v if type(v) in _PLAIN else self._tag(v) for k, v in o.items()}
        if t is list or t is tuple:
            return [v if type(v) in _PLAIN else self._tag(v) for v in o]
        if t in _PLAIN:
            return o
        transcoding = self.types.get(t)
        if transcoding is not None:
            return {"_type_": transcoding.name, "_data_": self._tag(transcoding.encode(o))}
        if isinstance(o, (str, int, float)):  # a subclass json writes as its base (a StrEnum)
            return o
        raise TranscodingNotRegisteredError(
            f"Object of type {t} is not serializable. Please define and register a custom"
            " transcoding for this type.")

    def _untag(self, o: Any) -> Any:
        t = type(o)
        if t is dict:
            if len(o) == 2 and "_type_" in o and "_data_" in o:
                try:
                    transcoding = self.names[o["_type_"]]
                except (KeyError, TypeError) as exc:
                    raise TranscodingNotRegisteredError(
                        f"Data serialized with name '{o['_type_']}' is not deserializable. Please"
                        " register a custom transcoding for this type.") from exc
                return transcoding.decode(self._untag(o["_data_"]))
            for k, v in o.items():
                if type(v) is dict or type(v) is list:
                    o[k] = self._untag(v)
            return o
        if t is list:
            for i, v in enumerate(o):
                if type(v) is dict or type(v) is list:
                    o[i] = self._untag(v)
        return o
