"""Kuma's document form of a resource <-> the typed `Resource`.

A document is a mapping with the envelope (`type`, `name`, `mesh` for mesh-scoped kinds, `labels`, and, on
output, `creationTime`/`modificationTime`) and the spec fields inline, exactly as kumactl and Kuma's HTTP API write
them. Decoding is all-or-nothing: every problem is collected into one ValidationError (Kuma field paths and
messages) and nothing half-parsed escapes. Short forms from the docs are normalised first, so output is
always canonical.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.errors import ValidationError, Violation
from controlplane.resources.kind import Kind
from controlplane.resources.labels import decode_labels, output_labels
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.resources.registry import KINDS
from controlplane.resources.schema import json_field_names, read_message, unreported_nulls

ENVELOPE_OUT: Final = ("creationTime", "modificationTime")
MAX_NAME_LENGTH: Final = 253
_NAME: Final = re.compile(r"^[0-9a-z-_.]*\Z")
_MESH_NAME: Final = re.compile(r"^[0-9a-z-_]*\Z")


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
    labels, label_violations = decode_labels(body.pop("labels", None), mesh if isinstance(mesh, str) else "",
                                             kind.mesh_scoped)
    violations.extend(label_violations)
    schema = kind.schema(body)
    if schema:
        raise ValidationError([*violations, *_with_envelope_fields(schema, kind, kind.new_spec())])
    violations.extend(kind.normalize(body))
    spec = kind.new_spec()
    reading = read_message(body, spec.DESCRIPTOR, "")
    violations.extend(_with_envelope_fields(list(reading.violations), kind, spec))
    found: list[Violation] = []
    if not reading.violations:
        json_format.ParseDict(reading.value, spec)  # nulls read as Kuma reads them (schema.py)
        found = kind.validate(spec)
    violations.extend(found)
    violations.extend(unreported_nulls(reading.nulls, found))
    if violations:
        raise ValidationError(violations)
    return Resource(ResourceKey(kind, str(mesh), str(name)), spec, labels=labels)


def _decode_envelope(body: dict[object, object]) -> tuple[Kind | None, list[Violation]]:
    type_name = body.pop("type", None)
    if type_name is None or type_name == "":
        return None, [Violation("type", "cannot be empty")]
    try:
        kind = KINDS.by_type(str(type_name))
    except ValueError as exc:
        return None, [Violation("type", str(exc))]
    if kind is MESH:  # a mesh name is the node id's prefix up to the first '.': no dots (§4.2)
        return kind, validate_mesh_name(body.get("name"), "name")
    violations = validate_name(body.get("name"), "name", _NAME, "'-', '_', '.'")
    if kind.mesh_scoped:
        violations.extend(validate_name(body.get("mesh"), "mesh", _MESH_NAME, "'-', '_'"))
    return kind, violations


def _with_envelope_fields(violations: list[Violation], kind: Kind, spec: Message) -> list[Violation]:
    """Unknown top-level fields list the envelope fields too, so the hint shows everything a user may write."""
    envelope = ["type", "name", *(["mesh"] if kind.mesh_scoped else []), "labels"]
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
    """Kuma's representation: envelope first (`labels` after the times, with the computed `kuma.io/mesh`;
    omitted when empty, as Kuma's `omitempty`), then the canonical spec (camelCase, short forms expanded)."""
    out: dict[str, object] = {"type": resource.kind.value}
    if resource.kind.mesh_scoped:
        out["mesh"] = resource.mesh
    out["name"] = resource.name
    if resource.creation_time is not None:
        out["creationTime"] = format_time(resource.creation_time)
    if resource.modification_time is not None:
        out["modificationTime"] = format_time(resource.modification_time)
    labels = output_labels(resource.labels, resource.mesh, resource.kind.mesh_scoped)
    if labels:
        out["labels"] = labels
    spec = json_format.MessageToDict(resource.spec)
    resource.kind.canonicalize(spec)
    out.update(spec)
    return out


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, like Kuma's API."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def spec_equal(a: Resource, b: Resource) -> bool:
    """Same kind, same user labels and same canonical spec (used by `apply` to report `unchanged`; a change
    of labels alone is an update, since policies may select by them)."""
    return a.kind == b.kind and dict(a.labels) == dict(b.labels) and a.spec.SerializeToString(
        deterministic=True
    ) == b.spec.SerializeToString(deterministic=True)
