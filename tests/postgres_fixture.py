"""pytest fixtures for a real PostgreSQL (registered as a plugin from tests/conftest.py).

`postgres_server` starts one throwaway cluster per session (tests/postgres_server.py); `postgres_url` gives
each test a fresh, empty database on it, so every test also exercises the migrations from scratch;
`own_postgres` gives a test its own cluster, for tests that stop and restart the database.

Missing server binaries skip these tests locally (with the reason) but FAIL them in CI (env CI=true): CI
must prove the PostgreSQL backend, and `.ci/run` installs the binaries when they are missing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator

import pytest
from postgres_server import PostgresNotFound, PostgresServer

_databases = itertools.count(1)


def _new_server() -> PostgresServer:
    try:
        server = PostgresServer.create()
    except PostgresNotFound as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(str(exc))
    try:
        server.start()
    except BaseException:
        server.remove()
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = _new_server()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A cluster of the test's own: it may stop and start it without disturbing other tests."""
    server = _new_server()
    try:
        yield server
    finally:
        server.remove()


async def create_database(server: PostgresServer) -> str:
    """A new empty database on `server`; returns its URL."""
    import asyncpg

    name = f"cp_test_{os.getpid()}_{next(_databases)}"
    conn = await asyncpg.connect(server.url("postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY')
    finally:
        await conn.close()
    return server.url(name)


async def drop_database(server: PostgresServer, url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(server.url("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """URL of a fresh database on the session's server, dropped after the test."""
    url = await create_database(postgres_server)
    yield url
    if postgres_server.is_running():
        await drop_database(postgres_server, url)
