"""Storing areas, key sites, roads and fences."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianwang.errors import Conflict, NotFound, ValidationFailed
from tianwang.pagination import Page, paginate
from tianwang.places.geojson import geodesic_length_m, parse_geometry
from tianwang.places.schemas import AreaIn, FenceIn, ImportReport, KeySiteIn
from tianwang.storage.models import Area, Fence, KeySite, Road
from tianwang.validation import check_display_text

ROAD_CLASSES = frozenset(
    {
        "motorway", "trunk", "primary", "secondary", "tertiary", "residential", "service",
        "unclassified", "ring", "arterial", "local", "living_street",
    }
)  # fmt: skip


def upsert_area(session: Session, body: AreaIn) -> tuple[Area, bool]:
    if body.parent:
        if body.parent == body.code:
            raise ValidationFailed(
                "an area cannot be its own parent", errors=[{"field": "parent", "message": "self"}]
            )
        if session.scalar(select(Area.id).where(Area.code == body.parent)) is None:
            raise ValidationFailed(
                f"parent area {body.parent} is not registered",
                errors=[{"field": "parent", "message": "unknown area"}],
            )
    geom = parse_geometry(body.geometry, ("Polygon", "MultiPolygon"))
    minx, miny, maxx, maxy = geom.bounds
    row = session.scalar(select(Area).where(Area.code == body.code))
    created = row is None
    if row is None:
        row = Area(code=body.code)
        session.add(row)
    row.name, row.kind, row.parent, row.geometry = body.name, body.kind.value, body.parent, body.geometry
    row.min_lon, row.min_lat, row.max_lon, row.max_lat = minx, miny, maxx, maxy
    session.flush()
    return row, created


def get_area(session: Session, code: str) -> Area:
    row = session.scalar(select(Area).where(Area.code == code))
    if row is None:
        raise NotFound(f"area {code} is not registered")
    return row


def delete_area(session: Session, code: str) -> None:
    row = get_area(session, code)
    if session.scalar(select(Area.id).where(Area.parent == code).limit(1)) is not None:
        raise Conflict(f"area {code} still has child areas; delete them first")
    session.delete(row)
    session.flush()


def list_areas(
    session: Session, kind: str | None, parent: str | None, limit: int, cursor: str | None
) -> Page[Area]:
    stmt = select(Area)
    if kind:
        stmt = stmt.where(Area.kind == kind)
    if parent:
        stmt = stmt.where(Area.parent == parent)
    return paginate(session, stmt, Area.id, limit, cursor)


def upsert_key_site(session: Session, body: KeySiteIn) -> tuple[KeySite, bool]:
    row = session.scalar(select(KeySite).where(KeySite.site_id == body.id))
    created = row is None
    if row is None:
        row = KeySite(site_id=body.id)
        session.add(row)
    row.name, row.category, row.geometry = body.name, body.category, body.geometry
    session.flush()
    return row, created


def import_roads(session: Session, collection: Any) -> ImportReport:
    """A GeoJSON FeatureCollection of LineStrings; each feature upserted by `id` / `properties.id`."""
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise ValidationFailed("body must be a GeoJSON FeatureCollection")
    features = collection.get("features")
    if not isinstance(features, list):
        raise ValidationFailed("FeatureCollection.features must be a list")
    created = updated = 0
    rejected: list[dict[str, Any]] = []
    seen: set[str] = set()
    existing = {r.road_id: r for r in session.scalars(select(Road))} if features else {}
    for i, f in enumerate(features):
        errors: list[str] = []
        props = (f.get("properties") or {}) if isinstance(f, dict) else {}
        if not isinstance(f, dict) or f.get("type") != "Feature":
            rejected.append({"index": i, "errors": ["not a GeoJSON Feature"]})
            continue
        if not isinstance(props, dict):
            rejected.append({"index": i, "errors": ["properties must be an object"]})
            continue
        rid = f.get("id", props.get("id"))
        rid = str(rid) if rid is not None else None
        if not rid or len(rid) > 64:
            errors.append("id (feature id or properties.id) is required, at most 64 characters")
        elif rid in seen:
            errors.append(f"id {rid} appears twice in this collection")
        if props.get("name") is not None:
            try:
                check_display_text(str(props["name"]))
            except ValueError as e:
                errors.append(f"properties.name {e}")
        road_class = str(props.get("road_class", props.get("highway", "")) or "")
        if road_class not in ROAD_CLASSES:
            errors.append(
                f"properties.road_class {road_class!r} is not one of {', '.join(sorted(ROAD_CLASSES))}"
            )
        try:
            geom = parse_geometry(f.get("geometry"), ("LineString", "MultiLineString"))
        except ValueError as e:
            errors.append(str(e))
            geom = None
        if errors or geom is None or rid is None:
            rejected.append({"index": i, "id": rid, "errors": errors})
            continue
        seen.add(rid)
        row = existing.get(rid)
        if row is None:
            row = Road(road_id=rid)
            session.add(row)
            existing[rid] = row
            created += 1
        else:
            updated += 1
        row.name = str(props["name"])[:200] if props.get("name") else None
        row.road_class = road_class
        row.geometry = f["geometry"]
        row.length_m = geodesic_length_m(geom)
    session.flush()
    return ImportReport(created=created, updated=updated, rejected=rejected)


def upsert_fence(session: Session, body: FenceIn) -> tuple[Fence, bool]:
    row = session.scalar(select(Fence).where(Fence.fence_id == body.fence_id))
    created = row is None
    if row is None:
        row = Fence(fence_id=body.fence_id)
        session.add(row)
    row.name, row.lon, row.lat, row.radius_m = body.name, body.lon, body.lat, body.radius_m
    session.flush()
    return row, created
