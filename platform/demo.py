"""`tianwang demo`: the embedded default on one machine — migrate, mint tokens once, serve."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from tianwang.config import get_settings

DEMO_ROLES = ("admin", "staff", "installer", "investigator", "agent")


def demo_tokens(ctx: object, path: Path) -> dict[str, str]:
    """The demo's tokens, made on the first start and kept (0600) so a restart prints the same ones."""
    from tianwang.auth.tokens import authenticate, create_token
    from tianwang.context import AppContext
    from tianwang.errors import Unauthorized

    assert isinstance(ctx, AppContext)
    tokens: dict[str, str] = {}
    if path.exists():
        try:
            tokens = {k: v for k, v in json.loads(path.read_text()).items() if k in DEMO_ROLES}
        except ValueError:
            tokens = {}
    with ctx.db.session() as s:
        for role in DEMO_ROLES:
            tok = tokens.get(role)
            if tok:
                try:
                    authenticate(s, tok)
                    continue
                except Unauthorized:  # the database was reset: mint a new one
                    pass
            tokens[role] = create_token(s, role, f"demo-{role}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(tokens, f, indent=2)
    return tokens


def run_demo(port: int = 8000, cameras: int = 50) -> None:
    import uvicorn

    from tianwang.api.app import create_app
    from tianwang.context import AppContext
    from tianwang.storage import migrate

    settings = get_settings()
    settings.public_url = f"http://127.0.0.1:{port}"
    url = settings.effective_database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url)
    ctx = AppContext.build(settings)
    tokens = demo_tokens(ctx, settings.data_dir / "demo-tokens.json")
    print(f"Tianwang demo — database {url}, objects {settings.effective_object_store}")
    print(f"  API docs:  http://127.0.0.1:{port}/docs")
    for role, tok in tokens.items():
        print(f"  {role + ' token:':<20} {tok}")
    print(
        f"  (tokens kept in {settings.data_dir / 'demo-tokens.json'}; Ctrl-C stops, the data stays)",
        flush=True,
    )
    logging.basicConfig(level=logging.WARNING)
    try:
        uvicorn.run(create_app(settings, ctx), host="127.0.0.1", port=port, log_level="warning")
    finally:
        ctx.close()
