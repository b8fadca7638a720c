"""Strict structural check of a JSON/YAML value against a protobuf message descriptor, and Kuma's reading
of the nulls in it.

Why not rely on `json_format.ParseDict` errors alone: it stops at the first problem, reports protobuf paths
(`Dataplane.networking.inbound[0].port`) instead of Kuma's (`networking.inbound[0].port`), and would let a
typo inside a Struct (`conf`) pass silently. This walk collects every unknown field (listing the valid ones)
and every wrong type, with Kuma paths, before anything is parsed; values that pass are then parsed by
json_format without surprises.

Types follow protobuf's JSON mapping as Kuma's parser applies it (golang/protobuf v1.5 `jsonpb`, which
Kuma's `util/proto` uses): a number field also takes the number written as a JSON string (`sampling:
"50"`, `port: "8126"`); a bool or a string field takes only its own type. Stricter than jsonpb where
accepting would store something Envoy cannot use: no NaN/Infinity, no fractional integers.

Nulls. `jsonpb` reads a null field as unset, a null list item as an empty element and a null map value as
the empty value, and Kuma's validators then judge that reading (`name:` alone is `cannot be empty`,
`kuma.io/service:` alone is `tag value must be non-empty`). `read_message` gives exactly that reading, so
the validators report Kuma's violations, plus the paths of the nulls; `unreported_nulls` then turns every
null the validators did not already reject into `cannot be null`, so a null is never silently taken as
"unset" (a key without a value is a value left out by mistake far more often than a way to unset a field).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from controlplane.errors import Violation
from controlplane.resources.paths import field as field_path
from controlplane.resources.paths import index, key

_UINT32_MAX: Final = 2**32 - 1
MAX_STRUCT_DEPTH: Final = 32
NULL_MESSAGE: Final = "cannot be null: give it a value or remove it"
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
# JSON's number grammar, ASCII digits only (Python's int()/float() would also take "1_000", " 5", "٥", "inf").
_JSON_INTEGER: Final = re.compile(r"(0|-?[1-9][0-9]{0,19})\Z")  # 20 digits: uint64; int() of more can raise
_JSON_NUMBER: Final = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")


@dataclass(frozen=True, slots=True)
class Reading:
    """A document as Kuma's parser reads it (nulls replaced by what they mean there), its structural
    violations, the paths of its nulls, and the top-level keys whose values were rejected."""

    value: object
    violations: tuple[Violation, ...]
    nulls: tuple[str, ...]
    rejected: frozenset[str] = frozenset()


def json_field_names(descriptor: Descriptor) -> list[str]:
    """The camelCase names a document may use, in declaration order."""
    return [f.json_name for f in descriptor.fields]


def unknown_field(path: str, name: str, valid: list[str]) -> Violation:
    return Violation(field_path(path, name), f'unknown field "{name}". Valid fields: {", ".join(valid)}')


def read_message(value: object, descriptor: Descriptor, path: str) -> Reading:
    """`value` (a decoded JSON/YAML object) checked against `descriptor` and read as Kuma reads it. The
    reading is `value` itself when it has no null, and parses with json_format when `violations` is []."""
    reader = _Reader()
    if value is None:
        return Reading({}, (), (path,))
    read, rejected = reader.message(value, descriptor, path)
    return Reading(read, tuple(reader.violations), tuple(reader.nulls), frozenset(rejected))


def check_message(value: object, descriptor: Descriptor, path: str) -> list[Violation]:
    """Violations of `value` against `descriptor`, every null among them; [] when it will parse."""
    reading = read_message(value, descriptor, path)
    return [*reading.violations, *(Violation(p, NULL_MESSAGE) for p in reading.nulls)]


def unreported_nulls(nulls: Sequence[str], found: Sequence[Violation]) -> list[Violation]:
    """`cannot be null` for each null that no violation in `found` is at or under: the nulls Kuma's reading
    accepts (`sampling:` alone is simply unset there). Linear: a hostile list of 50k nulls, each with its
    own violations, must not cost nulls × violations comparisons."""
    if not nulls:
        return []
    reported = {prefix for v in found for prefix in _path_prefixes(v.field)}
    return [Violation(path, NULL_MESSAGE) for path in nulls if path not in reported]


def json_nulls(value: object, path: str) -> list[str]:
    """Paths of the nulls in a plain JSON value (a Struct's content, which `read_message` keeps as it is)."""
    nulls: list[str] = []
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if item is None:
            nulls.append(where)
        elif isinstance(item, dict):
            stack.extend((child, field_path(where, str(k))) for k, child in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((child, index(where, i)) for i, child in reversed(list(enumerate(item))))
    return nulls


def _path_prefixes(path: str) -> list[str]:
    """`a.b[0].c` → `a`, `a.b`, `a.b[0]`, `a.b[0].c`: the path and every path it is under. A `.` or `[`
    inside a quoted map key also cuts, giving a prefix that ends inside the quotes, which no real path does."""
    return [path[:i] for i, c in enumerate(path) if c in ".["] + [path]


class _Reader:
    """One walk over a document: collects violations and null paths, returns the reading. Containers are
    copied only where a null was replaced, so a document without nulls is returned as it is."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.nulls: list[str] = []

    def message(self, value: object, descriptor: Descriptor, path: str) -> tuple[object, list[str]]:
        """The reading of one message value and the keys (as written) whose values were rejected."""
        if not isinstance(value, dict):
            self.violations.append(Violation(path, "must be an object"))
            return value, []
        by_name = {f.json_name: f for f in descriptor.fields} | {f.name: f for f in descriptor.fields}
        out: dict[object, object] | None = None
        rejected: list[str] = []
        seen: dict[str, str] = {}
        for name, item in value.items():
            fd = by_name.get(name) if isinstance(name, str) else None
            if fd is None or not isinstance(name, str):
                self.violations.append(unknown_field(path, str(name), json_field_names(descriptor)))
                rejected.append(str(name))
                continue
            where = field_path(path, fd.json_name)
            before = len(self.violations)
            if fd.json_name in seen:
                self.violations.append(Violation(where, f'is set twice (as "{seen[fd.json_name]}" and "{name}")'))
            seen.setdefault(fd.json_name, name)
            if item is None:
                self.nulls.append(where)  # jsonpb skips a null field: unset
                out = dict(value) if out is None else out
                del out[name]
                continue
            read = self.field(item, fd, where)
            if len(self.violations) > before:
                rejected.append(name)
            if read is not item:
                out = dict(value) if out is None else out
                out[name] = read
        return (value if out is None else out), rejected

    def field(self, value: object, fd: FieldDescriptor, path: str) -> object:
        if _is_map(fd):
            return self.map(value, fd, path)
        if not fd.is_repeated:
            return self.single(value, fd, path)
        if not isinstance(value, list):
            self.violations.append(Violation(path, "must be a list"))
            return value
        out: list[object] | None = None
        for i, item in enumerate(value):
            read = self.element(item, fd, index(path, i))
            if read is not item:
                out = list(value) if out is None else out
                out[i] = read
        return value if out is None else out

    def map(self, value: object, fd: FieldDescriptor, path: str) -> object:
        if not isinstance(value, dict):
            self.violations.append(Violation(path, "must be an object"))
            return value
        value_fd = fd.message_type.fields_by_name["value"]
        out: dict[object, object] | None = None
        for k, item in value.items():
            if not _is_text(k):
                self.violations.append(Violation(key(path, str(k)), "key must be a string"))
                continue
            read = self.element(item, value_fd, key(path, k))
            if read is not item:
                out = dict(value) if out is None else out
                out[k] = read
        return value if out is None else out

    def element(self, value: object, fd: FieldDescriptor, path: str) -> object:
        """A list item or map value: jsonpb reads a null one as the empty element (`{}`, "", 0, false)."""
        if value is None:
            self.nulls.append(path)
            return _empty(fd)
        return self.single(value, fd, path)

    def single(self, value: object, fd: FieldDescriptor, path: str) -> object:
        if fd.type != FieldDescriptor.TYPE_MESSAGE:
            self.violations.extend(check_scalar(value, fd.type, path))
            return value
        full_name = fd.message_type.full_name
        if full_name == "google.protobuf.Struct":
            self.violations.extend(_check_struct(value, path))
            return value
        if full_name in _WRAPPERS:
            self.violations.extend(check_scalar(value, _WRAPPERS[full_name], path))
            return value
        return self.message(value, fd.message_type, path)[0]


def _empty(fd: FieldDescriptor) -> object:
    """The value jsonpb gives a null list item or map value of this field's type."""
    field_type = fd.type
    if field_type == FieldDescriptor.TYPE_MESSAGE:
        wrapped = _WRAPPERS.get(fd.message_type.full_name)
        if wrapped is None:
            return {}
        field_type = wrapped
    if field_type == FieldDescriptor.TYPE_STRING:
        return ""
    if field_type == FieldDescriptor.TYPE_BOOL:
        return False
    return 0


def _check_struct(value: object, path: str) -> list[Violation]:
    if not isinstance(value, dict):
        return [Violation(path, "must be an object")]
    if _depth(value) > MAX_STRUCT_DEPTH:
        return [Violation(path, f"is nested deeper than {MAX_STRUCT_DEPTH} levels")]
    return [] if _json_like(value) else [Violation(path, _BAD_STRUCT)]


def check_scalar(value: object, field_type: int, path: str) -> list[Violation]:
    """Type check of one scalar; bool is never accepted as a number (YAML `yes` must not become 1). A number
    written as a JSON string is a number, as in protobuf's JSON mapping."""
    if value is None:
        return []
    if field_type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            return [Violation(path, "must be a string")]
        return [] if _is_text(value) else [Violation(path, _BAD_TEXT)]
    if field_type == FieldDescriptor.TYPE_BOOL:
        return [] if isinstance(value, bool) else [Violation(path, "must be a boolean")]
    if field_type in _FLOAT_TYPES:
        number = float(value) if isinstance(value, str) and _JSON_NUMBER.match(value) else value
        return [] if _is_finite_number(number) else [Violation(path, "must be a number")]
    if field_type in _INT_TYPES:
        low, high = _INT_TYPES[field_type]
        number = int(value) if isinstance(value, str) and _JSON_INTEGER.match(value) else value
        is_int = isinstance(number, int) and not isinstance(number, bool)
        if is_int and low <= number <= high:  # type: ignore[operator]
            return []
        return [Violation(path, f"must be an integer in the range [{low}, {high}]")]
    return [Violation(path, "unsupported field type")]


def _is_map(fd: FieldDescriptor) -> bool:
    return (
        fd.type == FieldDescriptor.TYPE_MESSAGE
        and fd.message_type is not None
        and fd.message_type.GetOptions().map_entry
    )


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
