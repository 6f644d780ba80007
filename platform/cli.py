"""`tianwang`: the command line. Server-side verbs work on the configured database directly."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from tianwang.config import Settings, get_settings
from tianwang.context import AppContext
from tianwang.errors import TianwangError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tianwang (天网) platform")
db_app = typer.Typer(no_args_is_help=True, help="database schema")
token_app = typer.Typer(no_args_is_help=True, help="API tokens")
cameras_app = typer.Typer(no_args_is_help=True, help="the camera registry (一机一档)")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(cameras_app, name="cameras")


def fail(msg: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _context(settings: Settings | None = None) -> AppContext:
    return AppContext.build(settings or get_settings())


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from tianwang.storage import migrate
    from tianwang.storage.db import make_engine

    s = get_settings()
    url = s.effective_database_url
    make_engine(url).dispose()  # makes the SQLite directory
    migrate.upgrade(url, revision)
    typer.echo(f"database at {revision}: {_redact(url)}")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, staff, investigator, installer or agent")],
    name: Annotated[str, typer.Option(help="who or what holds it")],
) -> None:
    """Print a new API token (shown once; only its hash is stored)."""
    from tianwang.auth.tokens import create_token

    ctx = _context()
    try:
        with ctx.db.session() as s:
            token = create_token(s, role, name)
    except TianwangError as e:
        raise fail(e.detail) from None
    finally:
        ctx.close()
    typer.echo(token)


@cameras_app.command("add")
def cameras_add(
    file: Annotated[str, typer.Argument(help="JSON file with the camera record (API body), or - for stdin")],
) -> None:
    """Register one camera from a JSON record (same fields as POST /api/v1/cameras)."""
    from pydantic import ValidationError

    from tianwang.cameras import service
    from tianwang.cameras.schemas import CameraSpec

    raw = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        spec = CameraSpec.model_validate_json(raw)
    except ValidationError as e:
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "record"
            typer.secho(f"  {loc}: {err['msg']}", err=True)
        raise fail("camera record is invalid") from None
    ctx = _context()
    try:
        with ctx.db.session() as s:
            out = service.to_out(service.create(s, spec, ctx.box))
    except TianwangError as e:
        raise fail(e.detail) from None
    finally:
        ctx.close()
    typer.echo(out.model_dump_json(indent=2))


@cameras_app.command("get")
def cameras_get(device_id: str) -> None:
    """Show one camera's record (never its password)."""
    from tianwang.cameras import service

    ctx = _context()
    try:
        with ctx.db.session() as s:
            typer.echo(service.to_out(service.get_row(s, device_id)).model_dump_json(indent=2))
    except TianwangError as e:
        raise fail(e.detail) from None
    finally:
        ctx.close()


@cameras_app.command("list")
def cameras_list(area_code: str = "", status: str = "", limit: int = 100) -> None:
    """List cameras: device_id, status, kind, name."""
    from tianwang.cameras import service

    ctx = _context()
    try:
        with ctx.db.session() as s:
            page = service.list_cameras(s, area_code=area_code or None, status=status or None, limit=limit)
            for r in page.items:
                typer.echo(f"{r.device_id}  {r.status:<10}  {r.kind:<10}  {r.name}")
    finally:
        ctx.close()


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Run the API (settings from TIANWANG_* env / .env)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run("tianwang.api.app:create_app", factory=True, host=host, port=port, workers=workers)


@app.command("demo")
def demo(
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    cameras: Annotated[int, typer.Option(help="simulated cameras")] = 50,
) -> None:
    """The main job on the embedded default: SQLite, a directory object store, the API."""
    from tianwang.demo import run_demo

    run_demo(port=port, cameras=cameras)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
