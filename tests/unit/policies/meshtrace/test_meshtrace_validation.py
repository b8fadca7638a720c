"""MeshTrace validation: Kuma's validator tests (kuma_validator_cases.yaml, the source named there), the
schema layer's messages (reference kuma-meshtrace.md §2, kube-openapi's words), targetRef rules, defaults,
and that a rejected document writes nothing through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.errors import ValidationError, Violation
from controlplane.policies.meshtrace.api import validate_spec
from controlplane.resources.codec import decode_resource, encode_resource

CASES: dict[str, Any] = yaml.safe_load((Path(__file__).parent / "kuma_validator_cases.yaml").read_text())


@pytest.mark.parametrize("name", sorted(CASES["valid"]))
def test_kuma_valid_cases(name: str) -> None:
    assert validate_spec(CASES["valid"][name]) == []


@pytest.mark.parametrize("name", sorted(CASES["invalid"]))
def test_kuma_invalid_cases(name: str) -> None:
    case = CASES["invalid"][name]
    assert validate_spec(case["spec"]) == [Violation(v["field"], v["message"]) for v in case["violations"]]


def meshtrace(spec: Any, **envelope: Any) -> dict[str, Any]:
    return {"type": "MeshTrace", "name": "default", "mesh": "default", "spec": spec, **envelope}


def violations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        decode_resource(doc)
    return [(v.field, v.message) for v in caught.value.violations]


ZIPKIN = {"type": "Zipkin", "zipkin": {"url": "http://jaeger:9411/api/v2/spans"}}


@pytest.mark.parametrize(("spec", "expected"), [
    ({"default": {"backends": [{"type": "Foo"}]}},
     [("spec.default.backends[0].type", "in body should be one of [Zipkin Datadog OpenTelemetry]")]),
    ({"default": {"backends": [{"zipkin": {"url": "http://a:1/b"}}]}},
     [("spec.default.backends[0].type", "in body is required")]),
    ({"default": {"backends": [ZIPKIN, ZIPKIN]}}, [("spec.default.backends", "in body should have at most 1 items")]),
    ({"default": {"backends": [{"type": "Zipkin", "zipkin": {"url": "http://a:1/b", "apiVersion": "httpJsonV1"}}]}},
     [("spec.default.backends[0].zipkin.apiVersion", "in body should be one of [httpJson httpProto]")]),
    ({"default": {"backends": [{"type": "OpenTelemetry", "openTelemetry": {"endpoint": ""}}]}},
     [("spec.default.backends[0].openTelemetry.endpoint", "in body should be at least 1 chars long")]),
    ({"targetRef": {"kind": "Foo"}, "default": {"backends": []}},
     [("spec.targetRef.kind", ("in body should be one of [Mesh MeshSubset MeshGateway MeshService "
                               "MeshExternalService MeshMultiZoneService MeshServiceSubset MeshHTTPRoute Dataplane]"))]),
    ({"targetRef": {"kind": "MeshService", "name": 2}, "default": {"backends": []}},
     [("spec.targetRef.name", 'in body must be of type string: "number"')]),
    ({"default": {"backends": [{"type": "Zipkin", "zipkin": {}}]}},
     [("spec.default.backends[0].zipkin.url", "in body is required")]),
    ({"default": {"backends": [], "tags": [{"header": {}}]}},
     [("spec.default.tags[0].name", "in body is required"), ("spec.default.tags[0].header.name", "in body is required")]),
    ({"default": {"backends": [], "sampling": {"overall": 80.5}}},
     [("spec.default.sampling.overall", 'in body must be of type integer: "number"')]),
    ({"default": {"backends": []}, "bogus": 1}, [("spec.bogus", 'unknown field "bogus". Valid fields: targetRef, default')]),
], ids=["type-enum", "type-required", "max-items", "api-version-enum", "endpoint-min-length", "kind-enum",
        "name-type", "url-required", "tag-required", "float-sampling", "unknown-field"])
def test_schema_layer_messages(spec: Any, expected: list[tuple[str, str]]) -> None:
    assert violations(meshtrace(spec)) == expected


def test_schema_failure_hides_validate_violations() -> None:
    """Kuma runs validate() only when the schema passed: an enum error is reported alone."""
    spec = {"targetRef": {"kind": "Mesh", "name": "x"}, "default": {"backends": [{"type": "Foo"}]}}
    assert violations(meshtrace(spec)) == [
        ("spec.default.backends[0].type", "in body should be one of [Zipkin Datadog OpenTelemetry]")]


def test_spec_is_required_and_top_level_fields_are_strict() -> None:
    assert violations({"type": "MeshTrace", "name": "x", "mesh": "default"}) == [("spec", "in body is required")]
    assert violations(meshtrace({"default": {"backends": []}}, selectors=[])) == [
        ("selectors", 'unknown field "selectors". Valid fields: type, name, mesh, labels, spec')]


@pytest.mark.parametrize(("ref", "expected"), [
    ({"kind": "Mesh", "name": "x"}, [("spec.targetRef.name", "using name with kind Mesh is not yet supported")]),
    ({"kind": "Mesh", "tags": {"a": "b"}}, [("spec.targetRef.tags", "must not be set with kind Mesh")]),
    ({"kind": "Mesh", "proxyTypes": []}, [("spec.targetRef.proxyTypes", "must be undefined or have at least one element")]),
    ({"kind": "MeshService"}, [("spec.targetRef.name", "must be set with kind MeshService")]),
    ({"kind": "MeshServiceSubset", "name": "Web"}, [("spec.targetRef.name", (
        "invalid characters: must consist of lower case alphanumeric characters, '-', '.' and '_'."))]),
    ({"kind": "MeshSubset", "tags": {"region": "*"}}, [('spec.targetRef.tags["region"]', (
        "tag value must consist of alphanumeric characters, dots, dashes and underscores"))]),
    ({"kind": "MeshSubset", "tags": {"": "x"}}, [("spec.targetRef.tags", "tag name must be non-empty")]),
    ({"kind": "MeshSubset", "tags": {"a": ""}}, [('spec.targetRef.tags["a"]', "tag value must be non-empty")]),
    ({"kind": "Dataplane", "name": "a", "labels": {"k": "v"}},
     [("spec.targetRef.labels", "either labels or name and namespace must be specified")]),
    ({"kind": "Dataplane", "sectionName": "http"}, [("spec.targetRef.sectionName", "can only be used with inbound policies")]),
    ({"kind": "MeshExternalService", "name": "x"}, [("spec.targetRef.kind", "value is not supported")]),
    ({"kind": "MeshServiceSubset", "name": "web", "tags": {"version": "*"}}, []),
], ids=["mesh-name", "mesh-tags", "proxy-types-empty", "service-name-required", "name-chars", "subset-star",
        "subset-empty-key", "subset-empty-value", "labels-and-name", "section-name", "unsupported-kind",
        "service-subset-star-ok"])
def test_target_ref_rules(ref: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    spec = {"targetRef": ref, "default": {"backends": []}}
    if expected:
        assert violations(meshtrace(spec)) == expected
    else:
        decode_resource(meshtrace(spec))


def test_defaults_are_applied_and_shown_in_kumas_order() -> None:
    doc = meshtrace({"default": {"backends": [ZIPKIN], "sampling": {"random": "60.1", "overall": 80}},
                     "targetRef": {"kind": "Mesh"}})
    encoded = encode_resource(decode_resource(doc))
    assert encoded["spec"] == {"targetRef": {"kind": "Mesh"}, "default": {
        "backends": [{"type": "Zipkin", "zipkin": {"url": "http://jaeger:9411/api/v2/spans", "traceId128bit": False,
                                                    "apiVersion": "httpJson", "sharedSpanContext": True}}],
        "sampling": {"overall": 80, "random": "60.1"}}}
    assert doc["spec"]["default"]["backends"][0]["zipkin"] == {"url": "http://jaeger:9411/api/v2/spans"}  # untouched


def test_deprecated_kinds_warn_as_kuma() -> None:
    from controlplane.policies.meshtrace.api import MESH_TRACE

    resource = decode_resource(meshtrace({"targetRef": {"kind": "MeshSubset", "tags": {"a": "b"}},
                                          "default": {"backends": []}}))
    assert MESH_TRACE.warnings(resource.spec, resource) == [
        "MeshSubset value for 'targetRef.kind' is deprecated, use Dataplane with labels instead"]
