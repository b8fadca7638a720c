"""MeshTrace plugin: every MeshTrace that targets a proxy, merged as Kuma's rule engine merges them.

Kuma 2.11 (reference kuma-meshtrace.md §3–4; `pkg/plugins/policies/core/rules/merge`, `meshtrace/plugin`):
the policies whose top-level targetRef selects the proxy (policies/targetref.py) are sorted by targetRef
precedence then name, and their `default`s are merged as JSON merge patches (RFC 7396) in that order:
objects per key, lists replaced whole. `backends` is required in every MeshTrace, so the one that decides
last picks the backend; `backends: []` turns tracing off. The merged conf becomes an `EffectiveTracing`:
collector cluster `meshtrace:<zipkin|datadog|opentelemetry>`, the three sampling percentages (each only when
set), custom tags in order, and spans reported under the proxy's identifying service on every listener.
A proxy no MeshTrace targets gets a decision that does not target it, so TrafficTrace (later in
`PLUGINS`) still applies there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from controlplane.policies.meshtrace.api import MESH_TRACE, percent, spec_of
from controlplane.policies.plugin import Decision, Prepared
from controlplane.policies.targetref import merge_order, selects
from controlplane.resources.kind import Kind
from controlplane.resources.model import Resource
from controlplane.resources.urls import parse_request_uri
from controlplane.tracing.backend import (
    Backend,
    BackendType,
    CollectorConf,
    CustomTag,
    EffectiveTracing,
    Sampling,
)
from controlplane.tracing.datadog import DATADOG, DatadogConf
from controlplane.tracing.opentelemetry import OPENTELEMETRY, OpenTelemetryConf
from controlplane.tracing.zipkin import ZIPKIN, CollectorUrl, ZipkinConf

NO_POLICY: Final = "no_matching_policy"
BACKENDS_EMPTY: Final = "backends_empty"
BACKEND_INVALID: Final = "backend_invalid"


@dataclass(frozen=True, slots=True)
class _Policy:
    name: str
    target_ref: Mapping[str, Any] | None
    default: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class MeshTraces(Prepared):
    """A mesh's MeshTraces by name, each spec read once. `_merged` keeps, for each combination of matched
    policies, the decision it makes: a pure function of that combination within this mesh context, and in a
    mesh-wide change every proxy has the same one, so merging and parsing happens once, not per proxy."""

    policies: tuple[_Policy, ...]
    # matched policies' names, in merge order -> the decision they make together
    _merged: dict[tuple[str, ...], Decision] = field(default_factory=dict, compare=False, repr=False)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge per key (null deletes), everything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class MeshTracePlugin:
    kind: Final[Kind] = MESH_TRACE

    def prepare(self, mesh: Resource, policies: Sequence[Resource]) -> MeshTraces:
        parsed = []
        for policy in sorted(policies, key=lambda p: p.name):
            spec = spec_of(policy.spec)
            ref = spec.get("targetRef")
            parsed.append(_Policy(policy.name, ref if isinstance(ref, Mapping) else None,
                                  spec.get("default") or {}))
        return MeshTraces(tuple(parsed))

    def by_tags(self, prepared: Prepared) -> bool:
        """Every targetRef kind but `Dataplane` (name, labels) selects by inbound tags."""
        assert isinstance(prepared, MeshTraces)
        return not any((p.target_ref or {}).get("kind") == "Dataplane" for p in prepared.policies)

    def decide(self, prepared: Prepared, dataplane: Resource) -> Decision:
        assert isinstance(prepared, MeshTraces)
        matched = merge_order([p for p in prepared.policies if selects(p.target_ref, dataplane)],
                              lambda p: (p.name, p.target_ref))
        names = tuple(p.name for p in matched)
        found = prepared._merged.get(names)
        if found is None:
            found = prepared._merged[names] = _decision(matched)
        return found


def _decision(matched: Sequence[_Policy]) -> Decision:
    names = tuple(p.name for p in matched)
    if not matched:
        return Decision(MESH_TRACE.name, (), None, NO_POLICY, "no MeshTrace targets this dataplane")
    conf: Any = {}
    for policy in matched:
        conf = merge_patch(conf, policy.default)
    merged = MappingProxyType(conf)
    backends = conf.get("backends") or []
    if not backends:
        return Decision(MESH_TRACE.name, names, None, BACKENDS_EMPTY,
                        f"MeshTrace {names[-1]} sets `backends: []`: tracing is off", conf=merged)
    backend = _backend(backends[0])
    if backend is None:
        return Decision(MESH_TRACE.name, names, None, BACKEND_INVALID,
                        "the merged MeshTrace backend is not valid any more; fix the MeshTrace", conf=merged)
    tracing = EffectiveTracing(backend, _sampling(conf.get("sampling") or {}), _tags(conf.get("tags") or []),
                               service_per_inbound=False)
    return Decision(MESH_TRACE.name, names, tracing, backend=backend.name, conf=merged)


def _backend(backend: Mapping[str, Any]) -> Backend | None:
    """The backend of a (validated) merged conf, as Kuma's plugin reads it: the first non-empty of
    zipkin, datadog, openTelemetry, whatever `type` says (§1.1)."""
    conf: CollectorConf | None = None
    kind: BackendType
    if isinstance(backend.get("zipkin"), Mapping):
        kind, conf = ZIPKIN, _zipkin(backend["zipkin"])
    elif isinstance(backend.get("datadog"), Mapping):
        kind, conf = DATADOG, _datadog(backend["datadog"])
    elif isinstance(backend.get("openTelemetry"), Mapping):
        try:
            kind, conf = OPENTELEMETRY, OpenTelemetryConf.from_endpoint(str(backend["openTelemetry"]["endpoint"]))
        except (KeyError, ValueError):
            return None
    else:
        return None
    if conf is None:
        return None
    return Backend(kind, conf, f"meshtrace:{kind.type_name}", kind.type_name)


def _zipkin(settings: Mapping[str, Any]) -> ZipkinConf | None:
    uri = parse_request_uri(str(settings.get("url", "")))
    if uri is None or not uri.host:
        return None
    secure = uri.scheme == "https"
    # Kuma sends a URL without a port to port 0, where nothing listens; the scheme's port is what the
    # URL means (README, "Differences from Kuma").
    port = int(uri.port) if uri.port else (443 if secure else 80)
    url = CollectorUrl(authority=uri.authority, host=uri.host, port=port, path=uri.path, secure=secure)
    return ZipkinConf(url, bool(settings.get("traceId128bit", False)), str(settings.get("apiVersion", "httpJson")),
                      bool(settings.get("sharedSpanContext", True)))


def _datadog(settings: Mapping[str, Any]) -> DatadogConf | None:
    uri = parse_request_uri(str(settings.get("url", "")))
    if uri is None or not uri.host or not uri.port.isdigit():
        return None
    return DatadogConf(uri.host, int(uri.port), bool(settings.get("splitService", False)))


def _sampling(sampling: Mapping[str, Any]) -> Sampling:
    def value(name: str) -> float | None:
        number: Decimal | None = percent(sampling[name]) if sampling.get(name) is not None else None
        return float(number) if number is not None else None

    return Sampling(overall=value("overall"), client=value("client"), random=value("random"))


def _tags(tags: Sequence[Mapping[str, Any]]) -> tuple[CustomTag, ...]:
    out = []
    for tag in tags:
        header = tag.get("header")
        if isinstance(header, Mapping):
            out.append(CustomTag(str(tag.get("name", "")), header=str(header.get("name", "")),
                                 default=str(header.get("default", ""))))
        else:
            out.append(CustomTag(str(tag.get("name", "")), literal=str(tag.get("literal", ""))))
    return tuple(out)


PLUGIN: Final = MeshTracePlugin()
