"""A configuration Envoy rejects: NACKed once, never re-sent in a loop, reported by the status API, the old
config keeps serving, and the next good change is ACKed (reference/xds-protocol.md §1.4).

The control plane never generates such a listener (its validation and the snapshot consistency check stop
it), so the test injects one through the in-process test hook: `plane.cache.set_snapshot(...)` with a
snapshot whose outbound listener has two identical filter chains, which Envoy refuses ("filter chain ''
has the same matching rules defined as ''").
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import pytest
from envoy.config.listener.v3 import listener_pb2
from google.protobuf.message import Message

from controlplane.cli.run import ControlPlane
from controlplane.xds.cache import Published
from controlplane.xds.snapshot import ResourceEntry, Snapshot
from controlplane.xds.types import ADS_ORDER, LISTENER_TYPE

from .support.collectors import ZipkinCollector
from .support.envoy import EnvoyProcess
from .support.plane import Api, StartSidecar, Topology, converging, counter, send, wait_converged
from .support.waiting import eventually

pytestmark = pytest.mark.e2e

NODE: Final = "default.web-1"
# A re-send loop would repeat within milliseconds (every NACK answered at once); 1.5 s of silence after
# the NACK shows there is none. Absence cannot be awaited, hence this one bounded observation window.
NO_RESEND_WINDOW_S: Final = 1.5


def zipkin_mesh(url: str, sampling: float) -> dict[str, Any]:
    backend = {"name": "jaeger-collector", "type": "zipkin", "sampling": sampling, "conf": {"url": url}}
    return {
        "type": "Mesh",
        "name": "default",
        "tracing": {"defaultBackend": "jaeger-collector", "backends": [backend]},
    }


TRAFFIC_TRACE: Final = {
    "type": "TrafficTrace", "mesh": "default", "name": "trace-all-traffic",
    "selectors": [{"match": {"kuma.io/service": "*"}}],
}  # fmt: skip


def with_duplicate_filter_chain(snapshot: Snapshot, listener_name: str) -> Snapshot:
    """``snapshot`` with ``listener_name``'s first filter chain repeated: consistent for our checks (same
    references), invalid for Envoy. Every other resource, and so every other type version, is unchanged."""
    resources: dict[str, dict[str, Message | ResourceEntry]] = {
        type_url: dict(group.entries) for type_url, group in snapshot.types.items()
    }
    broken = listener_pb2.Listener()
    broken.CopyFrom(snapshot.resources(LISTENER_TYPE)[listener_name].message)
    broken.filter_chains.append(broken.filter_chains[0])
    resources[LISTENER_TYPE][listener_name] = broken
    return Snapshot.build(resources)


def responses_sent(plane: ControlPlane) -> dict[str, int]:
    """Responses sent on web-1's stream so far, per type."""
    status = plane.status.status(NODE)
    assert status is not None, "web-1 is not connected"
    return {
        type_url: status.types[type_url].responses_sent if type_url in status.types else 0
        for type_url in ADS_ORDER
    }


async def lds_version_text(envoy: EnvoyProcess) -> str:
    """The version of the last LDS update Envoy accepted (SotW version_info / delta system_version_info)."""
    text = (await envoy.stats(r"^listener_manager\.lds\.version_text$"))["listener_manager.lds.version_text"]
    assert isinstance(text, str), text
    return text.strip('"')


@pytest.mark.envoy_versions
@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_rejected_listener_is_nacked_once_and_the_next_good_change_is_acked(
    plane: ControlPlane, api: Api, topology: Topology, sidecars: StartSidecar, delta: bool
) -> None:
    async with ZipkinCollector() as zipkin:
        await api.apply(zipkin_mesh(zipkin.url, 0.0), TRAFFIC_TRACE, topology.backend_dataplane(),
                        topology.web_dataplane())  # fmt: skip
        backend = await sidecars("backend-1", "backend", delta=delta)
        web = await sidecars("web-1", "web", delta=delta)
        await wait_converged(api, backend, web)
        good = plane.cache.get_snapshot(NODE)
        assert good is not None
        before = responses_sent(plane)
        assert await counter(web.envoy, "listener_manager.lds.update_rejected") == 0
        successes = await counter(web.envoy, "listener_manager.lds.update_success")

        bad = with_duplicate_filter_chain(good, topology.outbound_listener)
        assert bad.version(LISTENER_TYPE) != good.version(LISTENER_TYPE)
        assert plane.cache.set_snapshot(NODE, bad) is Published.CHANGED

        async def rejected() -> bool:
            return await counter(web.envoy, "listener_manager.lds.update_rejected") == 1

        await eventually(rejected, timeout=10, message="Envoy never rejected the listener")
        await eventually(
            lambda: plane.status.status(NODE).types[LISTENER_TYPE].nacks == 1,  # type: ignore[union-attr]
            timeout=5,
            message="the control plane never saw the NACK",
        )
        await asyncio.sleep(NO_RESEND_WINDOW_S)

        # Exactly one Listener response (the bad one) and nothing else since; one NACK, not re-sent.
        assert responses_sent(plane) == {**before, LISTENER_TYPE: before[LISTENER_TYPE] + 1}
        assert plane.metrics.registry.get_sample_value("xds_nacks_total", {"type_url": LISTENER_TYPE}) == 1
        assert await counter(web.envoy, "listener_manager.lds.update_rejected") == 1
        listener_status = (await api.xds("web-1"))["types"]["Listener"]
        address = topology.outbound_listener.removeprefix("outbound:")
        envoy_error = (
            f"error adding listener '{address}': filter chain '' has the same matching rules defined as ''. "
            "duplicate matcher is: {}"
        )
        assert listener_status["lastNackMessage"] == (
            f"Error adding/updating listener(s) {topology.outbound_listener}: {envoy_error}\n"
        )
        assert (listener_status["nacks"], listener_status["lastNackVersion"], listener_status["versionSent"]) == (
            1, bad.version(LISTENER_TYPE), bad.version(LISTENER_TYPE)
        )  # fmt: skip
        assert listener_status["versionAcked"] == good.version(LISTENER_TYPE)

        # Envoy keeps serving the config it had: still one filter chain, requests still succeed.
        dump = await web.envoy.config_dump("dynamic_listeners")
        (outbound,) = [c for c in dump["configs"] if c.get("name") == topology.outbound_listener]
        assert len(outbound["active_state"]["listener"]["filter_chains"]) == 1
        assert outbound["error_state"]["details"] == envoy_error
        assert await lds_version_text(web.envoy) == good.version(LISTENER_TYPE)
        await send(topology.outbound_url, 2, expect="backend")

        # A real change through the API replaces the bad snapshot and is ACKed.
        async with converging(api, web, backend):
            await api.apply(zipkin_mesh(zipkin.url, 100.0))
        fixed = plane.cache.get_snapshot(NODE)
        assert fixed is not None
        assert await counter(web.envoy, "listener_manager.lds.update_rejected") == 1
        assert await counter(web.envoy, "listener_manager.lds.update_success") > successes
        assert await lds_version_text(web.envoy) == fixed.version(LISTENER_TYPE)
        listener_status = (await api.xds("web-1"))["types"]["Listener"]
        assert (
            listener_status["versionAcked"] == listener_status["versionSent"] == fixed.version(LISTENER_TYPE)
        )
        assert listener_status["nacks"] == 1
        # ... and is in effect: the sampling change makes the next request traced.
        await send(topology.outbound_url, expect="backend")
        spans = await zipkin.wait_for_spans(count=2)
        assert {(s["kind"], s["localEndpoint"]["serviceName"]) for s in spans} == {
            ("CLIENT", "web"),
            ("SERVER", "backend"),
        }
