"""The schema layer of Kuma's new policies: a small OpenAPI-v3 subset, with kube-openapi's messages.

Kuma validates a MeshTrace (and every `targetRef` policy) in two layers (reference kuma-meshtrace.md §2):
the CRD's OpenAPI schema first (types, enums, required fields, `maxItems`, `minLength`), with messages such
as `spec.default.backends[0].type in body should be one of [Zipkin Datadog OpenTelemetry]`, and only when
that passes, the policy's own `validate()`. This module is the first layer for schemas written as plain
dicts next to the policy (`policies/<kind>/api.py`), mirroring Kuma's `schema.yaml`. Beyond Kuma, unknown
fields are errors listing the valid ones (Kuma drops them silently), like everywhere else in this codec.

Schema nodes: `{"type": "object", "properties": {...}, "required": [...]}`, `{"type": "map"}` (string
values), `{"type": "array", "items": {...}, "maxItems": n}`, `{"type": "string", "enum": [...],
"minLength": n}`, `{"type": "boolean"}`, `{"type": "int-or-string"}`. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from controlplane.errors import Violation
from controlplane.resources.paths import field, index, key

Schema = Mapping[str, Any]
_JSON_TYPES: Final = ((bool, "boolean"), (str, "string"), ((int, float), "number"), (dict, "object"),
                      (list, "array"))


def json_type(value: object) -> str:
    """The JSON type name kube-openapi reports for a value (`"number"` for every number)."""
    if value is None:
        return "null"
    for types, name in _JSON_TYPES:
        if isinstance(value, types):
            return name
    return type(value).__name__


def check(value: object, schema: Schema, path: str) -> list[Violation]:
    """Every schema violation of `value` at `path`, in document order."""
    kind = schema["type"]
    if kind == "object":
        return _object(value, schema, path)
    if kind == "array":
        return _array(value, schema, path)
    if kind == "map":
        return _map(value, path)
    if kind == "string":
        return _string(value, schema, path)
    if kind == "boolean":
        return [] if isinstance(value, bool) else [_type(path, "boolean", value)]
    if kind == "int-or-string":
        return [] if isinstance(value, str) or _is_integer(value) else [_type(path, "integer", value)]
    raise ValueError(f"unknown schema type {kind!r}")


def ordered(value: Any, schema: Schema) -> Any:
    """`value` with object keys in the schema's property order (then any others, sorted) and map keys
    sorted: the canonical output, the same from every store (Kuma writes them in its Go struct's order)."""
    kind = schema.get("type")
    if kind == "object" and isinstance(value, dict):
        properties: Mapping[str, Schema] = schema.get("properties", {})
        known = [k for k in properties if k in value]
        rest = sorted(k for k in value if k not in properties)
        return {**{k: ordered(value[k], properties[k]) for k in known}, **{k: value[k] for k in rest}}
    if kind == "array" and isinstance(value, list):
        return [ordered(item, schema["items"]) for item in value]
    if kind == "map" and isinstance(value, dict):
        return dict(sorted(value.items()))
    return value


def _type(path: str, expected: str, value: object) -> Violation:
    return Violation(path, f'in body must be of type {expected}: "{json_type(value)}"')


def _object(value: object, schema: Schema, path: str) -> list[Violation]:
    if not isinstance(value, dict):
        return [_type(path, "object", value)]
    properties: Mapping[str, Schema] = schema.get("properties", {})
    violations = [Violation(field(path, name), "in body is required")
                  for name in schema.get("required", ()) if name not in value]
    for name, item in value.items():
        sub = properties.get(name) if isinstance(name, str) else None
        if sub is None:
            valid = ", ".join(properties)
            violations.append(Violation(field(path, str(name)), f'unknown field "{name}". Valid fields: {valid}'))
            continue
        violations.extend(check(item, sub, field(path, name)))
    return violations


def _array(value: object, schema: Schema, path: str) -> list[Violation]:
    if not isinstance(value, list):
        return [_type(path, "array", value)]
    violations = []
    limit = schema.get("maxItems")
    if limit is not None and len(value) > limit:
        violations.append(Violation(path, f"in body should have at most {limit} items"))
    for i, item in enumerate(value):
        violations.extend(check(item, schema["items"], index(path, i)))
    return violations


def _map(value: object, path: str) -> list[Violation]:
    if not isinstance(value, dict):
        return [_type(path, "object", value)]
    return [_type(key(path, str(k)), "string", v) for k, v in value.items() if not isinstance(v, str)]


def _string(value: object, schema: Schema, path: str) -> list[Violation]:
    if not isinstance(value, str):
        return [_type(path, "string", value)]
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        return [Violation(path, f"in body should be one of [{' '.join(enum)}]")]
    shortest = schema.get("minLength")
    if shortest is not None and len(value) < shortest:
        return [Violation(path, f"in body should be at least {shortest} chars long")]
    return []


def _is_integer(value: object) -> bool:
    """JSON integers, including integral floats (a JSON `80.0` is an integer to kube-openapi)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()
