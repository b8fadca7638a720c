"""Mesh: the kind descriptor, short-form normalisation and validation of the tracing section.

Validation follows Kuma's `mesh_validator.go` (reference kuma-tracing.md §1.2) message for message, field
path for field path, including its use of `config` (not `conf`) for paths inside a backend's conf. What a
backend's conf means is its backend module's business (controlplane/tracing/): this module checks the
envelope (name, sampling, type, duplicates, defaultBackend) and hands each conf to the backend type.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.errors import Violation
from controlplane.resources import columns
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.kind import Column, Document, Item, Kind
from controlplane.resources.paths import field, index
from controlplane.resources.schema import json_field_names, json_nulls, unreported_nulls
from controlplane.tracing.registry import MESH_BACKEND_TYPES, unknown_type_message


def normalize_mesh(doc: Document) -> list[Violation]:
    """Move short-form backend keys (`url` right under a zipkin backend, as the docs write it) into `conf`.

    Mutates `doc` in place. A key set both ways is an error rather than a silent pick.
    """
    tracing = doc.get("tracing")
    backends = tracing.get("backends") if isinstance(tracing, dict) else None
    if not isinstance(backends, list):
        return []
    violations: list[Violation] = []
    own = set(json_field_names(mesh_pb2.TracingBackend.DESCRIPTOR)) | {"conf"}
    for i, backend in enumerate(backends):
        if not isinstance(backend, dict):
            continue
        backend_type = MESH_BACKEND_TYPES.get(str(backend.get("type", "")))
        if backend_type is None:
            continue
        short = [k for k in backend if k not in own and k in backend_type.mesh_conf_fields]
        if not short:
            continue
        conf = backend.get("conf")
        if conf is None:
            conf = backend["conf"] = {}
        if not isinstance(conf, dict):
            continue
        for k in short:
            value = backend.pop(k)
            if k in conf:
                violations.append(Violation(field(index("tracing.backends", i), k),
                                            f"is also set in conf.{k}; set it in one place"))
            else:
                conf[k] = value
    return violations


def validate_mesh(mesh: Message) -> list[Violation]:
    """Every violation of Kuma's tracing rules, in Kuma's order (per backend, then defaultBackend)."""
    assert isinstance(mesh, mesh_pb2.Mesh)
    tracing = mesh.tracing
    violations: list[Violation] = []
    seen: set[str] = set()
    for i, backend in enumerate(tracing.backends):
        path = index("tracing.backends", i)
        violations.extend(_validate_backend(backend, path))
        if backend.name and backend.name in seen:
            violations.append(
                Violation(field(path, "name"), f'"{backend.name}" name is already used for another backend')
            )
        seen.add(backend.name)
    if tracing.default_backend and tracing.default_backend not in seen:
        violations.append(
            Violation("tracing.defaultBackend", "has to be set to one of the tracing backend in mesh")
        )
    return violations


def _validate_backend(backend: mesh_pb2.TracingBackend, path: str) -> list[Violation]:
    violations: list[Violation] = []
    if not backend.name:
        violations.append(Violation(field(path, "name"), "cannot be empty"))
    if backend.HasField("sampling") and not 0.0 <= backend.sampling.value <= 100.0:
        violations.append(Violation(field(path, "sampling"), "has to be in [0.0 - 100.0] range"))
    backend_type = MESH_BACKEND_TYPES.get(backend.type)
    if backend_type is None:
        violations.append(Violation(field(path, "type"), unknown_type_message()))
    else:
        conf, config_path = conf_dict(backend), field(path, "config")
        found = backend_type.parse_mesh_conf(conf, config_path)[1]
        # Inside the Struct a null is a JSON value; the backend reads it as unset, as Kuma does (schema.py).
        violations.extend([*found, *unreported_nulls(json_nulls(conf, config_path), found)])
    return violations


def conf_dict(backend: mesh_pb2.TracingBackend) -> dict[str, object]:
    """A backend's `conf` as plain JSON values ({} when absent)."""
    return json_format.MessageToDict(backend.conf) if backend.HasField("conf") else {}


def canonicalize_mesh(spec: Document) -> None:
    """Struct confs come out in storage order, which differs between stores: sort them so an export is
    byte-identical whichever store it came from. Struct keeps numbers as doubles, so integral ones are
    printed as `port: 8126`, not `port: 8126.0`."""
    tracing = spec.get("tracing")
    backends = tracing.get("backends") if isinstance(tracing, dict) else None
    for backend in backends if isinstance(backends, list) else []:
        conf = backend.get("conf") if isinstance(backend, dict) else None
        if isinstance(conf, dict):
            backend["conf"] = {k: int(v) if isinstance(v, float) and v.is_integer() else v
                               for k, v in sorted(conf.items())}


def tracing_column(item: Item, now: datetime) -> str:
    """`zipkin/jaeger-collector, datadog/dd` or `off`, like kumactl's TRACING column."""
    tracing = item.get("tracing")
    backends = tracing.get("backends", []) if isinstance(tracing, dict) else []
    names = [f"{b.get('type')}/{b.get('name')}" for b in backends if isinstance(b, dict)]
    return ", ".join(names) if names else "off"


MESH: Final = Kind(
    name="Mesh",
    ws_path="meshes",
    singular="mesh",
    plural="meshes",
    mesh_scoped=False,
    spec_type=mesh_pb2.Mesh,
    validate=validate_mesh,
    columns=(columns.NAME, Column("TRACING", tracing_column), columns.AGE),
    normalize=normalize_mesh,
    canonicalize=canonicalize_mesh,
)
