"""Each view renders what the API says (issue 15 §1–5), in a real Chromium against a real control plane: the
overview's counts, backends and policies; the dataplanes table with filter, state filter and sort; a
dataplane's listeners, policies, NACK and generated config; the policies and one policy's YAML and proxies;
the service graph and a node's proxies. Expected values come from API responses read in the same test.
Every test also checks (conftest `tab`) that the page logged no error, and writes a screenshot."""

from __future__ import annotations

from typing import Any

import yaml
from playwright.sync_api import expect

from .conftest import Tab
from .dataset import Plane, category

CATEGORIES = ["flowing", "unreachable", "rejecting", "no-sampled", "no-traffic", "no-stats", "not-traced", "offline"]


def open_view(tab: Tab, plane: Plane, path: str, title: str) -> None:
    tab.goto(plane.server.url + path)
    expect(tab.locator("#view-title")).to_have_text(title)
    expect(tab.locator("#live")).to_have_attribute("data-state", "connected")


def texts(tab: Tab, selector: str) -> list[str]:
    return [t.strip() for t in tab.locator(selector).all_inner_texts()]


def test_overview_counts_backends_and_policies_are_the_apis(tab: Tab, plane: Plane) -> None:
    open_view(tab, plane, "/gui/", "Overview")
    kinds = [r for r in plane.get("/_resources")["resources"] if "policy" in r]
    for mesh in plane.items("/meshes"):
        name = mesh["name"]
        card = tab.locator(f"section.card[data-mesh='{name}']")
        items = plane.items(f"/meshes/{name}/dataplanes+insights")
        for cat in CATEGORIES:
            count = sum(category(item) == cat for item in items)
            expect(card.locator(f"tr[data-category='{cat}'] td.count")).to_have_text(str(count))
        reasons = sorted({i["dataplaneInsight"]["metadata"]["tracing"]["message"] for i in items
                          if category(i) == "not-traced"})
        assert [card.locator("tr.reason").nth(i).get_attribute("data-reason") for i in range(len(reasons))] == reasons
        backends = [b["name"] for b in (mesh.get("tracing") or {}).get("backends", [])]
        assert [li.get_attribute("data-backend") for li in card.locator("li[data-backend]").all()] == backends
        for kind in kinds:
            names = [p["name"] for p in plane.items(f"/meshes/{name}/{kind['path']}")]
            listed = card.locator(f"div.policy-kind[data-kind='{kind['name']}'] li[data-policy]")
            assert [li.get_attribute("data-policy") for li in listed.all()] == names
    tab.shot("overview")


def row_cells(tab: Tab, name: str) -> list[str]:
    return texts(tab, f"#dp-table tr[data-dataplane='{name}'] td")


def test_dataplanes_table_rows_filter_state_and_sort(tab: Tab, plane: Plane) -> None:
    open_view(tab, plane, "/gui/meshes/default/dataplanes", "Dataplanes of default")
    items = plane.items("/meshes/default/dataplanes+insights")
    names = [i["name"] for i in items]
    rows = tab.locator("#dp-table tbody tr")
    expect(rows).to_have_count(len(items))
    assert [r.get_attribute("data-dataplane") for r in rows.all()] == sorted(names)
    for item in items:
        cells = row_cells(tab, item["name"])
        meta = item["dataplaneInsight"]["metadata"]
        online = any("disconnectTime" not in s for s in item["dataplaneInsight"].get("subscriptions", []))
        assert cells[0] == item["name"]
        assert cells[3].endswith("online" if online else "offline")
        if meta["xds"]["state"] == "nacked":
            assert cells[4].endswith("NACKed: " + ", ".join(f"{n['type']} {n['version']}" for n in meta["xds"]["nacked"]))
        if meta["tracing"]["verdict"] == "not traced":
            assert cells[5] == f"not traced: {meta['tracing']['message']}"
        else:
            t = meta["tracing"]
            named = f" {t['backend']}" if t["backend"] != t["type"] else ""  # MeshTrace: the backend is its type
            assert cells[5] == f"{t['policyKind']} → {t['type']}{named}"
    tab.shot("dataplanes")

    backends = [i["name"] for i in plane.items("/meshes/default/dataplanes+insights?tag=kuma.io/service:backend")]
    tab.fill("#dp-filter", "backend")
    expect(rows).to_have_count(len(backends))
    assert [r.get_attribute("data-dataplane") for r in rows.all()] == sorted(backends)
    assert "q=backend" in tab.url  # the filtered table is a link
    tab.fill("#dp-filter", "")
    tab.select_option("#dp-state", "unreachable")
    unreachable = sorted(i["name"] for i in items if category(i) == "unreachable")
    expect(rows).to_have_count(len(unreachable))
    assert [r.get_attribute("data-dataplane") for r in rows.all()] == unreachable
    tab.select_option("#dp-state", "")
    expect(rows).to_have_count(len(items))
    tab.click("a.sort[aria-label='Sort by Name']")
    expect(tab.locator("th[aria-sort='descending']")).to_have_text("Name ▼")
    assert [r.get_attribute("data-dataplane") for r in rows.all()] == sorted(names, reverse=True)


def json_matches(value: Any, term: str) -> int:
    """What the config search counts: keys and leaf values containing `term` (case-insensitive)."""
    count = 0

    def walk(node: Any, key: str) -> None:
        nonlocal count
        hit = bool(term) and term in str(key).lower()
        if isinstance(node, dict | list):
            count += hit
            for k, child in (node.items() if isinstance(node, dict) else enumerate(node)):
                walk(child, str(k))
        elif hit or term in (json_text(node)).lower():
            count += 1
    walk(value, "")
    return count


def json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def test_dataplane_detail_is_the_inspection_api(tab: Tab, plane: Plane) -> None:
    open_view(tab, plane, "/gui/meshes/default/dataplanes/backend-2", "Dataplane backend-2")
    policies = plane.get("/meshes/default/dataplanes/backend-2/policies")
    xds = plane.get("/meshes/default/dataplanes/backend-2/xds")
    spans = plane.get("/meshes/default/dataplanes/backend-2/spans")
    listeners = [[n["listener"], n["service"], n["protocol"], "✓ traced" if n["traced"] else "– not traced", n["reason"]]
                 for n in policies["listeners"]]
    table = tab.locator("#dp-listener-table tbody tr")
    expect(table).to_have_count(len(listeners))
    assert [texts(tab, f"#dp-listener-table tbody tr:nth-child({i + 1}) td") for i in range(len(listeners))] == listeners
    for kind, names in policies["matchedPolicies"].items():
        expect(tab.locator(f"#dp-matched li[data-kind='{kind}']")).to_contain_text(" → ".join(names))
    for displaced in policies["tracing"].get("notApplied", []):
        expect(tab.locator("#dp-policies")).to_contain_text(displaced["message"])
    listener = xds["types"]["Listener"]
    nack_row = tab.locator("#dp-xds-table tbody tr", has_text="Listener")
    expect(nack_row.locator("td").nth(4)).to_have_text("✕ NACKed")
    expect(nack_row.locator("td").nth(6)).to_have_text(listener["lastNackMessage"])
    expect(nack_row.locator("td").nth(2)).to_have_text(listener["versionSent"])
    (block,) = spans["spans"]
    expect(tab.locator("#dp-spans")).to_contain_text(f"{block['type']} {block['backend']}")
    expect(tab.locator("#dp-spans .badge")).to_contain_text(block["verdict"])
    tab.shot("dataplane")

    resources = {t: e.get("resources", []) for t, e in xds["types"].items()}
    term = "backend"
    found = json_matches(resources, term)
    assert found > 1
    tab.fill("#dp-config-search", term.upper())  # case-insensitive
    expect(tab.locator("#dp-config .jt-status")).to_have_text(f"{found} matches")
    expect(tab.locator("#dp-config mark").first).to_have_text(term)


def test_policies_and_a_policys_yaml_and_proxies(tab: Tab, plane: Plane) -> None:
    open_view(tab, plane, "/gui/meshes/default/policies", "Policies of default")
    kinds = [r for r in plane.get("/_resources")["resources"] if "policy" in r]
    for kind in kinds:
        names = [p["name"] for p in plane.items(f"/meshes/default/{kind['path']}")]
        listed = tab.locator(f"section[data-kind='{kind['name']}'] li[data-policy]")
        assert [li.get_attribute("data-policy") for li in listed.all()] == names
    tab.shot("policies")
    tab.click("section[data-kind='TrafficTrace'] a >> text=trace-all-traffic")
    expect(tab.locator("#view-title")).to_have_text("Traffic Trace trace-all-traffic")
    assert tab.url.endswith("/gui/meshes/default/policies/traffic-traces/trace-all-traffic")
    resource = plane.get("/meshes/default/traffic-traces/trace-all-traffic")
    assert yaml.safe_load(tab.inner_text("#policy-yaml pre")) == resource
    attachments = plane.get("/meshes/default/traffic-traces/trace-all-traffic/_attachments")["items"]
    assert {a["role"] for a in attachments} == {"applied", "displaced"}  # backend-2 has a MeshTrace
    rows = tab.locator("#policy-table tbody tr")
    expect(rows).to_have_count(len(attachments))
    for i, a in enumerate(attachments):
        cells = texts(tab, f"#policy-table tbody tr:nth-child({i + 1}) td")
        assert cells[0] == a["name"] and cells[1].endswith({"applied": "applies"}.get(a["role"], a["role"]))
        if "by" in a:
            assert cells[2] == f"{a['by']['type']} {a['by']['name']} decides instead"
    tab.shot("policy")


def test_service_graph_nodes_edges_and_a_nodes_proxies(tab: Tab, plane: Plane) -> None:
    open_view(tab, plane, "/gui/meshes/default/graph", "Service graph of default")
    graph = plane.get("/meshes/default/service-graph")
    nodes = tab.locator("svg#graph a.node")
    assert sorted(n.get_attribute("data-service") or "" for n in nodes.all()) == [s["name"] for s in graph["services"]]
    assert texts(tab, "#graph-services tbody td:nth-child(1)") == [s["name"] for s in graph["services"]]
    assert texts(tab, "#graph-services tbody td:nth-child(2)") == [str(len(s["dataplanes"])) for s in graph["services"]]
    assert texts(tab, "#graph-services tbody td:nth-child(3)") == [str(s["online"]) for s in graph["services"]]
    edges = [[e["source"], e["destination"], str(e["outbounds"])] for e in graph["edges"]]
    assert [texts(tab, f"#graph-edges tbody tr:nth-child({i + 1}) td")[:3] for i in range(len(edges))] == edges
    for e in graph["edges"]:
        label = "traced" if e["traced"] == e["outbounds"] else "not traced" if not e["traced"] else \
            f"{e['traced']} of {e['outbounds']} traced"
        edge = tab.locator(f"svg#graph g.edge[data-source='{e['source']}'][data-destination='{e['destination']}']")
        expect(edge.locator("text")).to_have_text(label)
    # Every node says its state in words: the worst verdict of its proxies, as the API counts them.
    backend = next(s for s in graph["services"] if s["name"] == "backend")
    assert backend["verdicts"] == {"collector unreachable": 1, "no sampled requests": 1}
    expect(tab.locator("a.node[data-service='backend'] .node-state")).to_have_text("✕ collector unreachable (1 of 2)")
    tab.locator("a.node[data-service='backend']").focus()
    tab.keyboard.press("Enter")  # keyboard, not a mouse: the node is a link
    expect(tab.locator("#graph-proxies-title")).to_have_text("Proxies of backend")
    assert texts(tab, "#graph-proxies tbody td:nth-child(1)") == backend["dataplanes"]
    assert tab.url.endswith("/gui/meshes/default/graph?service=backend")
    tab.shot("graph")
