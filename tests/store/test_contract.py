"""The Store contract (controlplane/store/base.py), run against every backend.

One suite, as Kuma's store_test_template.go does it: a backend is correct when it passes this file
unchanged. Backend-specific behaviour (persistence, WAL, threads) lives in test_sqlite.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf import struct_pb2, wrappers_pb2
from postgres_fixture import create_database, drop_database

from controlplane.errors import AlreadyExists, Conflict, MeshNotFound, NotFound, StoreUnavailable
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.resources.registry import KINDS
from controlplane.store.base import Change, ChangeKind, Page, Store
from controlplane.store.memory import MemoryStore
from controlplane.store.postgres import PostgresStore
from controlplane.store.sqlite import SqliteStore

DEADLINE = 5.0

CREATED, UPDATED, DELETED = ChangeKind.CREATED, ChangeKind.UPDATED, ChangeKind.DELETED


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        opened: Store = MemoryStore()
    elif request.param == "sqlite":
        opened = await SqliteStore.open(tmp_path / "cp.db")
    else:
        # A fresh database per test on the session's PostgreSQL (tests/postgres_fixture.py); the server
        # starts only when the first postgres case runs.
        server = request.getfixturevalue("postgres_server")
        url = await create_database(server)
        opened = await PostgresStore.open(url)
    yield opened
    await opened.close()
    if request.param == "postgres":
        await drop_database(server, url)


# Builders --------------------------------------------------------------------------------------------


ZIPKIN_URL = "http://zipkin.local:9411/api/v2/spans"


def mesh_spec(sampling: float | None = 0.0, url: str = ZIPKIN_URL) -> mesh_pb2.Mesh:
    backend = mesh_pb2.TracingBackend(name="zipkin-1", type="zipkin", conf=struct_pb2.Struct())
    backend.conf.update({"url": url})
    if sampling is not None:
        backend.sampling.CopyFrom(wrappers_pb2.DoubleValue(value=sampling))
    return mesh_pb2.Mesh(tracing=mesh_pb2.Tracing(default_backend="zipkin-1", backends=[backend]))


def mesh(name: str, sampling: float | None = 0.0, url: str = ZIPKIN_URL) -> Resource:
    return Resource(ResourceKey(MESH, "", name), mesh_spec(sampling, url))


def trace(mesh_name: str, name: str, backend: str = "zipkin-1") -> Resource:
    spec = mesh_pb2.TrafficTrace(
        selectors=[mesh_pb2.Selector(match={"kuma.io/service": "*"})],
        conf=mesh_pb2.TrafficTrace.Conf(backend=backend),
    )
    return Resource(ResourceKey(TRAFFIC_TRACE, mesh_name, name), spec)


def dataplane(mesh_name: str, name: str, port: int = 8080) -> Resource:
    inbound = mesh_pb2.Dataplane.Networking.Inbound(port=port, tags={"kuma.io/service": name})
    spec = mesh_pb2.Dataplane(networking=mesh_pb2.Dataplane.Networking(address="10.0.0.1", inbound=[inbound]))
    return Resource(ResourceKey(DATAPLANE, mesh_name, name), spec)


def change(kind: ChangeKind, resource: Resource, version: int) -> Change:
    return Change(kind, resource.key, version)


async def drain(changes: AsyncIterator[Change]) -> list[Change]:
    """Everything the iterator yields until it ends (after the store closes), within the deadline."""
    async with asyncio.timeout(DEADLINE):
        return [c async for c in changes]


# Create / get ----------------------------------------------------------------------------------------


async def test_create_then_get_round_trips_the_whole_resource(store: Store) -> None:
    before = datetime.now(UTC)
    created = await store.create(mesh("default", sampling=0.0))
    after = datetime.now(UTC)

    assert created == Resource(
        ResourceKey(MESH, "", "default"),
        mesh_spec(sampling=0.0),
        1,
        created.creation_time,
        created.creation_time,
    )
    assert created.creation_time is not None
    assert (
        created.creation_time.utcoffset() is not None
        and created.creation_time.utcoffset().total_seconds() == 0
    )
    assert before <= created.creation_time <= after
    fetched = await store.get(created.key)
    assert fetched == created
    # A DoubleValue set to 0 must stay "set to 0", not turn into "unset" (Kuma's sampling semantics).
    assert fetched.spec.tracing.backends[0].HasField("sampling")
    assert fetched.spec != mesh_spec(sampling=None)


async def test_create_keeps_times_the_resource_carries(store: Store) -> None:
    """An import (`controlplane import --store`) keeps creationTime, which policy ranking depends on."""
    created = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    modified = datetime(2024, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
    stored = await store.create(replace(mesh("imported"), creation_time=created, modification_time=modified))
    assert (stored.creation_time, stored.modification_time) == (created, modified)
    got = await store.get(stored.key)
    assert (got.creation_time, got.modification_time) == (created, modified)


async def test_labels_round_trip_through_create_update_list_and_reopen(store: Store) -> None:
    """User labels are kept whole (keys sorted on the way out), replaced by an update, and a labels-only
    update is a new version; every backend returns them from get and list."""
    await store.create(mesh("default"))
    labelled = replace(trace("default", "tt"), labels={"version": "v1", "team": "core", "kuma.io/service": "web"})
    created = await store.create(labelled)
    assert list(created.labels.items()) == [("kuma.io/service", "web"), ("team", "core"), ("version", "v1")]
    assert await store.get(created.key) == created
    relabelled = await store.update(replace(labelled, labels={"team": "edge"}), expected_version=1)
    assert (relabelled.version, dict(relabelled.labels)) == (2, {"team": "edge"})
    assert (await store.list(TRAFFIC_TRACE)).items == (relabelled,)
    cleared = await store.update(replace(labelled, labels={}), expected_version=2)
    assert (await store.get(cleared.key)).labels == {}


async def test_store_keeps_its_own_copy_of_labels(store: Store) -> None:
    given = {"team": "core"}
    created = await store.create(replace(mesh("default"), labels=given))
    given["team"] = "changed-by-caller"
    assert dict((await store.get(created.key)).labels) == {"team": "core"}


async def test_create_existing_raises_already_exists_and_keeps_the_first(store: Store) -> None:
    first = await store.create(mesh("default", url="http://first"))
    with pytest.raises(AlreadyExists):
        await store.create(mesh("default", url="http://second"))
    assert await store.get(first.key) == first


async def test_same_name_in_different_meshes_is_two_resources(store: Store) -> None:
    await store.create(mesh("a"))
    await store.create(mesh("b"))
    a = await store.create(trace("a", "tt"))
    b = await store.create(trace("b", "tt"))
    assert (await store.get(a.key), await store.get(b.key)) == (a, b)


def _missing_ops() -> list[tuple[str, Callable[[Store], Awaitable[object]]]]:
    key = ResourceKey(TRAFFIC_TRACE, "default", "nope")
    return [
        ("get", lambda s: s.get(key)),
        ("update", lambda s: s.update(Resource(key, trace("default", "nope").spec), expected_version=1)),
        ("delete", lambda s: s.delete(key)),
        ("delete-mesh", lambda s: s.delete(ResourceKey(MESH, "", "nope"))),
    ]


@pytest.mark.parametrize("op", [op for _, op in _missing_ops()], ids=[name for name, _ in _missing_ops()])
async def test_missing_resource_raises_not_found(
    store: Store, op: Callable[[Store], Awaitable[object]]
) -> None:
    await store.create(mesh("default"))
    await store.create(trace("default", "other"))
    with pytest.raises(NotFound):
        await op(store)


@pytest.mark.parametrize(
    "resource",
    [
        Resource(ResourceKey(MESH, "default", "m"), mesh_spec()),
        Resource(ResourceKey(TRAFFIC_TRACE, "", "tt"), trace("x", "tt").spec),
        Resource(ResourceKey(TRAFFIC_TRACE, "default", "tt"), mesh_spec()),
        Resource(ResourceKey(MESH, "", ""), mesh_spec()),
        Resource(ResourceKey(MESH, "", "m"), mesh_spec(), labels={"team": 1}),  # type: ignore[dict-item]
    ],
    ids=["mesh-with-mesh", "trace-without-mesh", "spec-of-wrong-kind", "empty-name", "label-not-a-string"],
)
async def test_malformed_resource_is_rejected_and_nothing_stored(store: Store, resource: Resource) -> None:
    with pytest.raises(ValueError):
        await store.create(resource)
    assert [await store.list(kind) for kind in KINDS] == [Page((), 0)] * len(KINDS)


async def test_store_keeps_its_own_copy_of_specs(store: Store) -> None:
    original = mesh("default", url="http://kept")
    created = await store.create(original)
    original.spec.tracing.default_backend = "changed-by-caller"
    created.spec.tracing.default_backend = "changed-too"
    assert (await store.get(original.key)).spec == mesh_spec(url="http://kept")


# Update ----------------------------------------------------------------------------------------------


async def test_update_bumps_version_keeps_creation_time_and_advances_modification_time(store: Store) -> None:
    created = await store.create(mesh("default", sampling=10.0))
    second = await store.update(mesh("default", sampling=20.0), expected_version=1)
    third = await store.update(mesh("default", sampling=0.0), expected_version=2)

    assert second == Resource(
        created.key, mesh_spec(sampling=20.0), 2, created.creation_time, second.modification_time
    )
    assert third == Resource(
        created.key, mesh_spec(sampling=0.0), 3, created.creation_time, third.modification_time
    )
    assert created.modification_time is not None and second.modification_time is not None
    assert third.modification_time is not None
    assert created.modification_time < second.modification_time < third.modification_time
    assert await store.get(created.key) == third


async def test_update_with_stale_version_raises_conflict_and_changes_nothing(store: Store) -> None:
    await store.create(mesh("default", sampling=10.0))
    current = await store.update(mesh("default", sampling=20.0), expected_version=1)
    for stale in (0, 1, 3):
        with pytest.raises(Conflict):
            await store.update(mesh("default", sampling=99.0), expected_version=stale)
    assert await store.get(current.key) == current


async def test_concurrent_updates_with_same_expected_version_exactly_one_wins(store: Store) -> None:
    created = await store.create(mesh("default", sampling=0.0))
    results = await asyncio.gather(
        *(store.update(mesh("default", sampling=float(i)), expected_version=1) for i in range(1, 21)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Resource)]
    assert len(winners) == 1
    assert [type(r) for r in results if not isinstance(r, Resource)] == [Conflict] * 19
    assert winners[0].version == 2 and winners[0].creation_time == created.creation_time
    assert await store.get(created.key) == winners[0]


async def test_concurrent_creates_of_one_key_exactly_one_wins(store: Store) -> None:
    await store.create(mesh("m"))
    results = await asyncio.gather(
        *(store.create(trace("m", "tt")) for _ in range(10)), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["AlreadyExists"] * 9 + ["Resource"]


@pytest.mark.parametrize("resource", [trace("ghost", "tt"), dataplane("ghost", "dp")], ids=["trace", "dataplane"])
async def test_create_in_a_missing_mesh_raises_and_writes_nothing(store: Store, resource: Resource) -> None:
    # Checked inside the store's write, not only by the API beforehand: a resource created while its mesh
    # is being deleted must not outlive the mesh.
    await store.create(mesh("default"))
    with pytest.raises(MeshNotFound):
        await store.create(resource)
    assert await store.list(resource.kind) == Page((), 0)


async def test_create_racing_a_mesh_delete_leaves_no_orphan(store: Store) -> None:
    await store.create(mesh("doomed"))
    results = await asyncio.gather(
        store.delete(ResourceKey(MESH, "", "doomed")),
        *(store.create(dataplane("doomed", f"dp-{i}", port=8080 + i)) for i in range(10)),
        return_exceptions=True,
    )
    assert results[0] is None
    assert all(isinstance(r, (Resource, MeshNotFound)) for r in results[1:]), results
    assert await store.list(DATAPLANE, "doomed") == Page((), 0)


# List ------------------------------------------------------------------------------------------------

DATAPLANES = [("default", "web"), ("other", "db"), ("default", "api"), ("default", "zeta"), ("other", "api")]
IN_ORDER = [("default", "api"), ("default", "web"), ("default", "zeta"), ("other", "api"), ("other", "db")]


async def _create_dataplanes(store: Store) -> dict[tuple[str, str], Resource]:
    await store.create(mesh("default"))
    await store.create(mesh("other"))
    await store.create(trace("default", "not-a-dataplane"))
    return {(m, n): await store.create(dataplane(m, n)) for m, n in DATAPLANES}


@pytest.mark.parametrize(
    ("mesh_name", "offset", "size", "expected", "total"),
    [
        (None, 0, None, IN_ORDER, 5),
        (None, 0, 2, IN_ORDER[:2], 5),
        (None, 2, 2, IN_ORDER[2:4], 5),
        (None, 4, 10, IN_ORDER[4:], 5),
        (None, 5, 1, [], 5),
        (None, 0, 0, [], 5),
        ("other", 0, None, IN_ORDER[3:], 2),
        ("other", 1, 1, IN_ORDER[4:], 2),
        ("default", 1, None, IN_ORDER[1:3], 3),
        ("missing", 0, None, [], 0),
    ],
    ids=[
        "all",
        "first-page",
        "middle-page",
        "last-page",
        "past-end",
        "size-0",
        "mesh",
        "mesh-paged",
        "mesh-offset",
        "unknown-mesh",
    ],
)
async def test_list_orders_by_mesh_and_name_and_pages(
    store: Store,
    mesh_name: str | None,
    offset: int,
    size: int | None,
    expected: list[tuple[str, str]],
    total: int,
) -> None:
    created = await _create_dataplanes(store)
    page = await store.list(DATAPLANE, mesh_name, offset=offset, size=size)
    assert page == Page(items=tuple(created[k] for k in expected), total=total)


async def test_list_of_meshes_and_empty_kind(store: Store) -> None:
    b = await store.create(mesh("b"))
    a = await store.create(mesh("a"))
    assert await store.list(MESH) == Page(items=(a, b), total=2)
    assert await store.list(TRAFFIC_TRACE) == Page(items=(), total=0)


@pytest.mark.parametrize(("offset", "size"), [(-1, None), (0, -1)], ids=["negative-offset", "negative-size"])
async def test_list_rejects_negative_paging(store: Store, offset: int, size: int | None) -> None:
    with pytest.raises(ValueError):
        await store.list(MESH, offset=offset, size=size)


# Delete ----------------------------------------------------------------------------------------------


async def test_delete_removes_only_that_resource(store: Store) -> None:
    await store.create(mesh("default"))
    keep = await store.create(trace("default", "keep"))
    gone = await store.create(trace("default", "gone"))
    await store.delete(gone.key)
    with pytest.raises(NotFound):
        await store.get(gone.key)
    assert await store.list(TRAFFIC_TRACE) == Page(items=(keep,), total=1)


async def test_mesh_delete_cascades_to_its_resources_only_with_one_change_each(store: Store) -> None:
    await store.create(mesh("default"))
    default_mesh = await store.update(mesh("default", sampling=50.0), expected_version=1)
    await store.create(mesh("other"))
    tt_b, tt_a = await store.create(trace("default", "tt-b")), await store.create(trace("default", "tt-a"))
    await store.update(trace("default", "tt-a", backend="x"), expected_version=1)
    dp = await store.create(dataplane("default", "dp-1"))
    for unrelated in (trace("other", "tt-a"), dataplane("other", "dp-1")):
        await store.create(unrelated)
    changes = store.watch()

    await store.delete(default_mesh.key)
    await store.close()

    assert await drain(changes) == [
        change(DELETED, dp, 1),
        change(DELETED, tt_a, 2),
        change(DELETED, tt_b, 1),
        change(DELETED, default_mesh, 2),
    ]


async def test_mesh_delete_leaves_other_meshes_untouched(store: Store) -> None:
    default_mesh = await store.create(mesh("default"))
    other_mesh = await store.create(mesh("other"))
    await store.create(trace("default", "tt"))
    await store.create(dataplane("default", "dp"))
    other_tt = await store.create(trace("other", "tt"))
    other_dp = await store.create(dataplane("other", "dp"))

    await store.delete(default_mesh.key)

    assert {kind.name: await store.list(kind) for kind in KINDS} == {
        "Mesh": Page((other_mesh,), 1),
        "TrafficTrace": Page((other_tt,), 1),
        "MeshTrace": Page((), 0),
        "Dataplane": Page((other_dp,), 1),
    }


# Watch -----------------------------------------------------------------------------------------------


async def test_watch_delivers_every_change_in_order_to_each_watcher(store: Store) -> None:
    before = await store.create(mesh("default"))  # committed before watch(): not seen
    first, second = store.watch(), store.watch()
    tt = await store.create(trace("default", "tt"))
    await store.update(trace("default", "tt", backend="other"), expected_version=1)
    await store.update(mesh("default", sampling=1.0), expected_version=1)
    await store.delete(tt.key)
    late = store.watch()  # sees only what follows
    await store.delete(before.key)
    await store.close()

    expected = [
        change(CREATED, tt, 1),
        change(UPDATED, tt, 2),
        change(UPDATED, before, 2),
        change(DELETED, tt, 2),
        change(DELETED, before, 2),
    ]
    assert [await drain(first), await drain(second), await drain(late)] == [expected, expected, expected[-1:]]


async def test_watch_iterator_ends_when_store_closes(store: Store) -> None:
    changes = store.watch()
    waiting = asyncio.create_task(drain(changes))
    await store.create(mesh("default"))
    await store.close()
    assert await waiting == [Change(CREATED, ResourceKey(MESH, "", "default"), 1)]
    assert await drain(store.watch()) == []  # watching a closed store ends at once


async def test_closed_watcher_stops_receiving_and_others_continue(store: Store) -> None:
    closed, open_ = store.watch(), store.watch()
    first = await store.create(mesh("a"))
    await closed.aclose()
    second = await store.create(mesh("b"))
    await store.close()
    assert [await drain(closed), await drain(open_)] == [
        [],
        [change(CREATED, first, 1), change(CREATED, second, 1)],
    ]


async def test_closed_store_refuses_work(store: Store) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get(ResourceKey(MESH, "", "default"))
    with pytest.raises(StoreUnavailable):
        await store.create(mesh("default"))
    with pytest.raises(StoreUnavailable):
        await store.revoke_token(TOKEN_A)
    await store.close()  # idempotent


# Token revocations ---------------------------------------------------------------------------------------

TOKEN_A, TOKEN_B, TOKEN_C = "a" * 32, "b" * 32, "c" * 32


async def test_revoke_token_says_whether_it_was_new(store: Store) -> None:
    assert await store.revoke_token(TOKEN_A) is True
    assert await store.revoke_token(TOKEN_A) is False
    assert [await store.is_token_revoked(t) for t in (TOKEN_A, TOKEN_B)] == [True, False]
    assert (await store.revoked_tokens_since(0)).token_ids == (TOKEN_A,)


async def test_revoked_tokens_since_a_cursor(store: Store) -> None:
    empty = await store.revoked_tokens_since(0)
    assert empty.token_ids == ()
    await store.revoke_token(TOKEN_A)
    await store.revoke_token(TOKEN_B)
    first = await store.revoked_tokens_since(empty.cursor)
    assert first.token_ids == (TOKEN_A, TOKEN_B)
    await store.revoke_token(TOKEN_C)
    later = await store.revoked_tokens_since(first.cursor)
    # Never misses one; may repeat recent ones (PostgreSQL re-reads rows that are not settled yet).
    assert later.token_ids[-1:] == (TOKEN_C,) and set(later.token_ids) <= {TOKEN_A, TOKEN_B, TOKEN_C}
    assert (await store.revoked_tokens_since(0)).token_ids == (TOKEN_A, TOKEN_B, TOKEN_C)


@pytest.mark.parametrize("bad", ["", "A" * 32, "a" * 31, "a" * 32 + "\n", "../../etc/passwd"],
                         ids=["empty", "upper", "short", "newline", "path"])
async def test_revoke_token_rejects_non_ids_and_stores_nothing(store: Store, bad: str) -> None:
    with pytest.raises(ValueError, match="not a token id"):
        await store.revoke_token(bad)
    assert (await store.revoked_tokens_since(0)).token_ids == ()


async def test_revocations_are_not_resources(store: Store) -> None:
    changes = store.watch()
    await store.revoke_token(TOKEN_A)
    await store.create(mesh("default"))
    assert [c.key.name async for c in _first(changes, 1)] == ["default"]  # no change event for a revocation
    assert {kind: (await store.list(kind)).total for kind in KINDS} == {kind: int(kind is MESH) for kind in KINDS}


async def _first(changes: AsyncIterator[Change], n: int) -> AsyncIterator[Change]:
    async with asyncio.timeout(DEADLINE):
        for _ in range(n):
            yield await anext(changes)
