"""`tianwang`: the command line. Server-side verbs work on the configured database directly."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

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
    try:
        return AppContext.build(settings or get_settings())
    except (RuntimeError, ValueError) as e:
        raise fail(str(e)) from None


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


@db_app.command("maintain")
def db_maintain(
    ahead_days: Annotated[int | None, typer.Option(help="days of partitions to keep made ahead")] = None,
    retention_days: Annotated[int | None, typer.Option(help="drop records older than this")] = None,
) -> None:
    """Make day partitions ahead and drop those past retention (passes, face and phone sightings)."""
    from tianwang.records.partitions import maintain_engine
    from tianwang.storage.db import make_engine

    s = get_settings()
    engine = make_engine(s.effective_database_url)
    try:
        rep = maintain_engine(
            engine,
            ahead_days=ahead_days or s.partitions_ahead_days,
            retention_days=retention_days or s.pass_retention_days,
        )
    except Exception as e:
        raise fail(f"maintenance failed: {type(e).__name__}: {e}") from None
    finally:
        engine.dispose()
    typer.echo(
        f"partitions created {len(rep.created)}, dropped {len(rep.dropped)}; "
        f"rows moved out of default {rep.moved_from_default}, rows past retention deleted {rep.deleted_rows}"
    )


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, staff, investigator, installer or agent")],
    name: Annotated[str, typer.Option(help="who or what holds it")],
    zones: Annotated[
        str,
        typer.Option(help="agent tokens (required): area-code prefixes, e.g. 4403,4404; '*' for all"),
    ] = "",
    agent_ids: Annotated[
        str,
        typer.Option(help="agent tokens: the agent ids allowed to use it (default: the first to heartbeat)"),
    ] = "",
) -> None:
    """Print a new API token (shown once; only its hash is stored)."""
    from tianwang.auth.tokens import create_token

    if role == "agent" and not zones.strip():
        raise fail("an agent token needs --zones: area-code prefixes like 4403,4404, or '*' for all zones")
    if role != "agent" and (zones or agent_ids):
        raise fail("--zones and --agent-ids are for agent tokens only")
    ctx = _context()
    try:
        with ctx.db.session() as s:
            token = create_token(
                s,
                role,
                name,
                zones=zones.split(",") if role == "agent" else None,
                agent_ids=agent_ids.split(",") if agent_ids else None,
            )
    except TianwangError as e:
        raise fail(e.detail) from None
    finally:
        ctx.close()
    typer.echo(token)


@token_app.command("list")
def token_list() -> None:
    """List tokens: id, role, name, created, last used, revoked (never the token); agent tokens' zones."""
    from sqlalchemy import select

    from tianwang.auth.tokens import unbounded_agent_tokens
    from tianwang.storage.models import ApiToken

    ctx = _context()
    try:
        with ctx.db.session() as s:
            for t in s.scalars(select(ApiToken).order_by(ApiToken.id)):
                used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "-"
                state = f"revoked {t.revoked_at.isoformat(timespec='seconds')}" if t.revoked_at else "active"
                bounds = ""
                if t.role == "agent":
                    z = ",".join(t.zones) if t.zones is not None else "ALL (made before zones: bound it)"
                    ids = ",".join(t.agent_ids) if t.agent_ids is not None else "(first to heartbeat)"
                    bounds = f"  zones {z}  agents {ids}"
                typer.echo(f"{t.id:>5}  {t.role:<12} {t.name:<24} {t.prefix}…  used {used}  {state}{bounds}")
            unbounded = unbounded_agent_tokens(s)
    finally:
        ctx.close()
    if unbounded:
        typer.echo(
            f"warning: {len(unbounded)} agent token(s) reach every zone (made before zones existed);"
            " bound them with `tianwang token limit ID --zones ...`",
            err=True,
        )


@token_app.command("limit")
def token_limit(
    token_id: Annotated[int, typer.Argument(help="the id shown by `tianwang token list`")],
    zones: Annotated[str, typer.Option(help="area-code prefixes, e.g. 4403,4404; '*' for all")] = "",
    agent_ids: Annotated[str, typer.Option(help="the agent ids allowed to use it")] = "",
) -> None:
    """Set an agent token's zones and/or agent ids (bounds a token made before zones existed)."""
    from tianwang.auth.tokens import limit_token

    if not zones and not agent_ids:
        raise fail("give --zones and/or --agent-ids")
    ctx = _context()
    try:
        with ctx.db.session() as s:
            row = limit_token(
                s, token_id, zones.split(",") if zones else None, agent_ids.split(",") if agent_ids else None
            )
            shown = f"zones {','.join(row.zones or ['ALL'])}, agents {','.join(row.agent_ids or ['(first)'])}"
    except TianwangError as e:
        raise fail(e.detail) from None
    finally:
        ctx.close()
    typer.echo(f"token {token_id}: {shown}")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="the id shown by `tianwang token list`")],
) -> None:
    """Revoke a token at once (it stays listed, for the audit trail)."""
    from tianwang.auth.tokens import revoke

    ctx = _context()
    try:
        with ctx.db.session() as s:
            done = revoke(s, token_id)
    finally:
        ctx.close()
    if not done:
        raise fail(f"no active token with id {token_id}")
    typer.echo(f"token {token_id} revoked")


@cameras_app.command("add")
def cameras_add(
    file: Annotated[
        str, typer.Argument(help="JSON file: one camera record (API body) or a list of them; - for stdin")
    ],
) -> None:
    """Register cameras from JSON (same fields as POST /api/v1/cameras).

    A list — such as the file `tianwang simulate --json` writes — registers each record and
    reports each failure; the simulator's `faults` annotation is not a registry field and is
    ignored. Exit code 1 if any record was refused.
    """
    from pydantic import ValidationError

    from tianwang.cameras import service
    from tianwang.cameras.schemas import CameraSpec

    try:
        raw = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        data = json.loads(raw)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise fail(f"cannot read {file}: {e}") from None
    records = data if isinstance(data, list) else [data]
    single = not isinstance(data, list)
    ctx = _context()
    failed = 0
    try:
        for i, rec in enumerate(records):
            label = f"record {i}" if not isinstance(rec, dict) else str(rec.get("device_id", f"record {i}"))
            if isinstance(rec, dict):
                rec = {k: v for k, v in rec.items() if k != "faults"}
            try:
                spec = CameraSpec.model_validate(rec)
                with ctx.db.session() as s:
                    out = service.to_out(service.create(s, spec, ctx.box))
            except ValidationError as e:
                failed += 1
                typer.secho(f"{label}: invalid", fg=typer.colors.RED, err=True)
                for err in e.errors():
                    loc = ".".join(str(x) for x in err["loc"]) or "record"
                    typer.secho(f"  {loc}: {err['msg']}", err=True)
                continue
            except TianwangError as e:
                failed += 1
                typer.secho(f"{label}: {e.detail}", fg=typer.colors.RED, err=True)
                continue
            if single:
                typer.echo(out.model_dump_json(indent=2))
            else:
                typer.echo(f"{out.device_id}  registered  {out.kind:<10} {out.name}")
    finally:
        ctx.close()
    if failed:
        raise fail("camera not registered" if single else f"{failed} of {len(records)} records refused")


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


@cameras_app.command("import")
def cameras_import(
    file: Annotated[
        Path, typer.Argument(help="CSV (UTF-8 or GB18030) or XLSX sheet, Chinese or English headers")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check every row, write nothing")] = False,
    all_or_nothing: Annotated[
        bool, typer.Option("--all-or-nothing", help="write nothing if any row is rejected")
    ] = False,
) -> None:
    """Import a sheet of cameras; exit code 1 if any row was rejected."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tianwang.cameras import bulk

    if not file.is_file():
        raise fail(f"{file}: no such file")
    ctx = _context()
    try:
        with (
            file.open("rb") as f,
            Progress(
                TextColumn("importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
            ) as bar,
        ):
            task = bar.add_task("rows", total=None)

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = bulk.import_cameras(
                ctx.db.engine,
                f,
                ctx.box,
                filename=file.name,
                max_bytes=ctx.settings.import_max_bytes,
                dry_run=dry_run,
                all_or_nothing=all_or_nothing,
                progress=step,
            )
    except TianwangError as e:
        for err in e.errors:
            typer.secho(f"  {err.get('field', '')}: {err.get('message', '')}", err=True)
        raise fail(e.detail) from None
    finally:
        ctx.close()
    mode = (
        "dry run, nothing written" if report.dry_run else ("written" if report.written else "nothing written")
    )
    typer.echo(
        f"{report.rows} rows: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.rejected)} rejected ({mode})"
    )
    for w in report.warnings:
        typer.secho(f"warning: {w}", fg=typer.colors.YELLOW)
    for r in report.rejected:
        typer.secho(f"row {r.row}" + (f" ({r.device_id})" if r.device_id else "") + ":", fg=typer.colors.RED)
        for why in r.errors:
            typer.echo(f"    {why.field}: {why.message}")
    if report.rejected:
        raise typer.Exit(1)


@cameras_app.command("export")
def cameras_export(
    format: Annotated[
        str | None, typer.Option("--format", help="csv or xlsx (default: from -o's suffix, else csv)")
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="headers and values in zh or en")] = "zh",
    output: Annotated[str, typer.Option("-o", "--output", help="file to write, - for stdout")] = "-",
    area_code: Annotated[str, typer.Option(help="only this area (prefix)")] = "",
    kind: Annotated[str, typer.Option(help="only this kind")] = "",
    status: Annotated[str, typer.Option(help="only this status")] = "",
) -> None:
    """Export the registry as CSV (UTF-8 with BOM) or XLSX; never passwords; imports back unchanged."""
    from tianwang.cameras import bulk

    fmt = format or ("xlsx" if output.lower().endswith(".xlsx") else "csv")
    if fmt not in ("csv", "xlsx"):
        raise fail(f"--format must be csv or xlsx, not {fmt!r}")
    if lang not in ("zh", "en"):
        raise fail(f"--lang must be zh or en, not {lang!r}")
    if fmt == "xlsx" and output == "-" and sys.stdout.isatty():
        raise fail("an .xlsx is binary: give -o FILE")
    ctx = _context()
    try:
        filters = {"area_code": area_code or None, "kind": kind or None, "status": status or None}
        if output == "-":
            bulk.export_cameras(ctx.db.engine, sys.stdout.buffer, fmt, lang, **filters)
            sys.stdout.flush()
        else:
            with open(output, "wb") as out:
                bulk.export_cameras(ctx.db.engine, out, fmt, lang, **filters)
            typer.echo(f"wrote {output}", err=True)
    except OSError as e:
        raise fail(f"{output}: {e.strerror}") from None
    finally:
        ctx.close()


@cameras_app.command("probe")
def cameras_probe(
    device_ids: Annotated[list[str] | None, typer.Argument(help="device IDs to probe")] = None,
    all_: Annotated[bool, typer.Option("--all", help="probe every in-use camera with ONVIF")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the probe answers as JSON")] = False,
    parallel: Annotated[int, typer.Option(help="probes at once")] = 8,
    direct: Annotated[
        bool | None,
        typer.Option(
            "--direct/--via-agent",
            help="run the device library on this machine (it must reach the cameras) or queue the probe "
            "for the owning agent; default: TIANWANG_DIRECT_PROBE",
        ),
    ] = None,
) -> None:
    """Probe registered cameras from this machine (clock, auth, profiles, URIs, a test snapshot).

    One camera: a full summary. Several (or --all): one line each with its truth. Exit code 2 if
    any probe found the device in trouble.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import select

    from tianwang.cameras import probe as probe_service
    from tianwang.protocol import ProbeResult
    from tianwang.storage.models import Camera
    from tianwang.wakeups import WakeHub

    ctx = _context()
    try:
        ids = list(device_ids or [])
        if all_:
            with ctx.db.session() as s:
                q = select(Camera.device_id).where(
                    Camera.lifecycle == "in_use", Camera.onvif_host.is_not(None)
                )
                ids += [i for i in s.scalars(q.order_by(Camera.device_id)) if i not in ids]
        if not ids:
            raise fail("name device IDs to probe, or --all")

        in_process = ctx.settings.direct_probe if direct is None else direct

        def one(device_id: str) -> ProbeResult | str:
            try:
                if in_process:
                    return probe_service.probe_camera(ctx, device_id, direct=True)
                # through the command channel, as the API does (the database wakes the agent)
                return asyncio.run(probe_service.probe_via_agent(ctx, WakeHub(), device_id, "cli"))
            except TianwangError as e:
                return e.detail

        with ThreadPoolExecutor(max(1, min(parallel, 32))) as pool:
            results = list(pool.map(one, ids))
    finally:
        ctx.close()
    trouble = False
    if as_json:
        out = [r.model_dump(mode="json") if isinstance(r, ProbeResult) else {"error": r} for r in results]
        typer.echo(json.dumps(out[0] if len(out) == 1 else out, indent=2, ensure_ascii=False))
    for device_id, r in zip(ids, results, strict=True):
        if isinstance(r, str):
            trouble = True
            if not as_json:
                typer.secho(f"{device_id}  {r}", fg=typer.colors.RED, err=True)
            continue
        trouble = trouble or r.error is not None
        if as_json:
            continue
        typer.echo(_probe_summary(r) if len(ids) == 1 else _probe_line(r))
    if trouble:
        raise typer.Exit(2)


def _probe_line(r: object) -> str:
    from tianwang.protocol import ProbeResult

    assert isinstance(r, ProbeResult)
    skew = "?" if r.clock_skew_s is None else f"{r.clock_skew_s:+.0f}s"
    make = f"{r.device_info.manufacturer or '?'} {r.device_info.model or '?'}" if r.device_info else "-"
    verdict = "-"
    if r.snapshot is not None:
        q = r.snapshot.quality or {}
        faults = ",".join(q.get("faults") or [])
        verdict = (
            "not judged"
            if not r.snapshot.judged
            else str(q.get("verdict", "?")) + (f"({faults})" if faults else "")
        )
    err = f"  {r.error.code}: {r.error.message}" if r.error else ""
    reach = "yes" if r.reachable else "no"
    auth = {True: "yes", False: "no", None: "?"}[r.authenticated]
    return (
        f"{r.device_id}  reachable={reach:<3} auth={auth:<3} skew={skew:<7} {make:<28} picture={verdict}{err}"
    )


def _probe_summary(r: object) -> str:
    from tianwang.protocol import ProbeResult

    assert isinstance(r, ProbeResult)

    def yn(v: bool | None) -> str:
        return "unknown" if v is None else ("yes" if v else "no")

    lines = [f"device        {r.device_id}  ({r.duration_ms:.0f} ms)"]
    lines.append(f"reachable     {yn(r.reachable)}")
    lines.append(f"authenticated {yn(r.authenticated)}")
    skew = "unknown" if r.clock_skew_s is None else f"{r.clock_skew_s:+.1f} s"
    lines.append(f"clock skew    {skew}")
    if r.device_info:
        d = r.device_info
        lines.append(f"make/model    {d.manufacturer or '?'} {d.model or '?'}")
        lines.append(f"firmware      {d.firmware or '?'}  serial {d.serial or '?'}")
    for p in r.profiles:
        size = f"{p.width}x{p.height}" if p.width and p.height else "?"
        fps = f"{p.fps:g} fps" if p.fps else "? fps"
        lines.append(f"profile       {p.token}: {p.encoding or '?'} {size} {fps}")
    lines.append(f"snapshot URI  {r.snapshot_uri or '-'}")
    lines.append(f"stream URI    {r.stream_uri or '-'}")
    if r.snapshot:
        s = r.snapshot
        verdict = (s.quality or {}).get("verdict", "?") if s.judged else "not judged"
        lines.append(f"snapshot      {s.key} ({s.width}x{s.height}, {s.size} bytes, quality {verdict})")
    for st in r.steps:
        why = f"  {st.code or ''} {st.message or ''}".rstrip() if st.outcome != "ok" else ""
        lines.append(f"  {st.name:<9} {st.outcome:<8} {st.duration_ms:7.1f} ms{why}")
    if r.error:
        lines.append(f"error         {r.error.code}: {r.error.message}")
    return "\n".join(lines)


@app.command("discover")
def discover_cmd(
    unicast: Annotated[
        list[str] | None, typer.Option("--unicast", help="probe this HOST[:PORT] directly (repeatable)")
    ] = None,
    interface: Annotated[
        str | None, typer.Option(help="IPv4 address of the interface to use (default: every one)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to collect answers")] = 3.0,
    port: Annotated[int, typer.Option(help="WS-Discovery port probed", min=1, max=65535)] = 3702,
) -> None:
    """Find ONVIF cameras by WS-Discovery (multicast on every interface, unicast on loopback, or
    unicast to given hosts); exit code 1 when nothing answered."""
    import asyncio

    from edge_agent.devices.discovery import discover

    try:
        found = asyncio.run(
            discover(unicast=unicast or None, interface=interface, timeout_s=timeout, port=port)
        )
    except (ValueError, OSError) as e:
        raise fail(str(e)) from None
    for d in found:
        name = f"  {d.name}" if d.name else ""
        typer.echo(f"{' '.join(d.xaddrs)}  {d.epr}{name}")
    if not found:
        raise fail(f"no device answered within {timeout:g} s")
    typer.echo(f"{len(found)} device(s) answered", err=True)


# a stop (SIGTERM) waits this long for open responses, then closes them: a live alarm stream never
# ends by itself, and uvicorn would otherwise wait for it until the process is killed
SHUTDOWN_GRACE_S = 5


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Run the API (settings from TIANWANG_* env / .env)."""
    import os

    import uvicorn

    from tianwang.config import served_public_url

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, force=True)
    url = served_public_url(get_settings(), host, port)
    if url is not None:
        # signed object URLs must point where this server is (the workers read it from the env)
        os.environ["TIANWANG_PUBLIC_URL"] = url
        get_settings.cache_clear()
        if host in ("0.0.0.0", "::"):  # noqa: S104
            logging.getLogger("tianwang").warning(
                "serving on %s: object URLs name %s; set TIANWANG_PUBLIC_URL to the address agents use",
                host,
                url,
            )
    uvicorn.run(
        "tianwang.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )


@app.command("agent")
def agent_cmd(
    central: Annotated[str, typer.Option(help="the API's base URL")],
    token: Annotated[
        str, typer.Option(help="an API token of role agent (or env TIANWANG_AGENT_TOKEN, not shown by ps)")
    ] = "",
    agent_id: Annotated[str | None, typer.Option(help="this agent's id (default: the hostname)")] = None,
    zones: Annotated[str | None, typer.Option(help='area-code prefixes: "4403,4401" (default *)')] = None,
    capacity: Annotated[int | None, typer.Option(help="devices it can watch")] = None,
    concurrency: Annotated[int | None, typer.Option(help="probes in flight at once")] = None,
    outbox: Annotated[str | None, typer.Option(help="the durable outbox file (SQLite)")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="port of /metrics on 127.0.0.1 (0: off)")] = None,
) -> None:
    """Run an edge agent (other settings from TIANWANG_AGENT_* env; see docs/agent.md)."""
    import asyncio

    from pydantic import ValidationError

    from edge_agent.agent import run_agent
    from edge_agent.outbox import OutboxError
    from edge_agent.settings import AgentSettings

    given: dict[str, Any] = {
        "agent_id": agent_id,
        "zones": zones,
        "capacity": capacity,
        "concurrency": concurrency,
        "outbox": outbox,
        "metrics_port": metrics_port,
        "token": token or None,  # else from TIANWANG_AGENT_TOKEN
    }
    try:
        settings = AgentSettings(central=central, **{k: v for k, v in given.items() if v is not None})
    except ValidationError as e:
        why = "; ".join(f"{'.'.join(str(p) for p in er['loc'])}: {er['msg']}" for er in e.errors())
        raise fail(why) from None
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, force=True)
    try:
        asyncio.run(run_agent(settings))
    except (OutboxError, OSError) as e:
        raise fail(str(e)) from None


@app.command("demo")
def demo(
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    cameras: Annotated[
        int | None, typer.Option(help="cameras of the city, each a live virtual device (first start: 100)")
    ] = None,
    people: Annotated[int | None, typer.Option(help="simulated people (first start: 1000)")] = None,
    vehicles: Annotated[int | None, typer.Option(help="simulated vehicles (first start: 600)")] = None,
    seed: Annotated[int | None, typer.Option(help="same seed, same city and people (first start: 1)")] = None,
    fault_share: Annotated[float, typer.Option(help="share of devices given a random fault")] = 0.2,
) -> None:
    """A living city on the embedded default: the API, the city's cameras as virtual devices (some
    faulty), one agent, people and vehicles moving; prints the console URL and a token per role.
    A restart on the same data directory goes on with the same city (its size is kept)."""
    from tianwang.demo import run_demo

    if cameras is not None and not 4 <= cameras <= 2000:
        raise fail("--cameras must be between 4 and 2000 (each one is a live virtual device)")
    if people is not None and not 1 <= people <= 200_000:
        raise fail("--people must be between 1 and 200,000")
    if vehicles is not None and not 0 <= vehicles <= 100_000:
        raise fail("--vehicles must be between 0 and 100,000")
    if not 0 <= fault_share <= 1:
        raise fail("0 ≤ --fault-share ≤ 1")
    try:
        run_demo(
            port=port, cameras=cameras, fault_share=fault_share, people=people, vehicles=vehicles, seed=seed
        )
    except RuntimeError as e:
        raise fail(str(e)) from None


@app.command("simulate")
def simulate(
    cameras: Annotated[int, typer.Option(help="virtual cameras")] = 20,
    checkpoints: Annotated[int, typer.Option(help="virtual checkpoints (卡口)")] = 2,
    faults: Annotated[str, typer.Option(help='e.g. "3:offline,4:slow=5,5:blur" (0-based index)')] = "",
    fault_share: Annotated[float, typer.Option(help="share of devices given a random fault")] = 0.0,
    seed: Annotated[int, typer.Option(help="same seed, same devices")] = 1,
    json_file: Annotated[str, typer.Option("--json", help="write the devices' JSON here")] = "",
    control_port: Annotated[int, typer.Option(help="control API port (0: a free one)")] = 0,
    discovery_port: Annotated[int, typer.Option(help="WS-Discovery UDP port (-1: off)")] = 3702,
    mode: Annotated[str, typer.Option(help="scene: day, night or ir")] = "day",
    host: Annotated[
        str, typer.Option(help="address to serve on and advertise (a container's name in compose)")
    ] = "127.0.0.1",
    rtsp: Annotated[
        bool, typer.Option(help="serve each device's stream over real RTSP (GStreamer, python3-gi)")
    ] = False,
) -> None:
    """Run virtual ONVIF cameras and checkpoints until Ctrl-C (see docs/simulator.md)."""
    from simulator.cli import run

    code = run(
        cameras,
        checkpoints,
        faults,
        fault_share,
        seed,
        json_file or None,
        control_port,
        discovery_port,
        mode,
        host,
        rtsp,
    )
    if code:
        raise typer.Exit(code)


@app.command("movement")
def movement(
    people: Annotated[int, typer.Option(help="simulated people")] = 1000,
    vehicles: Annotated[int, typer.Option(help="simulated vehicles (taxis and buses included)")] = 600,
    days: Annotated[int, typer.Option(help="simulated days")] = 1,
    seed: Annotated[int, typer.Option(help="same seed, same data")] = 1,
    out: Annotated[str, typer.Option(help="directory for the JSONL files and truth.json")] = "",
    feed_url: Annotated[str, typer.Option("--feed", help="API base URL to POST the batches to")] = "",
    token: Annotated[str, typer.Option(help="agent-role token for --feed")] = "",
    speedup: Annotated[float, typer.Option(help="simulated seconds per wall second (0: flat out)")] = 0.0,
    cameras: Annotated[int, typer.Option(help="size of the city (0: vehicles / 5)")] = 0,
    ocr_error: Annotated[float, typer.Option(help="share of passes with a misread plate")] = 0.01,
) -> None:
    """Simulate people and vehicles moving over the synthetic city (see docs/movement.md)."""
    from simulator.movement.cli import run

    code = run(
        people=people,
        vehicles=vehicles,
        days=days,
        seed=seed,
        out=out or None,
        feed_url=feed_url or None,
        token=token or None,
        speedup=speedup,
        cameras=cameras or None,
        ocr_error=ocr_error,
    )
    if code:
        raise typer.Exit(code)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def main() -> None:
    # warnings only for one-shot verbs (a library may otherwise turn on INFO for the whole
    # process); long-running verbs (serve, agent) raise it for themselves
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
