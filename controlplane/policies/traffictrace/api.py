"""TrafficTrace resource: the kind descriptor, short-form normalisation, validation and warnings.

Kuma validates only selectors (reference kuma-tracing.md §2.2) and accepts a backend name the mesh does not
have, because the mesh may gain it later. We keep that, but say so: `traffic_trace_warnings` produces the
warning the API and `apply` show. Resource layer: imports nothing but controlplane.resources.
"""

from __future__ import annotations

from typing import Final

from google.protobuf.message import Message

from controlplane.errors import Violation
from controlplane.resources import columns
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.kind import Document, Kind
from controlplane.resources.model import Resource
from controlplane.resources.paths import field, index
from controlplane.resources.schema import NULL_MESSAGE
from controlplane.resources.tags import validate_selector


def normalize_traffic_trace(doc: Document) -> list[Violation]:
    """`backend: x` directly under the resource (the docs' form) becomes `conf.backend: x`."""
    if "backend" not in doc:
        return []
    backend = doc.pop("backend")
    if backend is None:  # named where it was written, not at conf.backend where it would have gone
        return [Violation("backend", NULL_MESSAGE)]
    conf = doc.get("conf")
    if conf is None:
        doc["conf"] = {"backend": backend}
        return []
    if isinstance(conf, dict):
        if "backend" in conf:
            return [Violation("backend", "is also set in conf.backend; set it in one place")]
        conf["backend"] = backend
    return []


def validate_traffic_trace(spec: Message) -> list[Violation]:
    assert isinstance(spec, mesh_pb2.TrafficTrace)
    if not spec.selectors:
        return [Violation("selectors", "must have at least one element")]
    violations: list[Violation] = []
    for i, selector in enumerate(spec.selectors):
        violations.extend(validate_selector(dict(selector.match), field(index("selectors", i), "match")))
    return violations


def traffic_trace_warnings(spec: Message, mesh: Resource) -> list[str]:
    """Warnings for a TrafficTrace that is valid but will not trace anything as the mesh stands now."""
    assert isinstance(spec, mesh_pb2.TrafficTrace) and isinstance(mesh.spec, mesh_pb2.Mesh)
    names = [b.name for b in mesh.spec.tracing.backends]
    backend = spec.conf.backend
    if backend and backend not in names:
        known = ", ".join(names) if names else "none"
        return [
            (
                f'tracing backend "{backend}" is not defined in the mesh (defined: {known}); '
                "proxies selected by this TrafficTrace will not be traced until it is added"
            )
        ]
    if not backend and not mesh.spec.tracing.default_backend:
        return [
            (
                "no backend is named and the mesh has no defaultBackend; "
                "proxies selected by this TrafficTrace will not be traced"
            )
        ]
    return []


def canonicalize_traffic_trace(spec: Document) -> None:
    """Selector matches come out in storage order, which differs between stores; sort them."""
    selectors = spec.get("selectors")
    for selector in selectors if isinstance(selectors, list) else []:
        if isinstance(selector, dict) and isinstance(selector.get("match"), dict):
            selector["match"] = dict(sorted(selector["match"].items()))


TRAFFIC_TRACE: Final = Kind(
    name="TrafficTrace",
    ws_path="traffic-traces",
    singular="traffic-trace",
    plural="traffic-traces",
    mesh_scoped=True,
    spec_type=mesh_pb2.TrafficTrace,
    validate=validate_traffic_trace,
    columns=(columns.MESH, columns.NAME, columns.AGE),
    normalize=normalize_traffic_trace,
    canonicalize=canonicalize_traffic_trace,
    warnings=traffic_trace_warnings,
    policy=True,
)
