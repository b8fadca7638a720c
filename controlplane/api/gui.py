"""`GET /gui` and `/gui/...`: the web GUI's files (package data of `controlplane.gui`), on the API's own port.

Kuma serves kuma-gui the same way (`pkg/api-server/gui_handler.go`): a file when the path names one, the
single page otherwise, so every view has a URL of its own (`/gui/meshes/default/dataplanes/web-1`) that
survives a reload. The files are read once, through importlib.resources (so a wheel install serves them as
an editable one does), and kept in memory: a few dozen kilobytes.

Caching without a build step: asset URLs carry a hash of every file (`/gui/assets/<hash>/js/app.js`), which
the page's relative module imports inherit, so assets are cached for a year (`immutable`) and an upgrade
can never mix old and new scripts; the page itself is `no-cache` (revalidated by ETag every time). A request
for another hash is a 404: the page that asked for it is out of date and its next load fixes it.

Every answer carries a strict Content-Security-Policy (scripts, styles and connections only from this
origin, no inline script, no framing: `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff` and
`Referrer-Policy: no-referrer`. The browser guard (Host/Origin, origin.py) and authentication run before
this as for any route; the files themselves are public (they hold no data), the data comes from the API
with the reader's own credentials. Must not: render data server-side or add routes the API does not have.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Final

from aiohttp import web

PACKAGE: Final = "controlplane.gui"
INDEX: Final = "index.html"
ASSETS_PLACEHOLDER: Final = "__ASSETS__"
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
}
CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS: Final = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
PAGE_CACHE: Final = "no-cache"
ASSET_CACHE: Final = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class GuiFile:
    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class GuiFiles:
    """The page (asset URLs filled in) and the assets by their path below the package, e.g. `js/app.js`."""

    version: str
    page: GuiFile
    assets: dict[str, GuiFile]


def _walk(node: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            if child.name != "__pycache__":
                yield from _walk(child, f"{prefix}{child.name}/")
        elif any(child.name.endswith(suffix) for suffix in CONTENT_TYPES):
            yield prefix + child.name, child


def _file(body: bytes, path: str) -> GuiFile:
    suffix = path[path.rfind("."):]
    return GuiFile(body, CONTENT_TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def load_gui(package: str = PACKAGE) -> GuiFiles:
    """Every GUI file of `package` (FileNotFoundError naming it when the page is missing)."""
    found = dict(_walk(resources.files(package)))
    if INDEX not in found:
        raise FileNotFoundError(f"the GUI page {package}/{INDEX} is not installed")
    bodies = {path: entry.read_bytes() for path, entry in found.items()}
    digest = hashlib.sha256()
    for path, body in sorted(bodies.items()):
        digest.update(path.encode() + b"\0" + body + b"\0")
    version = digest.hexdigest()[:12]
    page = bodies.pop(INDEX).replace(ASSETS_PLACEHOLDER.encode(), f"assets/{version}".encode())
    return GuiFiles(version, _file(page, INDEX), {path: _file(body, path) for path, body in bodies.items()})


GUI: Final = web.AppKey("gui", GuiFiles)


def _answer(request: web.Request, file: GuiFile, cache: str) -> web.Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache, "ETag": file.etag}
    if file.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=file.body, headers={**headers, "Content-Type": file.content_type})


async def serve_gui(request: web.Request) -> web.Response:
    files = request.app[GUI]
    path = request.match_info.get("path", "")
    if path.startswith("assets/"):
        version, _, asset = path[len("assets/"):].partition("/")
        found = files.assets.get(asset) if version == files.version else None
        if found is None:
            return web.Response(status=404, text=f"no GUI file {path}\n", headers=SECURITY_HEADERS)
        return _answer(request, found, ASSET_CACHE)
    return _answer(request, files.page, PAGE_CACHE)


def add_routes(app: web.Application, files: GuiFiles) -> None:
    app[GUI] = files
    app.router.add_get("/gui", serve_gui)
    app.router.add_get("/gui/{path:.*}", serve_gui)
