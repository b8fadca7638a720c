"""Shared by the kumactl parity tests: one-shot commands that must succeed, resources put through the API,
input files and an HTTP server of files (for `apply -f URL`)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

from cli_helpers import Server, http_json, run_cli


def ok(*args: str, url: str | None, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    result = run_cli(*args, url=url, stdin=stdin, env=env)
    assert result.returncode == 0, f"controlplane {' '.join(args)}: {result.stderr}"
    return result.stdout


def put(server: Server, path: str, body: dict[str, object]) -> None:
    status, reply = http_json("PUT", server.url + path, body)
    assert status in (200, 201), reply


def templated_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "resources"
    directory.mkdir()
    (directory / "01-mesh.yaml").write_text("type: Mesh\nname: {{ mesh }}\ntracing:\n  backends:\n"
                                            "  - name: {{ backend }}\n    type: zipkin\n"
                                            "    url: http://{{ collector.host }}:9411/api/v2/spans\n")
    (directory / "02-trace.yml").write_text("type: TrafficTrace\nmesh: {{ mesh }}\nname: all\n"
                                            "selectors:\n- match:\n    kuma.io/service: '*'\nbackend: {{ backend }}\n")
    (directory / "README.md").write_text("not a resource")
    (directory / "nested").mkdir()
    (directory / "nested" / "03-ignored.yaml").write_text("type: Mesh\nname: never-applied\n")
    return directory


class Files(http.server.BaseHTTPRequestHandler):
    """Serves `/mesh.yaml` and `/huge.yaml`; 404 for anything else."""

    def do_GET(self) -> None:
        bodies = {"/mesh.yaml": b"type: Mesh\nname: from-url\n",
                  "/huge.yaml": b"# " + b"x" * (8 * 1024 * 1024) + b"\n"}
        body = bodies.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_files() -> Iterator[str]:
    """A thread serving `Files` on a free port, for as long as the generator is open."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
