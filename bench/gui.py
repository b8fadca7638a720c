"""The web GUI with a thousand proxies (issue 15, "Performance"), measured in a real browser.

    python -m bench.gui [--proxies 1000] [--services 40] [--rounds 3] [--json FILE]

Set-up: `controlplane run --store memory` (a subprocess, as bench/processes.py runs it), the zipkin Mesh and
a mesh-wide TrafficTrace, `--proxies` Dataplanes of `--services` services in five layers (each service calls
two of the next layer), every one connected as a simulated ADS client that ACKs (bench/clients.py), and
Debian's chromium driven by Playwright (tests/gui_browser.py).

Measured:
* first render of each view: the page's own `gui:first-render` mark (performance.now(), from navigation
  start to the first rendered view with data), median of `--rounds` fresh pages;
* live-update latency: from the moment the change's PUT returned (wall clock) to the moment a
  MutationObserver in the page sees the changed text (performance.timeOrigin + performance.now(), the same
  clock): a mesh-wide sampling change on a dataplane's page, a TrafficTrace removed on the dataplanes table;
* the control plane's CPU (utime+stime, /proc) during a mesh-wide sampling change (one mesh-wide pass and
  the pushes to every simulated proxy), over a fixed window, with 0, 10 and 50 raw `/events` subscribers
  (the fan-out alone) and with 1 and 3 open GUI pages on the dataplanes table (fan-out plus their refetches);
  and, in process and exactly, what the hub's publishing of that change's notifications costs.

Must not: assert (numbers go to bench/RESULTS.md); runs on whatever the machine is doing, so compare runs
made back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import aiohttp

from bench.clients import ClientPool
from bench.cp_api import ControlPlaneApi
from bench.processes import ControlPlaneProcess, cpu_seconds
from controlplane.api.events import Event, EventHub

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from gui_browser import CHROMIUM_ARGS, VIEWPORT, chromium_path

CPU_WINDOW_S: Final = 4.0
ZIPKIN: Final = {"name": "jaeger-collector", "type": "zipkin", "conf": {"url": "http://127.0.0.1:9411/api/v2/spans"}}
TRACE: Final = {"type": "TrafficTrace", "mesh": "default", "name": "trace-all-traffic",
                "selectors": [{"match": {"kuma.io/service": "*"}}], "conf": {"backend": "jaeger-collector"}}
SEEN: Final = """([selector, index, expected]) => new Promise((resolve) => {
  const check = () => {
    const el = document.querySelectorAll(selector)[index];
    if (el && el.textContent === expected) { resolve(performance.timeOrigin + performance.now()); return true; }
    return false;
  };
  if (check()) return;
  const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
  observer.observe(document.getElementById("main"), { childList: true, subtree: true, characterData: true });
})"""


def mesh(sampling: float) -> dict[str, Any]:
    return {"type": "Mesh", "name": "default",
            "tracing": {"defaultBackend": "jaeger-collector", "backends": [{**ZIPKIN, "sampling": sampling}]}}


def services(count: int) -> dict[str, list[str]]:
    """Service → the services it calls: five layers, each service calling two of the next (seeded)."""
    rng = random.Random(15)
    names = [f"svc-{i:02d}" for i in range(count)]
    layers = [names[i::5] for i in range(5)]
    return {name: (sorted(rng.sample(layers[k + 1], min(2, len(layers[k + 1])))) if k + 1 < len(layers) else [])
            for k, layer in enumerate(layers) for name in layer}


def dataplanes(proxies: int, calls: dict[str, list[str]]) -> list[dict[str, Any]]:
    names = sorted(calls)
    ports = {name: 10000 + i for i, name in enumerate(names)}
    docs = []
    for i in range(proxies):
        service = names[i % len(names)]
        docs.append({"type": "Dataplane", "mesh": "default", "name": f"{service}-{i // len(names)}", "networking": {
            "address": f"10.{i // 250}.{i % 250}.1", "inbound": [{"port": 20000, "servicePort": 8080, "tags": {
                "kuma.io/service": service, "kuma.io/protocol": "http", "version": f"v{i % 3}"}}],
            "outbound": [{"port": ports[d], "tags": {"kuma.io/service": d}} for d in calls[service]]}})
    return docs


@asynccontextmanager
async def event_clients(base: str, count: int) -> AsyncIterator[None]:
    """`count` raw subscribers of /events that read and discard (the fan-out without any refetch)."""
    async def follow(session: aiohttp.ClientSession) -> None:
        async with session.get(base + "/events") as response:
            assert response.status == 200, response.status
            async for _ in response.content.iter_any():
                pass
    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(follow(session)) for _ in range(count)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def quiet(pid: int, timeout: float = 60.0) -> None:
    """Until the control plane has been idle for 0.5 s (its CPU barely moved)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(0.5)
        if cpu_seconds(pid) - before < 0.02:
            return


class Bench:
    def __init__(self, cp: ControlPlaneProcess, api: ControlPlaneApi, browser: Any, rounds: int) -> None:
        self.cp, self.api, self.browser, self.rounds = cp, api, browser, rounds
        self.sampling = 100.0

    async def first_render(self, path: str, title: str) -> dict[str, float]:
        marks, loads = [], []
        for _ in range(self.rounds):
            page = await self.browser.new_page(viewport=VIEWPORT)
            await page.goto(self.cp.base + path)
            await page.wait_for_selector(f"#view-title:text('{title}')")
            marks.append(await page.evaluate("() => performance.getEntriesByName('gui:first-render')[0].startTime"))
            loads.append(await page.evaluate("() => window.controlplaneGui.lastLoadMs"))
            await page.close()
        return {"first_render_ms": round(statistics.median(marks)), "load_ms": round(statistics.median(loads))}

    async def latency(self, page: Any, change: Any, selector: str, index: int, expected: str) -> float:
        seen = asyncio.create_task(page.evaluate(SEEN, [selector, index, expected]))
        await asyncio.sleep(0.05)  # the observer is installed (evaluate has reached the page)
        await change()
        done = time.time() * 1000
        return float(await asyncio.wait_for(seen, 30)) - done

    async def sampling_to(self, value: float) -> None:
        self.sampling = value
        await self.api.put(mesh(value))

    async def live(self, dataplane: str) -> dict[str, Any]:
        page = await self.browser.new_page(viewport=VIEWPORT)
        await page.goto(f"{self.cp.base}/gui/meshes/default/dataplanes/{dataplane}")
        await page.wait_for_selector("#dp-effective")
        detail = []
        for r in range(self.rounds):
            await quiet(self.cp.pid)
            value = 50.0 + r
            detail.append(await self.latency(page, lambda v=value: self.sampling_to(v), "#dp-effective dd", 3, f"{value:g}%"))
        await page.goto(f"{self.cp.base}/gui/meshes/default/dataplanes")
        await page.wait_for_selector("#dp-table tbody tr")
        table = []
        for _ in range(self.rounds):
            await quiet(self.cp.pid)
            table.append(await self.latency(page, lambda: self.api.delete(TRACE), "#dp-table tbody tr td", 5,
                                            "not traced: no TrafficTrace selects this dataplane"))
            await quiet(self.cp.pid)
            await self.api.put(TRACE)
        await page.close()
        return {"sampling_change_on_detail_ms": [round(x) for x in detail],
                "traffictrace_removed_on_table_ms": [round(x) for x in table]}

    async def cpu_of_change(self) -> float:
        samples = []
        for _ in range(self.rounds):
            await quiet(self.cp.pid)
            before = cpu_seconds(self.cp.pid)
            await self.sampling_to(10.0 if self.sampling != 10.0 else 20.0)
            await asyncio.sleep(CPU_WINDOW_S)  # a fixed measurement window, not a wait for a condition
            samples.append(cpu_seconds(self.cp.pid) - before)
        return round(statistics.median(samples), 3)

    async def cpu(self) -> dict[str, float]:
        result = {}
        for count in (0, 10, 50):
            async with event_clients(self.cp.base, count):
                result[f"sse_clients_{count}"] = await self.cpu_of_change()
        for count in (1, 3):
            pages = [await self.browser.new_page(viewport=VIEWPORT) for _ in range(count)]
            for page in pages:
                await page.goto(self.cp.base + "/gui/meshes/default/dataplanes")
                await page.wait_for_selector("#dp-table tbody tr")
            result[f"gui_pages_{count}"] = await self.cpu_of_change()
            for page in pages:
                await page.close()
        return result


def hub_publish_ms(proxies: int) -> dict[str, float]:
    """The hub's own cost of a mesh-wide change's notifications (an ACK per type per proxy: 4 × proxies
    events) for 1, 10 and 50 subscribers, in process, best of 5: the fan-out without sockets or refetches."""
    result = {}
    events = [Event("xds", "default", f"dp-{i % proxies}", detail="ack") for i in range(4 * proxies)]
    for clients in (1, 10, 50):
        best = float("inf")
        for _ in range(5):
            hub = EventHub()
            for _ in range(clients):
                hub.subscribe()
            started = time.perf_counter()
            for event in events:
                hub.publish(event)
            best = min(best, time.perf_counter() - started)
        result[f"subscribers_{clients}"] = round(best * 1000, 1)
    return result


async def run(proxies: int, service_count: int, rounds: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    workdir = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    cp = ControlPlaneProcess(0.1, 1.0, None, workdir / "cp.log")
    pool = ClientPool(2, None, lambda records: None)
    pool.attach(asyncio.get_running_loop())
    try:
        async with aiohttp.ClientSession() as session:
            await cp.wait_ready(session)
            api = ControlPlaneApi(session, cp.base)
            calls = services(service_count)
            docs = dataplanes(proxies, calls)
            await api.load([mesh(100.0), TRACE, *docs])
            pool.connect(0, f"127.0.0.1:{cp.xds_port}", [(i, f"default.{d['name']}") for i, d in enumerate(docs)],
                         False, max(0.5, proxies / 200))
            deadline = time.monotonic() + 120
            while True:
                async with session.get(cp.base + "/mesh-insights/default") as response:
                    if (await response.json())["dataplanes"]["online"] == proxies:
                        break
                assert time.monotonic() < deadline, "the simulated proxies never all connected"
                await asyncio.sleep(0.5)
            await quiet(cp.pid)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
                bench = Bench(cp, api, browser, rounds)
                views = {"overview": ("/gui/", "Overview"),
                         "dataplanes": ("/gui/meshes/default/dataplanes", "Dataplanes of default"),
                         "dataplane": (f"/gui/meshes/default/dataplanes/{docs[0]['name']}", f"Dataplane {docs[0]['name']}"),
                         "graph": ("/gui/meshes/default/graph", "Service graph of default")}
                first = {name: await bench.first_render(*view) for name, view in views.items()}
                shot = await browser.new_page(viewport={"width": 1800, "height": 1000})
                await shot.goto(cp.base + "/gui/meshes/default/graph")
                await shot.wait_for_selector("svg#graph")
                await shot.screenshot(path=str(workdir / "graph.png"), full_page=True)
                live = await bench.live(docs[0]["name"])
                cpu = await bench.cpu()
                await browser.close()
        return {"proxies": proxies, "services": service_count, "rounds": rounds, "first_render": first,
                "live": live, "cpu_s_per_mesh_wide_change": cpu, "cpu_window_s": CPU_WINDOW_S,
                "hub_publish_ms_per_mesh_wide_change": hub_publish_ms(proxies),
                "graph_screenshot": str(workdir / "graph.png")}
    finally:
        await pool.stop(asyncio.get_running_loop())
        cp.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxies", type=int, default=1000)
    parser.add_argument("--services", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.proxies, args.services, args.rounds))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
