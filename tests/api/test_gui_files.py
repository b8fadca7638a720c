"""The GUI's files (controlplane/api/gui.py, package data of controlplane.gui): found through importlib.resources,
complete (every module a page or module imports is there, and pyproject packages every file), and served
with the right content types, caching and security headers; any other /gui path is the page (deep links)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import aiohttp
import pytest

from controlplane.api.app import create_app
from controlplane.api.gui import ASSET_CACHE, CSP, PAGE_CACHE, load_gui
from controlplane.api.listener import api_runner, start_api_server
from controlplane.observability import Metrics
from controlplane.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"""\bfrom "(\.\.?/[^"]+)";""")


def test_files_come_through_importlib_resources_and_every_import_resolves() -> None:
    files = load_gui()
    assert {"style.css", "icon.svg", "js/app.js"} <= set(files.assets)
    assert all(path in files.assets for path in ("js/views/overview.js", "js/views/dataplanes.js",
                                                "js/views/dataplane.js", "js/views/policies.js", "js/views/graph.js"))
    package = resources.files("controlplane.gui")
    assert (package / "index.html").is_file()
    page = files.page.body.decode()
    referenced = re.findall(rf'(?:src|href)="assets/{files.version}/([^"]+)"', page)
    assert sorted(referenced) == ["icon.svg", "js/app.js", "style.css"]
    imports = [(path, target) for path, file in files.assets.items() if path.endswith(".js")
               for target in IMPORT.findall(file.body.decode())]
    assert len(imports) > 20
    for path, target in imports:
        resolved = _normal(f"{Path(path).parent.as_posix()}/{target}")
        assert resolved in files.assets, f"{path} imports {target}, which is not a GUI file"


def _normal(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return "/".join(parts)


def test_pyproject_packages_every_gui_file() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["controlplane.gui"]
    gui = ROOT / "controlplane" / "gui"
    files = [p.relative_to(gui).as_posix() for p in gui.rglob("*") if p.is_file() and "__pycache__" not in p.parts
             and p.suffix != ".py"]
    missed = [f for f in files if not any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)]
    assert not missed, f"add these to [tool.setuptools.package-data] in pyproject.toml: {missed}"


@pytest.fixture
async def base() -> AsyncIterator[str]:
    server = await start_api_server(api_runner(create_app(MemoryStore(), Metrics())), "127.0.0.1", 0,
                                    ssl_context=None, max_connections=None)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


def assert_secured(headers: aiohttp.typedefs.LooseHeaders) -> None:
    assert headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP and "unsafe" not in CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/gui", "/gui/", "/gui/meshes/default", "/gui/meshes/default/dataplanes/web-1",
                                  "/gui/meshes/default/policies/meshtraces/default", "/gui/meshes/default/graph?service=x"])
async def test_every_gui_path_is_the_page(base: str, path: str) -> None:
    files = load_gui()
    async with aiohttp.ClientSession() as session, session.get(base + path) as response:
        body = await response.read()
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Cache-Control"] == PAGE_CACHE
        assert_secured(response.headers)
        assert body == files.page.body and f"assets/{files.version}/js/app.js".encode() in body


async def test_assets_have_their_type_are_cached_for_good_and_revalidate(base: str) -> None:
    files = load_gui()
    types = {"js/app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8",
             "icon.svg": "image/svg+xml"}
    async with aiohttp.ClientSession() as session:
        for path, content_type in types.items():
            async with session.get(f"{base}/gui/assets/{files.version}/{path}") as response:
                assert (response.status, response.headers["Content-Type"]) == (200, content_type)
                assert response.headers["Cache-Control"] == ASSET_CACHE
                assert_secured(response.headers)
                assert await response.read() == files.assets[path].body
                etag = response.headers["ETag"]
            async with session.get(f"{base}/gui/assets/{files.version}/{path}", headers={"If-None-Match": etag}) as again:
                assert (again.status, await again.read()) == (304, b"")
        async with session.get(base + "/gui/", headers={"If-None-Match": files.page.etag}) as page:
            assert page.status == 304


@pytest.mark.parametrize("path", ["/gui/assets/0000/js/app.js", "/gui/assets/{version}/js/nothing.js",
                                  "/gui/assets/{version}/", "/gui/assets/{version}/../index.html"])
async def test_missing_assets_are_404_not_the_page(base: str, path: str) -> None:
    async with aiohttp.ClientSession() as session, \
            session.get(base + path.format(version=load_gui().version)) as response:
        assert response.status == 404
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_browser_guard_covers_the_gui(base: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(base + "/gui/", headers={"Host": "evil.example"}) as r:
        assert r.status == 421
