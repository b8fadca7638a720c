"""The GUI follows a collector going down (issue 15 §6), with real Envoys: the service graph, open in a real
Chromium, turns to "collector unreachable" without a reload once the control plane knows (its Envoys report
every `STATS_FLUSH_S`), and back to "spans flowing" when the collector returns. Measured: collector stopped →
API verdict → page, printed; asserted: the page follows the API within 2 s.

The usual two-proxy topology (support/plane.py) with steady traffic, as a real service has; the browser is
Debian's chromium (tests/gui_browser.py), driven by Playwright's async API on the test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gui_browser import CHROMIUM_ARGS, VIEWPORT, ConsoleLog, artifacts_dir, chromium_path
from playwright.async_api import Page, async_playwright, expect

from .support.collectors import ZipkinCollector
from .support.plane import Api, StartSidecar, Topology, send
from .test_span_flow import SETTLE_S, TWO_INTERVALS_S, spans_of, traffic_until
from .test_tracing import DOCS_TRAFFIC_TRACE, start_topology, yaml_doc, zipkin_mesh

pytestmark = pytest.mark.e2e

PAGE_AFTER_API_S = 2.0


@contextlib.asynccontextmanager
async def browser_page(console: ConsoleLog) -> AsyncIterator[Page]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            console.attach(page)
            yield page
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def steady_traffic(url: str) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            with contextlib.suppress(AssertionError, OSError):  # a request may fail while listeners change
                await send(url)
            await asyncio.sleep(0.2)  # the pace of the traffic, not a wait for anything
    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def when_api_says(api: Api, verdict: str, timeout: float) -> float:
    """The moment (monotonic) web-1's verdict first reads `verdict` on the API."""
    async with asyncio.timeout(timeout):
        while (await spans_of(api, "web-1"))["verdict"] != verdict:
            await asyncio.sleep(0.05)
    return time.monotonic()


async def test_the_graph_shows_a_stopped_collector(api: Api, topology: Topology, sidecars: StartSidecar,
                                                   tmp_path: Path) -> None:
    console = ConsoleLog()
    async with ZipkinCollector() as zipkin, browser_page(console) as page:
        await start_topology(api, topology, sidecars, zipkin_mesh(zipkin.url), yaml_doc(DOCS_TRAFFIC_TRACE))
        async with steady_traffic(topology.outbound_url):
            await traffic_until(api, topology.outbound_url, "web-1", "flowing", SETTLE_S)
            await page.goto(api.base + "/gui/meshes/default/graph")
            web = page.locator("a.node[data-service='web'] .node-state")
            await expect(web).to_have_text("✓ spans flowing")
            await expect(page.locator("g.edge[data-source='web'][data-destination='backend'] text")).to_have_text("traced")
            await page.evaluate("() => { window.sameDocument = true; }")

            await zipkin.stop()
            stopped = time.monotonic()
            known = await when_api_says(api, "collector unreachable", TWO_INTERVALS_S + 1.0)
            await expect(web).to_have_text("✕ collector unreachable", timeout=PAGE_AFTER_API_S * 1000)
            shown = time.monotonic()
            print(f"collector stopped -> API verdict {known - stopped:.2f} s -> page {shown - known:.2f} s "
                  f"(stopped -> page {shown - stopped:.2f} s)")
            await page.screenshot(path=str(artifacts_dir(tmp_path) / "graph-collector-unreachable.png"))

            await zipkin.start()  # same port: the collector cluster's endpoint is unchanged
            await when_api_says(api, "flowing", TWO_INTERVALS_S + 1.0)
            await expect(web).to_have_text("✓ spans flowing", timeout=PAGE_AFTER_API_S * 1000)
            assert await page.evaluate("() => window.sameDocument") is True
    assert not console.unexpected(), console.unexpected()
