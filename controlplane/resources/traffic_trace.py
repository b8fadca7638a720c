"""TrafficTrace: short-form normalisation, validation and the "backend not found" warning.

Kuma validates only selectors (reference kuma-tracing.md §2.2) and accepts a backend name the mesh does not
have, because the mesh may gain it later. We keep that, but say so: `traffic_trace_warnings` produces the
warning the API and `apply` show.
"""

from __future__ import annotations

from controlplane.errors import Violation
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.paths import field, index
from controlplane.resources.tags import validate_selector


def normalize_traffic_trace(doc: dict[str, object]) -> list[Violation]:
    """`backend: x` directly under the resource (the docs' form) becomes `conf.backend: x`."""
    if "backend" not in doc:
        return []
    backend = doc.pop("backend")
    conf = doc.get("conf")
    if conf is None:
        doc["conf"] = {"backend": backend}
        return []
    if isinstance(conf, dict):
        if "backend" in conf:
            return [Violation("backend", "is also set in conf.backend; set it in one place")]
        conf["backend"] = backend
    return []


def validate_traffic_trace(spec: mesh_pb2.TrafficTrace) -> list[Violation]:
    if not spec.selectors:
        return [Violation("selectors", "must have at least one element")]
    violations: list[Violation] = []
    for i, selector in enumerate(spec.selectors):
        violations.extend(validate_selector(dict(selector.match), field(index("selectors", i), "match")))
    return violations


def traffic_trace_warnings(spec: mesh_pb2.TrafficTrace, mesh: mesh_pb2.Mesh) -> list[str]:
    """Warnings for a TrafficTrace that is valid but will not trace anything as the mesh stands now."""
    names = [b.name for b in mesh.tracing.backends]
    backend = spec.conf.backend
    if backend and backend not in names:
        known = ", ".join(names) if names else "none"
        return [
            (
                f'tracing backend "{backend}" is not defined in the mesh (defined: {known}); '
                "proxies selected by this TrafficTrace will not be traced until it is added"
            )
        ]
    if not backend and not mesh.tracing.default_backend:
        return [
            (
                "no backend is named and the mesh has no defaultBackend; "
                "proxies selected by this TrafficTrace will not be traced"
            )
        ]
    return []
