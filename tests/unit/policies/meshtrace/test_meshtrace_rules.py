"""MeshTrace targeting and merging, Kuma's rules: which policies select a proxy, the order they merge in,
and the merged conf (Kuma's rules tests `pkg/plugins/policies/core/rules/testdata/rules/single/{06,07}` at
release-2.11 3431ee0e, and the reference's worked example, kuma-meshtrace.md §3.4)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from builders import dataplane, inbound

from controlplane.policies.meshtrace.plugin import PLUGIN, merge_patch
from controlplane.policies.targetref import selects
from controlplane.resources.codec import decode_resource
from controlplane.resources.model import Resource

WEB = dataplane("web-eu-1", inbounds=[inbound(service="web", tags={"region": "eu", "version": "v1"})])
API = dataplane("api-us-1", inbounds=[inbound(service="api", tags={"region": "us"})])


def meshtrace(name: str, ref: dict[str, Any] | None, default: dict[str, Any]) -> Resource:
    spec: dict[str, Any] = {"default": default}
    if ref is not None:
        spec["targetRef"] = ref
    return decode_resource({"type": "MeshTrace", "mesh": "default", "name": name, "spec": spec})


def zipkin(host: str) -> list[dict[str, Any]]:
    return [{"type": "Zipkin", "zipkin": {"url": f"http://{host}:9411/api/v2/spans"}}]


def decide(policies: list[Resource], proxy: Resource = WEB) -> Any:
    return PLUGIN.decide(PLUGIN.prepare(decode_resource({"type": "Mesh", "name": "default"}), policies), proxy)


@pytest.mark.parametrize(("ref", "web", "api"), [
    (None, True, True),
    ({"kind": "Mesh"}, True, True),
    ({"kind": "Mesh", "proxyTypes": ["Gateway"]}, False, False),
    ({"kind": "Mesh", "proxyTypes": ["Sidecar"]}, True, True),
    ({"kind": "MeshSubset", "tags": {"region": "eu"}}, True, False),
    ({"kind": "MeshService", "name": "api"}, False, True),
    ({"kind": "MeshServiceSubset", "name": "web", "tags": {"version": "*"}}, True, False),
    ({"kind": "MeshServiceSubset", "name": "api", "tags": {"version": "*"}}, False, False),
    ({"kind": "Dataplane"}, True, True),
    ({"kind": "Dataplane", "name": "api-us-1"}, False, True),
    ({"kind": "Dataplane", "labels": {"team": "core"}}, True, False),
    ({"kind": "Dataplane", "labels": {"kuma.io/mesh": "default"}}, True, True),
    ({"kind": "MeshGateway", "name": "edge"}, False, False),
], ids=["omitted", "mesh", "gateways-only", "sidecars", "subset-inbound-tags", "service", "service-subset",
        "service-subset-other", "dataplane-all", "dataplane-name", "dataplane-labels", "computed-mesh-label",
        "gateway"])
def test_selection(ref: dict[str, Any] | None, web: bool, api: bool) -> None:
    labelled = replace(WEB, labels=MappingProxyType({"team": "core"}))
    assert (selects(ref, labelled), selects(ref, API)) == (web, api)


def test_kuma_rules_single_06_defaults_in_the_merged_conf() -> None:
    policy = meshtrace("mt-1", {"kind": "Mesh"}, {"tags": [{"name": "team", "literal": "core"}],
                                                  "backends": zipkin("jaeger-collector.mesh-observability")})
    decision = decide([policy])
    assert decision.matched == ("mt-1",)
    tracing = decision.tracing
    assert tracing is not None and tracing.backend.cluster == "meshtrace:zipkin"
    assert (tracing.backend.conf.trace_id_128bit, tracing.backend.conf.api_version,  # type: ignore[attr-defined]
            tracing.backend.conf.shared_span_context) == (False, "httpJson", True)  # type: ignore[attr-defined]
    assert [(t.tag, t.literal) for t in tracing.tags] == [("team", "core")]


def test_kuma_rules_single_07_the_more_specific_policy_overrides() -> None:
    mesh_wide = meshtrace("mt-1", {"kind": "Mesh"}, {"tags": [{"name": "team", "literal": "core"}],
                                                     "backends": zipkin("jaeger-collector.mesh-observability")})
    service = meshtrace("mt-2", {"kind": "MeshService", "name": "web"}, {
        "tags": [{"name": "team", "literal": "support"}],
        "backends": [{"type": "Datadog", "datadog": {"url": "http://ingest.datadoghq.eu:8126"}}]})
    decision = decide([service, mesh_wide])
    assert decision.matched == ("mt-1", "mt-2")
    assert decision.tracing is not None and decision.tracing.backend.cluster == "meshtrace:datadog"
    assert [(t.tag, t.literal) for t in decision.tracing.tags] == [("team", "support")]


def test_worked_example() -> None:
    policies = [
        meshtrace("mesh-wide", {"kind": "Mesh"}, {"backends": zipkin("zipkin.global"), "sampling": {"overall": 50},
                                                  "tags": [{"name": "team", "literal": "core"}]}),
        meshtrace("eu", {"kind": "MeshSubset", "tags": {"region": "eu"}}, {
            "backends": [{"type": "Zipkin", "zipkin": {"url": "http://zipkin.eu:9411/api/v2/spans",
                                                       "traceId128bit": True}}],
            "sampling": {"random": "12.5"}}),
        meshtrace("web-eu-1-otel", {"kind": "Dataplane", "name": "web-eu-1"}, {
            "backends": [{"type": "OpenTelemetry", "openTelemetry": {"endpoint": "otel.eu:4317"}}],
            "sampling": {"client": 5}, "tags": [{"name": "env", "header": {"name": "x-env", "default": "prod"}}]}),
    ]
    web = decide(policies, WEB)
    assert web.matched == ("mesh-wide", "web-eu-1-otel", "eu")
    assert web.tracing is not None
    assert web.tracing.backend.conf.url.host == "zipkin.eu"  # type: ignore[attr-defined]
    assert (web.tracing.sampling.overall, web.tracing.sampling.client, web.tracing.sampling.random) == (50, 5, 12.5)
    assert [(t.tag, t.header, t.default) for t in web.tracing.tags] == [("env", "x-env", "prod")]
    api = decide(policies, API)
    assert api.matched == ("mesh-wide",)
    assert api.tracing is not None and api.tracing.backend.conf.url.host == "zipkin.global"  # type: ignore[attr-defined]


def test_dataplane_by_labels_ranks_below_by_name_and_names_break_ties_descending() -> None:
    by_labels = meshtrace("a-labels", {"kind": "Dataplane", "labels": {"kuma.io/mesh": "default"}},
                          {"backends": zipkin("labels")})
    by_name = meshtrace("z-name", {"kind": "Dataplane", "name": "web-eu-1"}, {"backends": zipkin("name")})
    assert decide([by_name, by_labels]).matched == ("a-labels", "z-name")
    first, second = (meshtrace(n, {"kind": "Mesh"}, {"backends": zipkin(n)}) for n in ("aaa", "bbb"))
    decision = decide([first, second])
    assert decision.matched == ("bbb", "aaa")  # the alphabetically first decides last
    assert decision.tracing is not None and decision.tracing.backend.conf.url.host == "aaa"  # type: ignore[attr-defined]


def test_empty_backends_turn_tracing_off_but_still_target() -> None:
    decision = decide([meshtrace("off", None, {"backends": []})])
    assert (decision.targets, decision.tracing, decision.reason) == (True, None, "backends_empty")


def test_no_policy_does_not_target() -> None:
    decision = decide([meshtrace("api-only", {"kind": "MeshService", "name": "api"}, {"backends": []})])
    assert (decision.targets, decision.reason) == (False, "no_matching_policy")


@pytest.mark.parametrize(("target", "patch", "expected"), [
    ({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}}, {"a": 1, "b": {"c": 2, "d": 3}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": 1, "b": 2}, {"a": None}, {"b": 2}),
    ({"a": {"b": 1}}, {"a": 5}, {"a": 5}),
], ids=["objects-merge", "lists-replace", "null-deletes", "scalar-replaces-object"])
def test_merge_patch_is_rfc_7396(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected
