"""The CLI configuration file (kumactl's format) and `GET /config`'s view of a RunConfig: parsing with one
clear error per wrong field, the atomic private write, and redaction of every password."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import click
import pytest
import yaml

from controlplane.cli import contexts
from controlplane.cli.config_view import cluster_id, config_view, redact_url
from controlplane.cli.run import RunConfig

KUMACTL_STYLE = """\
contexts:
- controlPlane: example
  name: example
controlPlanes:
- coordinates:
    apiServer:
      caCertFile: /tmp/ca-cert.pem
      url: https://cp.example:5682
      authType: tokens
      authConf:
        token: T
  name: example
currentContext: example
"""


def test_kumactl_layout_is_read_and_written_back_the_same() -> None:
    parsed = contexts.parse(yaml.safe_load(KUMACTL_STYLE))
    assert parsed == contexts.CliConfig(
        (contexts.ControlPlane("example", "https://cp.example:5682", ca_cert_file="/tmp/ca-cert.pem", token="T"),),
        "example")
    assert contexts.parse(yaml.safe_load(contexts.render(parsed))) == parsed


@pytest.mark.parametrize(("document", "message"), [
    ({"controlPlanes": [{"name": "x", "coordinates": {"apiServer": {"url": "http://x", "skipVerify": True}}}]},
     "controlPlanes[0].coordinates.apiServer.skipVerify: is not supported by this CLI"),
    ({"controlPlanes": [{"name": "x", "coordinates": {"apiServer": {"url": "http://x", "clientCertFile": "c"}}}]},
     "controlPlanes[0].coordinates.apiServer.clientCertFile: is not supported by this CLI"),
    ({"currentcontext": "x"}, ".currentcontext: unknown field; valid fields: controlPlanes, contexts, currentContext"),
    ({"controlPlanes": [{"name": "x"}]}, "controlPlanes[0]: needs a name and coordinates.apiServer.url"),
    ({"controlPlanes": [{"name": "x", "coordinates": {"apiServer": {"url": 5}}}]},
     "controlPlanes[0].coordinates.apiServer.url: must be a string"),
    ({"controlPlanes": [{"name": "x", "coordinates": {"apiServer": {"url": "http://x", "authType": "oidc"}}}]},
     "controlPlanes[0].coordinates.apiServer.authType: only \"tokens\" is supported, got 'oidc'"),
    ({"controlPlanes": "x"}, "controlPlanes: must be a list"),
    ([1], "the file: must be a mapping"),
], ids=["skip-verify", "client-cert", "unknown-field", "no-url", "url-not-text", "other-auth", "not-a-list",
        "not-a-mapping"])
def test_wrong_fields_are_named(document: object, message: str) -> None:
    with pytest.raises(contexts.ConfigInvalid) as raised:
        contexts.parse(document)
    assert str(raised.value) == message


def test_a_missing_file_is_the_default_configuration_unless_named_explicitly(tmp_path: Path) -> None:
    assert contexts.load(contexts.ConfigLocation(tmp_path / "absent.yaml")) == contexts.DEFAULT_CONFIG
    with pytest.raises(click.ClickException) as raised:
        contexts.load(contexts.ConfigLocation(tmp_path / "absent.yaml", explicit=True))
    assert raised.value.message == f"--config-file {tmp_path / 'absent.yaml'}: No such file or directory"
    broken = tmp_path / "broken.yaml"
    broken.write_text("controlPlanes: [\n")
    with pytest.raises(click.ClickException) as raised:
        contexts.load(contexts.ConfigLocation(broken))
    assert raised.value.message.startswith(f"the CLI configuration {broken} is not valid: while parsing")


def test_save_is_private_and_atomic_and_creates_only_the_default_directory(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contexts.CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    where = contexts.locate(None)
    assert where.path == tmp_path / "xdg" / "controlplane" / "config.yaml"
    contexts.save(where, contexts.DEFAULT_CONFIG)
    assert stat.S_IMODE(where.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(where.path.parent.stat().st_mode) == 0o700
    assert sorted(os.listdir(where.path.parent)) == ["config.yaml"]  # no temporary file left behind
    explicit = contexts.ConfigLocation(tmp_path / "missing-dir" / "config.yaml", explicit=True)
    with pytest.raises(click.ClickException):
        contexts.save(explicit, contexts.DEFAULT_CONFIG)
    assert not (tmp_path / "missing-dir").exists()


def test_removing_the_active_control_plane_activates_the_first_left() -> None:
    config = contexts.DEFAULT_CONFIG.with_control_plane(contexts.ControlPlane("a", "http://a:5681"))
    assert config.current == "a"
    assert config.without("a").current == "local"
    assert config.without("a").without("local") == contexts.CliConfig((), "")


@pytest.mark.parametrize(("url", "shown"), [
    ("postgres://cp:s3cret@db:5432/cp", "postgres://cp:*****@db:5432/cp"),
    ("postgres://cp@db/cp?sslmode=require&sslpassword=x&password=y",
     "postgres://cp@db/cp?sslmode=require&sslpassword=*****&password=*****"),
    ("postgresql://db/cp", "postgresql://db/cp"),
], ids=["user-info", "query", "none"])
def test_passwords_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_config_view_of_a_postgres_store_has_no_password() -> None:
    config = RunConfig("postgres://cp:s3cret@db:5432/cp", "0.0.0.0", 0, "0.0.0.0", 5678, 0.1, 1.0)
    assert "s3cret" not in repr(config_view(config, api_port=5681, xds_port=5678))
    assert config_view(config, 5681, 5678)["store"] == {"type": "postgres",
                                                        "postgres": {"url": "postgres://cp:*****@db:5432/cp"}}


def test_replicas_of_one_store_share_a_cluster_id() -> None:
    assert cluster_id("postgres://a:x@db:5432/cp") == cluster_id("postgres://b:y@db/cp")
    assert cluster_id("postgres://db/cp") != cluster_id("postgres://db/other")
    assert cluster_id("sqlite:/tmp/x.db") == cluster_id("sqlite:/tmp/./x.db")
    assert cluster_id("memory") != cluster_id("memory")
