"""Decoding stored specs fast: protojson text → message through the message constructor (C), with
`json_format.Parse` as the reference and the fallback.

Why: `json_format.Parse` walks the message in Python, ~140 µs for a small Dataplane; loading a store of
100k Dataplanes spent most of its time there. What the stores hold is our own protojson output (camelCase
names, plain scalars), so a narrow path covers it: `json.loads` (C), rename the keys along a per-descriptor
plan, and let the generated class build the message from nested dicts and lists (C as well). Anything the
plan does not cover exactly (enums, 64-bit integers, bytes, well-known types, a value of an unexpected
JSON type, an unknown or duplicated field) leaves the fast path, and `json_format.Parse` decides, so
the outcome (message or error) is always the reference's. tests/unit/resources/test_spec_json.py checks
the two agree on the golden corpora and on the edge cases.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

_FD = FieldDescriptor


class _Unsupported(Exception):
    """The fast path cannot tell: the reference parser decides."""


def _string(value: object) -> object:
    if not isinstance(value, str):
        raise _Unsupported
    return value


def _bool(value: object) -> object:
    if not isinstance(value, bool):
        raise _Unsupported
    return value


def _int32(value: object) -> object:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Unsupported  # protojson also accepts "8080" and 8080.0: the reference handles those
    return value


def _double(value: object) -> object:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _Unsupported  # "NaN", "Infinity", "1.5" as strings: the reference
    return value


_SCALARS: Final[dict[int, Callable[[object], object]]] = {
    _FD.TYPE_STRING: _string,
    _FD.TYPE_BOOL: _bool,
    _FD.TYPE_INT32: _int32, _FD.TYPE_UINT32: _int32, _FD.TYPE_SINT32: _int32,
    _FD.TYPE_FIXED32: _int32, _FD.TYPE_SFIXED32: _int32,
    _FD.TYPE_DOUBLE: _double, _FD.TYPE_FLOAT: _double,
}
"""Scalar types whose protojson form is the plain JSON value (64-bit integers are strings, enums names)."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    convert: Callable[[object], object]


def parse_spec(text: str, spec_type: type[Message]) -> Message:
    """`json_format.Parse(text, spec_type())`, faster for what the stores write; same result or same error."""
    plan = _plan(spec_type.DESCRIPTOR)
    if plan is not None:
        try:
            data = json.loads(text)
            return spec_type(**_message(plan, data))
        except (_Unsupported, ValueError, TypeError, RecursionError):
            pass  # json.loads errors, out-of-range values: the reference gives its own error
    return json_format.Parse(text, spec_type())


@functools.cache
def _plan(descriptor: Descriptor) -> dict[str, _Field] | None:
    """JSON key (json name and proto name) → how to convert its value; None if the message has a field the
    fast path does not cover (the whole message then goes to the reference)."""
    plan: dict[str, _Field] = {}
    for field in descriptor.fields:
        convert = _converter(field)
        if convert is None:
            return None
        plan[field.json_name] = plan[field.name] = _Field(field.name, convert)
    return plan


def _converter(field: FieldDescriptor) -> Callable[[object], object] | None:
    if field.containing_oneof is not None:
        return None
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return _map_converter(field.message_type)
    one = _one_converter(field)
    if one is None:
        return None
    if field.is_repeated:
        return functools.partial(_repeated, one)
    return one


def _one_converter(field: FieldDescriptor) -> Callable[[object], object] | None:
    if field.type == _FD.TYPE_MESSAGE:
        if field.message_type.full_name.startswith("google.protobuf."):
            return None  # well-known types have their own JSON forms
        sub = _plan(field.message_type)
        return functools.partial(_message, sub) if sub is not None else None
    return _SCALARS.get(field.type)


def _map_converter(entry: Descriptor) -> Callable[[object], object] | None:
    key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
    convert = _one_converter(value)
    if key.type != _FD.TYPE_STRING or convert is None:
        return None
    return functools.partial(_map, convert)


def _message(plan: dict[str, _Field] | None, data: object) -> dict[str, Any]:
    if plan is None or not isinstance(data, dict):
        raise _Unsupported
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = plan.get(key)
        if field is None or field.name in out:
            raise _Unsupported  # unknown, or given under both its names
        out[field.name] = None if value is None else field.convert(value)
    return {name: value for name, value in out.items() if value is not None}  # null: the default, as protojson


def _repeated(convert: Callable[[object], object], data: object) -> list[object]:
    if not isinstance(data, list):
        raise _Unsupported
    return [convert(_not_null(item)) for item in data]


def _map(convert: Callable[[object], object], data: object) -> dict[str, object]:
    if not isinstance(data, dict):
        raise _Unsupported
    return {key: convert(_not_null(value)) for key, value in data.items()}


def _not_null(value: object) -> object:
    if value is None:
        raise _Unsupported
    return value
