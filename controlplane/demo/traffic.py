"""The demo's running phase: send a request every second, print each trace, keep score.

`DemoReport` is the score: requests that went through, traces received, whether one spanned every demo
service, and how long after the start the first trace arrived. Its `verdict` decides the exit status of
`controlplane demo --duration`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import click

from controlplane.demo.receiver import SpanReceiver
from controlplane.demo.tree import Span, render_trace, trace_services

REQUEST_TIMEOUT_S: Final = 5.0


@dataclass
class DemoReport:
    """What happened, for the final verdict; times are event-loop seconds since ``started``."""

    started: float
    expected_services: frozenset[str]
    requests_ok: int = 0
    requests_failed: int = 0
    last_error: str = ""
    traces: int = 0
    full_traces: int = 0
    first_trace_s: float | None = None
    services_seen: set[str] = field(default_factory=set)

    def record_trace(self, spans: Sequence[Span], now: float) -> None:
        services = trace_services(spans)
        self.traces += 1
        self.services_seen |= services
        if self.expected_services <= services:
            self.full_traces += 1
            if self.first_trace_s is None:
                self.first_trace_s = now - self.started

    def verdict(self, *, checked: bool) -> tuple[bool, str]:
        """(success, one-line reason). Unchecked (an external collector): success = requests went through."""
        sent = f"{self.requests_ok} requests ok, {self.requests_failed} failed"
        if self.requests_failed and self.last_error:
            sent += f" (last error: {self.last_error})"
        if not checked:
            return self.requests_ok > 0, f"{sent}; traces went to the external collector (not checked here)"
        if self.full_traces:
            return True, (f"{self.full_traces} of {self.traces} traces spanned {', '.join(sorted(self.expected_services))}"
                          f"; first after {self.first_trace_s:.1f}s; {sent}")
        if not self.traces:
            return False, f"no trace was received; {sent}"
        missing = ", ".join(sorted(self.expected_services - self.services_seen)) or "none"
        return False, (f"{self.traces} traces received but none spanned every service "
                       f"(services never seen: {missing}); {sent}")


async def send_traffic(url: str, report: DemoReport, interval_s: float, echo: Callable[[str], None]) -> None:
    """GET ``url`` every ``interval_s`` until cancelled; failures are printed and counted."""
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
        while True:
            began = loop.time()
            error = await _get(session, url)
            if error is None:
                report.requests_ok += 1
            else:
                report.requests_failed += 1
                report.last_error = error
                echo(f"request to {url} failed: {error}")
            await asyncio.sleep(max(0.0, interval_s - (loop.time() - began)))


async def _get(session: aiohttp.ClientSession, url: str) -> str | None:
    """None if the request went through every hop, else a short reason."""
    try:
        async with session.get(url) as response:
            body = await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return str(exc) or type(exc).__name__
    return None if response.status == 200 else f"HTTP {response.status}: {body.strip()[:200]}"


async def print_traces(receiver: SpanReceiver, report: DemoReport, echo: Callable[[str], None]) -> None:
    """Print each trace as a tree as soon as it is complete; runs until cancelled."""
    loop = asyncio.get_running_loop()
    async for spans in receiver.traces():
        report.record_trace(spans, loop.time())
        echo(render_trace(spans))


async def wait_until_served(url: str, expected_body: str, timeout: float,
                            alive: Callable[[], str | None]) -> None:
    """Poll ``url`` until it answers 200 ``expected_body`` (every sidecar got its config).

    ``alive`` returns a reason when a part of the demo died, which ends the wait at once.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = "no answer yet"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
        while True:
            dead = alive()
            if dead:
                raise click.ClickException(dead)
            try:
                async with session.get(url) as response:
                    body = (await response.text()).strip()
                    if response.status == 200 and body == expected_body:
                        return
                    last = f"HTTP {response.status}: {body[:200]}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = str(exc) or type(exc).__name__
            if loop.time() > deadline:
                raise click.ClickException(f"{url} did not answer {expected_body!r} within {timeout:.0f}s "
                                           f"(last: {last})")
            await asyncio.sleep(0.1)  # nothing signals "config applied" to us; poll under the deadline
