"""The stores' fast spec decoding gives exactly what `json_format.Parse` gives: the same message for every
stored spec of the golden corpora, and the same message or the same failure for the edge cases a damaged
or hand-edited row could hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import load_resources
from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.registry import KINDS
from controlplane.resources.spec_json import parse_spec

GOLDEN = Path(__file__).parents[2] / "golden"
CORPUS = sorted(GOLDEN.rglob("*.input.yaml"))


def reference(text: str, spec_type: type[Message]) -> Message | str:
    try:
        return json_format.Parse(text, spec_type())
    except json_format.ParseError as exc:
        return f"ParseError: {exc}"


def fast(text: str, spec_type: type[Message]) -> Message | str:
    try:
        return parse_spec(text, spec_type)
    except json_format.ParseError as exc:
        return f"ParseError: {exc}"


@pytest.mark.parametrize("path", CORPUS, ids=[str(p.relative_to(GOLDEN)) for p in CORPUS])
def test_every_golden_spec_decodes_as_the_reference_does(path: Path) -> None:
    resources = load_resources(path)
    assert resources
    for resource in resources:
        text = json_format.MessageToJson(resource.spec, sort_keys=True, indent=None)  # what the stores write
        spec_type = type(resource.spec)
        decoded = parse_spec(text, spec_type)
        assert decoded == reference(text, spec_type) == resource.spec
        assert decoded.SerializeToString(deterministic=True) == resource.spec.SerializeToString(deterministic=True)


INBOUND = {"port": 8080, "tags": {"kuma.io/service": "web"}}
EDGE_CASES = {
    "empty": {},
    "proto names": {"networking": {"address": "10.0.0.1", "inbound": [{"port": 1, "service_port": 2, "tags": {}}]}},
    "both names": {"networking": {"inbound": [{"servicePort": 1, "service_port": 2}]}},
    "unknown field": {"networking": {"address": "10.0.0.1", "color": "red"}},
    "null field": {"networking": {"address": None, "inbound": [INBOUND]}},
    "null message": {"networking": None},
    "null in a list": {"networking": {"inbound": [None]}},
    "null tag value": {"networking": {"inbound": [{"port": 1, "tags": {"a": None}}]}},
    "port as string": {"networking": {"inbound": [{"port": "8080"}]}},
    "port as float": {"networking": {"inbound": [{"port": 8080.0}]}},
    "port as bool": {"networking": {"inbound": [{"port": True}]}},
    "negative port": {"networking": {"inbound": [{"port": -1}]}},
    "port too big": {"networking": {"inbound": [{"port": 2**32}]}},
    "tag value number": {"networking": {"inbound": [{"port": 1, "tags": {"a": 1}}]}},
    "address number": {"networking": {"address": 10}},
    "inbound not a list": {"networking": {"inbound": INBOUND}},
    "tags a list": {"networking": {"inbound": [{"port": 1, "tags": ["a"]}]}},
    "top level list": [INBOUND],
    "networking a string": {"networking": "10.0.0.1"},
}


@pytest.mark.parametrize("document", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_edge_cases_decode_or_fail_as_the_reference_does(document: object) -> None:
    text = json.dumps(document)
    assert fast(text, DATAPLANE.spec_type) == reference(text, DATAPLANE.spec_type)


@pytest.mark.parametrize("text", ["", "{", "nul", '{"networking": {"address": "a"}} trailing'])
def test_text_that_is_not_json_fails_as_the_reference_does(text: str) -> None:
    assert fast(text, DATAPLANE.spec_type) == reference(text, DATAPLANE.spec_type)


def test_kinds_with_well_known_types_use_the_reference_and_still_decode() -> None:
    for kind in KINDS:
        text = json_format.MessageToJson(kind.new_spec(), sort_keys=True, indent=None)
        assert parse_spec(text, kind.spec_type) == kind.new_spec()
