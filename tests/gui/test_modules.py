"""The GUI's pure modules, run in the real browser (imported from the served files, as the page imports
them): the YAML a policy is shown as reads back as the API's JSON, the graph layout (depth columns, cycles
broken once, no overlapping boxes for tens of services), and the config search's counting."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from controlplane.api.gui import load_gui

from .conftest import Tab
from .dataset import Plane


def call(tab: Tab, plane: Plane, module: str, expression: str, *args: Any) -> Any:
    """`expression` (a function of the module `m` and `args`) evaluated in a page of the GUI."""
    if "/gui/" not in tab.url:
        tab.goto(plane.server.url + "/gui/no/such/view")
        tab.wait_for_selector("#view-title")
    script = f"""async ([path, args]) => {{ const m = await import(path); return ({expression})(m, ...args); }}"""
    return tab.evaluate(script, [f"/gui/assets/{load_gui().version}/js/{module}", list(args)])


@pytest.mark.parametrize("value", [
    {"type": "Mesh", "name": "default", "tracing": {"backends": [{"name": "z", "sampling": 100.0, "conf": {"url": "http://a:9/b"}}]}},
    {"strings": ["yes", "no", "on", "null", "~", "1.0", "0x10", "", " lead", "trail ", "a: b", "a #b", "#x", "- x",
                 "*star", "&anchor", "!tag", "%x", "@x", "`x", "{x}", "[x]", "x,y", "mid:colon", "'q'", '"dq"', "é ü"]},
    {"nested": [[1, [2, []]], {}, [], {"a": {}}], "numbers": [0, -1, 2.5, 1e-07], "flags": [True, False, None]},
    {"kuma.io/service": "*", "selectors": [{"match": {"kuma.io/service": "*", "version": "v1"}}]},
])
def test_yaml_reads_back_as_the_json_it_was_made_from(tab: Tab, plane: Plane, value: Any) -> None:
    text = call(tab, plane, "yaml.js", "(m, v) => m.toYaml(v)", value)
    assert yaml.safe_load(text) == value, text


def test_layout_columns_follow_calls_and_cycles_are_broken_once(tab: Tab, plane: Plane) -> None:
    entry = call(tab, plane, "layout.js", "(m, names, edges) => Object.fromEntries(m.layers(names, edges).columns)",
                 ["api", "db", "web"], [{"source": "web", "destination": "api"}, {"source": "api", "destination": "db"}])
    assert entry == {"web": 0, "api": 1, "db": 2}
    edges = [{"source": s, "destination": d} for s, d in [("web", "api"), ("api", "db"), ("api", "cache"),
                                                           ("db", "web"), ("cache", "cache")]]
    result = call(tab, plane, "layout.js", """(m, names, edges) => {
        const { columns, back } = m.layers(names, edges);
        return { columns: Object.fromEntries(columns), back: [...back].map((e) => e.split("\\u0000")) };
    }""", ["api", "cache", "db", "web"], edges)
    (back,) = result["back"]  # exactly one edge of the cycle web → api → db → web is drawn backwards
    assert back in (["web", "api"], ["api", "db"], ["db", "web"])
    columns = result["columns"]
    assert columns["api"] < columns["db"] and columns["api"] < columns["cache"]
    assert all(columns[e["source"]] < columns[e["destination"]] for e in edges
               if [e["source"], e["destination"]] not in result["back"] and e["source"] != e["destination"])


def test_layout_of_forty_services_has_no_overlapping_boxes(tab: Tab, plane: Plane) -> None:
    names = [f"svc-{i:02d}" for i in range(40)]
    layers = [names[i::5] for i in range(5)]
    edges = [{"source": a, "destination": b} for k in range(4) for a in layers[k] for b in layers[k + 1][:2]]
    boxes = call(tab, plane, "layout.js", """(m, names, edges) => {
        const { positions, width, height } = m.layout(names, edges);
        return { width, height, node: m.NODE, at: Object.fromEntries(positions) };
    }""", names, edges)
    node, at = boxes["node"], boxes["at"]
    assert len(at) == 40
    for a, pa in at.items():
        assert 0 <= pa["x"] and pa["x"] + node["width"] <= boxes["width"]
        assert 0 <= pa["y"] and pa["y"] + node["height"] <= boxes["height"]
        for b, pb in at.items():
            if a < b:
                apart = abs(pa["x"] - pb["x"]) >= node["width"] or abs(pa["y"] - pb["y"]) >= node["height"]
                assert apart, (a, b, pa, pb)


def test_config_search_counts_keys_and_values_and_opens_their_branches(tab: Tab, plane: Plane) -> None:
    value = {"listener": [{"name": "outbound:1", "port": 10001, "tags": {"outbound": True}}], "other": "OutBound"}
    found = call(tab, plane, "jsontree.js", "(m, v, t) => { const r = m.matches(v, t); return [r.count, [...r.open].sort()]; }",
                 value, "outbound")
    assert found == [3, ["", "/listener", "/listener/0", "/listener/0/tags"]]
