"""Turning a backend's free-form `conf` (a protobuf Struct in the Mesh) into its typed protobuf message.

Shared by the backend modules so each of them parses its conf the same way: structure first (unknown keys,
wrong types, with Kuma paths under `tracing.backends[i].config`), then json_format. Struct stores every
number as a double, so integral numbers are turned back into ints before parsing (a `port: 8126` must
parse into a uint32 field).

A field whose value is rejected does not hide the others: `read_struct` parses every field that passed, and
a backend runs its own checks on each field that is `usable`, so `{traceId128bit: "yes", url: ""}` reports
both problems. (Kuma reports one `could not parse config: ...` for the whole conf and nothing else.) Nulls
are read as Kuma reads them (unset); the Mesh validator reports the ones no check rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.errors import Violation
from controlplane.resources.schema import read_message

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class ParsedConf(Generic[M]):
    """A conf parsed field by field: the message holds every field that passed the structural check."""

    message: M
    violations: tuple[Violation, ...]
    """Structural problems (unknown keys, wrong types), in key order."""
    rejected: frozenset[str]
    """JSON names of the fields whose values were rejected, so they are unset in `message`."""

    def usable(self, json_name: str) -> bool:
        """False when the field's value was rejected: a backend must not judge the unset stand-in (a
        `url: 5` is "must be a string", not also "cannot be empty")."""
        return json_name not in self.rejected


def read_struct(conf: Mapping[str, object], message_type: type[M], path: str) -> ParsedConf[M]:
    """`conf` as `message_type`, every field that can be parsed parsed, with the structural violations."""
    raw = _integral_floats_to_int(dict(sorted(conf.items())))
    reading = read_message(raw, message_type.DESCRIPTOR, path)
    by_name = {f.json_name: f for f in message_type.DESCRIPTOR.fields}
    by_name |= {f.name: f for f in message_type.DESCRIPTOR.fields}
    value = reading.value if isinstance(reading.value, dict) else {}
    typed = message_type()
    json_format.ParseDict({k: v for k, v in value.items() if k not in reading.rejected}, typed)
    rejected = frozenset(by_name[k].json_name for k in reading.rejected if k in by_name)
    return ParsedConf(typed, reading.violations, rejected)


def parse_struct(conf: Mapping[str, object], message_type: type[M], path: str) -> tuple[M | None, list[Violation]]:
    """`conf` as `message_type`, or None and the structural violations (all or nothing)."""
    parsed = read_struct(conf, message_type, path)
    return (None, list(parsed.violations)) if parsed.violations else (parsed.message, [])


def _integral_floats_to_int(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_to_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_to_int(v) for v in value]
    return value
