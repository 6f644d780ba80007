"""Wire shapes of areas, key sites, roads and fences."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, Field, field_validator

from tianwang.cameras.schemas import Lat, Lon
from tianwang.places.geojson import parse_geometry
from tianwang.validation import InputModel, Text

POLYGONAL = ("Polygon", "MultiPolygon")


class AreaKind(enum.StrEnum):
    city = "city"
    district = "district"
    station = "station"
    grid = "grid"


class AreaIn(InputModel):
    code: str = Field(pattern=r"^[0-9A-Za-z_\-]{2,32}$")
    name: Text = Field(min_length=1, max_length=200)
    kind: AreaKind
    parent: str | None = Field(None, pattern=r"^[0-9A-Za-z_\-]{2,32}$")
    geometry: dict[str, Any]

    @field_validator("geometry")
    @classmethod
    def _geom(cls, v: dict[str, Any]) -> dict[str, Any]:
        parse_geometry(v, POLYGONAL)
        return v


class AreaOut(BaseModel):
    code: str
    name: str
    kind: str
    parent: str | None
    geometry: dict[str, Any]


class KeySiteIn(InputModel):
    id: str = Field(pattern=r"^[0-9A-Za-z_\-.]{1,64}$")
    name: Text = Field(min_length=1, max_length=200)
    category: Text = Field(min_length=1, max_length=50)
    geometry: dict[str, Any]

    @field_validator("geometry")
    @classmethod
    def _geom(cls, v: dict[str, Any]) -> dict[str, Any]:
        parse_geometry(v, ("Point", "Polygon", "MultiPolygon"))
        return v


class KeySiteOut(BaseModel):
    id: str
    name: str
    category: str
    geometry: dict[str, Any]


class FenceIn(InputModel):
    fence_id: str = Field(pattern=r"^[0-9A-Za-z_\-.]{1,64}$")
    name: Text = Field(min_length=1, max_length=200)
    lon: Lon
    lat: Lat
    radius_m: float = Field(gt=0, le=10000, allow_inf_nan=False)


class FenceOut(BaseModel):
    fence_id: str
    name: str
    lon: float
    lat: float
    radius_m: float


class ImportReport(BaseModel):
    created: int
    updated: int
    rejected: list[dict[str, Any]]
