"""MeshTrace resource: the kind descriptor, Kuma's schema (with its defaults) and Kuma's `validate()`.

Kuma 2.11 (`pkg/plugins/policies/meshtrace/api/v1alpha1/{schema.yaml,validator.go}` at 3431ee0e; reference
kuma-meshtrace.md §1–2) checks a MeshTrace in two layers: the OpenAPI schema with its defaults (kube-openapi
messages, `resources/openapi.py`), and only when that passes, `validate()`. Both are reproduced here, in
Kuma's order and words. Beyond Kuma, and said in the README: unknown fields are errors (Kuma drops them);
a Zipkin `url` must be an absolute http(s) URL with a host, and an OpenTelemetry `endpoint` must be
`host[:port]` or an `http(s)://` URL (Kuma accepts anything, and the proxy then sends spans nowhere).
Resource layer: imports nothing but controlplane.resources.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.errors import Violation
from controlplane.resources import columns, openapi
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.kind import Document, Kind
from controlplane.resources.paths import field, index
from controlplane.resources.targetref import PROXY_TYPES, SCHEMA_KINDS, validate_target_ref
from controlplane.resources.urls import parse_endpoint, parse_request_uri

TYPE_NAMES: Final = ("Zipkin", "Datadog", "OpenTelemetry")
BACKEND_KEYS: Final = {"Zipkin": "zipkin", "Datadog": "datadog", "OpenTelemetry": "openTelemetry"}
TARGET_KINDS: Final = ("Mesh", "MeshSubset", "MeshGateway", "MeshService", "MeshServiceSubset", "Dataplane")
"""Top-level targetRef kinds of a system-role MeshTrace (every MeshTrace on a universal zone, §1.2)."""
DEPRECATED_KINDS: Final = ("MeshSubset", "MeshService", "MeshServiceSubset")

_STRING: Final = {"type": "string"}
_BACKEND: Final = {"type": "object", "required": ["type"], "properties": {
    "type": {"type": "string", "enum": list(TYPE_NAMES)},
    "zipkin": {"type": "object", "required": ["url"], "properties": {
        "url": _STRING,
        "traceId128bit": {"type": "boolean"},
        "apiVersion": {"type": "string", "enum": ["httpJson", "httpProto"]},
        "sharedSpanContext": {"type": "boolean"},
    }},
    "datadog": {"type": "object", "required": ["url"], "properties": {
        "url": _STRING, "splitService": {"type": "boolean"},
    }},
    "openTelemetry": {"type": "object", "required": ["endpoint"], "properties": {
        "endpoint": {"type": "string", "minLength": 1},
    }},
}}
SPEC_SCHEMA: Final = {"type": "object", "properties": {
    "targetRef": {"type": "object", "required": ["kind"], "properties": {  # Kuma's TargetRef field order
        "kind": {"type": "string", "enum": list(SCHEMA_KINDS)},
        "name": _STRING, "tags": {"type": "map"}, "mesh": _STRING,
        "proxyTypes": {"type": "array", "items": {"type": "string", "enum": list(PROXY_TYPES)}},
        "namespace": _STRING, "labels": {"type": "map"}, "sectionName": _STRING,
    }},
    "default": {"type": "object", "properties": {
        "backends": {"type": "array", "maxItems": 1, "items": _BACKEND},
        "sampling": {"type": "object", "properties": {
            "overall": {"type": "int-or-string"}, "client": {"type": "int-or-string"},
            "random": {"type": "int-or-string"},
        }},
        "tags": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": _STRING, "literal": _STRING,
            "header": {"type": "object", "required": ["name"], "properties": {"name": _STRING, "default": _STRING}},
        }}},
    }},
}}
_DEFAULTS: Final[Mapping[str, Mapping[str, object]]] = {
    "zipkin": {"traceId128bit": False, "apiVersion": "httpJson", "sharedSpanContext": True},
    "datadog": {"splitService": False},
}


def check_schema(doc: Document) -> list[Violation]:
    """The schema layer: `spec` is required and must match Kuma's schema (paths rooted at `spec`)."""
    if "spec" not in doc:
        return [Violation("spec", "in body is required")]
    unknown = [Violation(name, f'unknown field "{name}". Valid fields: spec') for name in doc if name != "spec"]
    return unknown + openapi.check(doc["spec"], SPEC_SCHEMA, "spec")


def apply_defaults(doc: Document) -> list[Violation]:
    """Kuma's schema defaults, applied before storing (so `get` shows them, as Kuma's API does). Works on a
    copy of `spec`: the document may be the caller's."""
    spec = doc.get("spec")
    if isinstance(spec, dict):
        spec = doc["spec"] = copy.deepcopy(spec)
    conf = spec.get("default") if isinstance(spec, dict) else None
    backends = conf.get("backends") if isinstance(conf, dict) else None
    for backend in backends if isinstance(backends, list) else []:
        for key, defaults in _DEFAULTS.items():
            settings = backend.get(key) if isinstance(backend, dict) else None
            if isinstance(settings, dict):
                for name, value in defaults.items():
                    settings.setdefault(name, value)
    return []


def spec_of(spec: Message) -> dict[str, Any]:
    """The stored spec as JSON values (integral numbers back as ints: Struct keeps only doubles)."""
    assert isinstance(spec, mesh_pb2.MeshTrace)
    value = _integral(json_format.MessageToDict(spec.spec)) if spec.HasField("spec") else {}
    assert isinstance(value, dict)
    return value


def validate_meshtrace(spec: Message) -> list[Violation]:
    """Kuma's `validate()` (runs after the schema layer passed), in its order: targetRef, backends, tags,
    sampling client, random, overall."""
    return validate_spec(spec_of(spec))


def validate_spec(spec: Mapping[str, Any]) -> list[Violation]:
    violations: list[Violation] = []
    ref = spec.get("targetRef")
    if isinstance(ref, Mapping):
        violations.extend(validate_target_ref(ref, TARGET_KINDS, "spec.targetRef"))
    conf = spec.get("default")
    conf = conf if isinstance(conf, Mapping) else {}
    backends = conf.get("backends")
    if backends is None:
        violations.append(Violation("spec.default.backends", "must be defined"))
    elif len(backends) == 1:
        violations.extend(_validate_backend(backends[0], "spec.default.backends[0]"))
    elif len(backends) > 1:
        violations.append(Violation("spec.default.backends", "must have zero or one backend defined"))
    for i, tag in enumerate(conf.get("tags") or ()):
        path = index("spec.default.tags", i)
        if not tag.get("name"):
            violations.append(Violation(field(path, "name"), "must not be empty"))
        if ("header" in tag) == ("literal" in tag):
            violations.append(Violation(path, "tag must have only one type defined: header, literal"))
    sampling = conf.get("sampling")
    for name in ("client", "random", "overall"):
        if isinstance(sampling, Mapping) and sampling.get(name) is not None:
            violations.extend(Violation(field("spec.default.sampling", name), m)
                              for m in sampling_problems(sampling[name]))
    return violations


def _validate_backend(backend: Mapping[str, Any], path: str) -> list[Violation]:
    key = BACKEND_KEYS.get(str(backend.get("type")))
    if key is None:  # a backend without a (known) type: only reachable without the schema layer
        return []
    settings = backend.get(key)
    if settings is None:
        return [Violation(field(path, key), "must be defined")]
    if key == "datadog":
        return [Violation(field(path, "datadog.url"), m) for m in datadog_url_problems(str(settings.get("url", "")))]
    if key == "zipkin":
        url = str(settings.get("url", ""))
        if not url:
            return [Violation(field(path, "zipkin.url"), "must not be empty")]
        parsed = parse_request_uri(url)
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            return [Violation(field(path, "zipkin.url"), "must be a valid url")]
        return []
    if parse_endpoint(str(settings.get("endpoint", ""))) is None:
        return [Violation(field(path, "openTelemetry.endpoint"),
                          "must be host:port, or an http:// or https:// URL for OTLP over HTTP")]
    return []


def datadog_url_problems(url: str) -> list[str]:
    """Kuma's checks of a Datadog agent URL: parsable, http, an explicit valid port, nothing else."""
    parsed = parse_request_uri(url)
    if parsed is None:
        return ["must be a valid url"]
    problems = []
    if parsed.scheme != "http":
        problems.append("scheme must be http")
    if not parsed.port:
        problems.append("port must be defined")
    elif not parsed.port.isdigit() or not 1 <= int(parsed.port) <= 65535:
        problems.append("port must be a valid (1-65535)")
    for name in ("opaque", "user", "path", "query", "fragment"):
        if getattr(parsed, name):
            problems.append(f"{name} must not be defined")
    return problems


def sampling_problems(value: object) -> list[str]:
    """Kuma's decimal check: an int, or a string holding a decimal, between 0 and 100."""
    number = percent(value)
    if number is None:
        return ["string is not a number"]
    return [] if 0 <= number <= 100 else ["must be between 0 and 100"]


def percent(value: object) -> Decimal | None:
    """A sampling value as a decimal; None when a string is not a (finite) number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def warnings_of(spec: Message, mesh: object) -> list[str]:
    """Kuma's PUT warning for the deprecated kinds (`pc/jsonpatch/validators/validator.go`)."""
    ref = spec_of(spec).get("targetRef")
    kind = ref.get("kind") if isinstance(ref, Mapping) else None
    if kind in DEPRECATED_KINDS:
        return [f"{kind} value for 'targetRef.kind' is deprecated, use Dataplane with labels instead"]
    return []


def canonicalize(doc: Document) -> None:
    """Kuma's key order (its Go structs' field order), and integral numbers (sampling) as ints, as they were
    written: Struct keeps neither."""
    if "spec" in doc:
        doc["spec"] = openapi.ordered(_integral(doc["spec"]), SPEC_SCHEMA)


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


MESH_TRACE: Final = Kind(
    name="MeshTrace",
    ws_path="meshtraces",
    singular="meshtrace",
    plural="meshtraces",
    mesh_scoped=True,
    spec_type=mesh_pb2.MeshTrace,
    validate=validate_meshtrace,
    columns=(columns.MESH, columns.NAME, columns.AGE),
    schema=check_schema,
    normalize=apply_defaults,
    canonicalize=canonicalize,
    warnings=warnings_of,
    policy=True,
    target_ref=True,
)
