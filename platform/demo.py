"""`tianwang demo`: the embedded default on one machine — migrate, mint tokens, serve."""

from __future__ import annotations

import logging

from tianwang.config import get_settings


def run_demo(port: int = 8000, cameras: int = 50) -> None:
    import uvicorn

    from tianwang.api.app import create_app
    from tianwang.auth.tokens import create_token
    from tianwang.context import AppContext
    from tianwang.storage import migrate

    settings = get_settings()
    settings.public_url = f"http://127.0.0.1:{port}"
    url = settings.effective_database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url)
    ctx = AppContext.build(settings)
    with ctx.db.session() as s:
        tokens = {
            role: create_token(s, role, f"demo-{role}")
            for role in ("admin", "staff", "installer", "investigator")
        }
    print(f"Tianwang demo — database {url}, objects {settings.effective_object_store}")
    print(f"  API:     http://127.0.0.1:{port}/docs")
    for role, tok in tokens.items():
        print(f"  {role + ' token:':<20} {tok}")
    print("Ctrl-C stops; the data stays for the next start.", flush=True)
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(create_app(settings, ctx), host="127.0.0.1", port=port, log_level="warning")
    ctx.close()
