"""kumactl's output rules, pure: AGE (kumactl's own `Duration` table), tables, the pagination footer, the
dataplane TAGS/ADDRESS cells, `inspect meshes` and `inspect <policy>` text, and `--var` parsing
(pflag's StringToString). Whole strings compared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
import pytest

from controlplane.cli.inspect import render_meshes, render_policy_dataplanes
from controlplane.cli.output import pagination_footer, plain_table, table
from controlplane.cli.sources import parse_vars, string_to_string
from controlplane.resources.columns import age, duration
from controlplane.resources.dataplane import DATAPLANE

# app/kumactl/pkg/output/table/cells_test.go, entry by entry.
KUMACTL_DURATIONS = [
    (-2.0, "never"), (0.0, "0s"), (1.0, "1s"), (59.999, "59s"), (60.0, "1m"), (3599.999, "59m"),
    (3 * 3600 - 0.001, "2h"), (86400.0, "1d"), (365 * 86400.0, "1y"), (10 * 365 * 86400.0, "10y"),
    (-0.5, "0s"), (-1.5, "0s"),
]


@pytest.mark.parametrize(("seconds", "text"), KUMACTL_DURATIONS, ids=[t for _, t in KUMACTL_DURATIONS])
def test_duration_is_kumactls(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_age_is_time_since_the_last_modification() -> None:
    now = datetime(2025, 1, 10, tzinfo=UTC)
    item = {"creationTime": "2024-01-01T00:00:00Z", "modificationTime": "2025-01-09T23:00:00Z"}
    assert [c.value(item, now) for c in DATAPLANE.columns if c.header == "AGE"] == ["1h"]
    assert age(None, now) == "-"


DATAPLANES = [
    {"mesh": "default", "name": "experiment", "networking": {"address": "127.0.0.1", "inbound": [
        {"port": 8080, "tags": {"kuma.io/service": "mobile", "version": "v1"}},
        {"port": 8090, "tags": {"kuma.io/service": "metrics", "version": "v1"}}]}},
    {"mesh": "default", "name": "example", "networking": {"address": "127.0.0.2", "inbound": [
        {"port": 8080, "tags": {"kuma.io/service": "web", "version": "v2"}}]}},
]


def test_dataplanes_table_is_kumactls_golden() -> None:
    """kumactl's get-dataplanes.golden.txt, with its inputs (AGE from the same modification time)."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    stamped = [{**dp, "modificationTime": (now - timedelta(days=3)).isoformat()} for dp in DATAPLANES]
    assert table(DATAPLANE, stamped, now) == (
        "MESH      NAME         TAGS                                        ADDRESS     AGE\n"
        "default   experiment   kuma.io/service=metrics,mobile version=v1   127.0.0.1   3d\n"
        "default   example      kuma.io/service=web version=v2              127.0.0.2   3d"
    )


def test_plain_table_pads_every_column_but_the_last() -> None:
    assert plain_table(["ACTIVE", "NAME", "ADDRESS"], [["*", "test1", "https://test1.internal:5681"],
                                                       ["", "test2", "https://test2.internal:5681"]]) == (
        "ACTIVE   NAME    ADDRESS\n"
        "*        test1   https://test1.internal:5681\n"
        "         test2   https://test2.internal:5681"
    )


@pytest.mark.parametrize(("next_url", "footer"), [
    ("http://127.0.0.1:5681/meshes?offset=1&size=1",
     "\nRerun command with --offset=1 argument to retrieve more resources"),
    (None, ""), ("", ""),
], ids=["next", "last-page", "empty"])
def test_pagination_footer(next_url: object, footer: str) -> None:
    assert pagination_footer(next_url) == footer


def test_inspect_meshes_table() -> None:
    insights = [
        {"name": "default", "dataplanes": {"total": 100, "online": 90, "offline": 10},
         "policies": {"TrafficTrace": {"total": 1}}},
        {"name": "mesh-1", "dataplanes": {"total": 0, "online": 0, "offline": 0}, "policies": {}},
    ]
    meshes = {"default": {"tracing": {"backends": [{"name": "jaeger", "type": "zipkin"}]}}, "mesh-1": {}}
    assert render_meshes(insights, meshes) == (
        "MESH      DATAPLANES   TRAFFIC TRACES   MESH TRACES   TRACING\n"
        "default   90/100       1                0             zipkin/jaeger\n"
        "mesh-1    0/0          0                0             off"
    )


def test_policy_inspection_text() -> None:
    assert render_policy_dataplanes({"total": 2, "items": [{"name": "backend-1"}, {"name": "web-1"}]}) == (
        "Affected data plane proxies:\n\n  backend-1\n  web-1")
    assert render_policy_dataplanes({"total": 0, "items": []}) == "Affected data plane proxies:\n\nno dataplanes"


@pytest.mark.parametrize(("given", "parsed"), [
    (("a=b,c=d",), {"a": "b", "c": "d"}),
    (("a=b", "c=d"), {"a": "b", "c": "d"}),
    (("a=1", "a=2,b=3"), {"a": "2", "b": "3"}),
    (("url=http://x,y",), {"url": "http://x,y"}),
    (('"url=http://x/?a=1,b"',), {"url": "http://x/?a=1,b"}),
    (("k=",), {"k": ""}),
    (('"k=v"',), {"k": "v"}),
], ids=["comma-pairs", "repeated", "later-wins", "one-equals-keeps-commas", "csv-quoted", "empty-value",
        "quotes-trimmed"])
def test_var_values_are_pflag_string_to_string(given: tuple[str, ...], parsed: dict[str, str]) -> None:
    assert string_to_string(given) == parsed


@pytest.mark.parametrize(("given", "message"), [
    (("novalue",), "novalue must be formatted as key=value"),
    (("a=b,c=d,oops",), "oops must be formatted as key=value"),
    (("=v,a=b",), "=v must be formatted as key=value"),
], ids=["no-equals", "part-without-equals", "empty-key"])
def test_bad_var_values_name_the_part(given: tuple[str, ...], message: str) -> None:
    with pytest.raises(click.BadParameter) as raised:
        string_to_string(given)
    assert raised.value.message == message


def test_dotted_variables_nest_and_merge() -> None:
    assert parse_vars(("a.b=1,a.c=2", "d=3")) == {"a": {"b": "1", "c": "2"}, "d": "3"}
    with pytest.raises(click.BadParameter):
        parse_vars(("a=1", "a.b=2"))
