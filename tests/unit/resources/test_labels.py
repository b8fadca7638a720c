"""Resource labels through the codec: accepted, validated with Kuma's (Kubernetes') rules and messages,
returned as Kuma 2.x does (`labels` after `modificationTime`, the computed `kuma.io/mesh` added), and part of
what makes two resources equal.

Whole documents in, whole violation lists and whole encoded documents out.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from controlplane.errors import ValidationError, Violation
from controlplane.resources.codec import decode_resource, encode_resource, spec_equal
from controlplane.resources.labels import MESH_LABEL_DIFFERS

NAME_RULE = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
             "character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
VALUE_RULE = ("a valid label must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
              "an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345', regex used for validation is "
              "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
SUBDOMAIN_RULE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def trace(labels: object, mesh: str = "default") -> dict[str, object]:
    return {"type": "TrafficTrace", "mesh": mesh, "name": "tt", "labels": labels,
            "selectors": [{"match": {"kuma.io/service": "*"}}]}


def test_labels_are_kept_and_returned_after_the_times_with_the_computed_mesh_label() -> None:
    resource = decode_resource(trace({"version": "v1", "team": "core", "kuma.io/mesh": "default"}))
    assert dict(resource.labels) == {"team": "core", "version": "v1"}  # kuma.io/mesh is computed, not stored
    stamped = replace(resource, creation_time=None, modification_time=None)
    assert list(encode_resource(stamped).items()) == [
        ("type", "TrafficTrace"), ("mesh", "default"), ("name", "tt"),
        ("labels", {"kuma.io/mesh": "default", "team": "core", "version": "v1"}),
        ("selectors", [{"match": {"kuma.io/service": "*"}}]),
    ]


def test_a_global_kind_without_labels_has_no_labels_key_and_a_mesh_scoped_one_has_the_mesh_label() -> None:
    assert "labels" not in encode_resource(decode_resource({"type": "Mesh", "name": "m"}))
    assert encode_resource(decode_resource(trace(None)))["labels"] == {"kuma.io/mesh": "default"}
    assert encode_resource(decode_resource({"type": "Mesh", "name": "m", "labels": {"env": "prod"}}))["labels"] == {
        "env": "prod"}


def test_output_of_get_re_applies_unchanged() -> None:
    first = decode_resource(trace({"team": "core"}))
    again = decode_resource(encode_resource(first))
    assert spec_equal(first, again) and again.labels == first.labels


def test_a_labels_only_change_is_not_equal() -> None:
    assert not spec_equal(decode_resource(trace({"team": "core"})), decode_resource(trace({"team": "edge"})))
    assert not spec_equal(decode_resource(trace({"team": "core"})), decode_resource(trace(None)))
    assert spec_equal(decode_resource(trace({"a": "1", "b": "2"})), decode_resource(trace({"b": "2", "a": "1"})))


LONG = "a" * 64
CASES: list[tuple[str, dict[str, object], list[Violation]]] = [
    ("mesh label differs", trace({"kuma.io/mesh": "other"}),
     [Violation('labels["kuma.io/mesh"]', MESH_LABEL_DIFFERS)]),
    ("mesh label on a global kind", {"type": "Mesh", "name": "m", "labels": {"kuma.io/mesh": "m"}},
     [Violation('labels["kuma.io/mesh"]', "kuma.io/mesh label must not differ from mesh set on resource")]),
    ("not a map", trace(["a=b"]), [Violation("labels", "must be a map of strings to strings")]),
    ("value not a string", trace({"version": 1}), [Violation('labels["version"]', "must be a string")]),
    ("empty value", trace({"version": ""}), [Violation('labels["version"]', "cannot be empty")]),
    ("value with a space", trace({"version": "a b"}), [Violation('labels["version"]', VALUE_RULE)]),
    ("value too long", trace({"version": LONG}),
     [Violation('labels["version"]', "must be no more than 63 characters")]),
    ("key with a space", trace({"my key": "x"}), [Violation('labels["my key"]', f"name part {NAME_RULE}")]),
    ("key name too long", trace({LONG: "x"}),
     [Violation(f'labels["{LONG}"]', "name part must be no more than 63 characters")]),
    ("empty key", trace({"": "x"}),
     [Violation('labels[""]', "name part must be non-empty"), Violation('labels[""]', f"name part {NAME_RULE}")]),
    ("empty prefix", trace({"/x": "y"}), [Violation('labels["/x"]', "prefix part must be non-empty")]),
    ("upper-case prefix", trace({"Example.com/x": "y"}),
     [Violation('labels["Example.com/x"]', f"prefix part {SUBDOMAIN_RULE}")]),
    ("two slashes", trace({"a/b/c": "y"}),
     [Violation('labels["a/b/c"]', f"a qualified name {NAME_RULE} with an optional DNS subdomain prefix and '/' "
                                   "(e.g. 'example.com/MyName')")]),
    ("every problem, keys sorted", trace({"z": "", "a b": "ok", "kuma.io/mesh": "x"}),
     [Violation('labels["kuma.io/mesh"]', MESH_LABEL_DIFFERS),
      Violation('labels["a b"]', f"name part {NAME_RULE}"), Violation('labels["z"]', "cannot be empty")]),
]


@pytest.mark.parametrize(("document", "expected"), [(d, e) for _, d, e in CASES], ids=[c[0] for c in CASES])
def test_bad_labels_are_refused_with_kuma_paths(document: dict[str, object], expected: list[Violation]) -> None:
    with pytest.raises(ValidationError) as raised:
        decode_resource(document)
    assert list(raised.value.violations) == expected


@pytest.mark.parametrize("name", ["team", "kuma.io/service", "app.kubernetes.io/name", "A_b.c-9"])
def test_qualified_names_are_accepted(name: str) -> None:
    assert dict(decode_resource(trace({name: "V_1.x-2"})).labels) == {name: "V_1.x-2"}


def test_unknown_top_level_fields_list_labels_among_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as raised:
        decode_resource({"type": "Mesh", "name": "m", "lables": {}})
    assert [str(v) for v in raised.value.violations] == [
        'lables: unknown field "lables". Valid fields: type, name, labels, tracing']
