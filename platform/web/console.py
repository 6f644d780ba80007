"""The console (控制台): server-rendered page shells plus small vanilla JS that calls the API.

The pages hold no data: every figure is fetched by the browser from the API with the user's
token, so the role checks of the API apply to the console unchanged. Nothing is fetched from the
internet: Leaflet comes from the npm registry at set-up (`platform/web/node_modules`, or
`TIANWANG_WEB_VENDOR_DIR`), and map tiles only from `TIANWANG_MAP_TILE_URL` when it is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

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

    @router.get("/")
    def root() -> Response:
        return RedirectResponse("/console", status_code=307)

    @router.get("/console", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        return TEMPLATES.TemplateResponse(request, "home.html", _page_context(request, settings, "home"))

    @router.get("/console/{page}", response_class=HTMLResponse)
    def page(request: Request, page: str) -> Response:
        if page not in PAGES:
            raise HTTPException(404, f"no console page {page!r}")
        return TEMPLATES.TemplateResponse(request, PAGES[page][0], _page_context(request, settings, page))

    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    leaflet = vendor_dir(settings) / "leaflet" / "dist"
    if leaflet.is_dir():
        app.mount("/console/vendor/leaflet", StaticFiles(directory=str(leaflet)), name="console-leaflet")
