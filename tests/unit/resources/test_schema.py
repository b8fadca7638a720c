"""schema.py on its own: Kuma's reading of nulls (golang/protobuf jsonpb, as Kuma parses), which nulls are
reported, and numbers written as JSON strings."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from controlplane.errors import Violation
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.schema import (
    NULL_MESSAGE,
    Reading,
    check_message,
    check_scalar,
    json_nulls,
    read_message,
    unreported_nulls,
)

DATAPLANE = mesh_pb2.Dataplane.DESCRIPTOR


def test_nulls_are_read_as_jsonpb_reads_them() -> None:
    """A null field is unset, a null list item an empty element, a null map value the empty value."""
    document = {"networking": {"address": None, "inbound": [None, {"port": 1, "tags": {"a": None, "b": "c"}}],
                               "outbound": None}}
    assert read_message(document, DATAPLANE, "") == Reading(
        value={"networking": {"inbound": [{}, {"port": 1, "tags": {"a": "", "b": "c"}}]}},
        violations=(),
        nulls=("networking.address", "networking.inbound[0]", 'networking.inbound[1].tags["a"]', "networking.outbound"),
        rejected=frozenset(),
    )
    assert document["networking"]["inbound"][0] is None  # the input is not modified


def test_a_document_without_nulls_is_its_own_reading() -> None:
    """No copy for the common case (an import of 100k Dataplanes reads each document once)."""
    document = {"networking": {"address": "10.0.0.1", "inbound": [{"port": 1, "tags": {"a": "b"}}]}}
    assert read_message(document, DATAPLANE, "").value is document


def test_check_message_reports_every_null() -> None:
    """For callers that parse without Kuma's reading, a null is never silently unset."""
    assert check_message({"networking": {"inbound": [None]}}, DATAPLANE, "") == [
        Violation("networking.inbound[0]", NULL_MESSAGE)
    ]


def test_rejected_keys_are_the_top_level_keys_with_a_violation() -> None:
    reading = read_message({"port": "x", "address": "1.2.3.4", "bogus": 1, "tags": {"a": 5}},
                           mesh_pb2.Dataplane.Networking.Inbound.DESCRIPTOR, "in")
    assert reading.rejected == frozenset({"port", "bogus", "tags"})
    assert [v.field for v in reading.violations] == ["in.port", "in.bogus", 'in.tags["a"]']


def test_a_null_is_reported_unless_a_violation_is_at_or_under_it() -> None:
    found = [Violation("a.b[0].c", "x"), Violation("d", "y")]
    nulls = ["a.b[0]", "a.b", "a.bc", "d", "d.e", "f"]
    assert [v.field for v in unreported_nulls(nulls, found)] == ["a.bc", "d.e", "f"]


def test_json_nulls_in_document_order() -> None:
    assert json_nulls({"a": None, "b": [1, None, {"c": None}], "d": {"e": 1}}, "config") == [
        "config.a", "config.b[1]", "config.b[2].c"
    ]


@pytest.mark.parametrize(("value", "ok"), [
    ("50", True), ("-0.5", True), ("1e2", True), ("1.5E-3", True), ("0", True),
    ("", False), (" 5", False), ("5 ", False), ("+5", False), ("05", False), ("1_0", False), ("٥", False),
    ("NaN", False), ("Infinity", False), ("inf", False), ("1e999", False), ("0x10", False), (".5", False),
])
def test_a_double_takes_a_json_number_in_a_string(value: str, ok: bool) -> None:
    assert (check_scalar(value, FieldDescriptor.TYPE_DOUBLE, "s") == []) is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("8126", True), ("0", True), ("4294967295", True),
    ("4294967296", False), ("-0", False), ("-1", False), ("8126.0", False), ("1e3", False), ("08", False),
    ("9" * 5000, False),  # int() of that many digits raises in Python 3.11; refused before
])
def test_a_uint32_takes_a_json_integer_in_a_string(value: str, ok: bool) -> None:
    assert (check_scalar(value, FieldDescriptor.TYPE_UINT32, "p") == []) is ok


def test_strings_and_bools_take_only_their_own_type() -> None:
    assert check_scalar(5, FieldDescriptor.TYPE_STRING, "s") == [Violation("s", "must be a string")]
    assert check_scalar("true", FieldDescriptor.TYPE_BOOL, "b") == [Violation("b", "must be a boolean")]


def test_many_nulls_against_many_violations() -> None:
    """A hostile list of nulls, each with violations under it: the coverage check is one set lookup per null
    (a pairwise check would be 5·10⁹ comparisons here and hit the test timeout)."""
    nulls = [f"networking.inbound[{i}]" for i in range(50_000)]
    found = [Violation(f"networking.inbound[{i}].port", "x") for i in range(0, 100_000, 2)]
    found += [Violation(f'networking.inbound[{i}].tags["kuma.io/service"]', "y") for i in range(1, 100_000, 2)]
    assert unreported_nulls(nulls, found) == []
    assert unreported_nulls([*nulls, "networking.outbound"], found) == [Violation("networking.outbound", NULL_MESSAGE)]
