"""Basics done right (issue 15 §7): a URL per view that opens it (also after a reload) and works with the
browser's back button, keyboard navigation (skip link, focus on the new view's heading, the graph's nodes
are links), an accessible name on every control, and state in words as well as colour."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import Tab
from .dataset import Plane

VIEWS = [
    ("/gui/", "Overview"),
    ("/gui/meshes/payments", "Mesh payments"),
    ("/gui/meshes/default/dataplanes", "Dataplanes of default"),
    ("/gui/meshes/default/dataplanes?state=unreachable", "Dataplanes of default"),
    ("/gui/meshes/default/dataplanes/frontend-1", "Dataplane frontend-1"),
    ("/gui/meshes/default/policies", "Policies of default"),
    ("/gui/meshes/default/policies/meshtraces/backend-2-zipkin", "Mesh Trace backend-2-zipkin"),
    ("/gui/meshes/default/graph", "Service graph of default"),
    ("/gui/meshes/default/graph?service=db", "Service graph of default"),
    ("/gui/no/such/view", "Not found"),
]

UNNAMED = """() => {
  const named = (el) => {
    if ((el.getAttribute("aria-label") || "").trim()) return true;
    const by = el.getAttribute("aria-labelledby");
    if (by && by.split(" ").some((id) => (document.getElementById(id)?.textContent || "").trim())) return true;
    if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
    return el.textContent.trim().length > 0 || (el.getAttribute("title") || "").trim().length > 0;
  };
  return [...document.querySelectorAll("a, button, input, select, summary, svg")]
    .filter((el) => !el.closest("[hidden]") && !named(el)).map((el) => el.outerHTML.slice(0, 120));
}"""

COLOUR_ONLY = """() => [...document.querySelectorAll(".badge, .node-state, .edge-label")]
  .filter((el) => !/[a-z]{2}/i.test(el.textContent)).map((el) => el.outerHTML.slice(0, 120))"""


def test_every_view_has_a_url_that_opens_it(tab: Tab, plane: Plane) -> None:
    for path, title in VIEWS:
        tab.goto(plane.server.url + path)
        expect(tab.locator("#view-title")).to_have_text(title)
        assert tab.title() == f"{title} · controlplane"
        assert tab.evaluate(UNNAMED) == [], path
        assert tab.evaluate(COLOUR_ONLY) == [], path
    if_state = tab.locator("#dp-state")
    assert if_state.count() == 0  # the last view was the not-found page


def test_links_history_and_the_mesh_picker_move_between_views_without_reloading(tab: Tab, plane: Plane) -> None:
    tab.goto(plane.server.url + "/gui/")
    expect(tab.locator("#view-title")).to_have_text("Overview")
    tab.evaluate("() => { window.sameDocument = true; }")
    tab.click("#nav >> text=Dataplanes")
    expect(tab.locator("#view-title")).to_have_text("Dataplanes of default")
    tab.click("#dp-table a >> text=backend-1")
    expect(tab.locator("#view-title")).to_have_text("Dataplane backend-1")
    tab.go_back()
    expect(tab.locator("#view-title")).to_have_text("Dataplanes of default")
    tab.select_option("#mesh-select", "payments")
    expect(tab.locator("#view-title")).to_have_text("Dataplanes of payments")
    assert tab.url.endswith("/gui/meshes/payments/dataplanes")
    tab.go_back()
    tab.go_back()
    expect(tab.locator("#view-title")).to_have_text("Overview")
    assert tab.evaluate("() => window.sameDocument") is True


def test_the_keyboard_reaches_everything(tab: Tab, plane: Plane) -> None:
    tab.goto(plane.server.url + "/gui/")
    expect(tab.locator("#view-title")).to_have_text("Overview")
    tab.keyboard.press("Tab")
    assert tab.evaluate("() => document.activeElement.textContent") == "Skip to content"
    for _ in range(3):  # brand, Overview, Dataplanes
        tab.keyboard.press("Tab")
    assert tab.evaluate("() => document.activeElement.textContent") == "Dataplanes"
    tab.keyboard.press("Enter")
    expect(tab.locator("#view-title")).to_have_text("Dataplanes of default")
    assert tab.evaluate("() => document.activeElement.id") == "view-title"  # focus follows the view
    tab.goto(plane.server.url + "/gui/meshes/default/graph")
    expect(tab.locator("#view-title")).to_have_text("Service graph of default")
    node = tab.locator("a.node[data-service='db']")
    for _ in range(40):
        tab.keyboard.press("Tab")
        if tab.evaluate("() => document.activeElement.dataset.service") == "db":
            break
    assert tab.evaluate("() => document.activeElement.dataset.service") == "db", "Tab never reached the db node"
    assert "db" in (node.get_attribute("aria-label") or "")
    tab.keyboard.press("Enter")
    expect(tab.locator("#graph-proxies-title")).to_have_text("Proxies of db")


def test_run_says_where_the_gui_is(plane: Plane) -> None:
    log = plane.server.log()
    assert "gui_available" in log and f"url={plane.server.url}/gui/" in log, log[-2000:]
    assert plane.get("/")["gui"] == "/gui"  # Kuma's index names the GUI's path
