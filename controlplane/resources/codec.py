"""Kuma's document form of a resource <-> the typed `Resource`.

A document is a mapping with the envelope (`type`, `name`, `mesh` for mesh-scoped kinds, and, on output,
`creationTime`/`modificationTime`) and the spec fields inline, exactly as kumactl and Kuma's HTTP API write
them. Decoding is all-or-nothing: every problem is collected into one ValidationError (Kuma field paths and
messages) and nothing half-parsed escapes. Short forms from the docs are normalised first, so output is
always canonical.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.errors import ValidationError, Violation
from controlplane.resources.dataplane import validate_dataplane
from controlplane.resources.mesh import normalize_mesh, validate_mesh
from controlplane.resources.model import Kind, Resource, ResourceKey
from controlplane.resources.schema import check_message, json_field_names
from controlplane.resources.traffic_trace import normalize_traffic_trace, validate_traffic_trace
from controlplane.resources.yaml_loader import load_documents

ENVELOPE_OUT: Final = ("creationTime", "modificationTime")
MAX_NAME_LENGTH: Final = 253
_NAME: Final = re.compile(r"^[0-9a-z-_.]*\Z")
_MESH_NAME: Final = re.compile(r"^[0-9a-z-_]*\Z")

_NORMALIZERS: Final[dict[Kind, Callable[[dict[str, object]], list[Violation]]]] = {
    Kind.MESH: normalize_mesh,
    Kind.TRAFFIC_TRACE: normalize_traffic_trace,
    Kind.DATAPLANE: lambda doc: [],
}
_VALIDATORS: Final[dict[Kind, Callable[[Message], list[Violation]]]] = {
    Kind.MESH: lambda spec: validate_mesh(spec),
    Kind.TRAFFIC_TRACE: lambda spec: validate_traffic_trace(spec),
    Kind.DATAPLANE: lambda spec: validate_dataplane(spec),
}


def load_yaml_documents(text: str) -> list[object]:
    """Every non-empty document of a (multi-document) YAML text; a syntax error names line and column, and
    the limits of `yaml_loader` (document count, alias expansion, depth) give a clear error too."""
    return load_documents(text)


def validate_name(value: object, path: str, pattern: re.Pattern[str], chars: str) -> list[Violation]:
    if value is None or value == "":
        return [Violation(path, "cannot be empty")]
    if not isinstance(value, str):
        return [Violation(path, "must be a string")]
    if len(value) > MAX_NAME_LENGTH:
        return [Violation(path, f"must be at most {MAX_NAME_LENGTH} characters long")]
    if not pattern.match(value):
        return [Violation(path, f"invalid characters. Valid characters are numbers, lowercase latin letters and {chars} symbols.")]
    return []


def validate_resource_name(value: object, path: str) -> list[Violation]:
    return validate_name(value, path, _NAME, "'-', '_', '.'")


def validate_mesh_name(value: object, path: str) -> list[Violation]:
    return validate_name(value, path, _MESH_NAME, "'-', '_'")


def decode_resource(doc: object) -> Resource:
    """Parse and validate one document; raises ValidationError with every violation."""
    if not isinstance(doc, dict):
        raise ValidationError([Violation("", f"a resource must be a mapping, got {_json_type(doc)}")])
    body = dict(doc)
    kind, violations = _decode_envelope(body)
    if kind is None:
        raise ValidationError(violations)
    name, mesh = body.pop("name", None), body.pop("mesh", None) if kind.mesh_scoped else ""
    for out_only in ENVELOPE_OUT:
        body.pop(out_only, None)  # accepted so `get -o yaml` output re-applies; the store owns them
    violations.extend(_NORMALIZERS[kind](body))
    spec = kind.new_spec()
    structure = check_message(body, spec.DESCRIPTOR, "")
    violations.extend(_with_envelope_fields(structure, kind, spec))
    if not structure:
        json_format.ParseDict(body, spec)
        violations.extend(_VALIDATORS[kind](spec))
    if violations:
        raise ValidationError(violations)
    return Resource(ResourceKey(kind, str(mesh), str(name)), spec)


def _decode_envelope(body: dict[object, object]) -> tuple[Kind | None, list[Violation]]:
    type_name = body.pop("type", None)
    if type_name is None or type_name == "":
        return None, [Violation("type", "cannot be empty")]
    try:
        kind = Kind.from_type(str(type_name))
    except ValueError as exc:
        return None, [Violation("type", str(exc))]
    if kind is Kind.MESH:  # a mesh name is the node id's prefix up to the first '.': no dots (§4.2)
        return kind, validate_mesh_name(body.get("name"), "name")
    violations = validate_name(body.get("name"), "name", _NAME, "'-', '_', '.'")
    if kind.mesh_scoped:
        violations.extend(validate_name(body.get("mesh"), "mesh", _MESH_NAME, "'-', '_'"))
    return kind, violations


def _with_envelope_fields(violations: list[Violation], kind: Kind, spec: Message) -> list[Violation]:
    """Unknown top-level fields list the envelope fields too, so the hint shows everything a user may write."""
    envelope = ["type", "name", *(["mesh"] if kind.mesh_scoped else [])]
    valid = ", ".join([*envelope, *json_field_names(spec.DESCRIPTOR)])
    fixed = []
    for v in violations:
        if "." not in v.field and "[" not in v.field and v.message.startswith("unknown field"):
            v = Violation(v.field, f'unknown field "{v.field}". Valid fields: {valid}')
        fixed.append(v)
    return fixed


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "nothing"
    return f"a {type(value).__name__}"


def encode_resource(resource: Resource) -> dict[str, object]:
    """Kuma's representation: envelope first, then the canonical spec (camelCase, short forms expanded)."""
    out: dict[str, object] = {"type": resource.kind.value}
    if resource.kind.mesh_scoped:
        out["mesh"] = resource.mesh
    out["name"] = resource.name
    if resource.creation_time is not None:
        out["creationTime"] = format_time(resource.creation_time)
    if resource.modification_time is not None:
        out["modificationTime"] = format_time(resource.modification_time)
    spec = json_format.MessageToDict(resource.spec)
    _canonical_maps(spec)
    out.update(spec)
    return out


def _sorted(value: object) -> object:
    return dict(sorted(value.items())) if isinstance(value, dict) else value


def _canonical_maps(spec: dict[str, object]) -> None:
    """Map fields (tags, selector matches) and Struct confs come out in storage order, which differs between
    stores; sort them so output is canonical and an export is byte-identical whichever store it came from.
    Struct keeps numbers as doubles, so integral ones are printed as `port: 8126`, not `port: 8126.0`."""
    tracing = spec.get("tracing")
    for backend in _items(tracing.get("backends") if isinstance(tracing, dict) else None):
        conf = backend.get("conf")
        if isinstance(conf, dict):
            backend["conf"] = {k: int(v) if isinstance(v, float) and v.is_integer() else v
                               for k, v in sorted(conf.items())}
    for selector in _items(spec.get("selectors")):
        selector["match"] = _sorted(selector.get("match"))
    networking = spec.get("networking")
    if isinstance(networking, dict):
        for listener in [*_items(networking.get("inbound")), *_items(networking.get("outbound"))]:
            if "tags" in listener:
                listener["tags"] = _sorted(listener["tags"])


def _items(value: object) -> list[dict[str, object]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, like Kuma's API."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def spec_equal(a: Resource, b: Resource) -> bool:
    """Same kind and same canonical spec (used by `apply` to report `unchanged`)."""
    return a.kind == b.kind and a.spec.SerializeToString(deterministic=True) == b.spec.SerializeToString(
        deterministic=True
    )
