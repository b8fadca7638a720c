"""Every Kuma validation message (reference kuma-tracing.md §1.2, §2.2, §4.1), field path and exact text.

Each case feeds a whole document through the codec and compares the complete violation list, so an extra or
missing violation fails the test as surely as a changed message.
"""

from __future__ import annotations

import pytest
from google.protobuf import json_format

from controlplane.errors import ValidationError, Violation
from controlplane.resources.codec import decode_resource


def zipkin(url: object = "http://zipkin:9411/api/v2/spans", **extra: object) -> dict[str, object]:
    return {"name": "z", "type": "zipkin", "conf": {"url": url, **extra}}


def mesh(*backends: dict[str, object], default: str | None = None) -> dict[str, object]:
    tracing: dict[str, object] = {"backends": list(backends)}
    if default is not None:
        tracing["defaultBackend"] = default
    return {"type": "Mesh", "name": "m", "tracing": tracing}


def trace(selectors: object) -> dict[str, object]:
    return {"type": "TrafficTrace", "name": "t", "mesh": "m", "selectors": selectors}


def dataplane(networking: object) -> dict[str, object]:
    return {"type": "Dataplane", "name": "d", "mesh": "m", "networking": networking}


def inbound(tags: dict[str, str] | None = None, **extra: object) -> dict[str, object]:
    return {"port": 8080, "tags": {"kuma.io/service": "web"} if tags is None else tags, **extra}


B0 = "tracing.backends[0]"
CASES: list[tuple[str, dict[str, object], list[Violation]]] = [
    ("backend name empty", mesh({**zipkin(), "name": ""}), [Violation(f"{B0}.name", "cannot be empty")]),
    ("sampling below 0", mesh({**zipkin(), "sampling": -0.1}),
     [Violation(f"{B0}.sampling", "has to be in [0.0 - 100.0] range")]),
    ("sampling above 100", mesh({**zipkin(), "sampling": 100.1}),
     [Violation(f"{B0}.sampling", "has to be in [0.0 - 100.0] range")]),
    ("unknown backend type", mesh({"name": "x", "type": "jaeger"}),
     [Violation(f"{B0}.type", 'unknown backend type. Available backends: "zipkin", "datadog"')]),
    ("empty backend type", mesh({"name": "x"}),
     [Violation(f"{B0}.type", 'unknown backend type. Available backends: "zipkin", "datadog"')]),
    ("zipkin bad apiVersion", mesh(zipkin(apiVersion="grpc")),
     [Violation(f"{B0}.config.apiVersion", "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto")]),
    ("zipkin url empty", mesh(zipkin(url="")), [Violation(f"{B0}.config.url", "cannot be empty")]),
    ("zipkin conf absent", mesh({"name": "z", "type": "zipkin"}), [Violation(f"{B0}.config.url", "cannot be empty")]),
    ("zipkin apiVersion and url both reported", mesh(zipkin(url="", apiVersion="x")),
     [Violation(f"{B0}.config.apiVersion", "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto"),
      Violation(f"{B0}.config.url", "cannot be empty")]),
    ("zipkin invalid url", mesh(zipkin(url="invalid-url")), [Violation(f"{B0}.config.url", "invalid URL")]),
    ("zipkin url without port", mesh(zipkin(url="http://zipkin-us.local/v2/spans")),
     [Violation(f"{B0}.config.url", "port has to be explicitly specified")]),
    ("zipkin url without path (Envoy would reject)", mesh(zipkin(url="http://zipkin:9411")),
     [Violation(f"{B0}.config.url",
                "has to include the collector path, e.g. http://jaeger-collector:9411/api/v2/spans")]),
    ("zipkin url with unsupported scheme", mesh(zipkin(url="ftp://zipkin:21/spans")),
     [Violation(f"{B0}.config.url", 'scheme has to be "http" or "https"')]),
    ("zipkin conf typo", mesh(zipkin(urll="x")),
     [Violation(f"{B0}.config.urll",
                'unknown field "urll". Valid fields: url, traceId128bit, apiVersion, sharedSpanContext')]),
    ("zipkin conf wrong type", mesh(zipkin(traceId128bit="yes")),
     [Violation(f"{B0}.config.traceId128bit", "must be a boolean")]),
    ("datadog address empty", mesh({"name": "d", "type": "datadog", "conf": {"port": 8126}}),
     [Violation(f"{B0}.config.address", "cannot be empty")]),
    ("datadog port zero", mesh({"name": "d", "type": "datadog", "conf": {"address": "1.2.3.4"}}),
     [Violation(f"{B0}.config.port", "port must be in the range [1, 65535]")]),
    ("datadog port too big", mesh({"name": "d", "type": "datadog", "conf": {"address": "a", "port": 65536}}),
     [Violation(f"{B0}.config.port", "port must be in the range [1, 65535]")]),
    ("duplicate backend name", mesh(zipkin(), zipkin()),
     [Violation("tracing.backends[1].name", '"z" name is already used for another backend')]),
    ("default backend unknown", mesh(zipkin(), default="nope"),
     [Violation("tracing.defaultBackend", "has to be set to one of the tracing backend in mesh")]),
    ("all mesh violations collected", mesh({"name": "", "type": "x", "sampling": 200}, default="nope"),
     [Violation(f"{B0}.name", "cannot be empty"),
      Violation(f"{B0}.sampling", "has to be in [0.0 - 100.0] range"),
      Violation(f"{B0}.type", 'unknown backend type. Available backends: "zipkin", "datadog"'),
      Violation("tracing.defaultBackend", "has to be set to one of the tracing backend in mesh")]),
    ("no selectors", trace([]), [Violation("selectors", "must have at least one element")]),
    ("empty match", trace([{"match": {}}]), [Violation("selectors[0].match", "must have at least one tag")]),
    ("empty tag value", trace([{"match": {"kuma.io/service": ""}}]),
     [Violation('selectors[0].match["kuma.io/service"]', "tag value must be non-empty")]),
    ("empty tag name", trace([{"match": {"": "web"}}]),
     [Violation("selectors[0].match", "tag name must be non-empty")]),
    ("bad tag name", trace([{"match": {"kuma io": "web"}}]),
     [Violation('selectors[0].match["kuma io"]',
                "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores")]),
    ("bad tag value", trace([{"match": {"kuma.io/service": "web!"}}]),
     [Violation('selectors[0].match["kuma.io/service"]',
                'tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores or be "*"')]),
    ("multiple selectors", trace([{"match": {}}, {"match": {"a": "", "b": "c!"}}]),
     [Violation("selectors[0].match", "must have at least one tag"),
      Violation('selectors[1].match["a"]', "tag value must be non-empty"),
      Violation('selectors[1].match["b"]',
                'tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores or be "*"')]),
    ("networking missing", {"type": "Dataplane", "name": "d", "mesh": "m"},
     [Violation("networking", "must be defined")]),
    ("no inbound", dataplane({"address": "10.0.0.1"}),
     [Violation("networking", "has to contain at least one inbound interface or gateway")]),
    ("address empty", dataplane({"inbound": [inbound()]}),
     [Violation("networking.address", "address can't be empty")]),
    ("address invalid", dataplane({"address": "not an address", "inbound": [inbound()]}),
     [Violation("networking.address", "address has to be valid IP address")]),
    ("inbound without service", dataplane({"address": "10.0.0.1", "inbound": [inbound({"version": "v1"})]}),
     [Violation('networking.inbound[0].tags["kuma.io/service"]', "tag has to exist")]),
    ("inbound bad protocol",
     dataplane({"address": "10.0.0.1", "inbound": [inbound({"kuma.io/service": "web", "kuma.io/protocol": "udp"})]}),
     [Violation('networking.inbound[0].tags["kuma.io/protocol"]',
                'tag "kuma.io/protocol" has an invalid value "udp". Allowed values: grpc, http, http2, kafka, tcp')]),
    ("ports out of range",
     dataplane({"address": "10.0.0.1", "inbound": [inbound(port=0, servicePort=70000)],
                "outbound": [{"port": 70000, "tags": {"kuma.io/service": "b"}}]}),
     [Violation("networking.inbound[0].port", "port must be in the range [1, 65535]"),
      Violation("networking.inbound[0].servicePort", "port must be in the range [1, 65535]"),
      Violation("networking.outbound[0].port", "port must be in the range [1, 65535]")]),
    ("outbound without service", dataplane({"address": "10.0.0.1", "inbound": [inbound()],
                                            "outbound": [{"port": 10001, "tags": {}}]}),
     [Violation("networking.outbound[0].tags", 'mandatory tag "kuma.io/service" is missing')]),
    ("two inbounds on one address:port", dataplane({"address": "10.0.0.1", "inbound": [inbound(), inbound()]}),
     [Violation("networking.inbound[1]", "10.0.0.1:8080 is already used by networking.inbound[0]")]),
    ("name empty", {"type": "Mesh", "name": ""}, [Violation("name", "cannot be empty")]),
    ("mesh empty", {"type": "TrafficTrace", "name": "t", "selectors": [{"match": {"a": "b"}}]},
     [Violation("mesh", "cannot be empty")]),
    ("name with invalid characters", {"type": "Mesh", "name": "Default"},
     [Violation("name", "invalid characters. Valid characters are numbers, lowercase latin letters and "
                        "'-', '_' symbols.")]),
    ("mesh name with a dot (node id `<mesh>.<name>` splits on the first dot)", {"type": "Mesh", "name": "a.b"},
     [Violation("name", "invalid characters. Valid characters are numbers, lowercase latin letters and "
                        "'-', '_' symbols.")]),
    ("trailing newline in names and tags (Python's `$` matches before it, Go's does not)",
     {**trace([{"match": {"kuma.io/service\n": "web\n"}}]), "name": "t\n", "mesh": "m\n"},
     [Violation("name", "invalid characters. Valid characters are numbers, lowercase latin letters and "
                        "'-', '_', '.' symbols."),
      Violation("mesh", "invalid characters. Valid characters are numbers, lowercase latin letters and "
                        "'-', '_' symbols."),
      Violation('selectors[0].match["kuma.io/service\\n"]',
                "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores"),
      Violation('selectors[0].match["kuma.io/service\\n"]',
                "tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores "
                'or be "*"')]),
    ("address with trailing newline", dataplane({"address": "10.0.0.1\n", "inbound": [inbound()]}),
     [Violation("networking.address", "address has to be valid IP address")]),
    ("zipkin url with a control character (urlsplit drops it, Envoy would get it)",
     mesh(zipkin(url="http://zip\nkin:9411/api/v2/spans")), [Violation(f"{B0}.config.url", "invalid URL")]),
    ("NUL in a string (PostgreSQL jsonb refuses it)", mesh(zipkin(), default="z\x00"),
     [Violation("tracing.defaultBackend", "must be valid UTF-8 text without NUL characters")]),
    ("NUL in conf", mesh(zipkin(url="http://zipkin:9411/api\x00")),
     [Violation(f"{B0}.conf", "must hold only JSON values: string keys, finite numbers, booleans, null, lists, "
                              "objects and text without NUL characters")]),
]


@pytest.mark.parametrize(("document", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_violations(document: dict[str, object], expected: list[Violation]) -> None:
    with pytest.raises(ValidationError) as info:
        decode_resource(document)
    assert list(info.value.violations) == expected


VALID = [
    ("sampling 0 and 100 are in range", mesh({**zipkin(), "sampling": 0.0}, {**zipkin(), "name": "y", "sampling": 100})),
    ("empty backends", mesh()),
    ("empty defaultBackend with backends", mesh(zipkin(), default="")),
    ("any scheme with port and path", mesh(zipkin(url="https://zipkin:443/api/v2/spans"))),
    ("selector star", trace([{"match": {"kuma.io/service": "*"}}])),
    ("trace backend not in mesh is accepted", {**trace([{"match": {"a": "b"}}]), "conf": {"backend": "nope"}}),
]


@pytest.mark.parametrize("document", [v[1] for v in VALID], ids=[v[0] for v in VALID])
def test_valid(document: dict[str, object]) -> None:
    decode_resource(document)


NULL = "cannot be null: give it a value or remove it"
DP_OK: dict[str, object] = {"address": "10.0.0.1", "inbound": [inbound()]}
# A null is read as Kuma's parser reads it (jsonpb: unset field, empty list item, empty map value), so
# Kuma's validators report Kuma's violations; a null that reading would silently accept is `cannot be null`.
NULL_CASES: list[tuple[str, dict[str, object], list[Violation]]] = [
    ("key without value in inbound tags", dataplane({"address": "10.0.0.1", "inbound": [
        inbound({"kuma.io/service": None})]}),  # type: ignore[dict-item]
     [Violation('networking.inbound[0].tags["kuma.io/service"]', "tag value must be non-empty")]),
    ("null selector", trace([None]), [Violation("selectors[0].match", "must have at least one tag")]),
    ("null selector tag value", trace([{"match": {"kuma.io/service": None, "region": None}}]),
     [Violation('selectors[0].match["kuma.io/service"]', "tag value must be non-empty"),
      Violation('selectors[0].match["region"]', "tag value must be non-empty")]),
    ("null inbound", dataplane({"address": "10.0.0.1", "inbound": [None]}),
     [Violation("networking.inbound[0].port", "port must be in the range [1, 65535]"),
      Violation('networking.inbound[0].tags["kuma.io/service"]', "tag has to exist")]),
    ("null backend", mesh(None),  # type: ignore[arg-type]
     [Violation(f"{B0}.name", "cannot be empty"),
      Violation(f"{B0}.type", 'unknown backend type. Available backends: "zipkin", "datadog"')]),
    ("null outbound tag", dataplane({**DP_OK, "outbound": [{"port": 10001, "tags": {"kuma.io/service": None}}]}),
     [Violation('networking.outbound[0].tags["kuma.io/service"]', "tag value must be non-empty")]),
    ("null outbound tags", dataplane({**DP_OK, "outbound": [{"port": 10001, "tags": None}]}),
     [Violation("networking.outbound[0].tags", 'mandatory tag "kuma.io/service" is missing')]),
    ("null backend name (Kuma's `name:` case)", mesh({**zipkin(), "name": None}),
     [Violation(f"{B0}.name", "cannot be empty")]),
    ("null networking", dataplane(None), [Violation("networking", "must be defined")]),
    ("null conf url", mesh(zipkin(url=None)), [Violation(f"{B0}.config.url", "cannot be empty")]),
    ("null sampling: Kuma reads it as unset", mesh({**zipkin(), "sampling": None}),
     [Violation(f"{B0}.sampling", NULL)]),
    ("null conf key: Kuma reads it as unset", mesh(zipkin(traceId128bit=None)),
     [Violation(f"{B0}.config.traceId128bit", NULL)]),
    ("null defaultBackend and a null port, after Kuma's violations",
     {"type": "Mesh", "name": "m", "tracing": {"defaultBackend": None, "backends": [
         {"name": "d", "type": "datadog", "conf": {"address": "", "port": None}}]}},
     [Violation(f"{B0}.config.address", "cannot be empty"),
      Violation(f"{B0}.config.port", "port must be in the range [1, 65535]"),
      Violation("tracing.defaultBackend", NULL)]),
    ("null inbound list: Kuma's violation at networking, ours at the key",
     dataplane({"address": "10.0.0.1", "inbound": None}),
     [Violation("networking", "has to contain at least one inbound interface or gateway"),
      Violation("networking.inbound", NULL)]),
    ("null conf: Kuma's `config` violation does not cover the `conf` key", mesh({"name": "z", "type": "zipkin",
                                                                                "conf": None}),
     [Violation(f"{B0}.config.url", "cannot be empty"), Violation(f"{B0}.conf", NULL)]),
    ("null short-form backend is named where it was written", {**trace([{"match": {"a": "b"}}]), "backend": None},
     [Violation("backend", NULL)]),
    ("null inside a structural error is still reported", mesh({**zipkin(), "sampling": None, "bogus": 1}),
     [Violation(f"{B0}.bogus", 'unknown field "bogus". Valid fields: name, sampling, type, conf'),
      Violation(f"{B0}.sampling", NULL)]),
]
# protobuf's JSON mapping (and so Kuma) takes a number written as a string; nothing else changes type.
NUMBER_CASES: list[tuple[str, dict[str, object], list[Violation]]] = [
    ("sampling not a number", mesh({**zipkin(), "sampling": "fifty"}), [Violation(f"{B0}.sampling", "must be a number")]),
    ("sampling NaN (jsonpb takes it; Envoy cannot use it)", mesh({**zipkin(), "sampling": "NaN"}),
     [Violation(f"{B0}.sampling", "must be a number")]),
    ("sampling beyond a double", mesh({**zipkin(), "sampling": "1e999"}), [Violation(f"{B0}.sampling", "must be a number")]),
    ("sampling with Python-only syntax", mesh({**zipkin(), "sampling": "1_0"}),
     [Violation(f"{B0}.sampling", "must be a number")]),
    ("sampling string in range but above 100", mesh({**zipkin(), "sampling": "100.5"}),
     [Violation(f"{B0}.sampling", "has to be in [0.0 - 100.0] range")]),
    ("port string with a fraction", dataplane({"address": "10.0.0.1", "inbound": [inbound(port="8080.5")]}),
     [Violation("networking.inbound[0].port", "must be an integer in the range [0, 4294967295]")]),
    ("port string with an exponent", dataplane({"address": "10.0.0.1", "inbound": [inbound(port="8e3")]}),
     [Violation("networking.inbound[0].port", "must be an integer in the range [0, 4294967295]")]),
    ("port string negative", dataplane({"address": "10.0.0.1", "inbound": [inbound(port="-1")]}),
     [Violation("networking.inbound[0].port", "must be an integer in the range [0, 4294967295]")]),
    ("port string of 30 digits", dataplane({"address": "10.0.0.1", "inbound": [inbound(port="9" * 30)]}),
     [Violation("networking.inbound[0].port", "must be an integer in the range [0, 4294967295]")]),
    ("port string out of Kuma's range", dataplane({"address": "10.0.0.1", "inbound": [inbound(port="65536")]}),
     [Violation("networking.inbound[0].port", "port must be in the range [1, 65535]")]),
    ("datadog port string in conf", mesh({"name": "d", "type": "datadog", "conf": {"address": "a", "port": "0"}}),
     [Violation(f"{B0}.config.port", "port must be in the range [1, 65535]")]),
    ("bool written as a string stays an error", mesh(zipkin(traceId128bit="true")),
     [Violation(f"{B0}.config.traceId128bit", "must be a boolean")]),
    ("a field set under both its names", dataplane({"address": "10.0.0.1", "inbound": [
        inbound(servicePort=1, service_port=2)]}),
     [Violation("networking.inbound[0].servicePort", 'is set twice (as "servicePort" and "service_port")')]),
]


@pytest.mark.parametrize(("document", "expected"), [c[1:] for c in NULL_CASES + NUMBER_CASES],
                         ids=[c[0] for c in NULL_CASES + NUMBER_CASES])
def test_kuma_reading(document: dict[str, object], expected: list[Violation]) -> None:
    with pytest.raises(ValidationError) as info:
        decode_resource(document)
    assert list(info.value.violations) == expected


def test_numbers_written_as_strings_are_numbers() -> None:
    """`sampling: "50"`, `port: "8126"` (conf) and `port: "8080"` parse as Kuma's protojson parses them."""
    mesh_spec = decode_resource(mesh({**zipkin(), "sampling": "50"},
                                     {"name": "d", "type": "datadog", "conf": {"address": "a", "port": "8126"}})).spec
    assert json_format.MessageToDict(mesh_spec)["tracing"]["backends"] == [
        {"name": "z", "sampling": 50.0, "type": "zipkin", "conf": {"url": "http://zipkin:9411/api/v2/spans"}},
        {"name": "d", "type": "datadog", "conf": {"address": "a", "port": "8126"}},  # a Struct keeps what was written
    ]
    dp_spec = decode_resource(dataplane({"address": "10.0.0.1", "inbound": [inbound(port="8080", servicePort="0")]})).spec
    assert json_format.MessageToDict(dp_spec)["networking"]["inbound"] == [{"port": 8080, "tags": {"kuma.io/service": "web"}}]
