"""Every `controlplane` command, given broken input, fails with one `Error:` line: no traceback, exit non-zero.

The commands are enumerated from the click group, so a command added tomorrow is covered without editing
this file: each of its parameters whose *kind* is known here (API URL, store URL, ADS address, files,
listen addresses, ports) is broken in turn with every value of that kind, while the other parameters keep a
working value (`FILLERS`, a real `controlplane run` for the API). A command with none of these kinds, or
with a required parameter nobody knows how to fill, fails `test_every_command_is_covered`, which names it.

Each case runs the console script as a real process (issue 11 §5). What counts as "one line": after click's
two usage lines (`Usage:` / `Try ...`) and the structured log lines of commands that log to stderr (`run`,
`dataplane run`), exactly one line remains, it starts with `Error: `, names the broken option or value, and
does not call the failure "unexpected" (the marker `controlplane.cli.errors` gives programming errors).
"""

from __future__ import annotations

import http.server
import re
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from cli_helpers import Server, free_port, http_json, run_cli, start_server

from controlplane.cli.main import cli

UNBINDABLE = "203.0.113.7"  # TEST-NET-3: never a local address, so binding to it fails
WORKERS = 2
# structlog's console renderer, and grpc's C core (`E1201 21:02:31.817616   25717 add_port.cc:83] ...`)
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d|[EWI]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\])")


@dataclass(frozen=True)
class Broken:
    """One broken value for a parameter, and what the error line must mention (the value itself if empty)."""

    value: str
    why: str
    mentions: tuple[str, ...] = ()
    at_parse: bool = False  # refused while click parses the option (its type or callback), as in every command


@dataclass(frozen=True)
class Case:
    path: tuple[str, ...]
    param: str
    broken: Broken

    @property
    def id(self) -> str:
        return f"{' '.join(self.path)} {self.param}={self.broken.why}"


@dataclass
class World:
    """Live things broken values point at: a control plane (API and ADS ports) and a non-API HTTP server."""

    server: Server
    ads_port: int
    foreign_url: str
    dataplane_file: Path
    missing_dir: Path  # never created: files "in" it can be neither read nor written

    @property
    def missing(self) -> str:
        return str(self.missing_dir / "file")


def broken_values(param: click.Parameter, world: World) -> list[Broken]:
    """The broken values of `param`'s kind (empty: a kind this test does not break)."""
    name, flag = param.name or "", _flag(param)
    if name == "api_url":
        return [Broken(f"http://127.0.0.1:{world.ads_port}", "ads-port"),
                Broken(world.foreign_url, "not-the-api-404-empty"),
                Broken("ftp://127.0.0.1:5681", "wrong-scheme", (flag,), at_parse=True),
                Broken("http://no-such-host.invalid:5681", "unreachable-host")]
    if name == "address":  # `config control-planes add --address`: checked like --api-url, then connected to
        return [Broken("ftp://127.0.0.1:5681", "wrong-scheme", (flag,), at_parse=True),
                Broken(f"http://127.0.0.1:{world.ads_port}", "ads-port"),
                Broken(world.foreign_url, "not-the-api-404-empty"),
                Broken("http://no-such-host.invalid:5681", "unreachable-host")]
    if name == "control_plane":  # `config control-planes switch|remove --name`
        return [Broken("no-such-control-plane", "unknown-control-plane")]
    if name == "shell":
        return [Broken("powershell", "unknown-shell", at_parse=True)]
    if name == "store_url":
        database = f"{world.missing_dir}/x.db"
        return [Broken("mysql://x", "bad-store-url"), Broken(f"sqlite:{database}", "store-in-missing-dir", (database,))]
    if name == "cp_address":
        return [Broken("http://127.0.0.1:5678", "url-not-host-port", (flag,)),
                Broken("127.0.0.1:99999", "port-out-of-range", (flag,))]
    if isinstance(param.type, click.Path) or name in ("path", "envoy_path"):
        return [Broken(world.missing, "missing-file", (world.missing, flag))]
    if name in ("api_address", "xds_address", "host"):
        return [Broken(UNBINDABLE, "unbindable-address")]
    if name.endswith("port") and isinstance(param.type, click.types.IntParamType):
        return [Broken("70000", "port-out-of-range", ("70000", flag, "port"))]
    return []


def fillers(world: World) -> dict[str, str]:
    """Working values for parameters a command needs to get as far as the broken one."""
    return {"mesh": "default", "name": "web-1", "type_arg": "mesh", "path": str(world.dataplane_file),
            "port": str(free_port()), "address": world.server.url, "control_plane": "local", "shell": "bash",
            **OPTIONAL_FILLERS}


OPTIONAL_FILLERS = {
    "token_id": "some-token-id",  # so that `revoke` gets as far as the API
    "name": "web-1",  # `get mesh NAME`: a list would be fine too, but one resource takes the 404 path
    "api_port": "0", "xds_port": "0",  # `run` must never take the real default ports of this machine
}


# Cases whose outcome another change owns ("skip", or "unexpected-ok": one line, but called unexpected).
DEFERRED: dict[tuple[tuple[str, ...], str, str], str] = {}


def leaf_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                            list[click.Command]]]:
    """(path, [group, ..., command]) of every runnable command, depth first."""
    for name in sorted(group.commands):
        command = group.commands[name]
        if isinstance(command, click.Group):
            for path, chain in leaf_commands(command, (*prefix, name)):
                yield path, [command, *chain]
        else:
            yield (*prefix, name), [command]


LEAVES = dict(leaf_commands())


def _flag(param: click.Parameter) -> str:
    return max(param.opts, key=len) if isinstance(param, click.Option) else (param.name or "")


def argv(chain: list[click.Command], path: tuple[str, ...], values: dict[str, str]) -> list[str]:
    """The command line for `path` with `values` (by parameter name) on the level that declares them."""
    args: list[str] = []
    for name, command in zip(path, chain, strict=True):
        args.append(name)
        arguments = []
        for param in command.params:
            if param.name not in values or (isinstance(param, click.Option) and param.is_flag):
                continue
            if isinstance(param, click.Argument):
                arguments.append(values[param.name])
            else:
                args += [_flag(param), values[param.name]]
        args += arguments
    return args


def needed(chain: list[click.Command], world: World) -> dict[str, str]:
    """Fill every required parameter, and the optional ones FILLERS knows (a `--token-id` so that `revoke`
    reaches the API); a required parameter without a filler is a gap this test reports."""
    fill = fillers(world)
    values: dict[str, str] = {}
    for command in chain:
        for param in command.params:
            if param.name in fill and (param.required or param.name in OPTIONAL_FILLERS):
                values[param.name] = fill[param.name]
            elif param.required:
                raise AssertionError(f"no filler for required parameter {param.name!r} of {command.name}")
    return values


def cases(path: tuple[str, ...], world: World) -> list[Case]:
    """`path`'s cases. A value refused while click parses the option (by its type: a `Path(exists=True)`
    that does not exist, an `IntRange` port; or by its callback: `--api-url ftp://`) gets the same message
    in every command, so it is tried on the first command declaring that option only (~40 processes fewer,
    mostly the connection options every client command shares)."""
    seen: set[tuple[str, str]] = set()
    found = []
    for leaf, chain in sorted(LEAVES.items()):
        for param in (p for command in chain for p in command.params):
            for broken in broken_values(param, world):
                if DEFERRED.get((leaf, param.name or "", broken.why)) == "skip":
                    continue
                if broken.at_parse or _click_refuses(param):
                    if (_flag(param), broken.why) in seen:
                        continue
                    seen.add((_flag(param), broken.why))
                if leaf == path:
                    found.append(Case(path, param.name or "", broken))
    return found


def _click_refuses(param: click.Parameter) -> bool:
    kind = param.type
    return (isinstance(kind, click.Path) and kind.exists) or isinstance(kind, click.IntRange)


class _EmptyNotFound(http.server.BaseHTTPRequestHandler):
    """Some other HTTP service on the port: 404 with an empty body for everything."""

    def _answer(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("broken")
    ads_port = free_port()
    server = start_server("memory", tmp / "server.log", "--xds-port", str(ads_port))
    foreign = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EmptyNotFound)
    thread = threading.Thread(target=foreign.serve_forever, daemon=True)
    thread.start()
    dataplane = tmp / "dataplane.yaml"
    dataplane.write_text("type: Dataplane\nmesh: default\nname: broken-input-dp\nnetworking:\n  address: 127.0.0.1\n"
                         "  inbound:\n  - port: 20001\n    servicePort: 8081\n    tags:\n      kuma.io/service: web\n")
    try:
        assert not (tmp / "missing").exists()
        assert http_json("PUT", f"{server.url}/meshes/default", {"type": "Mesh", "name": "default"})[0] == 201
        status, body = http_json("PUT", f"{server.url}/meshes/default/dataplanes/web-1", {
            "type": "Dataplane", "mesh": "default", "name": "web-1", "networking": {"address": "127.0.0.1", "inbound": [
                {"port": 20001, "servicePort": 8081, "tags": {"kuma.io/service": "web"}}]}})
        assert status == 201, body
        yield World(server, ads_port, f"http://127.0.0.1:{foreign.server_address[1]}", dataplane, tmp / "missing")
    finally:
        foreign.shutdown()
        foreign.server_close()
        assert server.stop() == 0, server.log()


def _own_dir(root: Path, case: Case) -> Path:
    """A new directory per case: two cases can share an id (a flag accepted at several levels)."""
    prefix = case.id.replace(" ", "_").replace("/", "_").replace("=", "-") + "-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def check(case: Case, world: World, cwd: Path) -> str:
    """Run one case; "" when it fails the way it should, else what went wrong (with its output)."""
    values = needed(LEAVES[case.path], world) | {case.param: case.broken.value}
    args = argv(LEAVES[case.path], case.path, values)
    result = run_cli(*args, url=world.server.url, cwd=cwd)
    report = f"{case.id}: `controlplane {' '.join(args)}` exited {result.returncode}\nstderr:\n{result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if lines and lines[0].startswith("Usage: "):
        lines = [line for line in lines[1:] if not line.startswith("Try '")]
    errors = [line for line in lines if not LOG_LINE.match(line)]
    if result.returncode == 0 or "Traceback" in result.stderr or len(errors) != 1:
        return report
    line = errors[0]
    mentions = case.broken.mentions or (case.broken.value,)
    if not line.startswith("Error: ") or not any(m in line for m in mentions) or " None" in line:
        return report + f"\n(the error line must start with 'Error: ' and mention one of {mentions})"
    if "unexpected" in line and DEFERRED.get((case.path, case.param, case.broken.why)) != "unexpected-ok":
        return report + "\n(broken input is not a programming error)"
    return ""


def test_every_command_is_covered(world: World) -> None:
    """Each command has at least one broken-input case and every required parameter has a filler."""
    uncovered = [" ".join(path) for path in LEAVES if not cases(path, world)]
    assert not uncovered, f"commands without a broken-input case: {uncovered}; teach broken_values() their kind"
    for chain in LEAVES.values():
        needed(chain, world)
    assert len(LEAVES) >= 16, sorted(LEAVES)  # the enumeration itself works (run, apply, ..., revoke admin-token)


@pytest.mark.parametrize("path", sorted(LEAVES), ids=[" ".join(p) for p in sorted(LEAVES)])
def test_broken_input_is_one_line(path: tuple[str, ...], world: World, tmp_path: Path) -> None:
    """Run in an empty working directory: nothing a failing command writes lands in the repository."""
    with ThreadPoolExecutor(WORKERS) as pool:
        # Each case in its own directory: parallel `run`s would otherwise share ./controlplane.db, whose
        # lock (one control plane per SQLite file) makes all but one fail for the wrong reason.
        failures = [f for f in pool.map(lambda case: check(case, world, _own_dir(tmp_path, case)),
                                        cases(path, world)) if f]
    assert not failures, "\n\n".join(failures)
    assert not world.missing_dir.exists(), f"a failing `{' '.join(path)}` created {world.missing_dir}"
