"""Turning a backend's free-form `conf` (a protobuf Struct in the Mesh) into its typed protobuf message.

Shared by the backend modules so each of them parses its conf the same way: structure first (unknown keys,
wrong types, with Kuma paths under `tracing.backends[i].config`), then json_format. Struct stores every
number as a double, so integral numbers are turned back into ints before parsing (a `port: 8126` must
parse into a uint32 field).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.errors import Violation
from controlplane.resources.schema import check_message

M = TypeVar("M", bound=Message)


def parse_struct(conf: Mapping[str, object], message_type: type[M], path: str) -> tuple[M | None, list[Violation]]:
    """`conf` as `message_type`, or None and the structural violations."""
    raw = _integral_floats_to_int(dict(sorted(conf.items())))
    problems = check_message(raw, message_type.DESCRIPTOR, path)
    if problems:
        return None, problems
    typed = message_type()
    json_format.ParseDict(raw, typed)
    return typed, []


def _integral_floats_to_int(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_to_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_to_int(v) for v in value]
    return value
