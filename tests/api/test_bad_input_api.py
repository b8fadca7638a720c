"""Bad input through the HTTP API: Kuma's 4xx bodies, every violation listed, and the store left untouched.

Each case is one request against a store seeded with the docs' zipkin Mesh and TrafficTrace. The store's
whole content (every kind, timestamps included) must be identical before and after, which is what
"bad input never corrupts state" means in practice. Every validation message the validators can produce
(Mesh, TrafficTrace, Dataplane and the envelope) is sent through the API at least once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from api_helpers import Api

from controlplane.api.app import DEFAULT_MAX_BODY

MESH = "/meshes/default"
TT = "/meshes/default/traffic-traces"
DP = "/meshes/default/dataplanes"
NOT_VALID = "Resource is not valid"
CREATE = "Could not create a resource"
PROCESS = "Could not process a resource"
TAG_CHARS = "consist of alphanumeric characters, dots, dashes, slashes and underscores"
PORT_RANGE = "port must be in the range [1, 65535]"
OVERLAP = "serviceAddress and servicePort has to differ from address and port"
TAG_VALUE_CHARS = "tag value must consist of alphanumeric characters, dots, dashes and underscores"
BAD_CHARS = "invalid characters. Valid characters are numbers, lowercase latin letters and"
BAD_ADDRESS = "address has to be valid IP address"
SEED_MESH = {"type": "Mesh", "name": "default", "tracing": {
    "defaultBackend": "jaeger-collector",
    "backends": [{"name": "jaeger-collector", "type": "zipkin", "sampling": 100.0,
                  "url": "http://my-jaeger-collector:9411/api/v2/spans"}],
}}
SEED_TT = {"type": "TrafficTrace", "name": "trace-all-traffic", "mesh": "default",
           "selectors": [{"match": {"kuma.io/service": "*"}}], "backend": "jaeger-collector"}


class Matches(str):
    """A string that equals any string fully matching it as a regex (for messages from Python's json)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and re.fullmatch(str(self), other) is not None

    __hash__ = str.__hash__


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: object = None
    raw: bytes | None = None
    status: int = 400
    expected: dict[str, Any] | None = None


def invalid(title: str, *causes: tuple[str, str], details: str = NOT_VALID) -> dict[str, Any]:
    return {"title": title, "details": details, "causes": [{"field": f, "message": m} for f, m in causes]}


def mesh(name: str, *backends: dict[str, Any], **tracing: Any) -> dict[str, Any]:
    return {"type": "Mesh", "name": name, "tracing": {"backends": list(backends), **tracing}}


def tt(name: str, **spec: Any) -> dict[str, Any]:
    return {"type": "TrafficTrace", "mesh": "default", "name": name, **spec}


def dp(name: str, networking: Any) -> dict[str, Any]:
    return {"type": "Dataplane", "mesh": "default", "name": name, "networking": networking}


def zipkin(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "zipkin", "conf": {"url": url, **extra}}


def backend_path(i: int, rest: str) -> str:
    return f"tracing.backends[{i}].{rest}"


SYNTAX_CASES = [
    Case("malformed-json", "/meshes/x", raw=b'{"type": "Mesh",', expected={
        "title": PROCESS, "details": Matches(r"invalid JSON: .*line 1 column \d+.*")}),
    Case("not-utf8", "/meshes/x", raw=b'{"type": "\xff"}', expected={
        "title": PROCESS, "details": Matches(r"invalid JSON: .*")}),
    Case("empty-body", "/meshes/x", raw=b"", expected={"title": PROCESS, "details": Matches(r"invalid JSON: .*")}),
    Case("nested-too-deep", "/meshes/x", raw=b"[" * 100_000,
         expected={"title": PROCESS, "details": Matches(r"invalid JSON: maximum recursion depth exceeded.*")}),
    Case("json-array", "/meshes/x", [SEED_MESH],
         expected=invalid(CREATE, ("", "a resource must be a mapping, got a list"))),
    Case("json-string", "/meshes/x", "Mesh", expected=invalid(CREATE, ("", "a resource must be a mapping, got a string"))),
    Case("too-large", "/meshes/x", raw=b'{"type": "Mesh", "pad": "' + b"x" * DEFAULT_MAX_BODY + b'"}',
         status=413, expected={"title": "Request body too large",
                               "details": f"request body is larger than the limit of {DEFAULT_MAX_BODY} bytes"}),
    Case("unknown-route-kind", "/meshes/default/circuit-breakers/x", {"type": "CircuitBreaker"},
         status=404, expected={"title": "Not Found", "details": "404: Not Found"}),
]
URL_CASES = [
    Case("name-mismatch", f"{MESH}-2", {"type": "Mesh", "name": "default"},
         expected=invalid(PROCESS, ("name", "name from the URL has to be the same as in body"))),
    Case("unknown-type-in-body", "/meshes/x", {"type": "Foo", "name": "x"},
         expected=invalid(PROCESS, ("type", "type from the URL has to be the same as in body"))),
    Case("type-mesh-name-mismatch", f"{TT}/t", {"type": "Mesh", "name": "u", "mesh": "other"},
         expected=invalid(PROCESS, ("type", "type from the URL has to be the same as in body"),
                          ("name", "name from the URL has to be the same as in body"),
                          ("mesh", "mesh from the URL has to be the same as in body"))),
    Case("mesh-not-found", "/meshes/ghost/traffic-traces/t",
         {"type": "TrafficTrace", "mesh": "ghost", "name": "t", "selectors": [{"match": {"a": "b"}}]},
         expected=invalid(CREATE, ("mesh", "mesh of name ghost is not found"), details="Mesh is not found")),
]
SCHEMA_CASES = [
    Case("unknown-top-level-field", "/meshes/x", {"type": "Mesh", "name": "x", "tracng": {}},
         expected=invalid(CREATE, ("tracng", 'unknown field "tracng". Valid fields: type, name, labels, tracing'))),
    Case("unknown-traffic-trace-field", f"{TT}/t", tt("t", selectors=[{"match": {"a": "b"}}], backnd="x"),
         expected=invalid(CREATE, ("backnd", 'unknown field "backnd". Valid fields: type, name, mesh, labels, selectors, conf'))),
    Case("unknown-zipkin-conf-field", "/meshes/x",
         mesh("x", {"name": "z", "type": "zipkin", "conf": {"urll": "http://a:9411/api/v2/spans"}}),
         expected=invalid(CREATE, (backend_path(0, "config.urll"),
                                   'unknown field "urll". Valid fields: url, traceId128bit, apiVersion, sharedSpanContext'),
                          (backend_path(0, "config.url"), "cannot be empty"))),  # Kuma's: it ignores urll
    Case("unknown-backend-field", "/meshes/x",
         mesh("x", {"name": "z", "type": "zipkin", "urll": "http://a:9411/api/v2/spans"}),
         expected=invalid(CREATE, (backend_path(0, "urll"), 'unknown field "urll". Valid fields: name, sampling, type, conf'))),
    Case("wrong-types-mesh", "/meshes/x",
         mesh("x", {"name": "z", "type": "zipkin", "sampling": "abc", "conf": "http://a:1/x"}, defaultBackend=7),
         expected=invalid(CREATE, (backend_path(0, "sampling"), "must be a number"),
                          (backend_path(0, "conf"), "must be an object"),
                          ("tracing.defaultBackend", "must be a string"))),
    Case("wrong-types-datadog-conf", "/meshes/x",
         # One bad key per backend: keys inside a conf Struct come back in map order, not document order.
         mesh("x", {"name": "d", "type": "datadog", "conf": {"address": "a", "port": "eighty"}},
              {"name": "e", "type": "datadog", "conf": {"address": "a", "port": 1, "splitService": "yes"}}),
         expected=invalid(CREATE, (backend_path(0, "config.port"), "must be an integer in the range [0, 4294967295]"),
                          (backend_path(1, "config.splitService"), "must be a boolean"))),
    Case("backends-not-a-list", "/meshes/x", {"type": "Mesh", "name": "x", "tracing": {"backends": {"name": "z"}}},
         expected=invalid(CREATE, ("tracing.backends", "must be a list"))),
    Case("selectors-not-a-list", f"{TT}/t", tt("t", selectors={"match": {"a": "b"}}),
         expected=invalid(CREATE, ("selectors", "must be a list"))),
    Case("field-set-twice", f"{DP}/d", dp("d", {"address": "10.0.0.1", "inbound": [
        {"port": 1, "servicePort": 2, "service_port": 3, "tags": {"kuma.io/service": "a"}}]}),
         expected=invalid(CREATE, ("networking.inbound[0].servicePort",
                                   'is set twice (as "servicePort" and "service_port")'))),
    Case("wrong-types-dataplane", f"{DP}/d", dp("d", {"address": 10, "inbound": [{"port": "80.5", "tags": []}]}),
         expected=invalid(CREATE, ("networking.address", "must be a string"),
                          ("networking.inbound[0].port", "must be an integer in the range [0, 4294967295]"),
                          ("networking.inbound[0].tags", "must be an object"))),
]
MESH_RULE_CASES = [
    Case("mesh-backend-rules", "/meshes/x", mesh(
        "x",
        {"name": "", "type": "zipkin", "sampling": 101, "conf": {"url": "ftp://x:1/p", "apiVersion": "v9"}},
        {"name": "z", "type": "jaeger"},
        {"name": "z", "type": "zipkin", "conf": {}},
        defaultBackend="nope",
    ), expected=invalid(
        CREATE,
        (backend_path(0, "name"), "cannot be empty"),
        (backend_path(0, "sampling"), "has to be in [0.0 - 100.0] range"),
        (backend_path(0, "config.apiVersion"), "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto"),
        (backend_path(0, "config.url"), 'scheme has to be "http" or "https"'),
        (backend_path(1, "type"), 'unknown backend type. Available backends: "zipkin", "datadog"'),
        (backend_path(2, "config.url"), "cannot be empty"),
        (backend_path(2, "name"), '"z" name is already used for another backend'),
        ("tracing.defaultBackend", "has to be set to one of the tracing backend in mesh"),
    )),
    Case("mesh-zipkin-url-rules", "/meshes/x", mesh(
        "x",
        zipkin("no-port", "http://collector/api/v2/spans"),
        zipkin("no-path", "http://collector:9411"),
        zipkin("no-scheme", "not-a-url"),
        zipkin("bad-host", "http://bad_host:9411/api/v2/spans"),
        {"name": "twice", "type": "zipkin", "url": "http://a:1/x", "conf": {"url": "http://a:1/x"}},
    ), expected=invalid(
        CREATE,
        (backend_path(4, "url"), "is also set in conf.url; set it in one place"),
        (backend_path(0, "config.url"), "port has to be explicitly specified"),
        (backend_path(1, "config.url"),
         "has to include the collector path, e.g. http://jaeger-collector:9411/api/v2/spans"),
        (backend_path(2, "config.url"), "invalid URL"),
        (backend_path(3, "config.url"), "invalid URL"),
    )),
    Case("mesh-datadog-rules", MESH, mesh(
        "default",
        {"name": "d1", "type": "datadog", "conf": {"address": "", "port": 0}},
        {"name": "d2", "type": "datadog", "conf": {"address": "not a host!", "port": 70000}},
    ), expected=invalid(
        "Could not update a resource",
        (backend_path(0, "config.address"), "cannot be empty"),
        (backend_path(0, "config.port"), PORT_RANGE),
        (backend_path(1, "config.address"), "has to be a valid IP address or domain name"),
        (backend_path(1, "config.port"), PORT_RANGE),
    )),
]
TRAFFIC_TRACE_RULE_CASES = [
    Case("traffic-trace-no-selectors", f"{TT}/t", tt("t", selectors=[]),
         expected=invalid(CREATE, ("selectors", "must have at least one element"))),
    Case("traffic-trace-selector-rules", f"{TT}/t", tt("t", selectors=[
        {"match": {}},
        {"match": {"": "x", "bad key!": "v", "kuma.io/service": "", "ok": "*", "version": "bad value!"}},
    ]), expected=invalid(
        CREATE,
        ("selectors[0].match", "must have at least one tag"),
        ("selectors[1].match", "tag name must be non-empty"),
        ('selectors[1].match["bad key!"]', f"tag name must {TAG_CHARS}"),
        ('selectors[1].match["kuma.io/service"]', "tag value must be non-empty"),
        ('selectors[1].match["version"]', f'tag value must {TAG_CHARS} or be "*"'),
    )),
    Case("traffic-trace-backend-twice", f"{TT}/trace-all-traffic",
         tt("trace-all-traffic", selectors=[{"match": {"a": "b"}}], backend="a", conf={"backend": "b"}),
         expected=invalid("Could not update a resource", ("backend", "is also set in conf.backend; set it in one place"))),
]
DATAPLANE_RULE_CASES = [
    Case("dataplane-no-networking", f"{DP}/d", {"type": "Dataplane", "mesh": "default", "name": "d"},
         expected=invalid(CREATE, ("networking", "must be defined"))),
    Case("dataplane-empty-networking", f"{DP}/d", dp("d", {"address": "", "inbound": []}),
         expected=invalid(CREATE, ("networking", "has to contain at least one inbound interface or gateway"),
                          ("networking.address", "address can't be empty"))),
    Case("dataplane-rules", f"{DP}/d", dp("d", {
        "address": "0.0.0.0",
        "inbound": [
            {"port": 0, "servicePort": 70000, "address": "bad host!", "serviceAddress": "::",
             "tags": {"kuma.io/protocol": "smtp", "bad key!": "v"}},
            {"port": 8080, "tags": {"kuma.io/service": "web"}},
            {"port": 8080, "tags": {"kuma.io/service": "web2", "version": ""}},
        ],
        "outbound": [{"port": 0, "address": "bad host!", "tags": {}}],
    }), expected=invalid(
        CREATE,
        ("networking.address", "must not be 0.0.0.0 or ::"),
        ("networking.inbound[0].port", PORT_RANGE),
        ("networking.inbound[0].servicePort", PORT_RANGE),
        ("networking.inbound[0].serviceAddress", "must not be 0.0.0.0 or ::"),
        ("networking.inbound[0].address", BAD_ADDRESS),
        ('networking.inbound[0].tags["kuma.io/protocol"]',
         'tag "kuma.io/protocol" has an invalid value "smtp". Allowed values: grpc, http, http2, kafka, tcp'),
        ('networking.inbound[0].tags["bad key!"]', f"tag name must {TAG_CHARS}"),
        ('networking.inbound[0].tags["kuma.io/service"]', "tag has to exist"),
        ('networking.inbound[2].tags["version"]', "tag value must be non-empty"),
        ("networking.inbound[2]", "0.0.0.0:8080 is already used by networking.inbound[1]"),
        ("networking.outbound[0].port", PORT_RANGE),
        ("networking.outbound[0].address", BAD_ADDRESS),
        ("networking.outbound[0].tags", 'mandatory tag "kuma.io/service" is missing'),
    )),
    Case("dataplane-bad-address", f"{DP}/d", dp("d", {
        "address": "not a host!", "inbound": [{"port": 1, "tags": {"kuma.io/service": "web"}}],
    }), expected=invalid(CREATE, ("networking.address", BAD_ADDRESS))),
    Case("dataplane-host-names-and-overlap", f"{DP}/d", dp("d", {
        "address": "web.local",
        "inbound": [{"port": 1, "address": "web.local", "serviceAddress": "web.local", "tags": {"kuma.io/service": "a/b"}},
                    {"port": 2, "serviceAddress": "10.0.0.1", "servicePort": 2, "address": "10.0.0.1",
                     "tags": {"kuma.io/service": "b"}}],
    }), expected=invalid(
        CREATE,
        ("networking.address", BAD_ADDRESS),
        ("networking.inbound[0].serviceAddress", "serviceAddress has to be valid IP address"),
        ("networking.inbound[0].serviceAddress", OVERLAP),
        ("networking.inbound[0].address", BAD_ADDRESS),
        ("networking.inbound[0].serviceAddress", OVERLAP),
        ('networking.inbound[0].tags["kuma.io/service"]', TAG_VALUE_CHARS),
        ("networking.inbound[1].serviceAddress", OVERLAP),
    )),
]
# A null anywhere (a YAML key with no value): Kuma's reading and messages, never a 500 (issue 11 §4).
NULL_CASES = [
    Case("null-tag-value", f"{DP}/d", dp("d", {"address": "10.0.0.1", "inbound": [
        {"port": 1, "tags": {"kuma.io/service": None}}], "outbound": [{"port": 2, "tags": {"kuma.io/service": None}}]}),
         expected=invalid(CREATE, ('networking.inbound[0].tags["kuma.io/service"]', "tag value must be non-empty"),
                          ('networking.outbound[0].tags["kuma.io/service"]', "tag value must be non-empty"))),
    Case("null-selector", f"{TT}/t", tt("t", selectors=[None]),
         expected=invalid(CREATE, ("selectors[0].match", "must have at least one tag"))),
    Case("null-inbound", f"{DP}/d", dp("d", {"address": "10.0.0.1", "inbound": [None]}),
         expected=invalid(CREATE, ("networking.inbound[0].port", PORT_RANGE),
                          ('networking.inbound[0].tags["kuma.io/service"]', "tag has to exist"))),
    Case("null-backend", "/meshes/x", mesh("x", None),
         expected=invalid(CREATE, (backend_path(0, "name"), "cannot be empty"),
                          (backend_path(0, "type"), 'unknown backend type. Available backends: "zipkin", "datadog"'))),
    Case("null-sampling", "/meshes/x", mesh("x", {**zipkin("z", "http://a:1/x"), "sampling": None}),
         expected=invalid(CREATE, (backend_path(0, "sampling"), "cannot be null: give it a value or remove it"))),
]
ENVELOPE_CASES = [
    Case("name-characters", "/meshes/Bad.Mesh", {"type": "Mesh", "name": "Bad.Mesh"}, expected=invalid(
        CREATE, ("name", f"{BAD_CHARS} '-', '_' symbols."))),  # a mesh name has no dots, as in `mesh:`
    Case("mesh-characters-and-spec", "/meshes/bad.mesh/traffic-traces/t",
         {"type": "TrafficTrace", "mesh": "bad.mesh", "name": "t"}, expected=invalid(
             CREATE,
             ("mesh", f"{BAD_CHARS} '-', '_' symbols."),
             ("selectors", "must have at least one element"),
         )),
    Case("name-too-long", "/meshes/" + "a" * 254, {}, expected=invalid(
        CREATE, ("name", "must be at most 253 characters long"))),
]
CASES = [*SYNTAX_CASES, *URL_CASES, *SCHEMA_CASES, *MESH_RULE_CASES, *TRAFFIC_TRACE_RULE_CASES,
         *DATAPLANE_RULE_CASES, *NULL_CASES, *ENVELOPE_CASES]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_is_rejected_and_changes_nothing(api: Api, case: Case) -> None:
    """The whole error body is Kuma's (every violation listed) and the store content is byte-for-byte the same."""
    for path, body in ((MESH, SEED_MESH), (f"{TT}/trace-all-traffic", SEED_TT)):
        assert (await api.put(path, body)).status == 201
    before = await api.snapshot()
    for dry_run in ("", "?dryRun=true"):
        reply = await api.put(case.path + dry_run, case.body, raw=case.raw)
        assert (reply.status, reply.body) == (case.status, case.expected)
    assert await api.snapshot() == before


async def test_deeply_nested_conf_is_a_400(api: Api) -> None:
    """A conf nested beyond protobuf's parse depth is a client error, not a 500."""
    conf: dict[str, Any] = {"url": "http://a:1/x"}
    for _ in range(200):
        conf = {"a": conf}
    reply = await api.put("/meshes/x", mesh("x", {"name": "z", "type": "zipkin", "conf": conf}))
    assert reply.status == 400
    assert reply.body["causes"] == [
        {"field": "tracing.backends[0].conf", "message": "is nested deeper than 32 levels"}
    ]
    assert all(items == [] for items in (await api.snapshot()).values())
