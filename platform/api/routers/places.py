"""Registry routes for the city's map: areas, key sites, roads, phone fences."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from sqlalchemy import select

from tianwang.api.defs.common import Page
from tianwang.api.defs.places import RoadPage
from tianwang.api.deps import DB, HUMANS, MAP_WRITE, require
from tianwang.errors import NotFound
from tianwang.pagination import paginate
from tianwang.places import service
from tianwang.places.schemas import (
    AreaIn,
    AreaKind,
    AreaOut,
    FenceIn,
    FenceOut,
    ImportReport,
    KeySiteIn,
    KeySiteOut,
)
from tianwang.storage.models import Area, Fence, KeySite, Road

router = APIRouter(prefix="/api/v1", tags=["map"])
READ = [Depends(require(*HUMANS))]
WRITE = [Depends(require(*MAP_WRITE))]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _area(r: Area) -> AreaOut:
    return AreaOut(code=r.code, name=r.name, kind=r.kind, parent=r.parent, geometry=r.geometry)


@router.post("/areas", response_model=AreaOut, dependencies=WRITE)
def put_area(body: AreaIn, db: DB, response: Response) -> AreaOut:
    row, created = service.upsert_area(db, body)
    response.status_code = 201 if created else 200
    return _area(row)


@router.get("/areas", response_model=Page[AreaOut], dependencies=READ)
def list_areas(
    db: DB,
    kind: AreaKind | None = None,
    parent: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Page[AreaOut]:
    page = service.list_areas(db, kind.value if kind else None, parent, limit, cursor)
    return Page[AreaOut](items=[_area(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/areas/{code}", response_model=AreaOut, dependencies=READ)
def get_area(code: str, db: DB) -> AreaOut:
    return _area(service.get_area(db, code))


@router.delete("/areas/{code}", status_code=204, dependencies=WRITE)
def delete_area(code: str, db: DB) -> Response:
    service.delete_area(db, code)
    return Response(status_code=204)


def _site(r: KeySite) -> KeySiteOut:
    return KeySiteOut(id=r.site_id, name=r.name, category=r.category, geometry=r.geometry)


@router.post("/key-sites", response_model=KeySiteOut, dependencies=WRITE)
def put_key_site(body: KeySiteIn, db: DB, response: Response) -> KeySiteOut:
    row, created = service.upsert_key_site(db, body)
    response.status_code = 201 if created else 200
    return _site(row)


@router.get("/key-sites", response_model=Page[KeySiteOut], dependencies=READ)
def list_key_sites(
    db: DB, category: str | None = None, limit: Limit = 100, cursor: str | None = None
) -> Page[KeySiteOut]:
    stmt = select(KeySite)
    if category:
        stmt = stmt.where(KeySite.category == category)
    page = paginate(db, stmt, KeySite.id, limit, cursor)
    return Page[KeySiteOut](items=[_site(r) for r in page.items], next_cursor=page.next_cursor)


@router.delete("/key-sites/{site_id}", status_code=204, dependencies=WRITE)
def delete_key_site(site_id: str, db: DB) -> Response:
    row = db.scalar(select(KeySite).where(KeySite.site_id == site_id))
    if row is None:
        raise NotFound(f"key site {site_id} is not registered")
    db.delete(row)
    return Response(status_code=204)


@router.post("/roads", response_model=ImportReport, dependencies=WRITE)
def import_roads(db: DB, body: Annotated[dict[str, Any], Body()]) -> ImportReport:
    """A GeoJSON FeatureCollection of LineStrings with `properties.road_class`; upserted by id."""
    return service.import_roads(db, body)


@router.get("/roads", response_model=RoadPage, dependencies=READ)
def list_roads(db: DB, limit: Limit = 1000, cursor: str | None = None) -> dict[str, Any]:
    """Roads as a GeoJSON FeatureCollection page (`next_cursor` beside `features`)."""
    page = paginate(db, select(Road), Road.id, limit, cursor)
    feats = [
        {
            "type": "Feature",
            "id": r.road_id,
            "geometry": r.geometry,
            "properties": {"name": r.name, "road_class": r.road_class, "length_m": round(r.length_m, 1)},
        }
        for r in page.items
    ]
    return {"type": "FeatureCollection", "features": feats, "next_cursor": page.next_cursor}


def _fence(r: Fence) -> FenceOut:
    return FenceOut(fence_id=r.fence_id, name=r.name, lon=r.lon, lat=r.lat, radius_m=r.radius_m)


@router.post("/fences", response_model=FenceOut, dependencies=WRITE)
def put_fence(body: FenceIn, db: DB, response: Response) -> FenceOut:
    row, created = service.upsert_fence(db, body)
    response.status_code = 201 if created else 200
    return _fence(row)


@router.get("/fences", response_model=Page[FenceOut], dependencies=READ)
def list_fences(db: DB, limit: Limit = 100, cursor: str | None = None) -> Page[FenceOut]:
    page = paginate(db, select(Fence), Fence.id, limit, cursor)
    return Page[FenceOut](items=[_fence(r) for r in page.items], next_cursor=page.next_cursor)


@router.delete("/fences/{fence_id}", status_code=204, dependencies=WRITE)
def delete_fence(fence_id: str, db: DB) -> Response:
    row = db.scalar(select(Fence).where(Fence.fence_id == fence_id))
    if row is None:
        raise NotFound(f"fence {fence_id} is not registered")
    db.delete(row)
    return Response(status_code=204)
