"""Hostile input, property-based (hypothesis), through the real API server and the YAML codec (issue 7, item 7).

Properties, for any body hypothesis makes up (random JSON shaped like our resources, raw bytes, random names
in the URL):
- never a 5xx;
- never a partial write: on any 4xx the store's whole content is unchanged;
- every 4xx is a Kuma body (`title`, `details`, and `causes` of `{field, message}` whose message is never
  empty and whose field is a path, or empty only for whole-document errors such as invalid JSON);
- for YAML text: `load_documents` + `decode_resource` either succeed or raise ValidationError, nothing else.
Plus the limits, pinned: document count, alias expansion (billion laughs), nesting depth, name lengths and
characters in bodies and URLs. The figures (examples tried) are printed with `-s`.
"""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import quote

import pytest
import yaml
from api_helpers import Api, Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.errors import ValidationError
from controlplane.resources.codec import decode_resource
from controlplane.resources.yaml_loader import MAX_DEPTH, MAX_DOCUMENTS, load_documents

FIELDS: Final = ["type", "name", "mesh", "tracing", "backends", "defaultBackend", "sampling", "conf", "url",
                 "backend", "selectors", "match", "networking", "address", "inbound", "outbound", "port",
                 "servicePort", "tags", "kuma.io/service", "kuma.io/protocol", "serviceAddress", "gateway"]
TYPES: Final = ["Mesh", "TrafficTrace", "Dataplane"]
PATHS: Final = ["/meshes/default", "/meshes/default/traffic-traces/t1", "/meshes/default/dataplanes/dp-1"]
FUZZ: Final = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
           | st.sampled_from(["default", "zipkin", "datadog", "zipkin-1", "*", "http", "127.0.0.1", "web"]))
keys = st.sampled_from(FIELDS) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(keys, inner, max_size=5), max_leaves=30)
documents = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES) | scalars, "name": st.sampled_from(["default", "t1", "dp-1"]) | scalars},
    optional={"mesh": st.just("default") | scalars},
).flatmap(lambda envelope: st.dictionaries(keys, json_values, max_size=6).map(lambda rest: {**rest, **envelope}))
examples_tried: dict[str, int] = {}


def _count(name: str) -> None:
    examples_tried[name] = examples_tried.get(name, 0) + 1


def assert_kuma_error(reply: Reply) -> None:
    assert 400 <= reply.status < 500, reply
    body = reply.body
    assert isinstance(body, dict) and set(body) <= {"title", "details", "causes"}, body
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["details"], str) and body["details"]
    for cause in body.get("causes", []):
        assert set(cause) == {"field", "message"} and isinstance(cause["field"], str), cause
        assert isinstance(cause["message"], str) and cause["message"], cause


async def put_and_check(api: Api, path: str, body: object = None, raw: bytes | None = None) -> Reply:
    before = await api.snapshot()
    reply = await api.put(path, body, raw=raw)
    assert reply.status < 500, reply
    if reply.status >= 400:
        assert_kuma_error(reply)
        assert await api.snapshot() == before, "a refused request changed the store"
    return reply


async def seed(api: Api) -> None:
    reply = await api.put("/meshes/default", {"type": "Mesh", "name": "default"})
    assert reply.status in (200, 201)


@pytest.mark.parametrize("api", ["memory", "sqlite"], indirect=True)
@FUZZ
@given(path=st.sampled_from(PATHS), body=documents)
async def test_random_documents(api: Api, path: str, body: dict[str, Any]) -> None:
    _count("documents")
    await seed(api)
    await put_and_check(api, path, body)


@FUZZ
@given(path=st.sampled_from(PATHS), body=json_values)
async def test_random_json_values(api: Api, path: str, body: object) -> None:
    _count("json values")
    await put_and_check(api, path, raw=json.dumps(body).encode())


@FUZZ
@given(path=st.sampled_from(PATHS), raw=st.binary(max_size=200))
async def test_random_bytes(api: Api, path: str, raw: bytes) -> None:
    _count("bytes")
    await put_and_check(api, path, raw=raw)


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
@FUZZ
@given(mesh=st.text(min_size=1, max_size=300), name=st.text(min_size=1, max_size=300))
async def test_random_names_in_url_and_body(api: Api, mesh: str, name: str) -> None:
    """Names reach SQL and Envoy resource names only after validation: anything odd is a 400 naming it."""
    _count("names")
    await seed(api)
    body = {"type": "TrafficTrace", "mesh": mesh, "name": name,
            "selectors": [{"match": {"kuma.io/service": "*"}}]}
    path = f"/meshes/{quote(mesh, safe='')}/traffic-traces/{quote(name, safe='')}"
    reply = await put_and_check(api, path, body)
    if reply.status >= 400 and reply.status != 404:
        fields = {c["field"] for c in reply.body.get("causes", [])}
        assert fields & {"mesh", "name"} or reply.body["details"], reply


@settings(max_examples=500, deadline=None)
@given(docs=st.lists(documents, max_size=4), cut=st.integers(min_value=0, max_value=2000),
       junk=st.sampled_from(["", "&a", "*a", "*b", "[", "{", ": :", "!!python/object:os.system", "\t", "---", "<<: *a"]))
def test_random_yaml_texts(docs: list[dict[str, Any]], cut: int, junk: str) -> None:
    _count("yaml texts")
    text = yaml.safe_dump_all(docs)
    text = text[:cut] + junk + text[cut:]
    try:
        loaded = load_documents(text)
    except ValidationError as exc:
        assert exc.violations and all(v.message for v in exc.violations)
        return
    for doc in loaded:
        try:
            decode_resource(doc)
        except ValidationError as exc:
            assert exc.violations and all(v.message for v in exc.violations)


def billion_laughs(levels: int = 10) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("text", "message"), [
    (billion_laughs(), "expands to more than 100000 values"),
    ("type: Mesh\nname: &n [*n]\n", "recursive document"),
    ("a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n", f"nested deeper than {MAX_DEPTH} levels"),
    ("a: " + "[" * 100_000 + "\n", f"nested deeper than {MAX_DEPTH} levels"),
    ("type: Mesh\nname: x\n---\n" * (MAX_DOCUMENTS + 1), f"more than {MAX_DOCUMENTS} documents"),
    ("!!python/object/apply:os.system ['true']\n", "could not determine a constructor"),
], ids=["billion-laughs", "recursive-alias", "deep", "very-deep-unclosed", "too-many-documents", "python-tag"])
@pytest.mark.timeout(60)  # expanding the billion laughs would not finish (nor fit in memory): a guard, not a timing
def test_yaml_limits(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_documents(text)
    assert message in str(caught.value)
    assert caught.value.details == "Invalid YAML"


def test_yaml_anchors_within_limits_still_work() -> None:
    text = "type: Dataplane\nmesh: default\nname: dp-1\nnetworking:\n  address: 127.0.0.1\n  inbound:\n" \
           "  - {port: 1, servicePort: 2, tags: &t {kuma.io/service: web}}\n  - {port: 3, servicePort: 4, tags: *t}\n"
    (doc,) = load_documents(text)
    assert decode_resource(doc).name == "dp-1"
    assert len(load_documents("type: Mesh\nname: x\n---\n" * MAX_DOCUMENTS)) == MAX_DOCUMENTS


@pytest.mark.parametrize(("path", "raw", "fragment"), [
    ("/meshes/default", b"[" * 100_000, "invalid JSON"),
    ("/meshes/default", json.dumps({"type": "Mesh", "name": "default", "tracing": {"backends": [
        {"name": "z", "type": "zipkin", "conf": json.loads("{\"a\":" * 40 + "1" + "}" * 40)}]}}).encode(),
     "nested deeper than 32 levels"),
    ("/meshes/" + "m" * 254, json.dumps({"type": "Mesh", "name": "m" * 254}).encode(), "at most 253 characters"),
    ("/meshes/default/traffic-traces/x%27%3B%20DROP%20TABLE%20resources%3B--",
     json.dumps({"type": "TrafficTrace", "mesh": "default", "name": "x'; DROP TABLE resources;--"}).encode(),
     "invalid characters"),
    ("/meshes/default/dataplanes/dp-1", b"\xff\xfe\x00", "invalid JSON"),
], ids=["deep-json", "deep-struct", "long-name", "sql-in-name", "not-utf8"])
async def test_pinned_limits(api: Api, path: str, raw: bytes, fragment: str) -> None:
    await seed(api)
    reply = await put_and_check(api, path, raw=raw)
    assert reply.status == 400, reply
    assert fragment in json.dumps(reply.body), reply.body


_DD = b'{"type":"Mesh","name":"default","tracing":{"backends":[{"name":"z","type":"datadog",'


@pytest.mark.parametrize(("raw", "field"), [
    (_DD + b'"conf":{"address":"a","port":NaN}}]}}', "tracing.backends[0].conf"),
    (_DD + b'"conf":{"address":"a","port":1,"x":' + b"9" * 400 + b"}}]}}", "tracing.backends[0].conf"),
    (_DD + b'"sampling":Infinity,"conf":{"address":"a","port":1}}]}}', "tracing.backends[0].sampling"),
    (_DD + b'"sampling":NaN,"conf":{"address":"a","port":1}}]}}', "tracing.backends[0].sampling"),
    (_DD + b'"sampling":' + b"9" * 400 + b',"conf":{"address":"a","port":1}}]}}', "tracing.backends[0].sampling"),
    ((b'{"type":"Mesh","name":"default","tracing":{"backends":[{"name":"\\ud800","type":"zipkin",'
      b'"conf":{"url":"http://a:1/x"}}]}}'), "tracing.backends[0].name"),
    (_DD + b'"conf":{"address":"a","port":1,"q":"\\udc00"}}]}}', "tracing.backends[0].conf"),
], ids=["nan-in-conf", "huge-int-in-conf", "infinite-sampling", "nan-sampling", "huge-int-sampling",
        "lone-surrogate-string", "lone-surrogate-in-conf"])
async def test_non_json_numbers_and_strings_are_a_400(api: Api, raw: bytes, field: str) -> None:
    """Python's json accepts NaN/Infinity, ints beyond a double and lone surrogates; none may be a 500."""
    await seed(api)
    reply = await put_and_check(api, "/meshes/default", raw=raw)
    assert reply.status == 400, reply
    assert [c["field"] for c in reply.body["causes"]] == [field]


@pytest.mark.parametrize("value", ["2020-01-01", "!!binary aGVsbG8=", "!!set {a, b}", "{1: 2}", "[.nan]"])
def test_yaml_values_a_struct_cannot_hold_are_a_validation_error(value: str) -> None:
    text = ("type: Mesh\nname: m\ntracing:\n  backends:\n  - name: z\n    type: zipkin\n    conf:\n"
            f"      url: http://a:9411/api\n      extra: {value}\n")
    with pytest.raises(ValidationError) as caught:
        decode_resource(load_documents(text)[0])
    assert [v.field for v in caught.value.violations] == ["tracing.backends[0].conf"]


def test_report_examples_tried() -> None:
    """Runs last in this module: prints how many fuzz cases each property saw (`pytest -s`)."""
    print(f"hypothesis examples tried: {examples_tried} (total {sum(examples_tried.values())})")
