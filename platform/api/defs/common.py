"""Shared wire shapes: the base of every answer, `Page[T]`, numbers, GeoJSON, time windows."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema

T = TypeVar("T")
P = TypeVar("P")

# a JSON number as the domain computed it: an int stays an int (`round(5, 1)` is 5, not 5.0)
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
# an ISO 8601 time with its UTC offset, as the domain formatted it
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class Out(BaseModel):
    """The base of every answer: a key the model does not declare is an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """An object whose keys are open by nature (echoed parameters, run figures, GeoJSON members):
    the declared fields are typed, any other key is kept in its place."""

    model_config = ConfigDict(extra="allow")


class Page(Out, Generic[T]):
    """One keyset page: the items, and the cursor of the next page (null on the last)."""

    items: list[T]
    next_cursor: str | None


class Window(Out):
    """A time window as figures are computed over it."""

    from_: Timestamp = Field(alias="from")
    to: Timestamp
    seconds: Number


class Geometry(Open):
    """A GeoJSON geometry (RFC 7946): `type`, then `coordinates` nested by type (or `geometries`)."""

    type: str


class Feature(Out, Generic[P]):
    type: Literal["Feature"]
    geometry: Geometry | None
    properties: P


class FeatureCollection(Out, Generic[P]):
    type: Literal["FeatureCollection"]
    features: list[Feature[P]]


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def sheet_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route answering a CSV or XLSX attachment (`format=csv|xlsx`)."""
    return {
        200: {
            "description": description,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "server-sent events (`id:` the alarm id, `data:` the alarm as JSON)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


_ANY = TypeAdapter(dict[str, Any])


def unvalidated(answer: dict[str, Any]) -> Response:
    """`answer` as JSON without validating it against the route's `response_model` (which then only
    documents it): for big answers (a trajectory of 1,000 points, fusion evidence), where building
    the models costs a quarter of the call. The bytes are those FastAPI would send for a plain dict;
    the tests validate these answers against their models (tests/test_api_defs.py)."""
    return Response(_ANY.dump_json(answer), media_type="application/json")
