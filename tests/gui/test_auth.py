"""Where the API protects a read (`--dataplane-auth token --no-api-localhost-is-admin`: a dataplane's
configuration needs an admin token or its own), the GUI says so and offers a token field; the open parts of
the page still show, and with the dataplane's own token the protected sections appear (issue 15, tests)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import Server, http_json, run_cli, start_server
from playwright.sync_api import expect

from .conftest import Tab
from .dataset import DOCUMENTS


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    where = tmp_path_factory.mktemp("gui-auth")
    token_file = where / "admin.token"
    server = start_server("memory", where / "controlplane.log", "--dataplane-auth", "token",
                          "--no-api-localhost-is-admin", "--admin-token-file", str(token_file))
    try:
        applied = run_cli("apply", "-f", "-", "--api-token-file", str(token_file), url=server.url,
                          stdin="---\n".join(DOCUMENTS))
        assert applied.returncode == 0, applied.stderr
        yield server, token_file.read_text().strip()
    finally:
        server.stop()


def issue(server: Server, admin: str, name: str) -> str:
    """A dataplane token for `name`, from the API with the admin token (`controlplane generate dataplane-token`)."""
    body = json.dumps({"mesh": "default", "name": name, "validFor": "1h"}).encode()
    request = urllib.request.Request(server.url + "/tokens/dataplane", data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(response.read().decode())


def test_a_protected_read_asks_for_a_token_and_shows_the_rest(tab: Tab, guarded: tuple[Server, str],
                                                              tmp_path: Path) -> None:
    server, admin = guarded
    tab.console.allow(r"status of 40[13]")  # the browser logs the refused reads themselves
    assert http_json("GET", server.url + "/meshes/default/dataplanes/frontend-1/policies")[0] == 401
    tab.goto(server.url + "/gui/meshes/default/dataplanes/frontend-1")
    expect(tab.locator("#view-title")).to_have_text("Dataplane frontend-1")
    panel = tab.locator("#auth")
    expect(panel).to_be_visible()
    expect(tab.locator("#auth-message")).to_contain_text("per-dataplane configuration needs an admin token")
    for section in ("#dp-listeners", "#dp-xds", "#dp-spans", "#dp-config"):
        expect(tab.locator(f"{section} .needs-token")).to_contain_text("needs a token")
    expect(tab.locator("#dp-tags")).to_contain_text("kuma.io/service=frontend")  # open reads still show
    tab.shot("auth")

    tab.fill("#auth-token", issue(server, admin, "backend-1"))  # another dataplane's token: 403
    tab.click("#auth-form button[type=submit]")
    expect(tab.locator("#auth-message")).to_contain_text("The token given was not accepted")
    expect(tab.locator("#auth-message")).to_contain_text("backend-1")

    tab.fill("#auth-token", issue(server, admin, "frontend-1"))
    tab.click("#auth-form button[type=submit]")
    expect(panel).to_be_hidden()
    expect(tab.locator("#dp-listener-table tbody tr")).to_have_count(2)
    expect(tab.locator("#dp-xds-table")).to_be_visible()
    assert tab.evaluate("() => sessionStorage.getItem('controlplane.token')") is not None

    tab.goto(server.url + "/gui/")  # open views need no token
    expect(tab.locator("#view-title")).to_have_text("Overview")
    expect(panel).to_be_hidden()
