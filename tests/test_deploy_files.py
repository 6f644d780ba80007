"""docker-compose.yml and the Dockerfile, parsed and checked (no Docker engine runs here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from edge_agent.settings import AgentSettings
from tianwang.cli import app
from tianwang.config import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = compose["services"]
    return out


def test_the_parts_and_their_images(compose: dict[str, Any]) -> None:
    s = services(compose)
    assert {"postgres", "minio", "api", "agent", "simulator"} <= set(s)
    assert s["postgres"]["image"].startswith("postgis/postgis:")
    assert s["minio"]["image"].startswith("minio/minio:")
    for name in ("api", "agent", "simulator"):
        assert s[name]["build"] == "." and s[name]["image"] == "tianwang:latest"
    for name, svc in s.items():
        image = svc.get("image", "")
        assert not image.endswith(":latest") or svc.get("build"), f"{name}: pin the image tag"


def test_health_checks_and_volumes(compose: dict[str, Any]) -> None:
    s = services(compose)
    for name in ("postgres", "minio", "api", "agent", "simulator"):
        hc = s[name].get("healthcheck")
        assert hc and hc["test"] and hc.get("interval"), f"{name} has no health check"
    declared = set(compose["volumes"])
    for name, path in (
        ("postgres", "/var/lib/postgresql/data"),
        ("minio", "/data"),
        ("api", None),
        ("agent", None),
    ):
        mounts = [v.split(":") for v in s[name]["volumes"]]
        assert any(m[0] in declared for m in mounts), f"{name} keeps its data on a named volume"
        if path:
            assert any(m[1] == path for m in mounts)
    # the agent's outbox is on its volume: restarting the container loses nothing
    outbox = s["agent"]["environment"]["TIANWANG_AGENT_OUTBOX"]
    assert any(outbox.startswith(m.split(":")[1]) for m in s["agent"]["volumes"])


def test_the_api_gets_every_setting_it_reads(compose: dict[str, Any]) -> None:
    env = services(compose)["api"]["environment"]
    wanted = {f"TIANWANG_{name.upper()}" for name in Settings.model_fields}
    missing = wanted - set(env)
    assert not missing, f"settings the API reads but compose does not pass: {sorted(missing)}"
    assert env["TIANWANG_DIRECT_PROBE"] == "false"  # in production only agents talk to devices
    assert env["TIANWANG_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["TIANWANG_OBJECT_STORE"].startswith("s3://") and "@minio:9000" in env["TIANWANG_OBJECT_STORE"]
    # secrets have no defaults: compose refuses to start without them
    for key in ("TIANWANG_SECRET_KEY",):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env[key]), key
    cmd = " ".join(services(compose)["api"]["command"])
    assert cmd.index("db upgrade") < cmd.index("serve"), "migrations run before the API serves"
    deps = services(compose)["api"]["depends_on"]
    assert deps["postgres"]["condition"] == "service_healthy"


def test_the_agent_gets_what_it_needs(compose: dict[str, Any]) -> None:
    env = services(compose)["agent"]["environment"]
    required = {
        f"TIANWANG_AGENT_{n.upper()}" for n, f in AgentSettings.model_fields.items() if f.is_required()
    }
    assert required <= set(env), required - set(env)
    known = {f"TIANWANG_AGENT_{n.upper()}" for n in AgentSettings.model_fields}
    assert set(env) <= known, f"unknown agent settings: {set(env) - known}"
    assert env["TIANWANG_AGENT_CENTRAL"] == "http://api:8000"


def test_commands_are_real_cli_verbs_and_options(compose: dict[str, Any]) -> None:
    cli = typer.main.get_command(app)
    for name in ("api", "agent", "simulator"):
        cmd = services(compose)[name].get("command")
        words = shlex.split(cmd[-1]) if cmd[0] == "sh" else cmd
        for part in " ".join(words).split("&&"):
            argv = [w for w in shlex.split(part.replace("exec ", "")) if w != "tianwang"]
            if not argv:
                continue
            group: Any = cli
            while argv and hasattr(group, "commands") and argv[0] in group.commands:
                group = group.commands[argv.pop(0)]
            assert not hasattr(group, "commands"), f"{name}: {part!r} does not name a command"
            opts = {o for p in group.params for o in getattr(p, "opts", [])}
            for w in argv:
                if w.startswith("--"):
                    assert w in opts, f"{name}: {w} is not an option of {group.name}"


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert (
        froms
        and froms[-1].startswith("python:3.11")
        and all(f.split(":")[0] in ("python", "node") for f in froms)
    )
    # the console's Leaflet comes from the npm lock file into the final image, where the API looks for it
    assert "npm ci" in text and "COPY --from=web /web/node_modules /opt/tianwang/web/node_modules" in text
    assert re.search(r"^HEALTHCHECK .*healthz", text, re.M | re.S)
    assert re.search(r"^USER\s+(?!root)\w+", text, re.M), "runs as a non-root user"
    assert 'ENTRYPOINT ["tianwang"]' in text
    for folder in ("platform", "edge_agent", "simulator"):
        assert f"COPY {folder} ./{folder}" in text
    assert not (ROOT / "platform" / "__init__.py").exists()
