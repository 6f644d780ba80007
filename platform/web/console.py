"""The console (控制台): server-rendered page shells plus small vanilla JS that calls the API.

The pages hold no data: every figure is fetched by the browser from the API with the user's
token, so the role checks of the API apply to the console unchanged. Nothing is fetched from the
internet: Leaflet comes from the npm registry at set-up (`platform/web/node_modules`, or
`TIANWANG_WEB_VENDOR_DIR`), and map tiles only from `TIANWANG_MAP_TILE_URL` when it is set.

Everything the pages show that a user or a device typed is put in as text, never as markup (see
docs/console.md). Every page and static file is also served with a Content-Security-Policy that
runs only the console's own script files (no inline script, no inline event handler), so a slip in
that rule cannot run anybody's script.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import Scope

from tianwang.config import Settings

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))

# page -> (template, Chinese title, English title, roles that use it)
PAGES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "coverage": ("coverage.html", "覆盖总览", "Coverage", ("admin", "staff")),
    "map": ("map.html", "地图", "Map", ("admin", "staff", "installer", "investigator")),
    "install": ("install.html", "安装调试", "Installer", ("admin", "staff", "installer")),
    "investigation": ("investigation.html", "研判", "Investigation", ("admin", "investigator")),
    "registry": ("registry.html", "设备档案", "Registry", ("admin", "staff", "installer")),
}


def vendor_dir(settings: Settings) -> Path:
    return Path(settings.web_vendor_dir) if settings.web_vendor_dir else HERE / "node_modules"


def _origin(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute http(s) URL or tile template (`{s}` subdomains become a
    wildcard); a template with another placeholder in its host gives its scheme alone; None for a
    relative URL (served by 'self')."""
    u = urllib.parse.urlsplit(url.strip().replace("{s}", "*"))
    if u.scheme.lower() not in ("http", "https") or not u.netloc:
        return None
    host = u.netloc.rpartition("@")[2]  # never user:password into a header
    if not host or any(c in host for c in "{}; ,'\""):
        return f"{u.scheme.lower()}:"
    return f"{u.scheme.lower()}://{host}"


def _object_store_origin(settings: Settings) -> str | None:
    """Where the browser fetches snapshots through presigned URLs: the S3 endpoint (never its keys)."""
    spec = settings.effective_object_store
    if not spec.startswith(("s3://", "minio://")):
        return None  # the directory store's URLs are under TIANWANG_PUBLIC_URL
    u = urllib.parse.urlsplit(spec)
    secure = urllib.parse.parse_qs(u.query).get("secure", ["false"])[-1].lower() in ("1", "true", "yes", "on")
    host = u.netloc.rpartition("@")[2]
    return f"{'https' if secure else 'http'}://{host}" if host else None


def security_headers(settings: Settings) -> dict[str, str]:
    """The headers of every console page and static file.

    `script-src 'self'` without 'unsafe-inline' refuses inline <script> and on…= handlers; the one
    inline block of the pages is JSON data (`type="application/json"`), which is not run. Pictures
    may also come from the tile server, the object store's presigned URLs and data:/blob: URLs (the
    report and export downloads); nothing else is fetched from elsewhere.
    """
    img = ["'self'", "data:", "blob:"]
    for url in (settings.map_tile_url, settings.public_url):
        o = _origin(url) if url else None
        if o and o not in img:
            img.append(o)
    o = _object_store_origin(settings)
    if o and o not in img:
        img.append(o)
    csp = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src " + " ".join(img),
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


class _Static(StaticFiles):
    """Static files with the console's security headers."""

    def __init__(self, *, headers: dict[str, str], directory: str) -> None:
        super().__init__(directory=directory)
        self.extra_headers = headers

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(self.extra_headers)
        return response


def _page_context(request: Request, settings: Settings, page: str) -> dict[str, Any]:
    return {
        "request": request,
        "page": page,
        "pages": PAGES,
        "config": {"tile_url": settings.map_tile_url, "tile_attribution": settings.map_tile_attribution},
        "leaflet": (vendor_dir(settings) / "leaflet" / "dist" / "leaflet.js").is_file(),
    }


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the console's routes and static files to the API app."""
    router = APIRouter(include_in_schema=False)
    headers = security_headers(settings)

    @router.get("/")
    def root() -> Response:
        return RedirectResponse("/console", status_code=307)

    @router.get("/console", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        return TEMPLATES.TemplateResponse(
            request, "home.html", _page_context(request, settings, "home"), headers=headers
        )

    @router.get("/console/{page}", response_class=HTMLResponse)
    def page(request: Request, page: str) -> Response:
        if page not in PAGES:
            raise HTTPException(404, f"no console page {page!r}")
        return TEMPLATES.TemplateResponse(
            request, PAGES[page][0], _page_context(request, settings, page), headers=headers
        )

    app.include_router(router)
    static = _Static(headers=headers, directory=str(HERE / "static"))
    app.mount("/console/static", static, name="console-static")
    leaflet = vendor_dir(settings) / "leaflet" / "dist"
    if leaflet.is_dir():
        vendor = _Static(headers=headers, directory=str(leaflet))
        app.mount("/console/vendor/leaflet", vendor, name="console-leaflet")
