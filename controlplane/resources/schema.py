"""Strict structural check of a JSON/YAML value against a protobuf message descriptor.

Why not rely on `json_format.ParseDict` errors alone: it stops at the first problem, reports protobuf paths
(`Dataplane.networking.inbound[0].port`) instead of Kuma's (`networking.inbound[0].port`), and would let a
typo inside a Struct (`conf`) pass silently. This walk collects every unknown field (listing the valid ones)
and every wrong type, with Kuma paths, before anything is parsed; values that pass are then parsed by
json_format without surprises.
"""

from __future__ import annotations

import math
from typing import Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from controlplane.errors import Violation
from controlplane.resources.paths import field as field_path
from controlplane.resources.paths import index, key

_UINT32_MAX: Final = 2**32 - 1
MAX_STRUCT_DEPTH: Final = 32
_BAD_TEXT: Final = "must be valid UTF-8 text without NUL characters"
_BAD_STRUCT: Final = ("must hold only JSON values: string keys, finite numbers, booleans, null, lists, objects "
                      "and text without NUL characters")
_INT_TYPES: Final = {
    FieldDescriptor.TYPE_UINT32: (0, _UINT32_MAX),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}
_FLOAT_TYPES: Final = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}
_WRAPPERS: Final = {
    "google.protobuf.DoubleValue": FieldDescriptor.TYPE_DOUBLE,
    "google.protobuf.BoolValue": FieldDescriptor.TYPE_BOOL,
    "google.protobuf.StringValue": FieldDescriptor.TYPE_STRING,
    "google.protobuf.UInt32Value": FieldDescriptor.TYPE_UINT32,
}


def json_field_names(descriptor: Descriptor) -> list[str]:
    """The camelCase names a document may use, in declaration order."""
    return [f.json_name for f in descriptor.fields]


def unknown_field(path: str, name: str, valid: list[str]) -> Violation:
    return Violation(field_path(path, name), f'unknown field "{name}". Valid fields: {", ".join(valid)}')


def check_message(value: object, descriptor: Descriptor, path: str) -> list[Violation]:
    """Violations of `value` (a decoded JSON/YAML object) against `descriptor`; [] when it will parse.

    `null` anywhere means "unset", as in protobuf JSON.
    """
    if value is None:
        return []
    if not isinstance(value, dict):
        return [Violation(path, "must be an object")]
    by_name = {f.json_name: f for f in descriptor.fields} | {f.name: f for f in descriptor.fields}
    violations: list[Violation] = []
    for name, item in value.items():
        fd = by_name.get(name) if isinstance(name, str) else None
        if fd is None:
            violations.append(unknown_field(path, str(name), json_field_names(descriptor)))
            continue
        violations.extend(_check_field(item, fd, field_path(path, fd.json_name)))
    return violations


def _check_field(value: object, fd: FieldDescriptor, path: str) -> list[Violation]:
    if value is None:
        return []
    if _is_map(fd):
        return _check_map(value, fd, path)
    if fd.is_repeated:
        if not isinstance(value, list):
            return [Violation(path, "must be a list")]
        violations: list[Violation] = []
        for i, item in enumerate(value):
            violations.extend(_check_single(item, fd, index(path, i)))
        return violations
    return _check_single(value, fd, path)


def _is_map(fd: FieldDescriptor) -> bool:
    return (
        fd.type == FieldDescriptor.TYPE_MESSAGE
        and fd.message_type is not None
        and fd.message_type.GetOptions().map_entry
    )


def _check_map(value: object, fd: FieldDescriptor, path: str) -> list[Violation]:
    if not isinstance(value, dict):
        return [Violation(path, "must be an object")]
    value_fd = fd.message_type.fields_by_name["value"]
    violations: list[Violation] = []
    for k, item in value.items():
        if not _is_text(k):
            violations.append(Violation(key(path, str(k)), "key must be a string"))
            continue
        violations.extend(_check_single(item, value_fd, key(path, k)))
    return violations


def _check_single(value: object, fd: FieldDescriptor, path: str) -> list[Violation]:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        full_name = fd.message_type.full_name
        if full_name == "google.protobuf.Struct":
            if value is not None and not isinstance(value, dict):
                return [Violation(path, "must be an object")]
            if _depth(value) > MAX_STRUCT_DEPTH:
                return [Violation(path, f"is nested deeper than {MAX_STRUCT_DEPTH} levels")]
            return [] if _json_like(value) else [Violation(path, _BAD_STRUCT)]
        if full_name in _WRAPPERS:
            return check_scalar(value, _WRAPPERS[full_name], path)
        return check_message(value, fd.message_type, path)
    return check_scalar(value, fd.type, path)


def check_scalar(value: object, field_type: int, path: str) -> list[Violation]:
    """Type check of one scalar; bool is never accepted as a number (YAML `yes` must not become 1)."""
    if value is None:
        return []
    if field_type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            return [Violation(path, "must be a string")]
        return [] if _is_text(value) else [Violation(path, _BAD_TEXT)]
    if field_type == FieldDescriptor.TYPE_BOOL:
        return [] if isinstance(value, bool) else [Violation(path, "must be a boolean")]
    if field_type in _FLOAT_TYPES:
        ok = _is_finite_number(value)
        return [] if ok else [Violation(path, "must be a number")]
    if field_type in _INT_TYPES:
        low, high = _INT_TYPES[field_type]
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if is_int and low <= value <= high:  # type: ignore[operator]
            return []
        return [Violation(path, f"must be an integer in the range [{low}, {high}]")]
    return [Violation(path, "unsupported field type")]


def _depth(value: object) -> int:
    """Nesting depth of a JSON value, iteratively (a recursive walk is what a hostile document would break)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = list(item)
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_STRUCT_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _is_text(value: object) -> bool:
    """A str every store can hold: a lone surrogate (JSON `"\\ud800"`) is not valid UTF-8, and PostgreSQL's
    jsonb refuses NUL (`\\u0000`)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_finite_number(value: object) -> bool:
    """int or float that fits a double and is not NaN/Infinity (Python's json accepts both)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the double range
        return False


def _json_like(value: object) -> bool:
    """Only what a Struct can hold: string keys, strings, finite numbers, bools, null, lists, objects."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(_is_text(k) for k in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif not (item is None or isinstance(item, bool) or _is_text(item) or _is_finite_number(item)):
            return False
    return True
